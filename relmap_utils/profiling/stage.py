"""Stage 01 entry point: profile a run's canonical tables and write the artifacts.

The notebook ``notebooks/01_profiling.ipynb`` calls :func:`run_stage` with
the run context and its parameters. The stage reads only files of the run
folder (the canonical Parquet tables and ingest's ``columns.json``) and
writes only to ``artifacts/01_profiling/`` and ``reports/01_profiling.html``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any


from relmap_utils.artifacts import write_json, write_parquet
from relmap_utils.context import INGEST_STAGE, RunContext
from relmap_utils.errors import ConfigError, StageError
from relmap_utils.i18n import get_locale
from relmap_utils.profiling import frames
from relmap_utils.profiling.model import Profile
from relmap_utils.profiling.profiler import EXACT_LIMIT, profile_tables
from relmap_utils.profiling.report import write_html_report

logger = logging.getLogger(__name__)

STAGE_ID = "01_profiling"
COLUMNS_FILE = "columns.json"
HEADLINE_FINDINGS = 5

# Parameters of the stage: name -> (default, lowest allowed, highest allowed).
PARAMETERS: dict[str, tuple[Any, int | None, int | None]] = {
    "top_n": (10, 1, 1000),
    "histogram_bins": (20, 2, 200),
    "exact_limit": (EXACT_LIMIT, 0, None),
    "max_orphan_samples": (5, 0, 50),
    "as_of": (None, None, None),
}


def run_stage(ctx: RunContext, **params: Any) -> dict[str, Any]:
    """Profile the canonical tables of the run and write the stage's artifacts.

    Parameters
    ----------
    ctx : RunContext
        The open run (see :meth:`RunContext.open`).
    **params
        ``top_n`` (int, default 10), ``histogram_bins`` (int, default 20),
        ``exact_limit`` (int, default 100,000 rows), ``max_orphan_samples``
        (int, default 5) and ``as_of`` (date or ISO text, default today).

    Returns
    -------
    dict
        ``profile`` (the :class:`Profile`), ``quality_score``,
        ``severity_counts``, ``artifacts`` (name to path) and ``report``
        (path of the HTML report).

    Raises
    ------
    ConfigError
        When a parameter is unknown or out of range.
    StageError
        When the run has no canonical tables or columns.json is unreadable.
    """
    options = check_parameters(params)

    started = time.perf_counter()
    logger.info("starting stage %s in %s", STAGE_ID, ctx.run_dir)
    backend = ctx.connect()
    tables = ctx.canonical_tables(backend)
    if not tables:
        raise StageError("profiling.no_tables", folder=str(ctx.tables_dir))
    column_meta = read_column_meta(ctx.run_dir / "artifacts" / INGEST_STAGE / COLUMNS_FILE)

    profile = profile_tables(tables, column_meta, **options)
    artifacts = write_artifacts(profile, ctx.artifacts(STAGE_ID), options)
    # get_locale(), not the engagement's locale: RELMAP_LANG set by the person
    # running the stage wins, as it does for the CLI and the notebook tables.
    report = write_html_report(
        profile,
        ctx.reports_dir / f"{STAGE_ID}.html",
        locale=get_locale(),
        engagement=ctx.engagement.name,
        run_id=ctx.run_dir.name,
        timezone=ctx.engagement.timezone,
        min_group_size=ctx.engagement.privacy.min_group_size,
    )
    logger.info(
        "finished stage %s in %.1f s: score %.1f, %d findings",
        STAGE_ID,
        time.perf_counter() - started,
        profile.score.score,
        len(profile.findings),
    )
    return {
        "profile": profile,
        "quality_score": profile.score.score,
        "severity_counts": profile.severity_counts(),
        "artifacts": {name: str(path) for name, path in artifacts.items()},
        "report": str(report),
    }


def check_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Validate the stage parameters and fill in defaults.

    Raises
    ------
    ConfigError
        Naming the parameter, the value received and what is allowed.
    """
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise ConfigError(
            "profiling.unknown_parameter", names=", ".join(unknown), allowed=", ".join(sorted(PARAMETERS))
        )
    options = {name: params.get(name, default) for name, (default, _, _) in PARAMETERS.items()}
    for name, (_, low, high) in PARAMETERS.items():
        if name == "as_of":
            continue
        value = options[name]
        valid = isinstance(value, int) and not isinstance(value, bool)
        valid = valid and (low is None or value >= low) and (high is None or value <= high)
        if not valid:
            allowed = f"{low}..{high}" if high is not None else f">= {low}"
            raise ConfigError("profiling.bad_parameter", name=name, value=repr(value), allowed=allowed)
    options["as_of"] = _parse_as_of(options["as_of"])
    return options


def _parse_as_of(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError("profiling.bad_parameter", name="as_of", value=repr(value), allowed="YYYY-MM-DD")


def read_column_meta(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Read ingest's columns.json; an absent file means every column is inferred.

    Raises
    ------
    StageError
        When the file exists but is not a JSON object of tables to columns.
    """
    if not path.is_file():
        logger.warning("%s not found; semantic types of all columns are inferred from the data", path)
        return {}
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StageError("profiling.bad_columns_json", file=str(path), detail=str(error)) from error
    valid = isinstance(content, dict) and all(
        isinstance(columns, dict) and all(isinstance(meta, dict) for meta in columns.values())
        for columns in content.values()
    )
    if not valid:
        raise StageError("profiling.bad_columns_json", file=str(path), detail="{table: {column: {...}}}")
    return content


def summary(profile: Profile, parameters: dict[str, Any]) -> dict[str, Any]:
    """Return the content of summary.json: score, dimensions, counts and headline findings."""
    score = profile.score
    return {
        "stage": STAGE_ID,
        "quality_score": score.score,
        "capped": score.capped,
        "dimensions": {
            "completeness": score.completeness,
            "uniqueness": score.uniqueness,
            "integrity": score.integrity,
            "validity": score.validity,
        },
        "severity_counts": profile.severity_counts(),
        "tables": len(profile.tables),
        "columns": sum(table.column_count for table in profile.tables.values()),
        "rows": {name: table.rows for name, table in profile.tables.items()},
        "approximate_tables": [name for name, table in profile.tables.items() if not table.exact],
        "headline_findings": [
            {
                "severity": finding.severity,
                "table": finding.table,
                "column": finding.column,
                "code": finding.code,
                "message_zh": finding.text("zh_CN"),
                "message_en": finding.text("en"),
            }
            for finding in profile.findings[:HEADLINE_FINDINGS]
        ],
        "parameters": {name: (value.isoformat() if isinstance(value, dt.date) else value)
                       for name, value in parameters.items()},
    }


def write_artifacts(profile: Profile, folder: Path, parameters: dict[str, Any]) -> dict[str, Path]:
    """Write the Parquet tables and summary.json of the profile into ``folder``.

    Each file is written to a temporary name and renamed, so a reader never
    sees half a file.

    Returns
    -------
    dict of str to Path
        Artifact name (``columns``, ``tables``, ...) to file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "columns": frames.columns_frame(profile),
        "tables": frames.tables_frame(profile),
        "integrity": frames.integrity_frame(profile),
        "findings": frames.findings_frame(profile),
        "correlations": frames.correlations_frame(profile),
    }
    paths = {}
    for name, frame in tables.items():
        paths[name] = write_parquet(frame, folder / f"{name}.parquet")
    paths["summary"] = write_json(summary(profile, parameters), folder / "summary.json")
    return paths

