"""NaN and infinities in number columns: ingest stores NULL and reports them, profiling counts them."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import openpyxl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from relmap_utils.context import INGEST_STAGE, RunContext
from relmap_utils.features import run_stage
from relmap_utils.ingest import run_ingest
from relmap_utils.profiling.profiler import profile_table, profile_tables
from relmap_utils.profiling.report import columns_table

CUSTOMERS = "客户号,性别\nc1,男\nc2,女\nc3,女\n"
# Two NaN spellings, two infinities and one ordinary missing value among amounts 10, 20 and 30.
TRANSACTIONS_CSV = (
    "流水号,客户号,交易时间,金额,余额\n"
    "t1,c1,2024-01-05 10:00:00,10,100\n"
    "t2,c1,2024-01-06 10:00:00,NaN,nan\n"
    "t3,c2,2024-02-01 09:30:00,inf,200\n"
    "t4,c2,2024-02-02 09:30:00,20,-Infinity\n"
    "t5,c3,2024-03-01 08:00:00,30,\n"
)
TRANSACTION_COLUMNS = {
    "流水号": "txn_id",
    "客户号": "customer_id",
    "交易时间": "txn_time",
    "金额": "amount",
    "余额": "balance_after",
}


def _engagement(tmp_path: Path, sources: list[dict], files: dict[str, str]) -> RunContext:
    engagement_dir = tmp_path / "eng"
    data = engagement_dir / "data"
    data.mkdir(parents=True)
    for name, text in files.items():
        (data / name).write_text(text, encoding="utf-8")
    config = {"name": "test", "client": "示例银行", "sources": sources}
    run_dir = engagement_dir / "runs" / "r1"
    run_dir.mkdir(parents=True)
    for folder in (run_dir, engagement_dir):
        (folder / "engagement.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return RunContext.open(run_dir)


def _customer_source() -> dict:
    return {"name": "cust", "path": "data/customers.csv", "table": "customers",
            "columns": {"客户号": "customer_id", "性别": "gender"}}


def _parquet_transactions(path: Path) -> None:
    table = pa.table({
        "流水号": ["t1", "t2", "t3", "t4", "t5"],
        "客户号": ["c1", "c1", "c2", "c2", "c3"],
        "交易时间": pa.array(["2024-01-05 10:00:00", "2024-01-06 10:00:00", "2024-02-01 09:30:00",
                           "2024-02-02 09:30:00", "2024-03-01 08:00:00"]).cast(pa.timestamp("s")),
        "金额": [10.0, math.nan, math.inf, 20.0, 30.0],
        "余额": [100.0, math.nan, 200.0, -math.inf, None],
    })
    pq.write_table(table, path)


@pytest.fixture
def csv_run(tmp_path) -> tuple[RunContext, dict]:
    source = {"name": "txn", "path": "data/txn.csv", "table": "transactions", "columns": TRANSACTION_COLUMNS}
    ctx = _engagement(tmp_path, [_customer_source(), source],
                      {"customers.csv": CUSTOMERS, "txn.csv": TRANSACTIONS_CSV})
    return ctx, run_ingest(ctx)


@pytest.fixture
def parquet_run(tmp_path) -> tuple[RunContext, dict]:
    source = {"name": "txn", "path": "data/txn.parquet", "table": "transactions", "columns": TRANSACTION_COLUMNS}
    ctx = _engagement(tmp_path, [_customer_source()], {"customers.csv": CUSTOMERS})
    _parquet_transactions(ctx.engagement_dir / "data" / "txn.parquet")
    config = yaml.safe_load((ctx.run_dir / "engagement.yaml").read_text(encoding="utf-8"))
    config["sources"].append(source)
    for folder in (ctx.run_dir, ctx.engagement_dir):
        (folder / "engagement.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    ctx = RunContext.open(ctx.run_dir)
    return ctx, run_ingest(ctx)


def _stored(ctx: RunContext, column: str) -> list:
    return pq.read_table(ctx.tables_dir / "transactions.parquet", columns=[column]).column(column).to_pylist()


def _source_entry(report: dict, name: str) -> dict:
    return next(source for source in report["sources"] if source["name"] == name)


def test_csv_non_finite_stored_null(csv_run):
    ctx, _ = csv_run

    assert _stored(ctx, "amount") == [10.0, None, None, 20.0, 30.0]
    assert _stored(ctx, "balance_after") == [100.0, None, 200.0, None, None]


def test_csv_counts_in_report(csv_run):
    _, report = csv_run
    counts = _source_entry(report, "txn")["non_finite_values"]

    assert counts["amount"]["nan"] == 1
    assert counts["amount"]["infinite"] == 1
    # Line numbers of the file, where the header is line 1.
    assert counts["amount"]["first_rows"] == [4]
    assert counts["balance_after"]["nan"] == 1
    assert counts["balance_after"]["infinite"] == 1
    assert counts["balance_after"]["first_rows"] == [5]
    assert _source_entry(report, "txn")["unparsed_values"] == {}


def test_csv_notice_in_both_languages(csv_run):
    _, report = csv_run
    notice = _source_entry(report, "txn")["non_finite_values"]["amount"]["notice"]

    assert "金额" in notice["zh_CN"]
    assert "无穷大" in notice["zh_CN"]
    assert "data/txn.csv" in notice["en"]
    assert "NaN values: 1, infinite values (inf, -inf): 1." in notice["en"]
    assert "first rows with an infinity: 4" in notice["en"]


def test_report_file_holds_counts(csv_run):
    ctx, _ = csv_run
    written = json.loads((ctx.artifacts(INGEST_STAGE) / "ingest_report.json").read_text(encoding="utf-8"))

    assert _source_entry(written, "txn")["non_finite_values"]["amount"]["infinite"] == 1


def test_parquet_non_finite_stored_null(parquet_run):
    ctx, report = parquet_run
    counts = _source_entry(report, "txn")["non_finite_values"]

    assert _stored(ctx, "amount") == [10.0, None, None, 20.0, 30.0]
    assert _stored(ctx, "balance_after") == [100.0, None, 200.0, None, None]
    assert counts["amount"] == {"nan": 1, "infinite": 1, "first_rows": [], "notice": counts["amount"]["notice"]}
    assert counts["balance_after"]["nan"] == 1
    assert counts["balance_after"]["infinite"] == 1


def test_guess_number_despite_nan_text(tmp_path):
    text = "客户号,评分\nc1,1.5\nc2,NaN\nc3,2.5\n"
    source = {"name": "cust", "path": "data/customers.csv", "table": "customers", "columns": {"客户号": "customer_id"}}
    ctx = _engagement(tmp_path, [source], {"customers.csv": text})
    report = run_ingest(ctx)

    stored = pq.read_table(ctx.tables_dir / "customers.parquet", columns=["评分"]).column("评分").to_pylist()
    assert stored == [1.5, None, 2.5]
    assert _source_entry(report, "cust")["non_finite_values"]["评分"]["nan"] == 1


def _table_with_non_finite(tmp_path: Path) -> ibis.Table:
    path = tmp_path / "values.parquet"
    pq.write_table(pa.table({
        "amount": [1.0, 3.0, math.nan, math.inf, -math.inf, None, 5.0, 7.0],
        "other": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
    }), path)
    return ibis.duckdb.connect().read_parquet(path)


def test_profile_counts_nan_and_infinity(tmp_path):
    column = profile_table(_table_with_non_finite(tmp_path), "values").columns["amount"]

    assert column.nan_values == 1
    assert column.infinite_values == 2
    assert column.count == 4
    assert column.missing == 4


def test_profile_statistics_leave_them_out(tmp_path):
    column = profile_table(_table_with_non_finite(tmp_path), "values").columns["amount"]

    # Finite values 1, 3, 5, 7: mean 4, sample variance 20 / 3.
    assert column.mean == pytest.approx(4.0)
    assert column.std == pytest.approx(math.sqrt(20 / 3))
    assert column.min == 1.0
    assert column.max == 7.0
    assert column.quantiles["p50"] == pytest.approx(4.0)
    assert column.quantiles["p99"] == pytest.approx(6.94)
    histogram = column.histogram
    assert sum(histogram.counts) + histogram.below + histogram.above == 4


def test_profile_correlation_uses_finite_rows(tmp_path):
    table = profile_table(_table_with_non_finite(tmp_path), "values")
    # amount 1, 3, 5, 7 against other 1, 2, 7, 8 on the same rows.
    expected = float(np.corrcoef([1, 3, 5, 7], [1, 2, 7, 8])[0, 1])

    assert table.correlations == [("amount", "other", pytest.approx(expected))]


def test_profile_findings_name_them(tmp_path):
    profile = profile_tables({"values": _table_with_non_finite(tmp_path)})
    codes = {(finding.column, finding.code) for finding in profile.findings}

    assert ("amount", "profiling.finding.infinite_values") in codes
    assert ("amount", "profiling.finding.nan_values") in codes
    assert ("other", "profiling.finding.nan_values") not in codes


def test_profile_without_non_finite_values(tmp_path):
    column = profile_table(_table_with_non_finite(tmp_path), "values").columns["other"]

    assert column.nan_values is None
    assert column.infinite_values is None
    assert column.count == 8


def test_map_sees_nan_amount_as_missing(tmp_path):
    ctx = _engagement(tmp_path, [_customer_source()], {"customers.csv": CUSTOMERS})
    pq.write_table(pa.table({
        "流水号": ["t1", "t2", "t3"],
        "客户号": ["c1", "c1", "c2"],
        "交易时间": pa.array(["2024-01-05 10:00:00", "2024-01-06 10:00:00", "2024-01-20 09:30:00"]).cast(pa.timestamp("s")),
        "金额": [10.0, math.nan, math.nan],
    }), ctx.engagement_dir / "data" / "txn.parquet")
    columns = {header: name for header, name in TRANSACTION_COLUMNS.items() if name != "balance_after"}
    config = yaml.safe_load((ctx.run_dir / "engagement.yaml").read_text(encoding="utf-8"))
    config["sources"].append({"name": "txn", "path": "data/txn.parquet", "table": "transactions", "columns": columns})
    for folder in (ctx.run_dir, ctx.engagement_dir):
        (folder / "engagement.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    ctx = RunContext.open(ctx.run_dir)
    run_ingest(ctx)

    assert _stored(ctx, "amount") == [10.0, None, None]
    result = run_stage(ctx, as_of="2024-01-31", as_of_dates=1)
    partition = pq.read_table(result["partitions"][dt.date(2024, 1, 31)])
    for name in partition.column_names:
        if pa.types.is_floating(partition.schema.field(name).type):
            assert pc.sum(pc.is_nan(partition[name])).as_py() in (None, 0), name
    # c1's inflow is its one finite amount, and c2's NaN amount adds nothing.
    assert sorted(partition["inflow_monthly_avg"].to_pylist()) == [0.0, 0.0, 10.0]


def test_columns_table_shows_counts(tmp_path):
    profile = profile_tables({"values": _table_with_non_finite(tmp_path)})
    frame = columns_table(profile, locale="en").set_index("column")

    assert frame.loc["amount", "NaN / infinite"] == "1 / 2"
    assert frame.loc["other", "NaN / infinite"] == ""


def test_excel_non_finite_text_stored_null(tmp_path):
    ctx = _engagement(tmp_path, [_customer_source()], {"customers.csv": CUSTOMERS})
    workbook = openpyxl.Workbook()
    worksheet = workbook.active
    worksheet.append(["流水号", "客户号", "交易时间", "金额"])
    worksheet.append(["t1", "c1", "2024-01-05 10:00:00", 10.5])
    worksheet.append(["t2", "c1", "2024-01-06 10:00:00", "NaN"])
    worksheet.append(["t3", "c2", "2024-02-01 09:30:00", "-inf"])
    worksheet.append(["t4", "c3", "2024-03-01 08:00:00", 30])
    workbook.save(ctx.engagement_dir / "data" / "txn.xlsx")
    columns = {header: name for header, name in TRANSACTION_COLUMNS.items() if name != "balance_after"}
    config = yaml.safe_load((ctx.run_dir / "engagement.yaml").read_text(encoding="utf-8"))
    config["sources"].append({"name": "txn", "path": "data/txn.xlsx", "table": "transactions", "columns": columns})
    for folder in (ctx.run_dir, ctx.engagement_dir):
        (folder / "engagement.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    report = run_ingest(RunContext.open(ctx.run_dir))
    counts = _source_entry(report, "txn")["non_finite_values"]["amount"]

    assert _stored(ctx, "amount") == [10.5, None, None, 30.0]
    assert counts["nan"] == 1
    assert counts["infinite"] == 1
    # Excel row numbers, where the header is row 1.
    assert counts["first_rows"] == [4]


def test_column_table_artifact_keeps_the_counts(tmp_path):
    from relmap_utils.profiling.frames import columns_frame

    frame = columns_frame(profile_tables({"values": _table_with_non_finite(tmp_path)})).set_index("column")

    assert frame.loc["amount", "nan_values"] == 1
    assert frame.loc["amount", "infinite_values"] == 2
    assert frame.loc["other", "nan_values"] is pd.NA
    assert str(frame["nan_values"].dtype) == "Int64"
