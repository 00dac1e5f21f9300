"""The ingest stage: every source of a run into canonical Parquet tables.

:func:`run_ingest` reads the file sources in configuration order, then the
query sources (which see every source read before them by name), unions the
sources of each canonical table, applies the privacy treatments, stops on
undeclared personal data, and writes:

- ``artifacts/00_ingest/tables/<table>.parquet``, one per canonical table;
- ``artifacts/00_ingest/columns.json``, type, role and origin of each column;
- ``artifacts/00_ingest/ingest_report.json``, what was read from each source.

Nothing is written when a source fails or personal data would leave ingest
without a pseudonym.
"""

from __future__ import annotations

import difflib
import itertools
import logging
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow.parquet as pq

from relmap_utils.artifacts import write_json
from relmap_utils import schema
from relmap_utils.config import Engagement, Source
from relmap_utils.context import INGEST_STAGE, RunContext
from relmap_utils.engine import connect
from relmap_utils.errors import PrivacyError, SourceError
from relmap_utils.i18n import Msg
from relmap_utils.ingest import privacy, warehouse
from relmap_utils.ingest.source import ReadResult, read_source
from relmap_utils.ingest.typing import IBIS_TYPES
from relmap_utils.plural import counted

logger = logging.getLogger(__name__)

COLUMNS_FILE = "columns.json"
REPORT_FILE = "ingest_report.json"
# When several settings name a treatment for one column, the strongest wins.
TREATMENT_STRENGTH = {"drop": 3, "pseudonymize": 2, "year_only": 1}



def _check_tables(engagement: Engagement) -> None:
    for source in engagement.sources:
        if source.table is not None and source.table not in schema.TABLES:
            raise SourceError(
                "ingest.table_unknown", source=source.name, table=source.table, tables=", ".join(sorted(schema.TABLES))
            )


def check_required(source: Source, columns: set[str]) -> None:
    """Raise SourceError when ``source`` leaves required columns of its table unmapped."""
    if source.table is None:
        return
    missing = [name for name in schema.TABLES[source.table].required if name not in columns]
    if missing:
        example = ", ".join(f"<源列名/source column>: {{name: {name}}}" for name in missing)
        raise SourceError(
            "ingest.required_missing",
            source=source.name,
            table=source.table,
            columns=", ".join(missing),
            mapping=example,
        )


def check_targets(source: Source) -> None:
    """Raise SourceError when a mapping target looks like a misspelt canonical column.

    A target that is not a column of the canonical table is kept as an extra
    column. A target close to a canonical name (``gendre`` for ``gender``)
    that neither contains it nor is contained in it is taken as a typo,
    because it would otherwise leave the canonical column silently empty.

    Raises
    ------
    SourceError
        ``ingest.target_misspelt``, naming the target, the close canonical
        name and all columns of the table.
    """
    if source.table is None or source.table not in schema.TABLES:
        return
    canonical = [column.name for column in schema.TABLES[source.table].columns]
    for mapping in source.columns.values():
        if mapping.name in canonical:
            continue
        close = [
            name
            for name in difflib.get_close_matches(mapping.name, canonical, n=3, cutoff=0.8)
            # unemployment_rate_1995 extends a canonical name on purpose, gendre does not.
            if name not in mapping.name and mapping.name not in name and abs(len(name) - len(mapping.name)) <= 2
        ]
        if close:
            raise SourceError(
                "ingest.target_misspelt", source=source.name, table=source.table, target=mapping.name,
                suggestion=close[0], columns=", ".join(canonical),
            )


# Column types stored alike; sources of one table may mix kinds of one group.
_TYPE_GROUPS = {
    "id": "text", "category": "text", "text": "text",
    "amount": "number", "number": "number", "integer": "number",
    "date": "date", "datetime": "date",
    "boolean": "boolean",
}
# Within the number and date groups, the kind that can store the values of the others.
_WIDEST = ("amount", "number", "integer", "datetime", "date")


def _column_kinds(table_name: str, parts: list[tuple[Source, ReadResult]]) -> tuple[dict[str, str], list[str]]:
    """Return one kind per column of a table filled by several sources, and the columns kept as text.

    Raises
    ------
    SourceError
        When two sources declare roles of different groups (amount and
        date, say) for one canonical column.
    """
    seen: dict[str, list[tuple[str, str, str | None]]] = {}
    for source, result in parts:
        for column, kind in result.column_types.items():
            seen.setdefault(column, []).append((source.name, kind, result.roles.get(column)))
    kinds: dict[str, str] = {}
    fallbacks: list[str] = []
    for column, entries in seen.items():
        groups = {_TYPE_GROUPS.get(kind, kind) for _, kind, _ in entries}
        if len(groups) == 1:
            present = {kind for _, kind, _ in entries}
            widest = [kind for kind in _WIDEST if kind in present]
            kinds[column] = widest[0] if widest else entries[0][1]
            continue
        declared = [entry for entry in entries if entry[2] is not None]
        for first, second in itertools.combinations(declared, 2):
            if _TYPE_GROUPS.get(first[1]) != _TYPE_GROUPS.get(second[1]):
                raise SourceError(
                    "ingest.role_conflict", table=table_name, column=column,
                    first=first[0], first_role=first[2], second=second[0], second_role=second[2],
                )
        # A guessed type disagrees: text keeps every value of every source.
        kinds[column] = "text"
        fallbacks.append(column)
    if fallbacks:
        logger.warning("table %s: sources disagree on the type of %s, kept as text", table_name, ", ".join(fallbacks))
    return kinds, fallbacks


def _union(table_name: str, parts: list[tuple[Source, ReadResult]]) -> tuple[ir.Table, dict[str, str], list[str]]:
    canonical_order = [column.name for column in schema.TABLES[table_name].columns]
    present, fallbacks = _column_kinds(table_name, parts)
    order = [name for name in canonical_order if name in present]
    order += [name for name in present if name not in order]

    aligned = []
    for _, result in parts:
        columns = {}
        for name in order:
            target = IBIS_TYPES[present[name]]
            if name in result.table.columns:
                value = result.table[name]
                columns[name] = value if value.type() == target else value.try_cast(target)
            else:
                columns[name] = ibis.null(target)
        aligned.append(result.table.select(**columns))
    table = aligned[0] if len(aligned) == 1 else ibis.union(*aligned, distinct=False)
    return table, {name: present[name] for name in order}, fallbacks


def _treatments(
    engagement: Engagement, table_name: str, columns: list[str], parts: list[tuple[Source, ReadResult]]
) -> dict[str, str]:
    canonical = schema.TABLES[table_name]
    defaults: dict[str, str] = {}
    explicit: dict[str, str] = {}

    def strongest(current: str | None, new: str) -> str:
        if current is None or TREATMENT_STRENGTH[new] > TREATMENT_STRENGTH[current]:
            return new
        return current

    for name in columns:
        column = canonical.column(name)
        if name in schema.PSEUDONYMIZED_KEYS or (column is not None and column.personal):
            defaults[name] = "pseudonymize"
    for entry in engagement.privacy.personal_data:
        table_part, _, column_part = entry.column.rpartition(".")
        if table_part not in ("", table_name) or column_part not in columns:
            continue
        explicit[column_part] = strongest(explicit.get(column_part), entry.treatment)
    for source, _ in parts:
        for mapping in source.columns.values():
            if mapping.name not in columns:
                continue
            if mapping.treatment:
                explicit[mapping.name] = strongest(explicit.get(mapping.name), mapping.treatment)
            elif mapping.role == "personal":
                defaults[mapping.name] = "pseudonymize"
    return {**defaults, **explicit}


def _unmatched_personal_data(engagement: Engagement, tables: dict[str, list[str]]) -> list[str]:
    unmatched = []
    for entry in engagement.privacy.personal_data:
        table_part, _, column_part = entry.column.rpartition(".")
        if not table_part:
            candidates = list(tables.values())
        else:
            candidates = [tables[table_part]] if table_part in tables else []
        if not any(column_part in columns for columns in candidates):
            unmatched.append(entry.column)
    return unmatched


def _apply_treatments(
    table_name: str,
    table: ir.Table,
    types: dict[str, str],
    treatments: dict[str, str],
    key_table: ir.Table,
    pseudonymize: Any = privacy.pseudonymize_expr,
) -> tuple[ir.Table, dict[str, str]]:
    columns: dict[str, ir.Value] = {}
    out_types: dict[str, str] = {}
    for name, kind in types.items():
        treatment = treatments.get(name)
        value = table[name]
        if treatment == "drop":
            continue
        if treatment == "pseudonymize":
            columns[name] = pseudonymize(value, key_table)
            out_types[name] = "id"
        elif treatment == "year_only":
            if kind not in ("date", "datetime"):
                raise SourceError("ingest.year_only_not_date", table=table_name, column=name, type=kind)
            columns[name] = ibis.date(value.year(), 1, 1)
            out_types[name] = "date"
        else:
            columns[name] = value
            out_types[name] = kind
    return table.select(**columns), out_types


def _source_report(source: Source, result: ReadResult) -> dict[str, Any]:
    info = result.info
    keys = (
        "format",
        "path",
        "sheet",
        "encoding",
        "separator",
        "header_rows",
        "header_levels",
        "rows_read",
        "excluded_rows",
        "missing_markers_replaced",
        "damaged_identifier_columns",
        "unparsed_values",
        "non_finite_values",
        "columns_declared",
        "columns_guessed",
        "warehouse_tables",
    )
    report = {"name": source.name, "table": source.table}
    report.update({key: info.get(key) for key in keys})
    if report["rows_read"] is None:
        report["rows_read"] = info.get("rows")
    report["rows_written"] = info.get("rows", 0) if source.table else 0
    return report


def _joined(values: list[str | None]) -> str | None:
    unique = [value for value in dict.fromkeys(values) if value is not None]
    return ", ".join(unique) if unique else None


def group_by_table(results: list[tuple[Source, ReadResult]]) -> dict[str, list[tuple[Source, ReadResult]]]:
    """Group read sources by the canonical table they fill; staging sources are left out."""
    by_table: dict[str, list[tuple[Source, ReadResult]]] = defaultdict(list)
    for source, result in results:
        if source.table:
            by_table[source.table].append((source, result))
    return by_table


def scan_tables(
    engagement: Engagement, by_table: dict[str, list[tuple[Source, ReadResult]]]
) -> tuple[dict[str, tuple[ir.Table, dict[str, str], dict[str, str], list[str]]], list[Msg]]:
    """Union the sources of each canonical table, choose the privacy treatments and scan for personal data.

    ``relmap run`` (:func:`run_ingest`) and ``relmap validate`` both call
    this, so they find the same undeclared personal-data columns.

    Parameters
    ----------
    engagement : Engagement
    by_table : dict
        Canonical table name to its read sources (:func:`group_by_table`).

    Returns
    -------
    prepared : dict
        Table name to (union of its sources, column types, treatments,
        columns kept as text because the sources' guessed types disagree).
    problems : list of Msg
        One ``ingest.personal_column`` message per column and kind of
        personal data found in a column without a treatment.
    """
    prepared: dict[str, tuple[ir.Table, dict[str, str], dict[str, str], list[str]]] = {}
    problems: list[Msg] = []
    for table_name, parts in by_table.items():
        union, types, fallbacks = _union(table_name, parts)
        treatments = _treatments(engagement, table_name, list(types), parts)
        headers = {}
        for _, result in parts:
            for column, header in result.source_columns.items():
                if header:
                    headers.setdefault(column, header)
        candidates = [name for name in types if name not in treatments]
        found = privacy.scan_personal_data(
            union, candidates, allowlist=engagement.privacy.allowlist, headers=headers
        )
        for column, kinds in sorted(found.items()):
            for kind, count in sorted(kinds.items()):
                problems.append(
                    Msg("ingest.personal_column", table=table_name, column=column, kind=Msg(f"ingest.kind.{kind}"),
                        count=counted("ingest.count.values", count))
                )
        prepared[table_name] = (union, types, treatments, fallbacks)
    return prepared, problems


def run_ingest(ctx: RunContext) -> dict[str, Any]:
    """Run the ingest stage for a run folder.

    Parameters
    ----------
    ctx : RunContext
        The open run (see :meth:`RunContext.open`).

    Returns
    -------
    dict
        The ingest report, also written to ``ingest_report.json``: per
        source the rows read and written, encoding, separator, excluded
        rows, missing-value markers replaced per column, damaged identifier
        columns, declared and guessed columns; per table the rows and
        columns; the privacy treatments; the key fingerprint.

    Raises
    ------
    SourceError
        A source cannot be read or mapped (nothing is written).
    PrivacyError
        The key is missing, or undeclared columns hold personal data
        (nothing is written).
    """
    started = time.perf_counter()
    engagement = ctx.engagement
    logger.info("starting ingest of %d sources for engagement %s", len(engagement.sources), engagement.name)
    key = privacy.get_key(engagement.privacy)
    _check_tables(engagement)

    # Source files are read by DuckDB on the driver whatever engine.backend says: the readers,
    # date parsing and keyed hashing use DuckDB functions. Later stages read the Parquet
    # tables written here with the configured engine (Spark included). Query sources of a
    # pyspark engagement read the warehouse, so Spark runs them (see ingest.warehouse).
    backend = connect(ctx.engagement.engine.model_copy(update={"backend": "duckdb"}))
    spark_names = {source.name for source in warehouse.spark_sources(engagement)}
    spark_backend = connect(engagement.engine, timezone=engagement.timezone) if spark_names else None
    try:
        report = _ingest(ctx, engagement, backend, key, spark_backend)
    except (SourceError, PrivacyError) as exc:
        logger.error("ingest failed: %s", exc)
        raise
    finally:
        privacy.remove_key(backend)
        backend.disconnect()
        if spark_backend is not None:
            # The session stays up for the caller (a notebook may share it); only ingest's views go.
            warehouse.drop_views(spark_backend, sorted(spark_names))
    logger.info("ingest finished in %.1f s", time.perf_counter() - started)
    return report


def _ingest(
    ctx: RunContext, engagement: Engagement, backend: Any, key: bytes, spark_backend: Any = None
) -> dict[str, Any]:
    ordered = [source for source in engagement.sources if source.sql is None]
    ordered += [source for source in engagement.sources if source.sql is not None]
    spark_names = {source.name for source in warehouse.spark_sources(engagement)}
    file_names = {source.name for source in engagement.sources if source.name not in spark_names}
    staging: dict[str, ir.Table] = {}
    results: list[tuple[Source, ReadResult]] = []
    with tempfile.TemporaryDirectory(prefix="relmap-ingest-") as scratch:
        for source in ordered:
            if source.name in spark_names:
                result = warehouse.read_warehouse_source(
                    source, spark_backend, file_sources=file_names, timezone=engagement.timezone
                )
            else:
                result = read_source(
                    source,
                    ctx.engagement_dir,
                    backend,
                    staging,
                    timezone=engagement.timezone,
                    temp_dir=Path(scratch),
                )
            check_targets(source)
            check_required(source, set(result.column_types))
            if source.name in spark_names:
                warehouse.register_staging(spark_backend, source, result)
            staging[source.name] = result.table
            results.append((source, result))
            logger.info(
                "source %s: %s rows, encoding %s, separator %s",
                source.name,
                result.info.get("rows"),
                result.info.get("encoding"),
                result.info.get("separator"),
            )

    by_table = group_by_table(results)
    spark_tables = warehouse.check_table_engines(by_table, spark_names)
    prepared, problems = scan_tables(engagement, by_table)
    if problems:
        raise PrivacyError("ingest.personal_data_found", problems=problems)

    key_table = privacy.install_key(backend, key)
    spark_key_table = warehouse.install_key(spark_backend, key) if spark_tables else None

    tables_dir = ctx.tables_dir
    tables_dir.mkdir(parents=True, exist_ok=True)
    artifacts = ctx.artifacts(INGEST_STAGE)
    columns_doc: dict[str, dict[str, Any]] = {}
    tables_report: dict[str, Any] = {}
    privacy_report: dict[str, dict[str, list[str]]] = {"pseudonymized": {}, "dropped": {}, "year_only": {}}
    for table_name, (union, types, treatments, fallbacks) in prepared.items():
        target = tables_dir / f"{table_name}.parquet"
        if table_name in spark_tables:
            final, out_types = _apply_treatments(
                table_name, union, types, treatments, spark_key_table, warehouse.pseudonymize_expr
            )
            warehouse.write_parquet(spark_backend, final, target)
        else:
            final, out_types = _apply_treatments(table_name, union, types, treatments, key_table)
            temporary = target.with_name(target.name + ".tmp")
            backend.to_parquet(final, temporary)
            os.replace(temporary, target)
        rows = pq.read_metadata(target).num_rows

        parts = by_table[table_name]
        columns_doc[table_name] = {}
        for name, kind in out_types.items():
            declared = any(result.info.get("declared", {}).get(name) for _, result in parts)
            roles = [result.roles.get(name) for _, result in parts]
            columns_doc[table_name][name] = {
                "type": kind,
                "role": next((role for role in roles if role), None),
                "declared": declared,
                "pseudonymized": treatments.get(name) == "pseudonymize",
                "source": _joined([source.name for source, result in parts if name in result.column_types]),
                "source_column": _joined([result.source_columns.get(name) for _, result in parts]),
            }
        for treatment, label in (("pseudonymize", "pseudonymized"), ("drop", "dropped"), ("year_only", "year_only")):
            names = [name for name, chosen in treatments.items() if chosen == treatment and name in types]
            if names:
                privacy_report[label][table_name] = names
        tables_report[table_name] = {
            "rows": rows,
            "columns": len(out_types),
            "sources": [source.name for source, _ in parts],
            "columns_kept_as_text": fallbacks,
            "file": str(target.relative_to(ctx.run_dir)),
        }
        logger.info("wrote table %s: %d rows, %d columns", table_name, rows, len(out_types))

    unmatched = _unmatched_personal_data(engagement, {name: list(item[1]) for name, item in prepared.items()})
    for entry in unmatched:
        logger.warning("privacy.personal_data entry %s matches no column of any table", entry)
    report = {
        "engagement": engagement.name,
        "key_env": engagement.privacy.key_env,
        "key_fingerprint": privacy.key_fingerprint(key),
        "sources": [_source_report(source, result) for source, result in results],
        "tables": tables_report,
        "privacy": {**privacy_report, "unmatched_personal_data": unmatched},
    }
    write_json(columns_doc, artifacts / COLUMNS_FILE)
    write_json(report, artifacts / REPORT_FILE)
    return report


SUMMARY_COLUMNS = (
    "name",
    "table",
    "format",
    "encoding",
    "separator",
    "rows_read",
    "rows_written",
    "excluded_rows",
    "missing_markers_replaced",
    "damaged_identifier_columns",
    "unparsed_values",
)


def source_summary(report: dict[str, Any]) -> Any:
    """Return one row per source of an ingest report, as a pandas DataFrame.

    Only counts, names and detected settings are shown, never cell values,
    so the table is safe in an executed notebook.
    """
    import pandas as pd

    rows = [{key: source.get(key) for key in SUMMARY_COLUMNS} for source in report["sources"]]
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).set_index("name")
