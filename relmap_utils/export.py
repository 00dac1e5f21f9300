"""``relmap export RUN``: self-contained HTML pages and Excel workbooks of a run, for the client.

An export is a new folder, by default ``reports/export-<YYYYMMDD-HHMMSS>/``
inside the run folder (the time in the engagement's time zone), holding:

- ``index.html``: the overview, with each stage's status and headline results
  from its ``artifacts/<stage>/summary.json``, linking to the pages below;
- ``<stage>.html``: a copy of the report the stage wrote to
  ``reports/<stage>.html``. Those reports are already self-contained: code
  hidden, plotly.js embedded once, nothing loaded from a CDN. They show
  exactly what the stage computed. The export therefore reuses them instead
  of converting the executed notebook with nbconvert, which would add a
  dependency and whose HTML templates load require.js and MathJax from CDNs.
  For a stage that writes no report (stage 05 risk), the export builds the
  page from the stage's artifacts (:mod:`relmap_utils.export_pages`);
- ``<stage>.xlsx``: the stage's key tables, one sheet each, with sheet and
  column names in the report language (Chinese by default), and a first
  sheet that names the artifact and sha256 behind every sheet.

Every file the export reads is checked against the manifest first, so a
modified artifact is never shipped. The new files are added to the manifest
(``exports``) with their sha256, which ``relmap audit verify`` checks.

An export never overwrites: when the folder exists the export stops. A second
export of the same run writes a new dated folder; two within the same second
collide, and the second one stops with a message.

Which tables a stage exports is declared in :data:`EXPORT_TABLES`; a new
stage adds one entry there and its sheet and column names to ``export.po``.
A stage that completed with nothing to do is exported with its page and
the reason it gives. Times are shown in the engagement's time zone with
the UTC offset.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import os
import shutil
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relmap_utils import __version__, export_pages
from relmap_utils.audit.diff import headline_metrics, read_summary
from relmap_utils.audit.run_folder import open_run, stage_records
from relmap_utils.errors import RunError
from relmap_utils.i18n import get_locale, set_locale, tr
from relmap_utils.manifest import COMPLETED_STATUSES, MANIFEST_FILE, sha256_file, skip_reason_text, write_manifest

logger = logging.getLogger(__name__)

EXPORT_PREFIX = "export-"
EXCEL_MAX_ROWS = 1_048_576  # rows per sheet in .xlsx, the header row included
EXCEL_MAX_CELL_TEXT = 32_767  # characters per cell
_SHEET_NAME_FORBIDDEN = str.maketrans({char: "_" for char in "[]:*?/\\"})
_EXPORTABLE = COMPLETED_STATUSES


@dataclass(frozen=True)
class ExportColumn:
    """One exported column of an artifact table.

    Parameters
    ----------
    name : str
        Column in the Parquet file.
    label : str
        Catalog key of the column header.
    values : str, optional
        Catalog key template for the values, with ``{value}`` in it, for
        example ``"profiling.severity.{value}"``; a value without an entry
        is written as it is.
    lookup : str, optional
        ``"group"``: the values are group codes of the stage's
        ``groups.parquet``, written by their name in the report language.
        ``"feature"``: the values are map column names, written by their label.
    """

    name: str
    label: str
    values: str | None = None
    lookup: str | None = None


@dataclass(frozen=True)
class ExportTable:
    """One sheet: an artifact Parquet file of a stage and the columns to export, in order."""

    file: str
    sheet: str
    columns: tuple[ExportColumn, ...]


def _column(name: str, label: str | None = None, values: str | None = None, lookup: str | None = None) -> ExportColumn:
    return ExportColumn(name, label or f"profiling.header.{name}", values, lookup)


# The key tables per stage id. Headers reuse the profiling report's labels
# where one exists, so the workbook and the HTML report name columns alike.
EXPORT_TABLES: dict[str, tuple[ExportTable, ...]] = {
    "01_profiling": (
        ExportTable(
            "findings.parquet",
            "export.sheet.01_profiling.findings",
            (
                _column("severity", values="profiling.severity.{value}"),
                _column("table"),
                _column("column"),
                _column("message_zh", "export.column.message_zh"),
                _column("message_en", "export.column.message_en"),
            ),
        ),
        ExportTable(
            "tables.parquet",
            "export.sheet.01_profiling.tables",
            (
                _column("table"),
                _column("rows"),
                _column("columns"),
                _column("key"),
                _column("duplicate_keys"),
                _column("key_null_rows", "profiling.header.key_nulls"),
                _column("date_column"),
                _column("date_min", "export.column.date_min"),
                _column("date_max", "export.column.date_max"),
                _column("empty_months"),
            ),
        ),
        ExportTable(
            "columns.parquet",
            "export.sheet.01_profiling.columns",
            (
                _column("table"),
                _column("column"),
                _column("semantic_type", values="profiling.semantic.{value}"),
                _column("pseudonymized", "export.column.pseudonymized"),
                _column("missing_share"),
                _column("distinct"),
                _column("min"),
                _column("max"),
                _column("mean"),
                _column("std"),
                _column("p50", "profiling.header.median"),
            ),
        ),
        ExportTable(
            "integrity.parquet",
            "export.sheet.01_profiling.integrity",
            (
                _column("check", "export.column.check"),
                _column("table"),
                _column("column"),
                _column("other_table"),
                _column("other_column", "export.column.other_column"),
                _column("checked"),
                _column("failures", "profiling.header.orphan_rows"),
                _column("failed_keys", "profiling.header.orphan_keys"),
            ),
        ),
        ExportTable(
            "correlations.parquet",
            "export.sheet.01_profiling.correlations",
            (
                _column("table"),
                _column("column"),
                _column("other_column", "export.column.other_column"),
                _column("pearson", "export.column.pearson"),
            ),
        ),
    ),
    "02_map": (
        ExportTable(
            "feature_dictionary.parquet",
            "export.sheet.02_map.features",
            (
                _column("name", "features.header.feature"),
                _column("family", "features.header.family", values="features.family.{value}"),
                _column("description_zh", "export.column.description_zh"),
                _column("description_en", "export.column.description_en"),
                _column("unit", "features.header.unit", values="features.unit.{value}"),
                _column("formula", "export.column.formula"),
                _column("source_tables", "features.header.sources"),
                _column("status", "features.header.status", values="features.status.{value}"),
                _column("reason_zh", "export.column.reason_zh"),
                _column("reason_en", "export.column.reason_en"),
                _column("no_data_value", "features.header.no_data_value"),
            ),
        ),
        ExportTable(
            "coverage.parquet",
            "export.sheet.02_map.coverage",
            (
                _column("as_of", "features.chart.as_of_axis"),
                _column("family", "features.header.family", values="features.family.{value}"),
                _column("status", "features.header.status", values="features.status.{value}"),
                _column("customers", "export.column.customers"),
                _column("covered", "export.column.covered"),
                _column("share", "export.column.covered_share"),
                _column("features_included", "export.column.features_included"),
                _column("features_left_out", "export.column.features_left_out"),
            ),
        ),
    ),
    "03_segmentation": (
        ExportTable(
            "groups.parquet",
            "segmentation.export.sheet.groups",
            (
                _column("kind", "segmentation.export.col.kind", values="segmentation.export.kind.{value}"),
                _column("name_zh", "segmentation.export.col.name_zh"),
                _column("name_en", "segmentation.export.col.name_en"),
                _column("customers", "segmentation.report.col.customers"),
                _column("share", "segmentation.export.col.share"),
                _column("aum_share", "segmentation.export.col.aum_share"),
                _column("description_zh", "segmentation.export.col.description_zh"),
                _column("description_en", "segmentation.export.col.description_en"),
                _column("action_zh", "segmentation.export.col.action_zh"),
                _column("action_en", "segmentation.export.col.action_en"),
                _column("group", "segmentation.report.col.group"),
            ),
        ),
        ExportTable(
            "transitions.parquet",
            "segmentation.export.sheet.transitions",
            (
                _column("kind", "segmentation.export.col.kind", values="segmentation.export.kind.{value}"),
                _column("from_group", "segmentation.report.col.from", lookup="group"),
                _column("to_group", "segmentation.report.col.to", lookup="group"),
                _column("customers", "segmentation.report.col.customers"),
                _column("share", "segmentation.export.col.transition_share"),
                _column("direction", "segmentation.export.col.direction", values="segmentation.export.direction.{value}"),
            ),
        ),
        ExportTable(
            "profiles.parquet",
            "segmentation.export.sheet.profiles",
            (
                _column("kind", "segmentation.export.col.kind", values="segmentation.export.kind.{value}"),
                _column("group", "segmentation.report.col.name", lookup="group"),
                _column("feature", "segmentation.export.col.feature", lookup="feature"),
                _column("mean", "segmentation.export.col.mean"),
                _column("population_mean", "segmentation.export.col.population_mean"),
                _column("contrast", "segmentation.export.col.contrast"),
                _column("group", "segmentation.report.col.group"),
            ),
        ),
    ),
    "04_propensity": (
        ExportTable(
            "metrics.parquet",
            "propensity.export.sheet.metrics",
            tuple(_column(name, f"propensity.column.{name}") for name in (
                "product", "model", "sample", "rows", "takers", "rate", "auc", "gini", "ks", "capture_10",
                "capture_20", "capture_30", "brier")),
        ),
        ExportTable(
            "products.parquet",
            "propensity.export.sheet.products",
            (
                _column("product", "propensity.column.product"),
                _column("status", "propensity.column.status", values="propensity.status.{value}"),
                _column("message_zh", "export.column.message_zh"),
                _column("message_en", "export.column.message_en"),
            ),
        ),
        ExportTable(
            "importance.parquet",
            "propensity.export.sheet.importance",
            (
                _column("product", "propensity.column.product"),
                _column("rank", "propensity.column.rank"),
                _column("feature", "propensity.column.feature"),
                _column("mean_abs_shap", "propensity.chart.mean_abs_shap"),
                _column("method", "propensity.column.explainer"),
            ),
        ),
    ),
    "05_risk": (
        ExportTable(
            "indicators.parquet",
            "risk.export.sheet.indicators",
            (
                _column("variable", "risk.header.variable"),
                _column("iv", "risk.header.iv"),
                _column("iv_band", "risk.header.band_text", values="risk.band.iv.{value}"),
                _column("ks", "risk.header.ks"),
                _column("auc", "risk.header.auc"),
                _column("vif", "risk.header.vif"),
                _column("multi_odds_ratio", "risk.header.multi_odds_ratio"),
                _column("status", "risk.header.status_text", values="risk.status.{value}"),
                _column("reason_zh", "risk.header.reason_zh"),
                _column("reason_en", "risk.header.reason_en"),
            ),
        ),
        ExportTable(
            "scorecard.parquet",
            "risk.export.sheet.scorecard",
            tuple(_column(name, f"risk.header.{name}") for name in (
                "variable", "bin", "count", "bad_rate", "woe", "coef", "points")),
        ),
        ExportTable(
            "backtest_monthly.parquet",
            "risk.export.sheet.backtest",
            tuple(_column(name, f"risk.header.{name}") for name in (
                "as_of", "customers", "warned", "defaults_in_horizon", "warned_precision", "warned_recall", "k",
                "precision_at_k", "recall_at_k")),
        ),
        ExportTable(
            "warnings.parquet",
            "risk.export.sheet.warnings",
            (
                _column("customer_id", "risk.header.customer"),
                _column("as_of", "risk.header.as_of"),
                _column("risk_pd", "risk.header.risk_pd"),
                _column("risk_band", "risk.header.band", values="risk.band.{value}"),
                _column("reasons_zh", "risk.header.reason_zh"),
                _column("reasons_en", "risk.header.reason_en"),
            ),
        ),
    ),
}


class ExportError(RunError):
    """An export cannot be written: the run is not finished, a file was modified, or the folder exists."""


@dataclass
class ExportResult:
    """Outcome of :func:`export_run`.

    Attributes
    ----------
    folder : Path
        The new export folder.
    files : list of Path
        Files written, in the order listed in the manifest.
    manifest_sha256, previous_manifest_sha256 : str
        sha256 of manifest.json after and before the export.
    """

    folder: Path
    files: list[Path] = field(default_factory=list)
    manifest_sha256: str = ""
    previous_manifest_sha256: str = ""


def export_run(path: str | Path, out: str | Path | None = None, now: dt.datetime | None = None) -> ExportResult:
    """Write the HTML pages and Excel workbooks of a run into a new folder and record them in the manifest.

    Parameters
    ----------
    path : str or Path
        The run folder.
    out : str or Path, optional
        Folder to create; default ``reports/export-<time>`` in the run
        folder. It must not exist yet.
    now : datetime, optional
        Time of the export (for tests); default the current time.

    Returns
    -------
    ExportResult

    Raises
    ------
    RunError
        When ``path`` is not a run folder (see :func:`~relmap_utils.audit.open_run`).
    ExportError
        When the run did not succeed, another export of it is running, a
        file the export reads differs from the manifest, or the export
        folder exists. Nothing is written or overwritten then.
    """
    run_dir, manifest = open_run(path)
    if manifest.get("status") != "succeeded":
        raise ExportError("export.run_not_succeeded", run=str(run_dir), status=manifest.get("status") or "-")
    set_locale((manifest.get("config") or {}).get("locale"))
    timezone = _timezone(manifest)
    moment = (now or dt.datetime.now(timezone)).astimezone(timezone)
    folder = Path(out).expanduser().resolve() if out else run_dir / "reports" / (EXPORT_PREFIX + moment.strftime("%Y%m%d-%H%M%S"))

    with _run_lock(run_dir):
        # Re-read under the lock: another export may have extended the manifest meanwhile.
        run_dir, manifest = open_run(run_dir)
        previous = sha256_file(run_dir / MANIFEST_FILE)
        plan = _plan(run_dir, manifest)
        try:
            folder.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise ExportError("export.folder_exists", folder=str(folder)) from None
        logger.info("exporting run %s into %s", run_dir, folder)
        try:
            files = _write_files(run_dir, manifest, plan, folder, moment)
            entry = _manifest_entry(run_dir, folder, files, moment, previous)
            manifest.setdefault("exports", []).append(entry)
            write_manifest(run_dir, manifest)
        except BaseException:
            # Only files this call created are removed; the folder did not exist before.
            shutil.rmtree(folder, ignore_errors=True)
            raise
    result = ExportResult(folder, files, sha256_file(run_dir / MANIFEST_FILE), previous)
    logger.info("exported %d files; manifest sha256 %s", len(files), result.manifest_sha256)
    return result


def _timezone(manifest: dict[str, Any]) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(str(manifest.get("timezone") or "Asia/Shanghai"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc


def shown_time(value: dt.datetime | str | None, manifest: dict[str, Any]) -> str:
    """Format a time for a reader in the run's time zone with its UTC offset: ``2026-12-05 10:30:00 (UTC+08:00)``.

    ``value`` is a datetime or ISO text, as the manifest stores times. Text
    without an offset is taken to be in the run's time zone. Text that is
    not a time is returned as it is, and None as "-".
    """
    if value is None or value == "":
        return "-"
    timezone = _timezone(manifest)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    moment = value.replace(tzinfo=timezone) if value.tzinfo is None else value.astimezone(timezone)
    offset = moment.strftime("%z")
    return f"{moment.strftime('%Y-%m-%d %H:%M:%S')} (UTC{offset[:3]}:{offset[3:]})"


def report_timezone(report_path: str | Path) -> str | None:
    """Return the time zone of the run a stage report is written into, or None when unknown.

    Stage reports live at ``<run>/reports/<stage>.html``; the run's
    ``manifest.json`` names the engagement's time zone. Stage report writers
    pass it to :func:`shown_time`, so every report header shows its time as
    the run id, the manifest and the export index do.

    Parameters
    ----------
    report_path : str or Path
        Where the report is (or will be) written.

    Returns
    -------
    str or None
        The IANA name from the manifest, or None without a readable manifest.
    """
    manifest_path = Path(report_path).resolve().parent.parent / MANIFEST_FILE
    try:
        zone = json.loads(manifest_path.read_text(encoding="utf-8")).get("timezone")
    except (OSError, ValueError, AttributeError):
        return None
    return str(zone) if zone else None


def report_header_time(timezone: str | None, moment: dt.datetime | None = None) -> str:
    """Return ``moment`` (default now) as a stage report header shows it: :func:`shown_time` in ``timezone``.

    Parameters
    ----------
    timezone : str or None
        IANA name of the engagement's time zone; None means the default (Asia/Shanghai).
    moment : datetime, optional
        A naive value is taken to be in ``timezone``.

    Returns
    -------
    str
        For example ``2026-12-05 12:19:12 (UTC+08:00)``.
    """
    return shown_time(moment or dt.datetime.now(dt.timezone.utc), {"timezone": timezone} if timezone else {})


@contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run folder itself, so two exports never rewrite the manifest at once.

    The lock is taken on the folder's file descriptor, so no lock file
    appears in the run folder (verify would report it as unlisted).
    """
    if os.name == "nt":  # pragma: no cover
        # NOTE: Windows cannot lock a directory handle; concurrent exports of one run are not prevented there.
        yield
        return
    import fcntl

    descriptor = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ExportError("export.busy", run=str(run_dir)) from None
        yield
    finally:
        os.close(descriptor)


# --------------------------------------------------------------------------- plan


@dataclass
class _StagePlan:
    stage_id: str
    status: str
    page: Path | None
    tables: list[tuple[ExportTable, Path, str]]
    summary: dict[str, Any] | None
    # Artifact name to checked path, for a page the export builds (see relmap_utils.export_pages).
    page_sources: dict[str, Path] | None = None
    # Why the stage had nothing to do, or which failed stages it waited for, in the report language.
    note: str = ""


def _plan(run_dir: Path, manifest: dict[str, Any]) -> list[_StagePlan]:
    """Choose the files to export per stage and check each against the manifest."""
    plans = []
    for stage in manifest.get("stages") or []:
        stage_id = str(stage.get("id") or stage.get("key"))
        status = str(stage.get("status"))
        note = _stage_note(stage)
        if status not in _EXPORTABLE:
            plans.append(_StagePlan(stage_id, status, None, [], None, note=note))
            continue
        records = {record["path"]: record for record in stage_records(stage)}
        page_path = f"reports/{stage_id}.html"
        page = _checked(run_dir, records, page_path) if page_path in records else None
        page_sources = None
        if page is None and export_pages.page_tables(stage_id):
            page_sources = {}
            for name in export_pages.page_tables(stage_id):
                artifact = f"artifacts/{stage_id}/{name}"
                if artifact in records:
                    page_sources[name] = _checked(run_dir, records, artifact)
        tables = []
        for table in EXPORT_TABLES.get(stage_id, ()):
            artifact = f"artifacts/{stage_id}/{table.file}"
            if artifact in records:
                tables.append((table, _checked(run_dir, records, artifact), records[artifact]["sha256"]))
        summary_path = f"artifacts/{stage_id}/summary.json"
        summary = None
        if summary_path in records:
            _checked(run_dir, records, summary_path)
            summary = read_summary(run_dir, stage_id)
        plans.append(_StagePlan(stage_id, status, page, tables, summary, page_sources, note))
    return plans


def _stage_note(stage: dict[str, Any]) -> str:
    if stage.get("skip_reason"):
        return skip_reason_text(stage["skip_reason"], get_locale())
    if stage.get("status") == "skipped" and stage.get("skipped_because"):
        return tr("export.index.skipped_because", upstream=", ".join(map(str, stage["skipped_because"])))
    return ""


def _checked(run_dir: Path, records: dict[str, dict[str, Any]], relative: str) -> Path:
    path = run_dir / relative
    if not path.is_file() or sha256_file(path) != records[relative].get("sha256"):
        raise ExportError("export.file_modified", file=str(path), run=str(run_dir))
    return path


# --------------------------------------------------------------------------- files


def _write_files(
    run_dir: Path, manifest: dict[str, Any], plans: list[_StagePlan], folder: Path, moment: dt.datetime
) -> list[Path]:
    files: list[Path] = []
    links: dict[str, dict[str, str]] = {}
    for plan in plans:
        links[plan.stage_id] = {}
        if plan.page is not None:
            target = folder / f"{plan.stage_id}.html"
            shutil.copyfile(plan.page, target)
            files.append(target)
            links[plan.stage_id]["page"] = target.name
        elif plan.page_sources is not None:
            target = folder / f"{plan.stage_id}.html"
            target.write_text(_built_page(manifest, plan, moment), encoding="utf-8")
            files.append(target)
            links[plan.stage_id]["page"] = target.name
        if plan.tables:
            target = folder / f"{plan.stage_id}.xlsx"
            write_workbook(target, plan.stage_id, plan.tables, manifest, moment)
            files.append(target)
            links[plan.stage_id]["workbook"] = target.name
    index = folder / "index.html"
    index.write_text(render_index(manifest, plans, links, moment), encoding="utf-8")
    return [index, *files]


def _built_page(manifest: dict[str, Any], plan: _StagePlan, moment: dt.datetime) -> str:
    """Return the page of a stage that wrote no report, from its checked artifacts."""
    import pandas as pd

    sources = plan.page_sources or {}

    def read_table(name: str) -> pd.DataFrame:
        return pd.read_parquet(sources[name]) if name in sources else pd.DataFrame()

    engagement = manifest.get("engagement") or {}
    facts = tr("export.page.facts", client=engagement.get("client", ""), engagement=engagement.get("name", ""),
               run_id=manifest.get("run_id", ""), exported=shown_time(moment, manifest))
    privacy = (manifest.get("config") or {}).get("privacy") or {}
    context = export_pages.PageContext(stage_title(plan.stage_id), facts, privacy.get("min_group_size") or 10)
    page = export_pages.build_page(plan.stage_id, read_table, plan.summary, context)
    assert page is not None, plan.stage_id  # page_sources is set only for stages with a builder
    return page


def _record(path: Path, run_dir: Path) -> dict[str, Any]:
    shown = path.relative_to(run_dir).as_posix() if path.is_relative_to(run_dir) else str(path)
    return {"path": shown, "size": path.stat().st_size, "sha256": sha256_file(path)}


def _manifest_entry(
    run_dir: Path, folder: Path, files: list[Path], moment: dt.datetime, previous: str
) -> dict[str, Any]:
    inside = folder.is_relative_to(run_dir)
    return {
        "id": folder.name,
        "created_at": moment.isoformat(timespec="seconds"),
        "folder": folder.relative_to(run_dir).as_posix() if inside else str(folder),
        "external": not inside,
        "locale": get_locale(),
        "relmap_version": __version__,
        "previous_manifest_sha256": previous,
        "files": [_record(path, run_dir) for path in files],
    }


# --------------------------------------------------------------------------- Excel


def _sheet_title(text: str, used: set[str]) -> str:
    title = text.translate(_SHEET_NAME_FORBIDDEN).strip("'")[:31] or "sheet"
    candidate, number = title, 2
    while candidate.lower() in used:
        suffix = f" ({number})"
        candidate, number = title[: 31 - len(suffix)] + suffix, number + 1
    used.add(candidate.lower())
    return candidate


def _label(key: str, fallback: str) -> str:
    text = tr(key)
    return fallback if text == key else text


def _cell_value(value: Any, column: ExportColumn) -> Any:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if value is None:
        return None
    if column.values is not None:
        value = _label(column.values.format(value=value), str(value))
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)[:EXCEL_MAX_CELL_TEXT]
    return value


def _lookups(folder: Path, columns: list[ExportColumn]) -> dict[str, Callable[[str], Any]]:
    """Return for each ``lookup`` kind a function from a value to its display name in the report language."""
    import pyarrow.parquet as pq

    from relmap_utils.features.labels import feature_label

    locale = get_locale()
    names: dict[str, str] = {}
    groups = folder / "groups.parquet"
    if any(column.lookup == "group" for column in columns) and groups.is_file():
        frame = pq.read_table(groups, columns=["group", "name_zh", "name_en"]).to_pandas()
        for row in frame.itertuples():
            name = row.name_en if locale == "en" else row.name_zh
            names[str(row.group)] = str(name) if isinstance(name, str) and name else str(row.group)
    return {"group": lambda code: names.get(code, code), "feature": lambda name: feature_label(name, locale)}


def _text_cell(sheet: Any, value: Any) -> Any:
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str) and value.startswith("="):
        # A value from the data must never run as a formula in the client's Excel.
        cell.data_type = "s"
    return cell


def write_workbook(
    target: Path,
    stage_id: str,
    tables: list[tuple[ExportTable, Path, str]],
    manifest: dict[str, Any],
    moment: dt.datetime,
) -> Path:
    """Write one stage's key tables into an .xlsx workbook, streaming rows from Parquet.

    The first sheet names the run, the export time, and for every other
    sheet the artifact it comes from, its sha256 and the rows written.
    Sheets stop at Excel's limit of 1,048,576 rows, and the first sheet
    then marks the row count as cut off.
    """
    import openpyxl
    import pyarrow.parquet as pq

    workbook = openpyxl.Workbook(write_only=True)
    used: set[str] = set()
    notes = workbook.create_sheet(_sheet_title(tr("export.sheet.notes"), used))
    notes.append([tr("export.notes.run"), str(manifest.get("run_id"))])
    notes.append([tr("export.notes.client"), _text_cell(notes, str((manifest.get("engagement") or {}).get("client", "")))])
    notes.append([tr("export.notes.exported_at"), shown_time(moment, manifest)])
    notes.append([tr("export.notes.privacy")])
    notes.append([])
    notes.append([tr("export.notes.col.sheet"), tr("export.notes.col.artifact"), "sha256", tr("export.notes.col.rows")])

    for table, path, digest in tables:
        title = _sheet_title(_label(table.sheet, Path(table.file).stem), used)
        sheet = workbook.create_sheet(title)
        sheet.append([_label(column.label, column.name) for column in table.columns])
        present = set(pq.read_schema(path).names)
        columns = [column for column in table.columns if column.name in present]
        positions = [table.columns.index(column) for column in columns]
        lookups = _lookups(path.parent, columns)
        read = list(dict.fromkeys(column.name for column in columns))
        written, truncated = 0, False
        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000, columns=read):
            for row in zip(*(batch.column(column.name).to_pylist() for column in columns)):
                if written >= EXCEL_MAX_ROWS - 1:
                    truncated = True
                    break
                values: list[Any] = [None] * len(table.columns)
                for position, column, value in zip(positions, columns, row):
                    if column.lookup and value is not None:
                        value = lookups[column.lookup](str(value))
                    values[position] = _text_cell(sheet, _cell_value(value, column))
                sheet.append(values)
                written += 1
            if truncated:
                break
        rows_text = tr("export.notes.truncated", rows=written) if truncated else written
        notes.append([title, f"artifacts/{stage_id}/{table.file}", digest, rows_text])
    workbook.save(target)
    return target


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:"Microsoft YaHei","PingFang SC","Noto Sans CJK SC","Source Han Sans SC",Arial,sans-serif;
margin:2rem auto;max-width:960px;color:#1f2937;line-height:1.6}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #e5e7eb}
.meta{color:#6b7280}table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #e5e7eb;padding:.25rem .6rem;text-align:left}th{background:#f3f4f6}
.status{font-weight:bold}.note{color:#6b7280;font-size:.9rem}
"""


def _escape(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _metric_label(stage_id: str, name: str) -> str:
    key = name.replace(".", "_")
    return _label(f"export.metric.{stage_id}.{key}", _label(f"export.metric.{key}", name))


def stage_title(stage_id: str) -> str:
    """Return the display name of a stage in the report language, as the dashboard pages name it.

    The export catalog (``export.stage.<id>``) comes first, then the title of
    the stage's dashboard page, then the id itself.
    """
    text = _label(f"export.stage.{stage_id}", "")
    if text:
        return text
    from relmap_utils.dashboard.pages import registered_pages

    page = next((page for page in registered_pages() if page.stage_id == stage_id), None)
    return page.title_in() if page is not None else stage_id


def _headline_rows(plan: _StagePlan) -> list[tuple[str, str]]:
    """Return (label, value) rows: the summary's labelled ``headline_metrics``, else its top-level numbers."""
    from relmap_utils.dashboard.render import format_value

    locale = get_locale()
    rows = []
    for item in (plan.summary or {}).get("headline_metrics") or []:
        if isinstance(item, dict) and isinstance(item.get("label"), dict) and "value" in item:
            label = item["label"].get(locale) or item["label"].get("zh_CN") or ""
            kind = item.get("format") if item.get("format") in ("number", "amount", "percent", "score", "text") else "number"
            rows.append((str(label), format_value(item["value"], kind, locale)))
    if rows:
        return rows
    metrics = {name: value for name, value in headline_metrics(plan.summary).items() if "." not in name}
    return [(_metric_label(plan.stage_id, name), _number(value)) for name, value in metrics.items()]


def _finding_text(finding: dict[str, Any]) -> str:
    locale = get_locale()
    preferred = "message_zh" if locale == "zh_CN" else "message_en"
    return str(finding.get(preferred) or finding.get("message_en") or finding.get("message_zh") or "")


def _stage_section(plan: _StagePlan, links: dict[str, str]) -> list[str]:
    title = stage_title(plan.stage_id)
    status = _label(f"runner.status.{plan.status}", plan.status)
    parts = [f"<section><h2>{_escape(title)} <span class='note'>{_escape(plan.stage_id)}</span></h2>",
             f"<p>{_escape(tr('export.index.status'))}<span class='status'>{_escape(status)}</span></p>"]  # fmt: skip
    if plan.note:
        parts.append(f"<p class='note'>{_escape(plan.note)}</p>")
    link_items = []
    if "page" in links:
        link_items.append(f"<a href='{_escape(links['page'])}'>{_escape(tr('export.index.page'))}</a>")
    if "workbook" in links:
        link_items.append(f"<a href='{_escape(links['workbook'])}'>{_escape(tr('export.index.workbook'))}</a>")
    if link_items:
        parts.append("<p>" + " · ".join(link_items) + "</p>")

    metrics = _headline_rows(plan)
    if metrics:
        rows = "".join(f"<tr><th>{_escape(label)}</th><td>{_escape(value)}</td></tr>" for label, value in metrics)
        parts.append(f"<table>{rows}</table>")
    findings = [item for item in (plan.summary or {}).get("headline_findings") or [] if isinstance(item, dict)]
    if findings:
        parts.append(f"<h3>{_escape(tr('export.index.findings'))}</h3><ul>")
        parts.extend(f"<li>{_escape(_finding_text(item))}</li>" for item in findings)
        parts.append("</ul>")
    parts.append("</section>")
    return parts


def _number(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return f"{value:,.0f}"


def render_index(
    manifest: dict[str, Any], plans: list[_StagePlan], links: dict[str, dict[str, str]], moment: dt.datetime
) -> str:
    """Return the overview page of an export: run facts, then each stage's status, headline results and links.

    Every value from the run is HTML-escaped. The page has no script and
    loads nothing, so it opens offline from a file.
    """
    engagement = manifest.get("engagement") or {}
    language = "zh-CN" if get_locale() == "zh_CN" else "en"
    title = tr("export.index.title", client=engagement.get("client", ""), run_id=manifest.get("run_id", ""))
    head = (
        f"<!DOCTYPE html>\n<html lang='{language}'>\n<head>\n<meta charset='utf-8'>\n"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{_escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
    )
    facts = tr(
        "export.index.facts",
        engagement=engagement.get("name", ""),
        run_id=manifest.get("run_id", ""),
        started=shown_time(manifest.get("started_at"), manifest),
        exported=shown_time(moment, manifest),
    )
    body = [f"<h1>{_escape(title)}</h1>", f"<p class='meta'>{_escape(facts)}</p>",
            f"<p class='note'>{_escape(tr('export.index.privacy'))}</p>"]  # fmt: skip
    for plan in plans:
        body.extend(_stage_section(plan, links.get(plan.stage_id, {})))
    return head + "\n".join(body) + "\n</body>\n</html>\n"
