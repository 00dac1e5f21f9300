"""Sheet layout of report-style exports: title rows, header rows, totals, footnotes.

Bank systems export tables the way they print them: a title line, a header
of one or more rows with merged group cells, the data, a 合计 totals row and a
footnote. Ingest keeps only the data rows and counts the others.

The header is found from the first rows in Python, which are a few dozen
cells. The totals, footnote and blank rows are found by SQL over the whole
raw table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

ROW = "__row"  # raw row number: Excel row, or record number of a text file, from 1
HEAD_ROWS = 50
MAX_AUTO_HEADER_ROWS = 5

# A totals row starts with one of these words, optionally followed by a colon
# and more text (总计: 5户), once spaces are removed (合 计).
TOTALS = r"(?i)^(合计|小计|总计|总合计|共计|累计合计|total|subtotal|grandtotal)([:：].*)?$"
# A footnote is a row with one filled cell that starts like a note. A row
# with one filled cell after the last row with two or more also counts when
# it reads like a sentence (punctuation, or 15 characters and more).
FOOTNOTE_START = r"(?i)^\s*(注|备注|说明|附注|数据来源|资料来源|制表|填表|打印|审核|note|source)|^\s*[*※]"
SENTENCE = r"[：:。，,；;（）()]|^.{15,}$"


@dataclass(frozen=True)
class Merge:
    """A merged cell range, 1-based and inclusive (rows are raw row numbers)."""

    min_row: int
    min_col: int
    max_row: int
    max_col: int

    def contains(self, row: int, col: int) -> bool:
        return self.min_row <= row <= self.max_row and self.min_col <= col <= self.max_col


@dataclass
class Layout:
    """Header position and column names of a sheet."""

    names: list[str]
    header_levels: list[list[str]]
    title_rows: int
    header_rows: int
    data_start: int  # first raw row number that may hold data
    blank_top_rows: int = 0
    notes: list[str] = field(default_factory=list)


def _filled(value: str | None) -> bool:
    return value is not None and value.strip() != ""


def _clean_header(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\r", " ").replace("\n", " ")).strip()


def _count_filled(cells: list[str | None]) -> int:
    return sum(1 for cell in cells if _filled(cell))


def _auto_header_rows(start: int, merges: list[Merge], available: set[int]) -> int:
    # A header row with a horizontal merge is a group row, so the row below
    # belongs to the header too. A vertical merge starting in a header row
    # extends the header down to where the merge ends.
    rows = 1
    while rows < MAX_AUTO_HEADER_ROWS and start + rows in available:
        last = start + rows - 1
        grows = any(
            (m.min_row == last and m.max_col > m.min_col and m.max_row == last)
            or (m.min_row <= last < m.max_row)
            for m in merges
        )
        if not grows:
            break
        rows += 1
    return rows


def _header_cell(
    cells_by_row: dict[int, list[str | None]],
    row: int,
    col: int,
    merges: list[Merge],
    fill_groups: bool,
    is_last_header_row: bool,
) -> str:
    cells = cells_by_row[row]
    value = cells[col] if col < len(cells) else None
    if _filled(value):
        return _clean_header(str(value))
    for merge in merges:
        if merge.contains(row, col + 1) and merge.min_row in cells_by_row:
            origin = cells_by_row[merge.min_row]
            anchor = origin[merge.min_col - 1] if merge.min_col - 1 < len(origin) else None
            return _clean_header(str(anchor)) if _filled(anchor) else ""
    if fill_groups and not is_last_header_row:
        # Without merge information (CSV), a blank cell in a group row belongs
        # to the nearest group name on its left.
        for left in range(col - 1, -1, -1):
            if _filled(cells[left]):
                return _clean_header(str(cells[left]))
    return ""


def unique_names(names: list[str]) -> list[str]:
    """Make names unique by appending ``_2``, ``_3``, ... to repeats."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        result.append(name if count == 1 else f"{name}_{count}")
    return result


def detect_layout(
    head: list[tuple[int, list[str | None]]],
    width: int,
    header_rows: int | str = "auto",
    merges: list[Merge] | None = None,
    names: list[str] | None = None,
) -> Layout:
    """Find title rows and header rows and build one name per column.

    Parameters
    ----------
    head : list of (row number, cells)
        The first rows of the raw grid, in order, after any ``skip_rows``.
    width : int
        Number of columns of the grid.
    header_rows : int or "auto", default="auto"
        Number of header rows; ``auto`` takes one row, plus the rows below a
        row with merged group cells.
    merges : list of Merge, optional
        Merged cell ranges (Excel only).
    names : list of str, optional
        Column names given by the configuration (fixed-width files); the
        header, if any, is then skipped but not used.

    Returns
    -------
    Layout
        Multi-row headers are flattened by joining the levels with ``_``;
        a vertically merged header cell gives one level.
    """
    merges = merges or []
    position = 0
    blank_top = 0
    titles = 0
    while position < len(head) and _count_filled(head[position][1]) == 0:
        blank_top += 1
        position += 1
    if width > 1:
        while position < len(head):
            filled = _count_filled(head[position][1])
            later_wide = any(_count_filled(cells) >= 2 for _, cells in head[position + 1 :])
            if filled == 0:
                blank_top += 1
            elif filled == 1 and later_wide:
                titles += 1
            else:
                break
            position += 1

    if position < len(head):
        first_row = head[position][0]
    elif head:
        first_row = head[-1][0] + 1
    else:
        first_row = 1
    available = {number for number, _ in head}
    if header_rows == "auto":
        count = 0 if names is not None else _auto_header_rows(first_row, merges, available)
        if names is not None and position < len(head):
            first_cells = [str(cell).strip().lower() for cell in head[position][1][: len(names)] if cell is not None]
            if first_cells == [name.lower() for name in names]:
                count = 1
    else:
        count = int(header_rows)

    if names is not None:
        levels = [[name] for name in names]
        return Layout(list(names), levels, titles, count, first_row + count, blank_top)

    cells_by_row = {number: cells for number, cells in head}
    header_numbers = [first_row + offset for offset in range(count) if first_row + offset in cells_by_row]
    levels: list[list[str]] = []
    for col in range(width):
        column_levels: list[str] = []
        for index, row in enumerate(header_numbers):
            text = _header_cell(
                cells_by_row, row, col, merges, fill_groups=not merges, is_last_header_row=index == len(header_numbers) - 1
            )
            if text and (not column_levels or column_levels[-1] != text):
                column_levels.append(text)
        levels.append(column_levels)
    flat = ["_".join(parts) if parts else f"column_{col + 1}" for col, parts in enumerate(levels)]
    return Layout(unique_names(flat), levels, titles, count, first_row + count, blank_top)


def _trimmed(column: ir.StringValue) -> ir.StringValue:
    return column.strip().nullif("")


KIND = "__row_kind"  # NULL for data rows, else blank, totals or footnotes


def classify_rows(table: ir.Table, columns: list[str], data_start: int, last_wide_row: int | None) -> ir.Table:
    """Add a column :data:`KIND` that marks blank, totals and footnote rows.

    Parameters
    ----------
    table : Table
        Raw grid with the row number column ``__row`` and text columns.
    columns : list of str
        Text columns in sheet order.
    data_start : int
        First raw row number below the header.
    last_wide_row : int or None
        Last row number with two or more filled cells (see :func:`last_wide_row`).

    Returns
    -------
    Table
        ``__row``, the text columns and :data:`KIND`. The filled-cell count
        and the leading text are computed once per row in an inner
        projection, so each condition reads plain columns.
    """
    filled = [_trimmed(table[name]).notnull().cast(dt.int64) for name in columns]
    lead = ibis.coalesce(*[_trimmed(table[name]) for name in columns[:3]]) if columns else ibis.null(dt.string)
    step = table.select(
        ROW,
        *columns,
        __filled=sum(filled[1:], filled[0]) if filled else ibis.literal(0, dt.int64),
        __lead=lead,
        __first=_trimmed(table[columns[0]]) if columns else ibis.null(dt.string),
    ).view()  # view(): keeps Ibis from inlining these columns into every condition

    blank = step.__filled == 0
    totals = step.__lead.re_replace(r"\s", "").re_search(TOTALS).fill_null(False)
    if len(columns) >= 2:
        trailing = step[ROW] > (last_wide_row if last_wide_row is not None else data_start - 1)
        single = (step.__filled == 1) & step.__first.notnull()
        note_like = step.__first.re_search(FOOTNOTE_START) | (trailing & step.__first.re_search(SENTENCE))
        footnote = (single & note_like).fill_null(False)
    else:
        footnote = ibis.literal(False)
    kind = ibis.cases((blank, "blank"), (totals, "totals"), (footnote, "footnotes"), else_=ibis.null(dt.string))
    return step.select(ROW, *columns, **{KIND: kind})


def last_wide_row(table: ir.Table, columns: list[str], data_start: int) -> ir.IntegerScalar:
    """Return an expression for the last row number with at least two filled cells."""
    filled = [_trimmed(table[name]).notnull().cast(dt.int64) for name in columns]
    if len(filled) < 2:
        return ibis.literal(None, dt.int64)
    count = sum(filled[1:], filled[0])
    return table.filter((table[ROW] >= data_start) & (count >= 2))[ROW].max()
