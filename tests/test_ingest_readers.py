"""Delimited and fixed-width text: separators, headers, report rows, malformed lines."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest

from relmap_utils.config import Source
from relmap_utils.engine import connect
from relmap_utils.errors import SourceError
from relmap_utils.ingest import read_source
from relmap_utils.ingest.readers import sniff_separator


@pytest.fixture
def backend():
    con = connect()
    yield con
    con.disconnect()


def _read(path: Path, backend, **options):
    return read_source(Source(name="src", path=str(path), **options), path.parent, backend)


def _rows(result) -> list[dict]:
    return result.table.to_pyarrow().to_pylist()


@pytest.mark.parametrize(
    ("text", "separator", "fields"),
    [
        ("a,b,c\n1,2,3\n", ",", 3),
        ("a;b;c\n1,5;2,5;3\n", ";", 3),
        ("a\tb c\td\n1\t2 3\t4\n", "\t", 3),
        ("a|b\n1|2\n", "|", 2),
        (" customer_id  date number_of_cds\r\n 00001 19970101  1\r\n", "spaces", 3),
        ('a,b\n"x, y",2\n"q",3\n', ",", 2),
        ("title only\na,b,c\n1,2,3\n4,5,6\n", ",", 3),
        ("one column\nx\ny\n", ",", 1),
    ],
    ids=["comma", "semicolon-decimal-comma", "tab-with-spaces", "pipe", "cdnow-spaces", "quoted", "title", "single"],
)
def test_sniff_separator(text, separator, fields):
    assert sniff_separator(text) == (separator, fields)


def test_cdnow_style_runs_of_spaces(tmp_path, backend):
    path = tmp_path / "cdnow.txt"
    path.write_bytes(
        b" customer_id  date number_of_cds  dollar_value\r\n"
        b" 00001 19970101  1   11.77\r\n"
        b" 00002 19970112  1   12.00\r\n"
        b" 00002 19970112  5   77.00\r\n"
    )

    result = _read(path, backend)

    assert result.info["separator"] == "spaces"
    assert result.column_types == {
        "customer_id": "id",
        "date": "date",
        "number_of_cds": "integer",
        "dollar_value": "number",
    }
    rows = _rows(result)
    assert rows[0] == {
        "customer_id": "00001",
        "date": dt.date(1997, 1, 1),
        "number_of_cds": 1,
        "dollar_value": 11.77,
    }
    assert len(rows) == 3


def test_gzip_csv_read_without_transcoding(tmp_path, backend):
    path = tmp_path / "bank.csv.gz"
    path.write_bytes(gzip.compress(b'"age";"job"\n30;"unknown"\n41;"admin."\n'))

    result = _read(path, backend, missing_values=["unknown"])

    assert result.info["separator"] == ";"
    assert _rows(result) == [{"age": 30, "job": None}, {"age": 41, "job": "admin."}]
    assert result.info["missing_markers_replaced"] == {"job": 1}


def test_configured_separator_names(tmp_path, backend):
    path = tmp_path / "tab.txt"
    path.write_text("a\tb\n1\t2\n", encoding="utf-8")

    assert _read(path, backend, separator="tab").info["separator"] == "tab"
    assert _read(path, backend, separator="\t").info["separator"] == "tab"


def test_fixed_width_by_character_positions(tmp_path, backend):
    path = tmp_path / "fixed.txt"
    path.write_bytes("客户号  姓名    余额\n000123张三    1500.50\n004560李四四  -20.00\n".encode("gbk"))
    spec = [
        {"name": "客户号", "start": 1, "width": 6},
        {"name": "姓名", "start": 7, "width": 4},
        {"name": "余额", "start": 11, "width": 10},
    ]

    result = _read(path, backend, format="fixed_width", fixed_width=spec, header_rows=1)

    assert result.info["encoding"] == "gbk"
    assert _rows(result) == [
        {"客户号": "000123", "姓名": "张三", "余额": 1500.5},
        {"客户号": "004560", "姓名": "李四四", "余额": -20.0},
    ]


def test_fixed_width_header_found_by_names(tmp_path, backend):
    path = tmp_path / "fixed.txt"
    path.write_text("id   n\n00001 7\n00002 8\n", encoding="utf-8")
    spec = [{"name": "id", "start": 1, "width": 5}, {"name": "n", "start": 6, "width": 2}]

    with_header = _read(path, backend, fixed_width=spec)
    path.write_text("00001 7\n00002 8\n", encoding="utf-8")
    without_header = _read(path, backend, fixed_width=spec)

    assert with_header.info["header_rows"] == 1
    assert without_header.info["header_rows"] == 0
    assert _rows(with_header) == _rows(without_header) == [{"id": "00001", "n": 7}, {"id": "00002", "n": 8}]


def test_csv_title_totals_and_footnote_rows(tmp_path, backend):
    path = tmp_path / "report.csv"
    path.write_text(
        "示例银行 2023年12月 账户余额表\n"
        "\n"
        "账号,客户类型,余额（万元）\n"
        "0001,个人,1.5\n"
        "0002,对公,\"2,000\"\n"
        "小计,,\"2,001.5\"\n"
        "0003,个人,(0.5)\n"
        "总计：3户,,\"2,001\"\n"
        "注：余额单位为万元，数据截至2023年12月31日。\n",
        encoding="gbk",
    )

    result = _read(path, backend)

    assert result.info["excluded_rows"] == {"title": 1, "totals": 2, "footnotes": 1, "blank": 0}
    assert result.info["rows_read"] == 6
    assert result.column_types["余额（万元）"] == "amount"
    assert _rows(result) == [
        {"账号": "0001", "客户类型": "个人", "余额（万元）": 15000.0},
        {"账号": "0002", "客户类型": "对公", "余额（万元）": 20_000_000.0},
        {"账号": "0003", "客户类型": "个人", "余额（万元）": -5000.0},
    ]


def test_data_row_with_one_filled_cell_is_kept(tmp_path, backend):
    path = tmp_path / "sparse.csv"
    path.write_text("客户号,备注\nC1,a\nC2,\n", encoding="utf-8")

    result = _read(path, backend)

    assert result.info["excluded_rows"]["footnotes"] == 0
    assert [row["客户号"] for row in _rows(result)] == ["C1", "C2"]


def test_two_header_rows_in_csv(tmp_path, backend):
    path = tmp_path / "grouped.csv"
    path.write_text("客户信息,,存款（万元）,\n客户号,姓名,活期,定期\n001,张三,1,2\n", encoding="utf-8")

    result = _read(path, backend, header_rows=2)

    assert list(result.table.columns) == ["客户信息_客户号", "客户信息_姓名", "存款（万元）_活期", "存款（万元）_定期"]
    assert _rows(result)[0]["存款（万元）_定期"] == 20000.0


def test_skip_rows_before_header(tmp_path, backend):
    path = tmp_path / "skip.csv"
    path.write_text("导出时间,2024-01-01,系统A\na,b,c\n1,2,3\n", encoding="utf-8")

    result = _read(path, backend, skip_rows=1)

    assert list(result.table.columns) == ["a", "b", "c"]
    assert result.info["rows"] == 1


def test_line_with_extra_field_names_the_line(tmp_path, backend):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n" * 3 + "3,4\n" * 300 + "5,6,7\n", encoding="utf-8")

    with pytest.raises(SourceError, match=r"ragged\.csv 第 307 行有 3 个字段.*2 个"):
        _read(path, backend)


def test_error_message_has_no_cell_values(tmp_path, backend):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n" + "1,2\n" * 300 + "张三,990000199001011239,x\n", encoding="utf-8")

    with pytest.raises(SourceError) as caught:
        _read(path, backend)

    assert "990000199001011239" not in str(caught.value)
    assert "张三" not in str(caught.value)


def test_missing_file(tmp_path, backend):
    with pytest.raises(SourceError, match=r"src.*nowhere\.csv"):
        _read(tmp_path / "nowhere.csv", backend)


def test_english_messages(tmp_path, backend, monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")

    with pytest.raises(SourceError, match=r"File .*nowhere\.csv of source src not found"):
        _read(tmp_path / "nowhere.csv", backend)
