"""Read one configured source into a typed Ibis table.

:func:`read_source` takes one source all the way. It finds and decodes the
file, loads it as a raw grid of text, finds the header and drops report
rows, replaces missing-value markers, applies the column mapping, types
every column (declared role, canonical schema, or guess) and materializes
the result in a temporary DuckDB table. Privacy treatments come later, per canonical table
(see :mod:`relmap_utils.ingest.stage`).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from relmap_utils import schema
from relmap_utils.config import ColumnMap, Source
from relmap_utils.errors import SourceError
from relmap_utils.i18n import bilingual, tr
from relmap_utils.ingest import parsing, privacy, readers
from relmap_utils.ingest.encoding import prepare_utf8
from relmap_utils.ingest.labels import LABEL_COLUMN, check_label_values
from relmap_utils.ingest.layout import KIND, ROW, Layout, classify_rows, detect_layout, last_wide_row
from relmap_utils.ingest.typing import (
    DATE_HEADER,
    IBIS_TYPES,
    canonical_type_of_ibis,
    decide_type,
    profile_columns,
    type_of_role,
)

logger = logging.getLogger(__name__)

TEXT_TYPES = ("id", "category", "text")
# Above this share of unparseable values (5 % of the non-missing ones) a declared type is taken to be wrong
# (a wrong role or date format), and ingest stops instead of writing NULLs.
MAX_UNPARSED_SHARE = 0.05
# Types of unmapped columns are guessed from the first rows; the typed pass
# then checks the guess against every row (see _type_columns).
PROFILE_SAMPLE_ROWS = 200_000
# Canonical types stored as numbers, whose NaN and infinities become NULL.
NUMBER_TYPES = ("amount", "number", "integer")
# Source rows listed per column that holds infinities.
NON_FINITE_ROWS_LISTED = 5


@dataclass
class ReadResult:
    """One source read and typed, before privacy treatments.

    Attributes
    ----------
    table : ibis.Table
        Typed table: canonical names for mapped columns, header text for the
        other kept columns, and the configured constants.
    info : dict
        What was found: encoding, separator, sheet, header_rows,
        header_levels, excluded_rows (title, totals, footnotes, blank),
        rows_read, rows, missing_markers_replaced, damaged_identifier_columns,
        unparsed_values, non_finite_values (per number column: NaN and
        infinite values stored as NULL, and the first source rows holding an
        infinity), columns_declared, columns_guessed.
    column_types : dict
        Canonical type of each column of ``table``.
    roles : dict
        Declared role of each column (``None`` when not declared).
    source_columns : dict
        Source header text of each column (``None`` for constants).
    """

    table: ir.Table
    info: dict[str, Any]
    column_types: dict[str, str]
    roles: dict[str, str | None] = field(default_factory=dict)
    source_columns: dict[str, str | None] = field(default_factory=dict)


@dataclass
class _Column:
    header: str
    target: str
    mapping: ColumnMap | None
    declared: bool
    type: str | None = None  # canonical type once known


def run_aggregates(table: ir.Table, expressions: dict[str, ir.Scalar]) -> dict[str, Any]:
    """Evaluate many scalar aggregates of ``table`` in one query."""
    if not expressions:
        return {}
    keys = list(expressions)
    row = table.aggregate(**{f"m{index}": expressions[key] for index, key in enumerate(keys)}).to_pyarrow()
    values = row.to_pylist()[0]
    return {key: values[f"m{index}"] for index, key in enumerate(keys)}


def value_shape(value: str) -> str:
    """Describe a value's form without revealing it: digits as 9, letters as A, CJK as 字.

    Examples
    --------
    >>> value_shape("2023年1月5日")
    '9999年9月9日'
    """
    shape = re.sub(r"[0-9]", "9", value)
    shape = re.sub(r"[A-Za-z]", "A", shape)
    shape = re.sub(r"[\u4e00-\u9fff](?<![年月日时分秒万亿元])", "字", shape)
    return shape[:40]


_READ_NUMBER = itertools.count(1)


def _internal_name(kind: str, source: Source, number: int) -> str:
    # Numbered per call, so reading a source again never replaces the table
    # behind an earlier ReadResult.
    return f"__relmap_{kind}_{source.name}_{number}"


def _drop(con: Any, *names: str) -> None:
    for name in names:
        kinds = con.execute(
            "SELECT 'VIEW' FROM duckdb_views() WHERE view_name = $1 "
            "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = $1",
            [name],
        ).fetchall()
        for (kind,) in kinds:
            con.execute(f'DROP {kind} IF EXISTS "{name}"')


def _load_grid(source: Source, fmt: str, path: Path, con: Any, temp_dir: Path | None, number: int) -> readers.RawGrid:
    name = _internal_name("raw", source, number)
    if fmt == "excel":
        return readers.read_excel(con, path, source.sheet, name, source.name)
    with prepare_utf8(path, source.encoding, temp_dir) as prepared:
        if fmt == "fixed_width":
            if not source.fixed_width:
                raise SourceError("ingest.fixed_width_spec_missing", source=source.name, file=str(path))
            grid = readers.read_fixed_width(con, prepared, source.fixed_width, name, source.name)
        else:
            grid = readers.read_delimited(con, prepared, source.separator, name, source.name)
        grid.info["encoding"] = prepared.encoding
    return grid


def _text_table(
    source: Source, fmt: str, path: Path, backend: Any, temp_dir: Path | None, info: dict[str, Any], number: int
) -> tuple[ir.Table, Layout]:
    con = backend.con
    grid = _load_grid(source, fmt, path, con, temp_dir, number)
    info.update(grid.info)
    head = readers.head_rows(con, grid.table_name, grid.width, source.skip_rows)
    layout = detect_layout(head, grid.width, source.header_rows, grid.merges, grid.fixed_names)

    raw = backend.table(grid.table_name)
    cells = [f"c{index}" for index in range(grid.width)]
    body = raw.filter(raw[ROW] >= layout.data_start)
    last_wide = backend.execute(last_wide_row(body, cells, layout.data_start))
    classified = classify_rows(body, cells, layout.data_start, None if last_wide is None else int(last_wide))
    stored = _materialize(backend, _internal_name("rows", source, number), classified)
    _drop(con, grid.table_name, grid.table_name + "_cells")

    kinds = stored.group_by(KIND).aggregate(rows=stored.count()).to_pyarrow().to_pylist()
    counts = {row[KIND]: int(row["rows"]) for row in kinds}
    data = stored.filter(stored[KIND].isnull())
    table = data.select(ROW, **{name: data[cell] for name, cell in zip(layout.names, cells)})

    info.update(
        header_rows=layout.header_rows,
        header_levels=layout.header_levels,
        rows_read=sum(counts.values()),
        excluded_rows={
            "title": layout.title_rows,
            "totals": counts.get("totals", 0),
            "footnotes": counts.get("footnotes", 0),
            "blank": counts.get("blank", 0),
        },
    )
    if info.get("excel_error_cells"):
        info["missing_markers_replaced"] = {"(Excel error values)": info.pop("excel_error_cells")}
    else:
        info.pop("excel_error_cells", None)
    return table, layout


# Table functions a query source may call: they generate rows and read no file.
QUERY_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})


def _tree_nodes(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _tree_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _tree_nodes(value)


_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 .xls


def check_file_kind(source: Source, path: Path, fmt: str) -> None:
    """Reject an empty file, and a ZIP or Excel file given as a text source.

    Parameters
    ----------
    source : Source
    path : Path
        The source's file, known to exist.
    fmt : str
        The source's resolved format.

    Raises
    ------
    SourceError
        ``ingest.file_empty`` for a 0-byte file; for ``csv`` and
        ``fixed_width`` sources, ``ingest.file_is_excel`` for an .xlsx or
        .xls workbook and ``ingest.file_is_zip`` for another ZIP archive.
    """
    if path.stat().st_size == 0:
        raise SourceError("ingest.file_empty", source=source.name, file=str(path))
    if fmt not in ("csv", "fixed_width"):
        return
    with path.open("rb") as handle:
        head = handle.read(len(_OLE2_MAGIC))
    if head.startswith(_OLE2_MAGIC):
        raise SourceError("ingest.file_is_excel", source=source.name, file=str(path))
    if head.startswith(_ZIP_MAGIC):
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                workbook = any(name.startswith("xl/") for name in archive.namelist())
        except zipfile.BadZipFile:
            workbook = False
        raise SourceError("ingest.file_is_excel" if workbook else "ingest.file_is_zip", source=source.name, file=str(path))


def check_query(source: Source) -> None:
    """Reject a query source that is not one SELECT or that reads files itself.

    A query may only combine other sources. The runner hashes the files of
    sources into the manifest, so a file a query read directly
    (``read_csv(...)``, ``FROM 'x.csv'``) would escape the record. A second
    statement could drop or replace the views of other sources.

    Parameters
    ----------
    source : Source
        A source with ``sql``.

    Raises
    ------
    SourceError
        ``ingest.query_not_select`` for several statements or one that is not
        a SELECT (WITH ... SELECT included), ``ingest.query_reads_file`` for
        a table function other than :data:`QUERY_TABLE_FUNCTIONS` or a table
        named by a path.
    """
    sql = source.sql or ""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error:
        return  # a syntax error is reported with DuckDB's message when the query runs
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(statement.type.name for statement in statements) or "-"
        raise SourceError("ingest.query_not_select", source=source.name, statements=kinds)
    with duckdb.connect() as con:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    for node in _tree_nodes(tree):
        if node.get("type") == "TABLE_FUNCTION":
            name = str((node.get("function") or {}).get("function_name", "?"))
            if name.lower() not in QUERY_TABLE_FUNCTIONS:
                raise SourceError("ingest.query_reads_file", source=source.name, reference=f"{name}(...)")
        elif node.get("type") == "BASE_TABLE" and re.search(r"[./\\]", str(node.get("table_name", ""))):
            raise SourceError("ingest.query_reads_file", source=source.name, reference=str(node["table_name"]))


def _query_table(source: Source, backend: Any, staging: dict[str, ir.Table] | None, number: int) -> ir.Table:
    check_query(source)
    con = backend.con
    for name, table in (staging or {}).items():
        con.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS {backend.compile(table)}')
    view = _internal_name("query", source, number)
    try:
        con.execute(f'CREATE OR REPLACE TEMP VIEW "{view}" AS {source.sql}')
    except Exception as exc:  # duckdb raises parser, binder and catalog errors alike
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceError(
            "ingest.query_failed", source=source.name, detail=detail, sources=", ".join(sorted(staging or {})) or "-"
        ) from None
    return backend.table(view)


def _plan_columns(source: Source, headers: list[str], table_name: str | None) -> list[_Column]:
    mapping = source.column_maps()
    privacy.check_mapped_headers(source.name, mapping, [header for header in headers if header != ROW])
    canonical = schema.TABLES[table_name] if table_name in schema.TABLES else None
    canonical_names = {column.name for column in canonical.columns} if canonical else set()
    plan = []
    for header in headers:
        if header == ROW:
            continue
        if header in mapping:
            plan.append(_Column(header, mapping[header].name, mapping[header], mapping[header].role is not None))
        elif header in canonical_names or source.keep_unmapped:
            plan.append(_Column(header, header, None, False))

    targets: dict[str, str] = {}
    for column in plan:
        if column.target in targets:
            raise SourceError(
                "ingest.duplicate_target",
                source=source.name,
                column=column.target,
                first=targets[column.target],
                second=column.header,
            )
        targets[column.target] = column.header
    return plan


def _declared_type(column: _Column, table_name: str | None) -> str | None:
    mapping = column.mapping
    if mapping is not None:
        if mapping.treatment == "year_only":
            return "date"
        role_type = type_of_role(mapping.role)
        if role_type:
            return role_type
    if table_name in schema.TABLES:
        canonical = schema.TABLES[table_name].column(column.target)
        if canonical is not None:
            return canonical.type
    if mapping is not None and mapping.role == "personal":
        return "text"
    return None


def _clean_text(
    raw: ir.StringValue, trimmed: ir.StringValue, markers: list[str]
) -> tuple[ir.StringValue, ir.BooleanValue]:
    # ``trimmed`` comes from an inner projection, so strip() runs once per
    # cell; repeated in each condition it made this pass about 3x slower.
    stripped_markers = sorted({marker.strip() for marker in markers if marker.strip()})
    hit = ibis.literal(False)
    if markers:
        hit = raw.isin(markers)
    if stripped_markers:
        hit = hit | trimmed.isin(stripped_markers)
    hit = raw.notnull() & hit
    clean = ibis.ifelse(hit | (trimmed == ""), ibis.null(dt.string), trimmed)
    return clean, hit


def _formats(source: Source, column: _Column) -> list[str]:
    own = [column.mapping.date_format] if column.mapping and column.mapping.date_format else []
    return own + [fmt for fmt in source.date_formats if fmt not in own]


def _convert(
    value: ir.Value, kind: str, header: str, formats: list[str], allow_serial: bool, unit: float, timezone: str
) -> ir.Value:
    dtype = value.type()
    if not dtype.is_string():
        if kind in TEXT_TYPES:
            if dtype.is_floating():
                return ibis.ifelse(value == value.round(), value.cast(dt.int64).cast(dt.string), value.cast(dt.string))
            return value.cast(dt.string)
        if dtype.is_timestamp():
            value = parsing.to_local_naive(value, timezone)
            if kind == "datetime":
                return value
            return value.cast(IBIS_TYPES[kind])
        if kind in ("date", "datetime"):
            if dtype.is_date():
                return value if kind == "date" else value.cast(dt.timestamp)
            value = _convert(value, "id", header, formats, allow_serial, unit, timezone)
        elif kind in ("amount", "number"):
            if dtype.is_floating():
                value = parsing.finite_or_null(value)
            return value.cast(dt.float64) * unit if kind == "amount" else value.cast(dt.float64)
        elif kind == "integer":
            if dtype.is_floating():
                value = parsing.finite_or_null(value)
                return ibis.ifelse(value == value.round(), value.cast(dt.int64), ibis.null(dt.int64))
            return value.cast(dt.int64)
        elif kind == "boolean":
            return value.cast(dt.boolean) if dtype.is_boolean() else ibis.cases((value == 1, True), (value == 0, False))
        else:
            return value.cast(IBIS_TYPES[kind])

    if kind in TEXT_TYPES:
        return value
    if kind == "amount":
        return parsing.parse_amount(value, unit)
    if kind == "number":
        return parsing.parse_number(value)
    if kind == "integer":
        return parsing.parse_integer(value)
    if kind == "boolean":
        return parsing.parse_boolean(value)
    parsed = parsing.parse_timestamp(value, formats, allow_excel_serial=allow_serial)
    return parsed.cast(dt.date) if kind == "date" else parsed


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
    literal = ibis.literal(value)
    if kind in ("date", "datetime") and isinstance(value, str):
        return _convert(literal, kind, name, [], False, 1.0, "UTC"), kind
    return literal.cast(IBIS_TYPES[kind]), kind


def read_source(
    source: Source,
    engagement_dir: Path,
    backend: Any,
    staging: dict[str, ir.Table] | None = None,
    *,
    timezone: str = "Asia/Shanghai",
    temp_dir: Path | None = None,
) -> ReadResult:
    """Read, clean and type one source.

    Parameters
    ----------
    source : Source
        The source as configured in engagement.yaml.
    engagement_dir : Path
        Folder of the engagement; relative source paths start there.
    backend : ibis.BaseBackend
        DuckDB backend from :func:`relmap_utils.engine.connect`.
    staging : dict of str to ibis.Table, optional
        Tables a query source may use, by source name.
    timezone : str, default="Asia/Shanghai"
        Time zone that time-zone aware timestamps are converted to.
    temp_dir : Path, optional
        Folder for transcoded copies (removed before returning).

    Returns
    -------
    ReadResult

    Raises
    ------
    SourceError
        When the file is missing or unreadable, a mapped column is absent,
        or a declared type fits less than half of a column's values.
    """
    fmt = source.resolved_format(engagement_dir)
    info: dict[str, Any] = {
        "source": source.name,
        "table": source.table,
        "format": fmt,
        "encoding": None,
        "separator": None,
        "header_rows": 0,
        "excluded_rows": {"title": 0, "totals": 0, "footnotes": 0, "blank": 0},
        "missing_markers_replaced": {},
        "damaged_identifier_columns": {},
        "unparsed_values": {},
    }
    logger.info("reading source %s (%s)", source.name, fmt)
    number = next(_READ_NUMBER)

    if fmt == "sql":
        table = _query_table(source, backend, staging, number)
    else:
        path = source.resolved_path(engagement_dir)
        info["path"] = source.path
        if not path.is_file():
            raise SourceError("ingest.file_missing", source=source.name, file=str(path))
        check_file_kind(source, path, fmt)
        if fmt == "parquet":
            table = backend.read_parquet(path, table_name=_internal_name("parquet", source, number))
        else:
            table, _ = _text_table(source, fmt, path, backend, temp_dir, info, number)
    if ROW not in table.columns:
        table = table.mutate(**{ROW: ibis.literal(None, dt.int64)})

    result = _type_columns(source, table, info, backend, timezone, fmt == "excel", number)
    _drop(backend.con, _internal_name("rows", source, number))
    return result


def _materialize(backend: Any, name: str, table: ir.Table) -> ir.Table:
    backend.con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS {backend.compile(table)}')
    return backend.table(name)


def _type_columns(
    source: Source, table: ir.Table, info: dict[str, Any], backend: Any, timezone: str, is_excel: bool, number: int
) -> ReadResult:
    # Each pass over the data is materialized, so the next one reads plain
    # columns instead of repeating nested expressions. The passes are the
    # cleaned text (trimmed, markers and blanks NULL, values recoded), the
    # profile of a sample for guessed columns, and the typed columns.
    plan = _plan_columns(source, list(table.columns), source.table)
    markers = list(source.missing_values)

    text_headers = [column.header for column in plan if table[column.header].type().is_string()]
    step = table.select(
        table[ROW],
        *[table[column.header] for column in plan if column.header not in text_headers],
        **{f"__raw_{index}": table[header] for index, header in enumerate(text_headers)},
        **{f"__trimmed_{index}": table[header].strip() for index, header in enumerate(text_headers)},
    ).view()  # view(): keeps Ibis from inlining strip() into each condition
    cleaned: dict[str, ir.Value] = {}
    marker_counts: dict[str, ir.Scalar] = {}
    for column in plan:
        if column.header not in text_headers:
            cleaned[column.header] = step[column.header]
            continue
        index = text_headers.index(column.header)
        value, hit = _clean_text(step[f"__raw_{index}"], step[f"__trimmed_{index}"], markers)
        if markers:
            marker_counts[column.header] = hit.cast(dt.int64).sum().fill_null(0)
        if column.mapping and column.mapping.values:
            value = value.substitute(column.mapping.values)
        cleaned[column.header] = value
    markers_replaced = dict(info.get("missing_markers_replaced") or {})
    for header, count in run_aggregates(step, marker_counts).items():
        if count:
            markers_replaced[header] = int(count)
    clean = _materialize(backend, _internal_name("clean", source, number), step.select(step[ROW], **cleaned))

    to_profile: dict[str, tuple[list[str], bool]] = {}
    for column in plan:
        value = clean[column.header]
        column.type = _declared_type(column, source.table)
        if column.type is None and not value.type().is_string():
            column.type = canonical_type_of_ibis(value.type())
        if column.type is None:
            allow_serial = is_excel or bool(DATE_HEADER.search(column.header))
            to_profile[column.header] = (list(source.date_formats), allow_serial)
    profiles = profile_columns(clean.limit(PROFILE_SAMPLE_ROWS), to_profile)

    damaged_by_guess: set[str] = set()
    guessed: set[str] = set()
    for column in plan:
        if column.type is None:
            guess = decide_type(column.header, profiles[column.header], bool(source.date_formats))
            column.type = guess.type
            guessed.add(column.target)
            if guess.damaged_identifier:
                damaged_by_guess.add(column.target)

    label_column = next((column for column in plan if column.target == LABEL_COLUMN), None)
    if label_column is not None:
        check_label_values(source, clean, label_column.header)

    typed: dict[str, ir.Value] = {}
    checks: dict[str, ir.Scalar] = {"rows": clean.count()}
    for column in plan:
        value = clean[column.header]
        allow_serial = (
            is_excel
            or column.declared
            or (column.type in ("date", "datetime") and bool(DATE_HEADER.search(column.header)))
        )
        unit = (column.mapping.unit if column.mapping and column.mapping.unit else None) or parsing.header_unit(
            column.header
        )
        typed[column.target] = _convert(value, column.type, column.header, _formats(source, column), allow_serial, unit, timezone)
        non_finite = None
        if column.type in NUMBER_TYPES and (value.type().is_string() or value.type().is_floating()):
            nan, infinite = parsing.nan_flag(value), parsing.infinity_flag(value)
            checks[f"nan\x00{column.target}"] = nan.cast(dt.int64).sum().fill_null(0)
            checks[f"infinite\x00{column.target}"] = infinite.cast(dt.int64).sum().fill_null(0)
            non_finite = (nan | infinite).fill_null(False)
        if value.type().is_string() and column.type not in TEXT_TYPES:
            # Text NaN and infinities become NULL on purpose, so they are not unparsed values.
            present = value.notnull() if non_finite is None else value.notnull() & ~non_finite
            checks[f"nonnull\x00{column.target}"] = present.cast(dt.int64).sum().fill_null(0)
        if column.type == "id" and value.type().is_string():
            checks[f"damaged\x00{column.target}"] = parsing.looks_damaged_identifier(value).cast(dt.int64).sum().fill_null(0)
    tally = run_aggregates(clean, checks)

    constant_types: dict[str, str] = {}
    for name, value in source.constants.items():
        typed[name], constant_types[name] = _constant(name, value, source.table)
    typed_name = _internal_name("typed", source, number)
    stored = _materialize(backend, typed_name, clean.select(clean[ROW], **typed))

    by_target = {column.target: column for column in plan}
    nonnull_keys = [key for key in tally if key.startswith("nonnull\x00")]
    parsed_counts = run_aggregates(stored, {key: stored[key.partition("\x00")[2]].count() for key in nonnull_keys})
    fallbacks = []
    for key, parsed in parsed_counts.items():
        target = key.partition("\x00")[2]
        if target in guessed and int(parsed or 0) < int(tally[key] or 0):
            # The guess came from a sample; a value outside it does not fit,
            # so the column stays text rather than losing that value.
            column = by_target[target]
            column.type = "text"
            typed[target] = clean[column.header]
            fallbacks.append(target)
            parsed_counts[key] = tally[key]
    if fallbacks:
        logger.warning("source %s: columns kept as text, some values do not fit the guessed type: %s", source.name, ", ".join(fallbacks))
        stored = _materialize(backend, typed_name, clean.select(clean[ROW], **typed))
    unparsed: dict[str, int] = {}
    for key, parsed in parsed_counts.items():
        target = key.partition("\x00")[2]
        nonnull = int(tally[key] or 0)
        failed = nonnull - int(parsed or 0)
        if not failed:
            continue
        unparsed[target] = failed
        column = by_target[target]
        if failed > MAX_UNPARSED_SHARE * nonnull:
            _raise_unparsed(source, column, clean, typed[target], failed, nonnull)
        logger.warning("source %s: %d values of column %s did not parse as %s", source.name, failed, column.header, column.type)

    non_finite_values = _non_finite_report(source, clean, by_target, tally)

    damaged = {
        key.partition("\x00")[2]: int(count)
        for key, count in tally.items()
        if key.startswith("damaged\x00") and count
    }
    for target in damaged_by_guess - set(damaged):
        damaged[target] = int(profiles[by_target[target].header]["scientific"])
    if damaged:
        logger.warning("source %s: identifier columns arrived damaged: %s", source.name, ", ".join(sorted(damaged)))
    _drop(backend.con, _internal_name("clean", source, number))

    info.update(
        rows=int(tally["rows"]),
        missing_markers_replaced=markers_replaced,
        damaged_identifier_columns=damaged,
        unparsed_values=unparsed,
        non_finite_values=non_finite_values,
        columns_declared=[column.target for column in plan if column.declared],
        columns_guessed=[c.target for c in plan if not c.declared and _declared_type(c, source.table) is None],
        declared={column.target: column.declared for column in plan},
    )
    output = [column.target for column in plan] + [name for name in source.constants if name not in by_target]
    column_types = {column.target: column.type for column in plan}
    column_types.update(constant_types)
    roles = {column.target: column.mapping.role if column.mapping else None for column in plan}
    source_columns: dict[str, str | None] = {column.target: column.header for column in plan}
    for name in source.constants:
        roles.setdefault(name, None)
        source_columns[name] = None
    return ReadResult(stored.select(*output), info, column_types, roles, source_columns)


def _non_finite_report(
    source: Source, clean: ir.Table, by_target: dict[str, _Column], tally: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    # NaN and infinities of number columns, which the typed table stores as
    # NULL. NaN is how pandas writes a missing number, so it is only counted.
    # An infinity is bad data, so its first source rows are listed too.
    report: dict[str, dict[str, Any]] = {}
    for key, count in tally.items():
        kind, _, target = key.partition("\x00")
        if kind in ("nan", "infinite") and count:
            report.setdefault(target, {"nan": 0, "infinite": 0})[kind] = int(count)
    for target, counts in report.items():
        column = by_target[target]
        first_rows = None
        if counts["infinite"]:
            value = clean[column.header]
            found = clean.filter(parsing.infinity_flag(value).fill_null(False)).select(ROW).order_by(ROW)
            first_rows = [row[ROW] for row in found.limit(NON_FINITE_ROWS_LISTED).to_pyarrow().to_pylist()]
            # NOTE: Parquet and query sources carry no source row numbers, so their list stays empty.
            first_rows = [row for row in first_rows if row is not None]
            counts["first_rows"] = first_rows
        params = {
            "source": source.name,
            "file": source.path or source.name,
            "column": column.header,
            "nan": counts["nan"],
            "infinite": counts["infinite"],
            "rows": ", ".join(str(row) for row in first_rows) if first_rows else "-",
        }
        counts["notice"] = bilingual("ingest.non_finite_values", **params)
        logger.warning("%s", tr("ingest.non_finite_values", **params))
    return report


def _raise_unparsed(source: Source, column: _Column, clean: ir.Table, converted: ir.Value, failed: int, total: int) -> None:
    value = clean[column.header]
    first = clean.filter(value.notnull() & converted.isnull()).select(ROW, value).order_by(ROW).limit(1)
    rows = first.to_pyarrow().to_pylist()
    row = rows[0][ROW] if rows and rows[0][ROW] is not None else "?"
    shape = value_shape(str(rows[0][column.header])) if rows else "-"
    raise SourceError(
        "ingest.values_unparsed",
        source=source.name,
        column=column.header,
        type=column.type,
        failed=failed,
        total=total,
        row=row,
        shape=shape,
    )
