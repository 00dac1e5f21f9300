"""Excel sources: .xlsx through openpyxl, .xls through xlrd.

No package in the environment writes .xls files, so :func:`write_xls` below
builds a minimal BIFF8 workbook in an OLE2 compound file: one sheet of text,
number and date cells plus merged ranges. xlrd reads it like an Excel 97-2003
export (its record layout follows the [MS-XLS] and [MS-CFB] specifications).
"""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import openpyxl
import pytest

from relmap_utils.config import Source
from relmap_utils.engine import connect
from relmap_utils.errors import SourceError
from relmap_utils.ingest import read_source

END_OF_CHAIN = 0xFFFFFFFE
FREE_SECTOR = 0xFFFFFFFF
FAT_SECTOR = 0xFFFFFFFD
NO_STREAM = 0xFFFFFFFF
SECTOR = 512


def _record(opcode: int, data: bytes) -> bytes:
    return struct.pack("<HH", opcode, len(data)) + data


def _unicode(text: str, length_bytes: int) -> bytes:
    length = struct.pack("<H" if length_bytes == 2 else "<B", len(text))
    return length + b"\x01" + text.encode("utf-16-le")  # 0x01: 16-bit characters


def _workbook_stream(sheet_name: str, rows: list[list], merges: list[tuple[int, int, int, int]]) -> bytes:
    font = _record(0x0031, struct.pack("<HHHHHBBBB", 200, 0, 0x7FFF, 400, 0, 0, 0, 0, 0) + _unicode("Arial", 1))

    def xf(number_format: int, style: bool) -> bytes:
        kind = 0xFFF5 if style else 0x0001
        return _record(0x00E0, struct.pack("<HHHBBBBIIH", 0, number_format, kind, 0x20, 0, 0, 0, 0, 0, 0x20C0))

    # XF 0: the default style; XF 1: a General cell; XF 2: a cell with built-in date format 14.
    formats = xf(0, True) + xf(0, False) + xf(14, False)
    cells = b""
    for row_index, row in enumerate(rows):
        for col_index, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, dt.date):
                serial = float((value - dt.date(1899, 12, 30)).days)
                cells += _record(0x0203, struct.pack("<HHHd", row_index, col_index, 2, serial))
            elif isinstance(value, (int, float)):
                cells += _record(0x0203, struct.pack("<HHHd", row_index, col_index, 1, float(value)))
            else:
                cells += _record(0x0204, struct.pack("<HHH", row_index, col_index, 1) + _unicode(str(value), 2))
    width = max(len(row) for row in rows)
    sheet = _record(0x0809, struct.pack("<HHHHII", 0x0600, 0x0010, 0, 0, 0, 0))
    sheet += _record(0x0200, struct.pack("<IIHHH", 0, len(rows), 0, width, 0))
    sheet += cells
    if merges:
        ranges = b"".join(struct.pack("<HHHH", *merge) for merge in merges)
        sheet += _record(0x00E5, struct.pack("<H", len(merges)) + ranges)
    sheet += _record(0x000A, b"")

    start = _record(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0, 0, 0, 0))
    codepage = _record(0x0042, struct.pack("<H", 1200))
    name = _unicode(sheet_name, 1)
    sheet_offset = len(start) + len(codepage) + len(font) + len(formats) + (4 + 6 + len(name)) + 4
    boundsheet = _record(0x0085, struct.pack("<IBB", sheet_offset, 0, 0) + name)
    return start + codepage + font + formats + boundsheet + _record(0x000A, b"") + sheet


def _directory_entry(name: str, kind: int, start: int, size: int, child: int = NO_STREAM) -> bytes:
    encoded = name.encode("utf-16-le") + b"\0\0"
    return (
        encoded.ljust(64, b"\0")
        + struct.pack("<HBB", len(encoded), kind, 1)
        + struct.pack("<III", NO_STREAM, NO_STREAM, child)
        + b"\0" * 36
        + struct.pack("<III", start, size, 0)
    )


def write_xls(path: Path, sheet_name: str, rows: list[list], merges: list[tuple[int, int, int, int]] = ()) -> None:
    """Write a one-sheet .xls file.

    ``merges`` are (first row, last row, first column, last column), 0-based
    and inclusive. Streams shorter than 4096 bytes would go to the mini
    stream, so the workbook stream is padded to at least that size.
    """
    stream = _workbook_stream(sheet_name, rows, list(merges))
    stream = stream.ljust(max(4096, -(-len(stream) // SECTOR) * SECTOR), b"\0")
    sectors = len(stream) // SECTOR
    assert sectors + 2 <= SECTOR // 4, "test workbook too large for one FAT sector"

    directory = _directory_entry("Root Entry", 5, END_OF_CHAIN, 0, child=1)
    directory += _directory_entry("Workbook", 2, 0, len(stream))
    fat = [index + 1 for index in range(sectors - 1)] + [END_OF_CHAIN, END_OF_CHAIN, FAT_SECTOR]
    fat += [FREE_SECTOR] * (SECTOR // 4 - len(fat))
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\0" * 6
        + struct.pack("<IIIIIIIII", 0, 1, sectors, 0, 4096, END_OF_CHAIN, 0, END_OF_CHAIN, 0)
        + struct.pack("<I", sectors + 1)
        + struct.pack("<I", FREE_SECTOR) * 108
    )
    path.write_bytes(header + stream + directory.ljust(SECTOR, b"\0") + struct.pack(f"<{len(fat)}I", *fat))


REPORT_ROWS = [
    ["示例银行 客户存款明细（2023年12月末）", None, None, None, None],
    ["客户信息", None, "存款（万元）", None, "开户日期"],
    ["客户号", "客户名称", "活期", "定期", None],
    ["000321", "张三", 1.5, 20, dt.date(2019, 3, 15)],
    ["000322", "李四", 0.32, 0, dt.date(2020, 11, 2)],
    ["小计", None, 1.82, 20, None],
    ["000415", "某某商贸有限公司", 88, 150, dt.date(2018, 7, 21)],
    ["总计：3户", None, 89.82, 170, None],
    ["注：金额单位为万元。", None, None, None, None],
]
REPORT_MERGES = [(0, 0, 0, 4), (1, 1, 0, 1), (1, 1, 2, 3), (1, 2, 4, 4)]
EXPECTED_LEVELS = [["客户信息", "客户号"], ["客户信息", "客户名称"], ["存款（万元）", "活期"], ["存款（万元）", "定期"], ["开户日期"]]
EXPECTED_ROWS = [
    ("000321", "张三", 15000.0, 200000.0, dt.date(2019, 3, 15)),
    ("000322", "李四", 3200.0, 0.0, dt.date(2020, 11, 2)),
    ("000415", "某某商贸有限公司", 880000.0, 1500000.0, dt.date(2018, 7, 21)),
]


@pytest.fixture
def backend():
    con = connect()
    yield con
    con.disconnect()


def _write_xlsx(path: Path, rows: list[list], merges: list[tuple[int, int, int, int]], sheet: str = "明细") -> None:
    workbook = openpyxl.Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    for row in rows:
        worksheet.append(row)
    for first_row, last_row, first_col, last_col in merges:
        worksheet.merge_cells(start_row=first_row + 1, end_row=last_row + 1, start_column=first_col + 1, end_column=last_col + 1)
    workbook.create_sheet("说明")
    workbook.save(path)


def _read(path: Path, backend, **options):
    return read_source(Source(name="xl", path=str(path), **options), path.parent, backend)


def _tuples(result) -> list[tuple]:
    return [tuple(row.values()) for row in result.table.to_pyarrow().to_pylist()]


@pytest.mark.parametrize("suffix", [".xlsx", ".xls"])
def test_report_sheet_layout(tmp_path, backend, suffix):
    path = tmp_path / f"report{suffix}"
    if suffix == ".xls":
        write_xls(path, "明细", REPORT_ROWS, REPORT_MERGES)
    else:
        _write_xlsx(path, REPORT_ROWS, REPORT_MERGES)

    result = _read(path, backend, sheet="明细")

    assert result.info["header_levels"] == EXPECTED_LEVELS
    assert result.info["header_rows"] == 2
    assert result.info["excluded_rows"] == {"title": 1, "totals": 2, "footnotes": 1, "blank": 0}
    assert result.column_types["客户信息_客户号"] == "id"
    assert result.column_types["开户日期"] == "date"
    assert result.column_types["存款（万元）_活期"] == "amount"
    assert _tuples(result) == EXPECTED_ROWS


def test_sheet_by_index_and_missing_sheet(tmp_path, backend):
    path = tmp_path / "report.xlsx"
    _write_xlsx(path, REPORT_ROWS, REPORT_MERGES)

    assert _read(path, backend, sheet=0).info["sheet"] == "明细"
    with pytest.raises(SourceError, match=r"没有工作表 汇总.*明细, 说明"):
        _read(path, backend, sheet="汇总")


def test_serial_dates_errors_and_datetimes(tmp_path, backend):
    path = tmp_path / "cells.xlsx"
    rows = [
        ["客户号", "开户日期", "交易时间", "余额"],
        ["0001", 43539, dt.datetime(2023, 1, 5, 14, 30), 100],
        ["0002", 44137, dt.datetime(2023, 1, 6), "#N/A"],
    ]
    _write_xlsx(path, rows, [])

    result = _read(path, backend)

    assert result.column_types["开户日期"] == "date"
    assert result.column_types["交易时间"] == "datetime"
    assert _tuples(result) == [
        ("0001", dt.date(2019, 3, 15), dt.datetime(2023, 1, 5, 14, 30), 100.0),
        ("0002", dt.date(2020, 11, 2), dt.datetime(2023, 1, 6), None),
    ]
    assert result.info["missing_markers_replaced"] == {"(Excel error values)": 1}


def test_ids_typed_as_numbers_in_excel(tmp_path, backend):
    # A card number stored in Excel as a number has already lost digits
    # (Excel keeps 15 significant digits); one stored as text is exact.
    path = tmp_path / "cards.xlsx"
    _write_xlsx(path, [["客户号", "银行卡号"], ["C1", 6200000000000000018], ["C2", "6200000000000000018"]], [])

    result = _read(path, backend)

    assert result.column_types["银行卡号"] == "id"
    assert result.info["damaged_identifier_columns"] == {"银行卡号": 1}
    assert _tuples(result)[1] == ("C2", "6200000000000000018")


def test_damaged_workbook(tmp_path, backend):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")

    with pytest.raises(SourceError, match=r"broken\.xlsx.*无法打开"):
        _read(path, backend)
