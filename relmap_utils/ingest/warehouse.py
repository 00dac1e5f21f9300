"""Ingest of warehouse tables on Spark: query sources of a ``pyspark`` engagement.

On an engagement with ``engine.backend: pyspark``, a source whose ``sql``
names a table that is not a source (``bank_dw.customers``) is a Spark SQL
query over the session's catalog: tables of the bank's Hive warehouse and the
Spark sources read before it, by name (:func:`spark_sources`). Its rows never
come to the driver. Spark applies the column
mapping, the missing-value markers and recodings, the types, the date
parsing, the personal-data scan and the keyed pseudonyms, and writes the
canonical table as Parquet into the run folder. Only counts and the one-row
aggregates of the checks return to Python.

File sources of the same engagement, and queries over file sources only, are
still read by DuckDB on the driver (:mod:`relmap_utils.ingest.source`). A
canonical table is filled either from files or from the warehouse, not from
both, and a Spark query cannot name a file source.

Differences from the file path
------------------------------
- Text columns that the mapping leaves without a role and the canonical
  schema does not type stay text: warehouse columns carry their own types,
  so no type is guessed from the values.
- Dates written as text are parsed with Spark's ``try_to_timestamp``.
  ``%Y %y %m %d %H %M %S %f %b %B %j %p %I`` are translated to Spark
  patterns, and ``%y`` follows Python's pivot (69-99 are 1969-1999).
  Excel serial day numbers are not read; they count as unparsed values.
- Pseudonyms are the same HMAC-SHA256 as on DuckDB, computed with Spark's
  ``sha2``, ``unhex``, ``encode`` and ``concat``. The HMAC pads travel in a
  one-row DataFrame created from Python, so the key never appears in SQL text.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from relmap_utils import schema
from relmap_utils.config import Engagement, Source
from relmap_utils.errors import SourceError
from relmap_utils.ingest import parsing, privacy
from relmap_utils.ingest.labels import LABEL_COLUMN, check_label_values
from relmap_utils.ingest.source import (
    MAX_UNPARSED_SHARE,
    TEXT_TYPES,
    ReadResult,
    _clean_text,
    _Column,
    _convert,
    _declared_type,
    _formats,
    _plan_columns,
    run_aggregates,
)
from relmap_utils.ingest.typing import IBIS_TYPES, canonical_type_of_ibis

logger = logging.getLogger(__name__)

FORMAT = "spark_sql"
# Table prefixes of Spark SQL that read files by path, as in parquet.`/data/x`.
FILE_PREFIXES = frozenset({"parquet", "csv", "json", "orc", "text", "avro", "delta", "binaryfile", "xml", "file"})
_VIEW_PREFIX = "__relmap_warehouse_"
_READ_NUMBER = itertools.count(1)


# Which sources run on Spark.


def spark_sources(engagement: Engagement) -> list[Source]:
    """Return the sources that ingest reads with Spark.

    On a ``pyspark`` engagement a query source runs on Spark when it names a
    table that is not a source of the engagement (a warehouse table such as
    ``bank_dw.customers``) or a source that itself runs on Spark. A query
    over file sources only stays on DuckDB, as on a DuckDB engagement.

    Parameters
    ----------
    engagement : Engagement

    Returns
    -------
    list of Source
        In configuration order; empty unless ``engine.backend`` is ``pyspark``.
    """
    if engagement.engine.backend != "pyspark":
        return []
    defined = {source.name for source in engagement.sources}
    on_spark: list[Source] = []
    for source in engagement.sources:
        if source.sql is None:
            continue
        names = _referenced_names(source.sql)
        if any(name not in defined or name in {item.name for item in on_spark} for name in names):
            on_spark.append(source)
    return on_spark


def _referenced_names(sql: str) -> list[str]:
    """Return the table names a query names (``db.table`` as written), or none when it does not parse."""
    import sqlglot
    from sqlglot import exp

    for dialect in ("spark", "duckdb"):
        try:
            statement = sqlglot.parse_one(sql, read=dialect)
        except sqlglot.errors.ParseError:
            continue
        ctes = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
        return [
            ".".join(part for part in (table.catalog, table.db, table.name) if part)
            for table in statement.find_all(exp.Table)
            if table.db or table.name not in ctes
        ]
    return []


def check_table_engines(by_table: dict[str, list[tuple[Source, ReadResult]]], spark_names: set[str]) -> set[str]:
    """Return the canonical tables filled on Spark; reject a table filled from both files and the warehouse.

    Raises
    ------
    SourceError
        ``ingest.warehouse_mixed_table``, naming the table and the sources of
        each kind.
    """
    on_spark: set[str] = set()
    for table_name, parts in by_table.items():
        names = [source.name for source, _ in parts]
        warehouse = [name for name in names if name in spark_names]
        files = [name for name in names if name not in spark_names]
        if warehouse and files:
            raise SourceError(
                "ingest.warehouse_mixed_table",
                table=table_name,
                warehouse_sources=", ".join(warehouse),
                file_sources=", ".join(files),
            )
        if warehouse:
            on_spark.add(table_name)
    return on_spark


# The query of a source.


def query_tables(source: Source) -> list[str]:
    """Return the tables and views a Spark query names, as written (``db.table``), CTEs left out.

    Raises
    ------
    SourceError
        ``ingest.query_not_select`` for several statements or one that is
        not a query, ``ingest.warehouse_query_reads_file`` for a table given
        by a file path or a table function, ``ingest.query_failed`` when the query does
        not parse.
    """
    import sqlglot
    from sqlglot import exp

    try:
        statements = [statement for statement in sqlglot.parse(source.sql or "", read="spark") if statement is not None]
    except sqlglot.errors.ParseError as exc:
        raise SourceError(
            "ingest.query_failed", source=source.name, detail=str(exc).splitlines()[0], sources="-"
        ) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        kinds = ", ".join(type(statement).__name__.upper() for statement in statements) or "-"
        raise SourceError("ingest.query_not_select", source=source.name, statements=kinds)

    query = statements[0]
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    names: list[str] = []
    for table in query.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise SourceError("ingest.warehouse_query_reads_file", source=source.name, reference=table.sql(dialect="spark"))
        if table.db.lower() in FILE_PREFIXES or re.search(r"[/\\]", table.name):
            raise SourceError("ingest.warehouse_query_reads_file", source=source.name, reference=table.sql(dialect="spark"))
        if not table.db and table.name in ctes:
            continue
        name = ".".join(part for part in (table.catalog, table.db, table.name) if part)
        if name not in names:
            names.append(name)
    return names


def check_file_sources(source: Source, names: list[str], file_sources: set[str]) -> None:
    """Raise SourceError when a Spark query names sources that DuckDB reads (``ingest.warehouse_query_names_file``)."""
    used = sorted(name for name in names if name in file_sources)
    if used:
        raise SourceError("ingest.warehouse_query_names_file", source=source.name, names=", ".join(used))


def _analysis_error(source: Source, exc: Exception, names: list[str], session: Any) -> SourceError:
    condition = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", lambda: None)
    condition = condition() or ""
    parameters = exc.getMessageParameters() if hasattr(exc, "getMessageParameters") else {}
    parameters = parameters or {}
    if condition.startswith("TABLE_OR_VIEW_NOT_FOUND"):
        databases = ", ".join(sorted(database.name for database in session.catalog.listDatabases())) or "-"
        return SourceError(
            "ingest.warehouse_table_missing",
            source=source.name,
            table=parameters.get("relationName", ", ".join(names)).replace("`", ""),
            databases=databases,
        )
    if condition.startswith("UNRESOLVED_COLUMN"):
        return SourceError(
            "ingest.warehouse_query_column_missing",
            source=source.name,
            column=parameters.get("objectName", "?").replace("`", ""),
            tables=", ".join(names) or "-",
            available=parameters.get("proposal", "-").replace("`", ""),
        )
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SourceError("ingest.query_failed", source=source.name, detail=detail, sources=", ".join(names) or "-")


def _run_query(source: Source, backend: Any, names: list[str], view: str) -> ir.Table:
    from pyspark.errors import AnalysisException, ParseException

    session = backend._session
    try:
        frame = session.sql(source.sql)
    except (AnalysisException, ParseException) as exc:
        raise _analysis_error(source, exc, names, session) from None
    frame.createOrReplaceTempView(view)
    return backend.table(view)


# Types: Spark versions of the DuckDB-only parsers.

# Python's string.whitespace: the characters StringValue.strip() removes on DuckDB.
_EDGE_WHITESPACE = r"^[ \t\n\r\x0B\f]+|[ \t\n\r\x0B\f]+$"


def strip(text: ir.StringValue) -> ir.StringValue:
    """Remove whitespace at both ends of ``text`` on Spark, as ``StringValue.strip`` does on DuckDB.

    Ibis 12 compiles ``strip()`` for Spark to ``TRIM(text, ' \\t\\n\\r\\v\\f')``,
    and Spark's SQL parser reads ``\\v`` and ``\\f`` in that literal as the
    letters v and f, so ``'family'`` would lose its f.
    """
    return text.re_replace(_EDGE_WHITESPACE, "")


@ibis.udf.scalar.builtin(name="try_to_timestamp")
def _try_to_timestamp(value: str, format: str) -> dt.timestamp:  # noqa: A002 - Spark's argument name
    """Spark's try_to_timestamp: NULL instead of an error when the pattern does not match."""


_STRPTIME_TO_SPARK = {
    "Y": "yyyy", "y": "yy", "m": "MM", "d": "dd", "H": "HH", "M": "mm", "S": "ss", "f": "SSSSSS",
    "b": "MMM", "B": "MMMM", "j": "DDD", "p": "a", "I": "hh",
}


def spark_pattern(source: Source, column: str, strptime_format: str) -> str:
    """Translate a strptime format into a Spark datetime pattern.

    Letters outside a directive are quoted, so ``%Y年%m月%d日`` becomes
    ``yyyy'年'MM'月'dd'日'``.

    Raises
    ------
    SourceError
        ``ingest.warehouse_date_format`` for a directive with no Spark
        equivalent (``%a``, ``%z``, ...), naming the source, column and format.

    Examples
    --------
    >>> from relmap_utils.config import Source
    >>> spark_pattern(Source(name="s", sql="SELECT 1"), "d", "%Y-%m-%dT%H:%M")
    "yyyy-MM-dd'T'HH:mm"
    """
    pieces: list[str] = []
    index = 0
    while index < len(strptime_format):
        char = strptime_format[index]
        if char == "%" and index + 1 < len(strptime_format):
            directive = strptime_format[index + 1]
            index += 2
            if directive == "%":
                pieces.append("%")
                continue
            if directive not in _STRPTIME_TO_SPARK:
                raise SourceError(
                    "ingest.warehouse_date_format", source=source.name, column=column, format=strptime_format,
                    directive=f"%{directive}", supported=" ".join(f"%{key}" for key in _STRPTIME_TO_SPARK),
                )
            pieces.append(_STRPTIME_TO_SPARK[directive])
            continue
        index += 1
        if char == "'":
            pieces.append("''")
        elif char.isalpha() or not char.isascii():
            pieces.append(f"'{char}'")
        else:
            pieces.append(char)
    return "".join(pieces)


def _python_century(value: ir.TimestampValue) -> ir.TimestampValue:
    # Spark reads "yy" as 2000-2099; strptime's %y reads 69-99 as 1969-1999.
    return ibis.ifelse(value.year() >= 2069, value - ibis.interval(years=100), value)


def parse_timestamp(text: ir.StringValue, patterns: list[tuple[str, bool]]) -> ir.TimestampValue:
    """Parse dates written as text on Spark, in the forms of :func:`parsing.parse_timestamp`.

    Parameters
    ----------
    text : StringValue
        Trimmed text, NULL for blanks.
    patterns : list of (str, bool)
        Spark patterns tried first, each with whether it came from a
        strptime ``%y`` (two-digit year).

    Returns
    -------
    TimestampValue
        NULL where no form matches or the year lies outside 1800-2200.
    """
    candidates: list[ir.TimestampValue] = []
    for pattern, two_digit_year in patterns:
        parsed = _try_to_timestamp(text, pattern)
        candidates.append(_python_century(parsed) if two_digit_year else parsed)

    compact = ibis.ifelse(text.re_search(parsing.COMPACT_DATE), text.left(8), ibis.null(dt.string))
    candidates.append(_try_to_timestamp(compact, "yyyyMMdd"))
    compact_time = ibis.ifelse(text.re_search(parsing.COMPACT_DATETIME), text, ibis.null(dt.string))
    candidates.append(_try_to_timestamp(compact_time, "yyyyMMddHHmmss"))

    # Java's regexp_replace writes groups as $1, not \1.
    separated = text.re_replace(parsing.SEPARATED_DATE, "$1-$2-$3 ")
    candidates.append(
        ibis.ifelse(text.re_search(parsing.SEPARATED_DATE), strip(separated).try_cast(dt.timestamp), ibis.null(dt.timestamp))
    )

    parsed = ibis.coalesce(*candidates)
    in_range = parsed.year().between(parsing.MIN_YEAR, parsing.MAX_YEAR)
    return ibis.ifelse(in_range, parsed, ibis.null(dt.timestamp))


def _spark_convert(source: Source, column: _Column, value: ir.Value, unit: float, timezone: str) -> ir.Value:
    kind = column.type
    dtype = value.type()
    if kind in ("date", "datetime") and not (dtype.is_date() or dtype.is_timestamp()):
        text = value if dtype.is_string() else _convert(value, "id", column.header, [], False, 1.0, timezone)
        patterns = [
            (spark_pattern(source, column.target, strptime_format), "%y" in strptime_format)
            for strptime_format in _formats(source, column)
        ]
        parsed = parse_timestamp(text, patterns)
        return parsed.cast(dt.date) if kind == "date" else parsed
    return _convert(value, kind, column.header, [], False, unit, timezone)


def _constant(name: str, value: Any, table_name: str | None) -> tuple[ir.Value, str]:
    canonical = schema.TABLES[table_name].column(name) if table_name in schema.TABLES else None
    kind = canonical.type if canonical else None
    if kind is None:
        if isinstance(value, bool):
            kind = "boolean"
        elif isinstance(value, int):
            kind = "integer"
        elif isinstance(value, float):
            kind = "number"
        else:
            kind = "category"
    if kind in ("date", "datetime") and isinstance(value, str):
        parsed = parse_timestamp(ibis.literal(value.strip()), [])
        return (parsed.cast(dt.date) if kind == "date" else parsed), kind
    return ibis.literal(value).cast(IBIS_TYPES[kind]), kind


# Reading one warehouse source.


def read_warehouse_source(
    source: Source,
    backend: Any,
    *,
    file_sources: set[str] = frozenset(),
    timezone: str = "Asia/Shanghai",
) -> ReadResult:
    """Read, clean and type one query source on Spark.

    Parameters
    ----------
    source : Source
        A source with ``sql``, a Spark SQL query over warehouse tables and
        earlier Spark sources.
    backend : ibis.backends.pyspark.Backend
        The engagement's Spark backend (:func:`relmap_utils.engine.connect`).
    file_sources : set of str, default=frozenset()
        Names of the engagement's file sources, which a Spark query cannot use.
    timezone : str, default="Asia/Shanghai"
        The engagement's time zone (Spark's session time zone during ingest).

    Returns
    -------
    ReadResult
        The typed table is a Spark view. ``info`` contains the counts a file
        source reports (rows, unparsed values, damaged identifiers) and the
        warehouse tables the query names.

    Raises
    ------
    SourceError
        The query is not one SELECT, reads files, names a file source, a
        missing table or column. A mapped column is missing, or more than
        5 % of a column's non-empty values do not parse as its declared type.
    """
    number = next(_READ_NUMBER)
    names = query_tables(source)
    check_file_sources(source, names, set(file_sources))
    logger.info("reading source %s on Spark from %s", source.name, ", ".join(names) or "-")
    table = _run_query(source, backend, names, f"{_VIEW_PREFIX}{source.name}_{number}")
    info: dict[str, Any] = {
        "source": source.name,
        "table": source.table,
        "format": FORMAT,
        "warehouse_tables": names,
        "encoding": None,
        "separator": None,
        "header_rows": 0,
        "excluded_rows": {"title": 0, "totals": 0, "footnotes": 0, "blank": 0},
        "missing_markers_replaced": {},
        "damaged_identifier_columns": {},
        "unparsed_values": {},
    }

    missing = sorted(set(source.columns) - set(table.columns))
    if missing:
        raise SourceError(
            "ingest.warehouse_columns_missing",
            source=source.name,
            tables=", ".join(names) or "-",
            columns=", ".join(missing),
            available=privacy.MaskedHeaders(list(table.columns)),
        )
    plan = _plan_columns(source, list(table.columns), source.table)
    return _type_columns(source, table, plan, info, timezone)


def _type_columns(source: Source, table: ir.Table, plan: list[_Column], info: dict[str, Any], timezone: str) -> ReadResult:
    markers = list(source.missing_values)
    cleaned: dict[str, ir.Value] = {}
    marker_counts: dict[str, ir.Scalar] = {}
    for column in plan:
        value = table[column.header]
        if value.type().is_string():
            value, hit = _clean_text(value, strip(value), markers)
            if markers:
                marker_counts[column.header] = hit.cast(dt.int64).sum().fill_null(0)
            if column.mapping and column.mapping.values:
                value = value.substitute(column.mapping.values)
        cleaned[column.header] = value
    clean = table.select(**cleaned)

    for column in plan:
        column.type = _declared_type(column, source.table)
        if column.type is None:
            dtype = clean[column.header].type()
            column.type = "text" if dtype.is_string() else canonical_type_of_ibis(dtype)

    label_column = next((column for column in plan if column.target == LABEL_COLUMN), None)
    if label_column is not None:
        check_label_values(source, clean, label_column.header)

    typed: dict[str, ir.Value] = {}
    checks: dict[str, ir.Scalar] = {"rows": clean.count(), **{f"marker\x00{key}": value for key, value in marker_counts.items()}}
    for column in plan:
        value = clean[column.header]
        unit = (column.mapping.unit if column.mapping and column.mapping.unit else None) or parsing.header_unit(column.header)
        typed[column.target] = _spark_convert(source, column, value, unit, timezone)
        if column.type not in TEXT_TYPES and not _same_kind(value.type(), column.type):
            checks[f"nonnull\x00{column.target}"] = value.count()
            checks[f"parsed\x00{column.target}"] = typed[column.target].count()
        if column.type == "id" and value.type().is_string():
            checks[f"damaged\x00{column.target}"] = parsing.looks_damaged_identifier(value).cast(dt.int64).sum().fill_null(0)

    constant_types: dict[str, str] = {}
    for name, value in source.constants.items():
        typed[name], constant_types[name] = _constant(name, value, source.table)
    # NOTE: nothing is cached, so Spark reads the warehouse table three times: for these
    # counts, for the personal-data scan and for the write. Caching would keep unpseudonymized
    # rows in executor memory and local disk until the run ends.
    stored = clean.select(**typed)
    tally = run_aggregates(clean, checks)

    unparsed: dict[str, int] = {}
    for key in [key for key in tally if key.startswith("nonnull\x00")]:
        target = key.partition("\x00")[2]
        nonnull = int(tally[key] or 0)
        failed = nonnull - int(tally[f"parsed\x00{target}"] or 0)
        if not failed:
            continue
        unparsed[target] = failed
        column = next(column for column in plan if column.target == target)
        if failed > MAX_UNPARSED_SHARE * nonnull:
            _raise_unparsed(source, column, clean, typed[target], failed, nonnull)
        logger.warning("source %s: %d values of column %s did not parse as %s", source.name, failed, column.header, column.type)
    damaged = {
        key.partition("\x00")[2]: int(count) for key, count in tally.items() if key.startswith("damaged\x00") and count
    }
    if damaged:
        logger.warning("source %s: identifier columns arrived damaged: %s", source.name, ", ".join(sorted(damaged)))

    info.update(
        rows=int(tally["rows"]),
        rows_read=int(tally["rows"]),
        missing_markers_replaced={
            key.partition("\x00")[2]: int(count) for key, count in tally.items() if key.startswith("marker\x00") and count
        },
        damaged_identifier_columns=damaged,
        unparsed_values=unparsed,
        columns_declared=[column.target for column in plan if column.declared],
        columns_guessed=[c.target for c in plan if not c.declared and _declared_type(c, source.table) is None],
        declared={column.target: column.declared for column in plan},
    )
    by_target = {column.target for column in plan}
    output = [column.target for column in plan] + [name for name in source.constants if name not in by_target]
    column_types = {column.target: column.type for column in plan}
    column_types.update(constant_types)
    roles: dict[str, str | None] = {column.target: column.mapping.role if column.mapping else None for column in plan}
    source_columns: dict[str, str | None] = {column.target: column.header for column in plan}
    for name in source.constants:
        roles.setdefault(name, None)
        source_columns[name] = None
    return ReadResult(stored.select(*output), info, column_types, roles, source_columns)


def _same_kind(dtype: dt.DataType, kind: str) -> bool:
    """Return whether a typed column needs no parsing to become ``kind`` (a cast cannot fail)."""
    if kind in ("date", "datetime"):
        return dtype.is_date() or dtype.is_timestamp()
    if kind in ("amount", "number"):
        return dtype.is_numeric()
    if kind == "integer":
        return dtype.is_integer()
    if kind == "boolean":
        return dtype.is_boolean()
    return False


def _raise_unparsed(source: Source, column: _Column, clean: ir.Table, converted: ir.Value, failed: int, total: int) -> None:
    value = clean[column.header]
    rows = clean.filter(value.notnull() & converted.isnull()).select(value).limit(1).to_pyarrow().to_pylist()
    shape = _shape(str(rows[0][column.header])) if rows else "-"
    raise SourceError(
        "ingest.warehouse_values_unparsed",
        source=source.name,
        column=column.header,
        type=column.type,
        failed=failed,
        total=total,
        shape=shape,
    )


def _shape(value: str) -> str:
    from relmap_utils.ingest.source import value_shape

    return value_shape(value)


def register_staging(backend: Any, source: Source, result: ReadResult) -> None:
    """Make a Spark source's typed table visible to later Spark queries under the source's name."""
    frame = backend._session.sql(backend.compile(result.table))
    frame.createOrReplaceTempView(source.name)


def drop_views(backend: Any, names: list[str]) -> None:
    """Drop the temporary views ingest created in the Spark session (source names and internal views)."""
    catalog = backend._session.catalog
    internal = [table.name for table in catalog.listTables() if table.isTemporary and table.name.startswith(_VIEW_PREFIX)]
    for name in [*names, *internal, privacy.KEY_TABLE]:
        catalog.dropTempView(name)


# The personal-data scan on Spark.


def _digit(text: Any, position: Any) -> Any:
    from pyspark.sql import functions as F

    return F.substring(text, position, 1).try_cast("int")


def _resident_id_valid(candidate: Any) -> Any:
    """Spark column: the candidate is 17 digits and a valid ISO 7064 MOD 11-2 check character."""
    from pyspark.sql import functions as F

    weights = F.array(*[F.lit(weight) for weight in privacy._ID_WEIGHTS])
    total = F.aggregate(
        F.sequence(F.lit(1), F.lit(17)),
        F.lit(0),
        lambda total, position: total + _digit(candidate, position) * F.element_at(weights, position),
    )
    expected = F.substring(F.lit(privacy._ID_CHECK), total % 11 + 1, 1)
    return F.when(candidate.rlike(privacy.RESIDENT_ID), F.upper(F.substring(candidate, 18, 1)) == expected).otherwise(False)


def _luhn_valid(candidate: Any) -> Any:
    """Spark column: the candidate is 16-19 digits and passes the Luhn check of card numbers."""
    from pyspark.sql import functions as F

    length = F.length(candidate)

    def add(total: Any, position: Any) -> Any:
        # position counts from the right, from 1; every second digit is doubled.
        digit = _digit(candidate, length - position + 1)
        doubled = digit * 2
        term = F.when(position % 2 == 0, F.when(doubled > 9, doubled - 9).otherwise(doubled)).otherwise(digit)
        return total + term

    total = F.aggregate(F.sequence(F.lit(1), F.greatest(length, F.lit(1))), F.lit(0), add)
    return F.when(candidate.rlike(privacy.CARD), total % 10 == 0).otherwise(False)


def scan_personal_data(
    table: ir.Table,
    columns: list[str] | None = None,
    *,
    allowlist: Any = (),
    headers: dict[str, str] | None = None,
) -> dict[str, dict[str, int]]:
    """Count values that look like personal data, column by column, on Spark.

    The same checks and counts as :func:`privacy.scan_personal_data`,
    written with Spark's higher-order functions. The Ibis form of the check
    digits repeats each digit expression per position, which makes Spark's
    optimizer and code generator spend tens of seconds on a table of a few
    columns. Parameters and result are those of
    :func:`privacy.scan_personal_data`.
    """
    from pyspark.sql import functions as F

    headers = headers or {}
    allowed = list(allowlist)
    names = [
        name
        for name in (columns if columns is not None else table.columns)
        if table[name].type().is_string() or table[name].type().is_integer()
    ]
    if not names:
        return {}
    backend = table._find_backend()
    backend._run_pre_execute_hooks(table)
    frame = backend._session.sql(backend.compile(table.select(*names)))

    flags = []
    for index, name in enumerate(names):
        text = F.trim(frame[name].cast("string"), F.lit(" \t\n\r\x0b\x0c"))
        if allowed:
            text = F.when(text.isin(allowed), F.lit(None).cast("string")).otherwise(text)
        flags.append(text.alias(f"text_{index}"))
        flags.append(F.regexp_extract(text, privacy.EMBEDDED_RESIDENT_ID, 2).alias(f"resident_{index}"))
        flags.append(F.regexp_extract(text, privacy.EMBEDDED_CARD, 2).alias(f"card_{index}"))
    extracted = frame.select(*flags)

    checked = []
    for index in range(len(names)):
        text = F.col(f"text_{index}")
        # regexp_extract returns "" when nothing matches, as DuckDB's does.
        checks = {
            "resident_id": _resident_id_valid(F.col(f"resident_{index}")),
            "mobile": text.rlike(privacy.EMBEDDED_MOBILE),
            "card": _luhn_valid(F.col(f"card_{index}")),
            "email": text.rlike(privacy.EMBEDDED_EMAIL),
        }
        checked.append(text)
        checked.append(F.coalesce(text.rlike(privacy.LONG_DIGITS), F.lit(False)).alias(f"long_{index}"))
        checked += [F.coalesce(check, F.lit(False)).alias(f"{kind}_{index}") for kind, check in checks.items()]
    flagged = extracted.select(*checked)

    aggregates: dict[str, Any] = {}
    for index, name in enumerate(names):
        text = F.col(f"text_{index}")
        kind = privacy.header_kind(name) or privacy.header_kind(headers.get(name, ""))
        if kind == "number":
            long_digits = F.col(f"long_{index}")
            for check in privacy.VALUE_KINDS:
                long_digits = long_digits & ~F.col(f"{check}_{index}")
            aggregates[f"{name}\x00{kind}"] = long_digits
        elif kind and table[name].type().is_string():
            aggregates[f"{name}\x00{kind}"] = F.nullif(text, F.lit("")).isNotNull()
        matched_before = None
        for check in privacy.VALUE_KINDS:
            condition = F.col(f"{check}_{index}")
            counted = condition if matched_before is None else condition & ~matched_before
            matched_before = condition if matched_before is None else matched_before | condition
            aggregates[f"{name}\x00{check}"] = counted
    sums = [F.coalesce(F.sum(condition.cast("long")), F.lit(0)).alias(f"m{index}") for index, condition in enumerate(aggregates.values())]
    row = flagged.agg(*sums).collect()[0]

    found: dict[str, dict[str, int]] = {}
    for index, key in enumerate(aggregates):
        column, _, kind = key.partition("\x00")
        count = int(row[f"m{index}"] or 0)
        if count:
            found.setdefault(column, {})[kind] = count
    return found


# Pseudonyms on Spark.


@ibis.udf.scalar.builtin(name="sha2")
def _sha2(value: dt.binary, bits: dt.int32) -> str:
    """Spark's sha2(bytes, 256): lowercase hex."""


@ibis.udf.scalar.builtin(name="unhex")
def _unhex(value: str) -> dt.binary:
    """Spark's unhex: hex text to bytes."""


@ibis.udf.scalar.builtin(name="encode")
def _encode(value: str, charset: str) -> dt.binary:
    """Spark's encode(text, 'UTF-8'): text to its bytes."""


@ibis.udf.scalar.builtin(name="concat")
def _concat_bytes(left: dt.binary, right: dt.binary) -> dt.binary:
    """Spark's concat over two byte strings."""


def install_key(backend: Any, key: bytes) -> ir.Table:
    """Store the HMAC pads in a one-row temporary view of the Spark session.

    The pads are sent as a DataFrame built from Python values, so the key
    never appears in SQL text. :func:`drop_views` removes the view.
    """
    from pyspark.sql.types import BinaryType, StructField, StructType

    inner, outer = privacy._pads(key)
    layout = StructType([StructField("inner_pad", BinaryType(), False), StructField("outer_pad", BinaryType(), False)])
    frame = backend._session.createDataFrame([(bytearray(inner), bytearray(outer))], layout)
    frame.createOrReplaceTempView(privacy.KEY_TABLE)
    return backend.table(privacy.KEY_TABLE)


def normalized_text(column: ir.Value) -> ir.StringValue:
    """Return the Spark SQL form of :func:`privacy.normalize_value` for a column of any type."""
    if column.type().is_floating():
        column = ibis.ifelse(column == column.round(), column.cast(dt.int64).cast(dt.string), column.cast(dt.string))
    text = column.cast(dt.string)
    trimmed = text.re_replace(r"^[\t\n\f\r \x{3000}]+|[\t\n\f\r \x{3000}]+$", "")
    return trimmed.re_replace(r"^([0-9]{17})x$", "$1X")


def pseudonymize_expr(column: ir.Value, key_table: ir.Table) -> ir.StringValue:
    """Return the pseudonym of each value of ``column``, computed by Spark.

    Equal to :func:`privacy.pseudonymize_expr` on DuckDB and to
    :func:`privacy.pseudonymize_value`: HMAC-SHA256 of the normalised value,
    first :data:`privacy.PSEUDONYM_LENGTH` hex digits. NULL stays NULL.

    Parameters
    ----------
    column : Value
        Column to pseudonymize (text or numbers).
    key_table : Table
        The view returned by :func:`install_key`.
    """
    message = _encode(normalized_text(column), "UTF-8")
    inner = _sha2(_concat_bytes(key_table.inner_pad.as_scalar(), message), 256)
    outer = _sha2(_concat_bytes(key_table.outer_pad.as_scalar(), _unhex(inner)), 256)
    return outer.left(privacy.PSEUDONYM_LENGTH)


# Writing a canonical table.


def write_parquet(backend: Any, table: ir.Table, target: Path) -> None:
    """Write a canonical table with Spark as one Parquet file at ``target``.

    Spark writes a folder of part files under a temporary name next to
    ``target``. The single part file is then renamed to ``target``, so
    later stages find ``<table>.parquet`` as on the DuckDB path. Timestamps
    are written as Spark's ``TIMESTAMP_NTZ``: wall-clock times in the session
    time zone without a zone, as DuckDB writes them.

    Parameters
    ----------
    backend : ibis.backends.pyspark.Backend
    table : ibis.Table
        The treated table (pseudonyms applied).
    target : Path
        ``tables/<table>.parquet`` in the run folder. The path must be on the
        driver's file system, and on a cluster on storage every executor
        mounts under the same path.

    Notes
    -----
    The table is coalesced to one partition, so one task writes it. That
    keeps the run folder's one-file-per-table layout.
    """
    session = backend._session
    backend._run_pre_execute_hooks(table)
    frame = session.sql(backend.compile(table))
    for name, dtype in table.schema().items():
        if dtype.is_timestamp():
            frame = frame.withColumn(name, frame[name].cast("timestamp_ntz"))
    scratch = target.with_name(f".{target.name}.spark")
    shutil.rmtree(scratch, ignore_errors=True)
    frame.coalesce(1).write.mode("overwrite").parquet(scratch.resolve().as_uri())
    parts = sorted(scratch.glob("part-*.parquet"))
    if len(parts) != 1:
        shutil.rmtree(scratch, ignore_errors=True)
        raise RuntimeError(f"Spark wrote {len(parts)} part files for {target.name}, expected one")
    os.replace(parts[0], target)
    shutil.rmtree(scratch, ignore_errors=True)

