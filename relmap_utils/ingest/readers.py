"""Readers that load a source file into a raw grid of text cells in DuckDB.

Every file-based format becomes the same thing: a temporary DuckDB table
with a row number column ``__row`` and text columns ``c0, c1, ...``, all
VARCHAR, nothing typed yet. Layout detection and typing then work on that
grid through Ibis, whatever the file format was.

- Delimited text is read by DuckDB's CSV reader with ``all_varchar`` and the
  separator sniffed here, so a 10M-row file never passes through Python.
- Runs of spaces and fixed-width files are read one line per row by DuckDB
  and split in SQL.
- Excel sheets are read cell by cell (openpyxl for .xlsx, xlrd for .xls),
  which is the only way to get at them, and handed to DuckDB as Arrow.
"""

from __future__ import annotations

import csv
import datetime as dt_module
import io
import logging
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import iterparse

import pyarrow as pa

from relmap_utils.errors import SourceError
from relmap_utils.ingest.encoding import PreparedText, is_gzip
from relmap_utils.ingest.layout import HEAD_ROWS, ROW, Merge
from relmap_utils.plural import counted

logger = logging.getLogger(__name__)

CANDIDATE_SEPARATORS = (",", ";", "\t", "|")
SPACES = "spaces"
SEPARATOR_NAMES = {"\t": "tab", "\\t": "tab", "tab": "tab", " ": SPACES, "spaces": SPACES, "whitespace": SPACES}
SNIFF_RECORDS = 200
EXCEL_ERRORS = ("#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!", "#GETTING_DATA")
ARROW_BATCH_ROWS = 50_000


@dataclass
class RawGrid:
    """A source loaded as text cells into a temporary DuckDB table."""

    table_name: str
    width: int
    merges: list[Merge] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    fixed_names: list[str] | None = None


def quote_literal(text: str) -> str:
    """Return ``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sample_text(prepared: PreparedText, size: int = 256 * 1024) -> str:
    """Return up to ``size`` bytes of the prepared file as text, whole lines only."""
    import gzip

    opener = gzip.open if (not prepared.transcoded and is_gzip(prepared.path)) else open
    with opener(prepared.path, "rb") as handle:  # type: ignore[operator]
        data = handle.read(size)
    encoding = "utf-8-sig" if prepared.encoding == "utf-8-sig" and not prepared.transcoded else "utf-8"
    text = data.decode(encoding, errors="ignore")
    if len(data) == size and "\n" in text:
        text = text[: text.rfind("\n") + 1]
    return text


def _field_counts(text: str, separator: str) -> list[int]:
    if separator == SPACES:
        return [len(line.split()) for line in text.splitlines()[:SNIFF_RECORDS] if line.strip()]
    reader = csv.reader(io.StringIO(text), delimiter=separator, quotechar='"')
    counts = []
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                counts.append(len(record))
            if len(counts) >= SNIFF_RECORDS:
                break
    except csv.Error:
        return []
    return counts


def sniff_separator(text: str) -> tuple[str, int]:
    """Guess the separator of delimited text and the number of fields.

    Each candidate (``,`` ``;`` tab ``|``, then runs of spaces) splits the
    sample records; the winner gives the same field count, at least two, on
    the largest share of records, and ties go to the larger count. Runs of
    spaces win only when no single-character separator is consistent.

    Parameters
    ----------
    text : str
        The first lines of the file.

    Returns
    -------
    (str, int)
        The separator (``spaces`` for runs of spaces) and the largest field
        count seen; ``(",", 1)`` for a file of one column.
    """
    scored = []
    for separator in (*CANDIDATE_SEPARATORS, SPACES):
        counts = _field_counts(text, separator)
        if not counts:
            continue
        mode, hits = Counter(counts).most_common(1)[0]
        if mode < 2:
            continue
        scored.append((round(hits / len(counts), 2), mode, separator, max(counts)))
    if not scored:
        return ",", 1
    single = [entry for entry in scored if entry[2] != SPACES and entry[0] >= 0.9]
    pool = single or scored
    best = max(pool, key=lambda entry: (entry[0], entry[2] != SPACES, entry[1]))
    return best[2], best[3]


def separator_label(separator: str) -> str:
    """Return the separator as written in reports (``tab``, ``spaces``, ``,`` ...)."""
    return SEPARATOR_NAMES.get(separator, separator)


def _duckdb_error_line(message: str) -> str:
    match = re.search(r"Line:\s*(\d+)", message)
    return match.group(1) if match else "?"


def _raise_csv_error(exc: Exception, path: Path, source_name: str, width: int) -> None:
    # DuckDB's CSV errors quote the offending line, which may hold personal
    # data; only the line number and the field counts are passed on.
    message = str(exc)
    found = re.search(r"Expected Number of Columns:\s*(\d+)\s*Found:\s*(\d+)", message)
    if found:
        raise SourceError(
            "ingest.csv_field_count",
            source=source_name,
            file=str(path),
            line=_duckdb_error_line(message),
            expected=found.group(1),
            found=counted("ingest.count.fields", int(found.group(2))),
        ) from None
    first_line = message.splitlines()[0] if message else type(exc).__name__
    raise SourceError(
        "ingest.csv_unreadable", source=source_name, file=str(path), line=_duckdb_error_line(message), detail=first_line
    ) from None


def _create_numbered(con: Any, name: str, select_sql: str) -> None:
    # rowid follows insertion order, which DuckDB keeps for CREATE TABLE AS
    # (preserve_insertion_order is on by default), so it numbers the records.
    con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}_cells" AS {select_sql}')
    con.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT rowid + 1 AS {ROW}, * FROM "{name}_cells"')


def _compression(prepared: PreparedText) -> str:
    return "gzip" if not prepared.transcoded and is_gzip(prepared.path) else "none"


def read_delimited(con: Any, prepared: PreparedText, separator: str, name: str, source_name: str) -> RawGrid:
    """Load a delimited text file as a raw grid.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection of the Ibis backend.
    prepared : PreparedText
        The file in UTF-8 (see :func:`~relmap_utils.ingest.encoding.prepare_utf8`).
    separator : str
        ``auto`` to sniff, a separator, ``tab`` or ``spaces``.
    name : str
        Name of the temporary table to create.
    source_name : str
        Source name for messages.

    Returns
    -------
    RawGrid
    """
    text = sample_text(prepared)
    chosen = SEPARATOR_NAMES.get(separator, separator)
    if chosen == "tab":
        chosen = "\t"
    if separator == "auto":
        chosen, width = sniff_separator(text)
    else:
        counts = _field_counts(text, chosen)
        width = max(counts) if counts else 1
    if chosen == SPACES:
        return _read_space_separated(con, prepared, name, source_name)

    columns = ", ".join(f"'c{index}': 'VARCHAR'" for index in range(width))
    select = (
        f"SELECT * FROM read_csv({quote_literal(str(prepared.path))}, delim={quote_literal(chosen)}, "
        f"quote='\"', escape='\"', header=false, null_padding=true, auto_detect=false, "
        f"compression={quote_literal(_compression(prepared))}, columns={{{columns}}})"
    )
    try:
        _create_numbered(con, name, select)
    except Exception as exc:  # duckdb raises several error classes for malformed CSV
        _raise_csv_error(exc, prepared.path, source_name, width)
    return RawGrid(name, width, info={"separator": separator_label(chosen)})


def _read_lines(con: Any, prepared: PreparedText, name: str, source_name: str) -> str:
    if prepared.line_delimiter is None:
        raise SourceError("ingest.lines_unreadable", source=source_name, file=str(prepared.path))
    lines = f"{name}_lines"
    select = (
        f"SELECT * FROM read_csv({quote_literal(str(prepared.path))}, delim={quote_literal(prepared.line_delimiter)}, "
        f"quote='', escape='', header=false, auto_detect=false, "
        f"compression={quote_literal(_compression(prepared))}, columns={{'line': 'VARCHAR'}})"
    )
    try:
        con.execute(f'CREATE OR REPLACE TEMP TABLE "{lines}" AS {select}')
    except Exception as exc:
        _raise_csv_error(exc, prepared.path, source_name, 1)
    return lines


def _read_space_separated(con: Any, prepared: PreparedText, name: str, source_name: str) -> RawGrid:
    lines = _read_lines(con, prepared, name, source_name)
    split = f"regexp_split_to_array(trim(line, ' \t'), '[ \\t]+')"
    width = con.execute(f'SELECT max(len({split})) FROM "{lines}"').fetchone()[0] or 1
    fields = ", ".join(f"nullif(parts[{index + 1}], '') AS c{index}" for index in range(width))
    _create_numbered(con, name, f'SELECT {fields} FROM (SELECT {split} AS parts FROM "{lines}")')
    con.execute(f'DROP TABLE "{lines}"')
    return RawGrid(name, width, info={"separator": SPACES})


def read_fixed_width(con: Any, prepared: PreparedText, spec: list[Any], name: str, source_name: str) -> RawGrid:
    """Load a fixed-width file, cutting each line by the configured columns.

    ``start`` and ``width`` count characters (not bytes) from 1, after the
    file has been decoded.
    """
    lines = _read_lines(con, prepared, name, source_name)
    fields = ", ".join(
        f"nullif(trim(substring(line, {item.start}, {item.width})), '') AS c{index}" for index, item in enumerate(spec)
    )
    _create_numbered(con, name, f'SELECT {fields} FROM "{lines}"')
    con.execute(f'DROP TABLE "{lines}"')
    return RawGrid(name, len(spec), info={"separator": "fixed_width"}, fixed_names=[item.name for item in spec])


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return None
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt_module.datetime):
        if value.time() == dt_module.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (dt_module.date, dt_module.time)):
        return value.isoformat()
    text = str(value)
    return text


class _ArrowGrid:
    """Collects rows in Arrow batches so a sheet never sits in Python lists whole."""

    def __init__(self) -> None:
        self.batches: list[list[pa.Array]] = []
        self.numbers: list[pa.Array] = []
        self.rows: list[list[str | None]] = []
        self.row_numbers: list[int] = []
        self.width = 0

    def add(self, number: int, cells: list[str | None]) -> None:
        while cells and cells[-1] is None:
            cells.pop()
        self.width = max(self.width, len(cells))
        self.rows.append(cells)
        self.row_numbers.append(number)
        if len(self.rows) >= ARROW_BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        width = max((len(row) for row in self.rows), default=0)
        columns = [pa.array([row[i] if i < len(row) else None for row in self.rows], pa.string()) for i in range(width)]
        self.batches.append(columns)
        self.numbers.append(pa.array(self.row_numbers, pa.int64()))
        self.rows, self.row_numbers = [], []

    def to_arrow(self) -> pa.Table:
        self.flush()
        width = max(self.width, 1)
        tables = []
        for numbers, columns in zip(self.numbers, self.batches):
            padded = columns + [pa.nulls(len(numbers), pa.string())] * (width - len(columns))
            tables.append(pa.table([numbers, *padded], names=[ROW, *[f"c{i}" for i in range(width)]]))
        if not tables:
            empty = [pa.array([], pa.int64())] + [pa.array([], pa.string())] * width
            return pa.table(empty, names=[ROW, *[f"c{i}" for i in range(width)]])
        return pa.concat_tables(tables)


def _xlsx_merges(path: Path, worksheet: Any) -> list[Merge]:
    # openpyxl's read-only mode does not expose merged cells, so they are read
    # from the sheet XML; the <mergeCell> elements follow the cell data.
    from openpyxl.utils.cell import range_boundaries

    member = getattr(worksheet, "_worksheet_path", None)
    if not member:
        return []
    merges = []
    with zipfile.ZipFile(path) as archive, archive.open(member) as xml:
        for _, element in iterparse(xml):
            if element.tag.endswith("}mergeCell"):
                min_col, min_row, max_col, max_row = range_boundaries(element.get("ref"))
                merges.append(Merge(min_row, min_col, max_row, max_col))
            elif element.tag.endswith("}row"):
                element.clear()
    return merges


def _pick_sheet(names: list[str], sheet: str | int | None, path: Path, source_name: str) -> str:
    if sheet is None:
        return names[0]
    if isinstance(sheet, int):
        if 0 <= sheet < len(names):
            return names[sheet]
    elif sheet in names:
        return sheet
    raise SourceError("ingest.sheet_missing", source=source_name, file=str(path), sheet=sheet, sheets=", ".join(names))


def _load_arrow(con: Any, name: str, table: pa.Table) -> None:
    view = f"{name}_arrow"
    con.register(view, table)
    try:
        con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS SELECT * FROM "{view}"')
    finally:
        con.unregister(view)


def read_excel(con: Any, path: Path, sheet: str | int | None, name: str, source_name: str) -> RawGrid:
    """Load one sheet of an .xlsx/.xlsm (openpyxl) or .xls (xlrd) workbook.

    Cells become text: whole numbers without ``.0``, dates as ISO text (a
    time only when it is not midnight), Excel error values as NULL (they are
    counted as missing-value markers).
    """
    grid = _ArrowGrid()
    error_cells = 0
    if path.suffix.lower() == ".xls":
        merges, error_cells, sheet_name = _read_xls(path, sheet, grid, source_name)
    else:
        import openpyxl

        try:
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
            raise SourceError("ingest.excel_unreadable", source=source_name, file=str(path), detail=type(exc).__name__) from None
        try:
            sheet_name = _pick_sheet(workbook.sheetnames, sheet, path, source_name)
            worksheet = workbook[sheet_name]
            for number, row in enumerate(worksheet.iter_rows(values_only=True), start=1):
                cells = []
                for value in row:
                    if isinstance(value, str) and value.strip() in EXCEL_ERRORS:
                        error_cells += 1
                        value = None
                    cells.append(_cell_text(value))
                grid.add(number, cells)
            merges = _xlsx_merges(path, worksheet)
        finally:
            workbook.close()
    table = grid.to_arrow()
    _load_arrow(con, name, table)
    return RawGrid(name, table.num_columns - 1, merges, info={"sheet": sheet_name, "excel_error_cells": error_cells})


def _read_xls(path: Path, sheet: str | int | None, grid: _ArrowGrid, source_name: str) -> tuple[list[Merge], int, str]:
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), formatting_info=True, on_demand=True)
    except (xlrd.XLRDError, OSError, ValueError, AssertionError) as exc:
        raise SourceError("ingest.excel_unreadable", source=source_name, file=str(path), detail=type(exc).__name__) from None
    try:
        sheet_name = _pick_sheet(book.sheet_names(), sheet, path, source_name)
        worksheet = book.sheet_by_name(sheet_name)
        errors = 0
        for index in range(worksheet.nrows):
            cells = []
            for cell in worksheet.row(index):
                if cell.ctype == xlrd.XL_CELL_DATE:
                    value: Any = xlrd.xldate_as_datetime(cell.value, book.datemode)
                elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                    value = bool(cell.value)
                elif cell.ctype == xlrd.XL_CELL_ERROR:
                    errors += 1
                    value = None
                elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                    value = None
                else:
                    value = cell.value
                cells.append(_cell_text(value))
            grid.add(index + 1, cells)
        merges = [Merge(rlo + 1, clo + 1, rhi, chi) for rlo, rhi, clo, chi in worksheet.merged_cells]
    finally:
        book.release_resources()
    return merges, errors, sheet_name


def head_rows(con: Any, name: str, width: int, skip_rows: int) -> list[tuple[int, list[str | None]]]:
    """Return the first raw rows after ``skip_rows`` (for layout detection)."""
    columns = ", ".join(f"c{index}" for index in range(width))
    rows = con.execute(
        f'SELECT {ROW}, {columns} FROM "{name}" WHERE {ROW} > {int(skip_rows)} ORDER BY {ROW} LIMIT {HEAD_ROWS}'
    ).fetchall()
    return [(int(row[0]), list(row[1:])) for row in rows]
