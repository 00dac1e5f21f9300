"""Hard loading cases (IDs, encodings, zero-padded codes, Chinese dates, Excel headers).

Each case folder contains an input, a README and expected.json. Every case runs
through the public API (:func:`relmap_utils.ingest.read_source`) on the file
as published and on variants that keep its point: other encodings, other
separators, another blank or placeholder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import ibis
import openpyxl
import pytest

from relmap_utils.config import Source
from relmap_utils.engine import connect
from relmap_utils.ingest import read_source


@pytest.fixture
def backend():
    con = connect()
    yield con
    con.disconnect()


def _expected(cases: Path, case: str) -> dict:
    return json.loads((cases / case / "expected.json").read_text(encoding="utf-8"))["expected"]


def _rewrite(text: str, target: Path, encoding: str, separator: str = ",", bom: bytes = b"") -> Path:
    # The case files quote no field, so the separator can be swapped textually.
    body = text.replace(",", separator) if separator != "," else text
    target.write_bytes(bom + body.encode(encoding))
    return target


def _read(path: Path, backend, **options):
    source = Source(name="case", path=str(path), **options)
    return read_source(source, path.parent, backend)


def _column(result, name: str) -> list:
    return result.table[name].to_pyarrow().to_pylist()


# ids: how the case file is re-saved before reading
VARIANTS = {
    "as-published": None,
    "gbk": ("gbk", ","),
    "gb18030": ("gb18030", ","),
    "utf8-bom": ("utf-8-sig", ","),
    "utf16-tab": ("utf-16", "\t"),
    "semicolon": ("utf-8", ";"),
    "pipe-gbk": ("gbk", "|"),
}


def _variant(cases: Path, case: str, filename: str, source_encoding: str, variant: str, tmp_path: Path) -> Path:
    original = cases / case / filename
    if VARIANTS[variant] is None:
        return original
    encoding, separator = VARIANTS[variant]
    text = original.read_bytes().decode(source_encoding)
    return _rewrite(text, tmp_path / filename, encoding, separator)


@pytest.mark.realdata
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_b01_ids_stay_exact_text(cases, tmp_path, backend, variant):
    expected = _expected(cases, "B01")
    path = _variant(cases, "B01", "customers_ids.csv", "utf-8", variant, tmp_path)

    result = _read(path, backend)

    assert result.info["rows"] == expected["n_rows"]
    for column in expected["column_types"]:
        assert result.column_types[column] == "id"
        assert result.table[column].type().is_string()
    assert _column(result, "证件号码") == expected["证件号码"]
    assert _column(result, "银行卡号") == expected["银行卡号"]
    assert result.info["damaged_identifier_columns"] == {}


@pytest.mark.realdata
def test_b01_blank_card_as_marker_or_quoted(cases, tmp_path, backend):
    text = (cases / "B01" / "customers_ids.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    lines[2] = lines[2].rstrip(",") + ",NULL"
    marked = tmp_path / "marked.csv"
    marked.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = _read(marked, backend, missing_values=["NULL"])

    assert _column(result, "银行卡号")[1] is None
    assert result.info["missing_markers_replaced"] == {"银行卡号": 1}
    assert result.column_types["银行卡号"] == "id"


@pytest.mark.realdata
def test_b01_card_numbers_in_scientific_notation_are_reported(cases, tmp_path, backend):
    damaged = tmp_path / "damaged.csv"
    damaged.write_text(
        "客户号,银行卡号\nC1,6.2E+18\nC2,6.20000000000000E+18\nC3,\n",
        encoding="utf-8",
    )

    result = _read(damaged, backend)

    assert result.column_types["银行卡号"] == "id"
    assert result.info["damaged_identifier_columns"] == {"银行卡号": 2}
    assert _column(result, "银行卡号") == ["6.2E+18", "6.20000000000000E+18", None]


@pytest.mark.realdata
@pytest.mark.parametrize("variant", ["as-published", "gb18030", "utf16-tab", "utf8-bom", "pipe-gbk"])
def test_b02_gbk_export_detected(cases, tmp_path, backend, variant):
    expected = _expected(cases, "B02")
    path = _variant(cases, "B02", "accounts_gbk.csv", "gbk", variant, tmp_path)

    result = _read(path, backend)

    allowed = set(expected["encoding_detected_one_of"])
    if variant == "as-published":
        assert result.info["encoding"] in allowed
    assert list(result.table.columns) == expected["columns"]
    assert result.info["rows"] == expected["n_rows"]
    assert _column(result, "客户编号") == expected["客户编号"]
    total = result.table["账户余额"].sum().execute()
    assert math.isclose(total, expected["sum_账户余额"], abs_tol=0.005)
    rows = result.table.filter(result.table["客户编号"] == "K003").to_pyarrow().to_pylist()
    assert rows[0]["所属支行"] == expected["所属支行_of_K003"]
    assert rows[0]["客户姓名"] == expected["客户姓名_of_K003"]
    assert all(not value.endswith("\r") for value in _column(result, "客户类型"))


@pytest.mark.realdata
def test_b02_encoding_reported_per_variant(cases, tmp_path, backend):
    text = (cases / "B02" / "accounts_gbk.csv").read_bytes().decode("gbk")
    # 㐀 (U+3400) has no GBK code, so this file is GB18030 and not GBK.
    gb18030_only = _rewrite(text.replace("张三", "张㐀"), tmp_path / "gb18030.csv", "gb18030")
    utf16 = _rewrite(text, tmp_path / "utf16.csv", "utf-16", "\t")

    assert _read(cases / "B02" / "accounts_gbk.csv", backend).info["encoding"] == "gbk"
    assert _read(gb18030_only, backend).info["encoding"] == "gb18030"
    assert _column(_read(gb18030_only, backend), "客户姓名")[0] == "张㐀"
    assert _read(utf16, backend).info["encoding"] == "utf-16"
    assert _read(utf16, backend).info["separator"] == "tab"


@pytest.mark.realdata
@pytest.mark.parametrize("variant", ["as-published", "semicolon", "gbk", "utf16-tab"])
def test_b04_leading_zeros_kept(cases, tmp_path, backend, variant):
    expected = _expected(cases, "B04")
    path = _variant(cases, "B04", "customer_codes.csv", "utf-8", variant, tmp_path)

    result = _read(path, backend)

    for column, values in expected["values"].items():
        assert result.column_types[column] == "id", column
        assert _column(result, column) == values, column
    assert result.table["客户号"].nunique().execute() == expected["distinct_客户号"]
    assert result.table["产品代码"].nunique().execute() == expected["distinct_产品代码"]

    branches = ibis.memtable({"网点号": ["0101", "0203"], "网点名称": ["一号", "二号"]})
    joined = result.table.join(branches, "网点号")
    assert joined.count().execute() == 3


@pytest.mark.realdata
@pytest.mark.parametrize("variant", ["as-published", "gbk", "utf16-tab", "semicolon"])
def test_b06_chinese_dates(cases, tmp_path, backend, variant):
    expected = _expected(cases, "B06")
    path = _variant(cases, "B06", "transactions_dates.csv", "utf-8", variant, tmp_path)

    result = _read(path, backend)

    for column, kind in expected["column_types"].items():
        assert result.column_types[column] == kind, column
    times = [value.isoformat() for value in _column(result, "交易日期")]
    assert times == expected["交易日期"]
    for column in ("记账日期", "到期日"):
        values = [value.isoformat() if value is not None else None for value in _column(result, column)]
        assert values == expected[column], column


@pytest.mark.realdata
def test_b06_float_export_and_placeholder(cases, tmp_path, backend):
    # The same dates after a round trip through a float column (20230105.0)
    # and with the blank written as a placeholder.
    text = (cases / "B06" / "transactions_dates.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    rows = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        cells[2] = f"{cells[2]}.0" if cells[2] else "未知"
        rows.append(",".join(cells))
    path = tmp_path / "floats.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    result = _read(path, backend, missing_values=["未知"])

    values = [value.isoformat() if value is not None else None for value in _column(result, "记账日期")]
    assert values == _expected(cases, "B06")["记账日期"]
    assert result.column_types["记账日期"] == "date"


def _assert_b08(result, expected: dict) -> None:
    assert result.info["header_levels"] == expected["header_levels"]
    assert result.info["rows"] == expected["n_data_rows"]
    id_column = "客户信息_客户号"
    assert result.column_types[id_column] == "id"
    assert _column(result, id_column) == expected["客户号"]
    assert math.isclose(result.table["存款（元）_活期"].sum().execute(), expected["sum_存款_活期"], abs_tol=0.005)
    assert math.isclose(result.table["贷款（元）_余额"].sum().execute(), expected["sum_贷款_余额"], abs_tol=0.005)
    assert not any(name.startswith("Unnamed") or "明细（" in name for name in result.table.columns)


@pytest.mark.realdata
def test_b08_excel_report_layout(cases, backend):
    expected = _expected(cases, "B08")

    result = _read(cases / "B08" / "asset_liability_export.xlsx", backend, sheet="明细")

    _assert_b08(result, expected)
    excluded = result.info["excluded_rows"]
    assert excluded["title"] == expected["excluded_rows"]["title"]
    assert excluded["totals"] == expected["excluded_rows"]["totals_row_合计"]
    assert excluded["footnotes"] == expected["excluded_rows"]["footnote"]


@pytest.mark.realdata
@pytest.mark.parametrize("totals_label", ["小计", "总计：", "合 计"])
def test_b08_other_totals_and_footnote_words(cases, tmp_path, backend, totals_label):
    expected = _expected(cases, "B08")
    workbook = openpyxl.load_workbook(cases / "B08" / "asset_liability_export.xlsx")
    sheet = workbook["明细"]
    for row in sheet.iter_rows():
        if row[0].value == "合计":
            row[0].value = totals_label
        elif isinstance(row[0].value, str) and row[0].value.startswith("注："):
            row[0].value = "说明：金额单位为元，数据截至2023年末。"
    path = tmp_path / "variant.xlsx"
    workbook.save(path)

    result = _read(path, backend)

    _assert_b08(result, expected)
    assert result.info["excluded_rows"]["totals"] == 1
    assert result.info["excluded_rows"]["footnotes"] == 1
