"""Dates, amounts and numbers as Ibis expressions; type guessing and declared roles."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import pytest

from relmap_utils.config import Source
from relmap_utils.engine import connect
from relmap_utils.errors import SourceError
from relmap_utils.ingest import parsing, read_source
from relmap_utils.ingest.source import value_shape


@pytest.fixture(scope="module")
def backend():
    con = connect()
    yield con
    con.disconnect()


def _evaluate(backend, values: list[str | None], build) -> list:
    table = ibis.memtable({"v": values}, schema={"v": "string"})
    return backend.execute(table.select(out=build(table.v)))["out"].tolist()


def _none(values: list) -> list:
    return [None if value is None or value != value else value for value in values]


DATE_CASES = [
    ("2023-01-05", dt.datetime(2023, 1, 5)),
    ("2023年1月5日", dt.datetime(2023, 1, 5)),
    ("2023年01月05日", dt.datetime(2023, 1, 5)),
    ("2023年1月5日 14:30", dt.datetime(2023, 1, 5, 14, 30)),
    ("2023/1/5", dt.datetime(2023, 1, 5)),
    ("2023.1.5", dt.datetime(2023, 1, 5)),
    ("2023-01-05 09:05:30", dt.datetime(2023, 1, 5, 9, 5, 30)),
    ("2023-01-05T09:05", dt.datetime(2023, 1, 5, 9, 5)),
    ("20230105", dt.datetime(2023, 1, 5)),
    ("20230105.0", dt.datetime(2023, 1, 5)),
    ("20230105143000", dt.datetime(2023, 1, 5, 14, 30)),
    ("2023-02-30", None),
    ("20231301", None),
    ("05/01/2023", None),  # day-first or month-first: ambiguous, needs a format
    ("0023-01-05", None),
    ("abc", None),
    (None, None),
]


@pytest.mark.parametrize(("text", "expected"), DATE_CASES, ids=[str(case[0]) for case in DATE_CASES])
def test_parse_timestamp(backend, text, expected):
    result = _none(_evaluate(backend, [text], parsing.parse_timestamp))

    assert result == [expected]


def test_configured_formats_come_first(backend):
    values = ["930705", "981231", "931107 00:00:00", "20230105"]

    result = _evaluate(backend, values, lambda v: parsing.parse_timestamp(v, ["%y%m%d", "%y%m%d %H:%M:%S"]))

    assert list(result) == [dt.datetime(1993, 7, 5), dt.datetime(1998, 12, 31), dt.datetime(1993, 11, 7), dt.datetime(2023, 1, 5)]


def test_excel_serial_only_when_allowed(backend):
    with_serial = _evaluate(backend, ["43539", "43539.5"], lambda v: parsing.parse_timestamp(v, (), True))
    without = _none(_evaluate(backend, ["43539"], parsing.parse_timestamp))

    assert list(with_serial) == [dt.datetime(2019, 3, 15), dt.datetime(2019, 3, 15, 12, 0)]
    assert without == [None]


AMOUNT_CASES = [
    ("1,234.50", 1234.5),
    ("1，234.50", 1234.5),
    ("¥1,000", 1000.0),
    ("￥-500", -500.0),
    ("(1,234.50)", -1234.5),
    ("（200）", -200.0),
    ("1,234.50-", -1234.5),
    ("1.5万", 15000.0),
    ("2亿元", 2e8),
    ("3.2万元", 32000.0),
    ("100元", 100.0),
    ("RMB 88", 88.0),
    ("-0.5", -0.5),
    ("abc", None),
    ("1.2.3", None),
    ("1,234,567.8", 1234567.8),
    ("+5", 5.0),
    ("1,2,3", None),
    ("12,3456", None),
    ("--5", None),
    ("-(5)", None),
    ("5-5", None),
    ("5万万", None),
    ("5万亿", None),
]


@pytest.mark.parametrize(("text", "expected"), AMOUNT_CASES, ids=[case[0] for case in AMOUNT_CASES])
def test_parse_amount(backend, text, expected):
    assert _none(_evaluate(backend, [text], parsing.parse_amount)) == [expected]


def test_parse_amount_unit(backend):
    assert _evaluate(backend, ["1.5", "(2)"], lambda v: parsing.parse_amount(v, 10000.0)) == [15000.0, -20000.0]


@pytest.mark.parametrize(
    ("header", "unit"),
    [("余额（万元）", 1e4), ("金额(亿元)", 1e8), ("存款（元）_活期", 1.0), ("收入（千元）", 1e3), ("余额（万）", 1e4), ("余额", 1.0)],
)
def test_header_unit(header, unit):
    assert parsing.header_unit(header) == unit


def test_parse_integer_and_number(backend):
    assert _none(_evaluate(backend, ["1,234", "20230105.0", "-7", "1.5", ""], parsing.parse_integer)) == [
        1234,
        20230105,
        -7,
        None,
        None,
    ]
    assert _none(_evaluate(backend, ["1,234.5", "12.5%", "1e3", "x"], parsing.parse_number)) == [1234.5, 12.5, 1000.0, None]


def test_parse_boolean(backend):
    values = ["是", "否", "Y", "no", "TRUE", "1", "0", "maybe"]

    assert _none(_evaluate(backend, values, parsing.parse_boolean)) == [True, False, True, False, True, True, False, None]


def test_value_shape_hides_the_value():
    assert value_shape("930705") == "999999"
    assert value_shape("2023年1月5日") == "9999年9月9日"
    assert value_shape("张三 abc") == "字字 AAA"


def _read(tmp_path: Path, backend, text: str, **options):
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    return read_source(Source(name="src", path=str(path), **options), tmp_path, backend)


GUESS_TEXT = (
    "客户号,age,余额,rate,开户日期,flag,segment,remark,code\n"
    "1001,30,100,0.5,2023-01-05,是,A,first visit to branch,X-1\n"
    "1002,41,200,1.5,2023-02-05,否,A,called about mortgage,X-2\n"
    "1003,52,300,2.5,2023-03-05,是,B,no comment,X-3\n"
    "1004,63,400,3.5,2023-04-05,否,A,moved to another city,X-4\n"
)


def test_type_guessing(tmp_path, backend):
    result = _read(tmp_path, backend, GUESS_TEXT)

    assert result.column_types == {
        "客户号": "id",
        "age": "integer",
        "余额": "amount",
        "rate": "number",
        "开户日期": "date",
        "flag": "boolean",
        "segment": "category",
        "remark": "text",
        "code": "id",
    }
    assert result.info["columns_guessed"] == list(result.column_types)
    assert result.info["columns_declared"] == []


def test_declared_roles_override_guesses(tmp_path, backend):
    columns = {
        "客户号": {"name": "客户号", "role": "integer"},
        "age": {"name": "age", "role": "category"},
        "rate": {"name": "rate", "role": "amount", "unit": 10000},
    }

    result = _read(tmp_path, backend, GUESS_TEXT, columns=columns)

    assert result.column_types["客户号"] == "integer"
    assert result.column_types["age"] == "category"
    assert result.table["rate"].to_pyarrow().to_pylist() == [5000.0, 15000.0, 25000.0, 35000.0]
    assert result.info["columns_declared"] == ["客户号", "age", "rate"]
    assert result.roles["rate"] == "amount"


def test_mapping_renames_and_schema_types(tmp_path, backend):
    text = "客户号,开户日期,出生日期\n001,20230105,19900101\n002,20230106,19851231\n"
    columns = {"客户号": "customer_id", "开户日期": "open_date", "出生日期": "birth_date"}

    result = _read(tmp_path, backend, text, columns=columns, table="customers")

    assert list(result.table.columns) == ["customer_id", "open_date", "birth_date"]
    assert result.column_types == {"customer_id": "id", "open_date": "date", "birth_date": "date"}
    assert result.source_columns["open_date"] == "开户日期"
    assert result.table["birth_date"].to_pyarrow().to_pylist() == [dt.date(1990, 1, 1), dt.date(1985, 12, 31)]


def test_czech_yymmdd_dates_from_config(tmp_path, backend):
    text = '"loan_id";"date";"amount"\n5314;930705;96396\n5316;930711;165960\n'

    guessed = _read(tmp_path, backend, text, date_formats=["%y%m%d"])
    declared = _read(tmp_path, backend, text, columns={"date": {"name": "granted", "role": "date", "date_format": "%y%m%d"}})

    assert guessed.column_types["date"] == "date"
    assert guessed.table["date"].to_pyarrow().to_pylist() == [dt.date(1993, 7, 5), dt.date(1993, 7, 11)]
    assert declared.table["granted"].to_pyarrow().to_pylist() == [dt.date(1993, 7, 5), dt.date(1993, 7, 11)]
    assert guessed.column_types["amount"] == "amount"


def test_missing_markers_counted_per_column(tmp_path, backend):
    text = 'k_symbol;district;n\n"SIPO";"?";1\n" ";"3";2\n"UVER";"NULL";unknown\n"未知";"4";4\n'

    result = _read(tmp_path, backend, text, missing_values=["?", " ", "NULL", "unknown", "未知"])

    assert result.info["missing_markers_replaced"] == {"k_symbol": 2, "district": 2, "n": 1}
    assert result.table["k_symbol"].to_pyarrow().to_pylist() == ["SIPO", None, "UVER", None]
    assert result.column_types["n"] == "integer"


def test_values_recoded_before_typing(tmp_path, backend):
    text = "loan_id,status\n1,A\n2,B\n3,D\n"
    columns = {"status": {"name": "status", "values": {"A": "ok", "B": "default", "D": "default"}}}

    result = _read(tmp_path, backend, text, columns=columns)

    assert result.table["status"].to_pyarrow().to_pylist() == ["ok", "default", "default"]


def test_constants_typed_by_schema(tmp_path, backend):
    text = "账号,客户号\nA1,C1\n"
    columns = {"账号": "account_id", "客户号": "customer_id"}

    result = _read(tmp_path, backend, text, columns=columns, table="accounts", constants={"product_family": "loan"})

    assert result.column_types["product_family"] == "category"
    assert result.table["product_family"].to_pyarrow().to_pylist() == ["loan"]
    assert result.source_columns["product_family"] is None


def test_declared_type_that_does_not_fit_stops(tmp_path, backend):
    text = "id,opened\n1,930705\n2,930711\n3,2023-01-05\n"

    with pytest.raises(SourceError, match=r"opened.*date.*3 个非空值中有 2 个.*第 2 行.*999999.*date_format"):
        _read(tmp_path, backend, text, columns={"opened": {"name": "opened", "role": "date"}})


def test_declared_date_few_unparsed(tmp_path, backend):
    # One failure in 21 values stays under the 5 % that stops ingest.
    good = "".join(f"{number},2023-01-{number:02d}\n" for number in range(1, 21))
    text = "id,opened\n" + good + "21,someday\n"

    result = _read(tmp_path, backend, text, columns={"opened": {"name": "opened", "role": "date"}})

    assert result.info["unparsed_values"] == {"opened": 1}
    assert result.table["opened"].to_pyarrow().to_pylist()[20] is None


def test_mapped_column_absent_lists_available(tmp_path, backend):
    with pytest.raises(SourceError, match=r"客户编码.*文件中的列：客户号, age"):
        _read(tmp_path, backend, GUESS_TEXT, columns={"客户编码": "customer_id"})


def test_two_columns_mapped_to_one_name(tmp_path, backend):
    with pytest.raises(SourceError, match=r"两列都对应 age"):
        _read(tmp_path, backend, GUESS_TEXT, columns={"客户号": "age"})


def test_keep_unmapped_off(tmp_path, backend):
    result = _read(tmp_path, backend, GUESS_TEXT, columns={"客户号": "customer_id"}, keep_unmapped=False)

    assert list(result.table.columns) == ["customer_id"]


def test_guess_checked_against_rows_outside_sample(tmp_path, backend, monkeypatch):
    from relmap_utils.ingest import source as source_module

    monkeypatch.setattr(source_module, "PROFILE_SAMPLE_ROWS", 2)
    text = "id,score\n1,10\n2,20\n3,pending\n"

    result = _read(tmp_path, backend, text)

    assert result.column_types["score"] == "text"
    assert result.table["score"].to_pyarrow().to_pylist() == ["10", "20", "pending"]
    assert result.info["unparsed_values"] == {}
