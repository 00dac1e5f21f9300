"""Stage 02 entry point: build the map for each ``as_of`` and write its artifacts.

The notebook ``notebooks/02_map.ipynb`` calls :func:`run_stage`. The stage
reads the canonical tables of the run and writes, under
``artifacts/02_map/``:

- ``customer_map/as_of=YYYY-MM-DD/part-0.parquet``: one Hive-style partition
  per map date, one row per customer. The ``as_of`` column lives in the
  folder name only, as Hive partitioning expects; :func:`read_map` and
  DuckDB's ``read_parquet(..., hive_partitioning=true)`` restore it;
- ``feature_dictionary.parquet``: every candidate feature with its status;
- ``coverage.parquet``: customers covered per feature family and map date;
- ``customer_card.json``: the 360° profile of one pseudonymized customer;
- ``summary.json``: dates, counts, settings and notices;

and ``reports/02_map.html``. Every file is written under a temporary name
and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from relmap_utils.artifacts import write_json, write_parquet
from relmap_utils.context import RunContext
from relmap_utils.errors import ConfigError, StageError
from relmap_utils.features import checks, report
from relmap_utils.features.base import FAMILIES
from relmap_utils.features.builder import TemporaryTables, build_map
from relmap_utils.features.dictionary import INCLUDED, available_columns, feature_dictionary
from relmap_utils.features.spec import MapSpec, make_spec

logger = logging.getLogger(__name__)

STAGE_ID = "02_map"
MAP_FOLDER = "customer_map"
PART_FILE = "part-0.parquet"
# Keys of the ``windows`` parameter and the MapSpec settings they set.
WINDOW_KEYS = {
    "recent": "recent_months",
    "history": "history_months",
    "trend": "trend_months",
    "interest": "interest_months",
}


def run_stage(
    ctx: RunContext,
    as_of: dt.date | str | None = None,
    as_of_dates: Sequence[dt.date | str] | int | None = None,
    windows: Mapping[str, int] | None = None,
    card_customer: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Build the relationship map of the run and write the stage's artifacts.

    Parameters
    ----------
    ctx : RunContext
        The open run (see :meth:`RunContext.open`).
    as_of : date or str, optional
        Map date ``YYYY-MM-DD``; empty means the latest month-end on or
        before the data's last day.
    as_of_dates : list of dates, or int, optional
        Several map dates, one partition each. A list is used as given
        (``as_of`` is then not used); an integer ``n`` means ``n`` monthly
        dates ending at ``as_of``.
    windows : mapping, optional
        Look-back windows in months: ``recent`` (default 3), ``history``
        (12), ``trend`` (3), ``interest`` (3).
    card_customer : str, optional
        Pseudonym of the customer shown on the customer card; by default the
        customer with the most related customers at the latest date.
    **params
        Other :class:`~relmap_utils.features.MapSpec` settings, for example
        ``purchase_txn_types=["消费"]`` or ``channels={"mobile": ["手机银行"]}``.

    Returns
    -------
    dict
        ``as_of_dates`` (list of date), ``partitions`` (date to Parquet
        path), ``map_folder``, ``dictionary`` and ``coverage`` (DataFrames),
        ``summary`` (dict), ``card`` (dict), ``spec`` (MapSpec),
        ``artifacts`` (name to path) and ``report`` (path).

    Raises
    ------
    ConfigError
        When a parameter is unknown or invalid.
    StageError
        When the run has no customers table, the customers table repeats an
        id, or a map date lies outside the data's date range.
    """
    started = time.perf_counter()
    logger.info("starting stage %s in %s", STAGE_ID, ctx.run_dir)
    spec = make_spec({**window_settings(windows), **params})
    card_customer = _check_card_customer(card_customer)

    backend = ctx.connect()
    tables = ctx.canonical_tables(backend)
    if not tables:
        raise StageError("features.no_tables", folder=str(ctx.tables_dir))
    notices = checks.check_customers(tables)
    ranges = checks.date_ranges(tables)
    dates = checks.resolve_dates(as_of, as_of_dates, ranges)
    notices += checks.check_orphans(tables, spec)
    spec, discovered = checks.discover_values(tables, spec)
    notices += discovered + checks.window_notices(dates, ranges, spec)
    for notice in notices:
        logger.warning("%s", notice.as_dict()["message_en"])

    folder = ctx.artifacts(STAGE_ID)
    customers = _customer_count(tables)
    partitions, seconds = {}, {}
    for day in dates:
        began = time.perf_counter()
        partitions[day] = build_partition(backend, tables, day, spec, folder / MAP_FOLDER, ctx.engagement.timezone)
        seconds[day] = round(time.perf_counter() - began, 2)
        rows = pq.ParquetFile(partitions[day]).metadata.num_rows
        if rows != customers:
            raise StageError("features.customers_lost", as_of=day.isoformat(), rows=rows, customers=customers)
        logger.info("map as of %s: %d customers in %.1f s", day, rows, seconds[day])
    _remove_stale_partitions(folder / MAP_FOLDER, dates)

    dictionary = feature_dictionary(spec, available_columns(tables))
    coverage = coverage_frame(backend, partitions, dictionary)
    card = report.customer_card(backend, tables, partitions[dates[-1]], dictionary, spec, dates[-1], card_customer)
    summary = make_summary(dates, customers, dictionary, coverage, spec, notices, ranges, seconds)
    artifacts = write_artifacts(folder, dictionary, coverage, summary, card)
    artifacts["customer_map"] = folder / MAP_FOLDER
    report_path = report.write_html_report(
        ctx.reports_dir / f"{STAGE_ID}.html",
        summary=summary,
        dictionary=dictionary,
        coverage=coverage,
        latest=read_map(folder / MAP_FOLDER, dates[-1]),
        card=card,
        locale=ctx.engagement.locale,
        engagement=ctx.engagement.name,
        run_id=ctx.run_dir.name,
        min_group_size=ctx.engagement.privacy.min_group_size,
    )
    logger.info("finished stage %s in %.1f s: %d dates, %d customers, %d features",
                STAGE_ID, time.perf_counter() - started, len(dates), customers, summary["features"]["included"])
    return {
        "as_of_dates": dates,
        "partitions": partitions,
        "map_folder": folder / MAP_FOLDER,
        "dictionary": dictionary,
        "coverage": coverage,
        "summary": summary,
        "card": card,
        "spec": spec,
        "artifacts": {name: str(path) for name, path in artifacts.items()},
        "report": str(report_path),
    }


def window_settings(windows: Mapping[str, Any] | None) -> dict[str, Any]:
    """Translate the ``windows`` parameter into MapSpec settings.

    Raises
    ------
    ConfigError
        When ``windows`` is not a mapping or names an unknown window.
    """
    if windows in (None, ""):
        return {}
    if not isinstance(windows, Mapping):
        raise ConfigError("features.bad_parameter", name="windows", value=repr(windows),
                          allowed="{recent: 3, history: 12, trend: 3, interest: 3}")
    unknown = sorted(set(windows) - set(WINDOW_KEYS))
    if unknown:
        raise ConfigError("features.bad_parameter", name="windows", value=", ".join(map(str, unknown)),
                          allowed=", ".join(WINDOW_KEYS))
    return {WINDOW_KEYS[key]: value for key, value in windows.items()}


def _check_card_customer(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ConfigError("features.bad_parameter", name="card_customer", value=repr(value),
                          allowed="a customer pseudonym (text)")
    return value


def _customer_count(tables: Mapping[str, Any]) -> int:
    customers = tables["customers"]
    return int(customers.filter(customers.customer_id.notnull()).customer_id.nunique().execute())


def partition_path(folder: Path, day: dt.date) -> Path:
    """Return the Parquet file of the map partition of ``day``."""
    return folder / f"as_of={day.isoformat()}" / PART_FILE


def build_partition(
    backend: Any,
    tables: Mapping[str, Any],
    day: dt.date,
    spec: MapSpec,
    folder: Path,
    timezone: str = "Asia/Shanghai",
    features: Sequence[str] | None = None,
) -> Path:
    """Build the map of one date and write it as the partition of ``day``.

    On DuckDB every shared intermediate table and every family is computed
    into a temporary table first (:class:`~relmap_utils.features.builder.TemporaryTables`),
    so each query is small and the peak memory is that of the largest step
    rather than of the whole map at once. Other engines run the map as one
    expression. The values are the same.

    Parameters
    ----------
    backend : ibis backend
        The backend of ``tables``.
    tables : mapping of str to ibis Table
    day : date
    spec : MapSpec
    folder : Path
        The ``customer_map`` folder.
    timezone : str, default="Asia/Shanghai"
    features : sequence of str, optional
        Build only these features (see :func:`build_map`).

    Returns
    -------
    Path
        The partition's Parquet file.
    """
    if getattr(backend, "name", "") != "duckdb":
        expression = build_map(tables, day, spec, timezone, features=features)
        return write_partition(backend, expression, folder, day)
    with TemporaryTables(backend) as materialize:
        expression = build_map(tables, day, spec, timezone, features=features, materialize=materialize)
        return write_partition(backend, expression, folder, day)


def write_partition(backend: Any, expression: Any, folder: Path, day: dt.date) -> Path:
    """Execute one map expression and write it as the partition of ``day``.

    Rows are sorted by ``customer_id``, so the same input gives the same
    file. The ``as_of`` column is dropped because the folder name contains it.
    """
    target = partition_path(folder, day)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    table = expression.drop("as_of").order_by("customer_id")
    if getattr(backend, "name", "") == "duckdb":
        backend.to_parquet(table, temporary)
    else:
        pq.write_table(backend.to_pyarrow(table), temporary)
    temporary.replace(target)
    return target


def _remove_stale_partitions(folder: Path, dates: Sequence[dt.date]) -> None:
    # A re-executed notebook may build other dates than before in the same run folder.
    wanted = {f"as_of={day.isoformat()}" for day in dates}
    for path in folder.glob("as_of=*"):
        if path.name not in wanted:
            shutil.rmtree(path)


def read_map(folder: str | Path, as_of: dt.date | str | None = None) -> pd.DataFrame:
    """Read the map (all partitions, or one) into pandas, with ``as_of`` as a date column.

    Parameters
    ----------
    folder : str or Path
        The ``customer_map`` folder of a run (``artifacts/02_map/customer_map``).
    as_of : date or str, optional
        Read only this partition.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``as_of``, then the features, sorted by ``as_of``
        and ``customer_id``.

    Raises
    ------
    StageError
        When the folder contains no partition (of ``as_of``).
    """
    from relmap_utils.features.windows import parse_date

    folder = Path(folder)
    paths = sorted(folder.glob("as_of=*/" + PART_FILE))
    if as_of is not None:
        day = parse_date(as_of)
        paths = [path for path in paths if path.parent.name == f"as_of={day.isoformat()}"]
    if not paths:
        raise StageError("features.no_partition", folder=str(folder), as_of=str(as_of or "*"))
    frames = []
    for path in paths:
        frame = pd.read_parquet(path)
        frame.insert(1, "as_of", dt.date.fromisoformat(path.parent.name.removeprefix("as_of=")))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def coverage_frame(backend: Any, partitions: Mapping[dt.date, Path], dictionary: pd.DataFrame) -> pd.DataFrame:
    """Count the customers each feature family covers in each partition.

    A family covers a customer when the customer has data in its sources up
    to ``as_of`` (the ``<family>_covered`` feature). A family whose every
    feature is left out has ``status`` left_out and no counts.

    Returns
    -------
    pandas.DataFrame
        ``as_of``, ``family``, ``status``, ``customers``, ``covered``,
        ``share``, ``features_included``, ``features_left_out``.
    """
    included = dictionary[dictionary.status == INCLUDED]
    rows = []
    for day, path in partitions.items():
        table = backend.read_parquet(path)
        flags = [f"{family}_covered" for family in FAMILIES if f"{family}_covered" in table.columns]
        counts = table.aggregate(
            _customers=table.count(), **{flag: table[flag].ifelse(1, 0).sum() for flag in flags}
        ).execute()
        customers = int(counts["_customers"].iloc[0])
        for family in FAMILIES:
            flag = f"{family}_covered"
            of_family = dictionary[dictionary.family == family]
            covered = int(counts[flag].iloc[0]) if flag in counts.columns else None
            rows.append(
                {
                    "as_of": day,
                    "family": family,
                    "status": INCLUDED if flag in counts.columns else "left_out",
                    "customers": customers,
                    "covered": covered,
                    "share": covered / customers if covered is not None and customers else None,
                    "features_included": int((included.family == family).sum()),
                    "features_left_out": int((of_family.status != INCLUDED).sum()),
                }
            )
    return pd.DataFrame(rows)


def make_summary(
    dates: Sequence[dt.date],
    customers: int,
    dictionary: pd.DataFrame,
    coverage: pd.DataFrame,
    spec: MapSpec,
    notices: Sequence[checks.Notice],
    ranges: Mapping[str, checks.DateRange],
    seconds: Mapping[dt.date, float],
) -> dict[str, Any]:
    """Return the content of summary.json."""
    latest = coverage[coverage.as_of == dates[-1]]
    return {
        "stage": STAGE_ID,
        "as_of_dates": [day.isoformat() for day in dates],
        "customers": customers,
        "features": {
            "included": int((dictionary.status == INCLUDED).sum()),
            "left_out": int((dictionary.status != INCLUDED).sum()),
            "by_family": {
                family: int(((dictionary.family == family) & (dictionary.status == INCLUDED)).sum())
                for family in FAMILIES
            },
        },
        "coverage_latest": {
            row.family: {"status": row.status, "covered": row.covered, "share": row.share}
            for row in latest.itertuples()
        },
        "notices": [notice.as_dict() for notice in notices],
        "data_ranges": {
            name: {"column": item.column, "first": _iso(item.first), "last": _iso(item.last), "rows": item.rows}
            for name, item in ranges.items()
        },
        "seconds_per_date": {day.isoformat(): value for day, value in seconds.items()},
        "spec": spec.as_dict(),
    }


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def write_artifacts(
    folder: Path, dictionary: pd.DataFrame, coverage: pd.DataFrame, summary: dict[str, Any], card: dict[str, Any]
) -> dict[str, Path]:
    """Write the dictionary, coverage, card and summary files into ``folder``."""
    paths = {
        "feature_dictionary": write_parquet(dictionary, folder / "feature_dictionary.parquet"),
        "coverage": write_parquet(coverage, folder / "coverage.parquet"),
        "customer_card": write_json(card, folder / "customer_card.json"),
        "summary": write_json(summary, folder / "summary.json"),
    }
    return paths

