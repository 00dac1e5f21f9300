"""The ingest stage: run_ingest on small engagements, validate_sources, the notebook."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from relmap_utils.config import load_engagement
from relmap_utils.context import RunContext
from relmap_utils.errors import PrivacyError, SourceError
from relmap_utils.ingest import run_ingest, validate_sources
from relmap_utils.ingest import validate as ingest_validate
from relmap_utils.ingest.privacy import key_fingerprint, pseudonymize_value
from relmap_utils.paths import NOTEBOOK_DIR

CUSTOMERS_GBK = (
    "客户号,性别,出生日期,开户日期,年收入（万元）,证件号码,手机号,备注\n"
    "000123,男,1990-01-01,2019年3月15日,12.5,990000199001011239,13812345678,常客\n"
    "004560,女,19851231,2020/11/2,8,99000019851231507x,,\n"
    "012000,女,1977.3.3,2018-07-21,\"1,200\",990000197703030021,13912345678,\n"
)
ACCOUNTS = "账号;客户号;产品;开户日;额度\nA01;000123;deposit;20190315;\nA02;004560;loan;20201102;(5,000)\nA03;012000;card;20180721;50000\n"
LOANS = '"loan_id";"account_id";"date";"amount";"status"\n5314;A02;930705;96396;"B"\n5316;A03;930711;165960;"A"\n'


def _engagement(tmp_path: Path, sources: list[dict], privacy: dict | None = None, files: dict | None = None) -> RunContext:
    engagement_dir = tmp_path / "eng"
    data = engagement_dir / "data"
    data.mkdir(parents=True)
    for name, (text, encoding) in (files or {}).items():
        (data / name).write_bytes(text.encode(encoding))
    config = {"name": "test", "client": "示例银行", "sources": sources}
    if privacy:
        config["privacy"] = privacy
    run_dir = engagement_dir / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "engagement.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    (engagement_dir / "engagement.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return RunContext.open(run_dir)


CUSTOMER_SOURCE = {
    "name": "cust",
    "path": "data/customers.csv",
    "table": "customers",
    "columns": {
        "客户号": "customer_id",
        "性别": "gender",
        "出生日期": {"name": "birth_date", "treatment": "year_only"},
        "开户日期": "open_date",
        "年收入（万元）": "income",
        "证件号码": "id_number",
        "手机号": "phone",
    },
}
ACCOUNT_SOURCE = {
    "name": "acct",
    "path": "data/accounts.csv",
    "table": "accounts",
    "columns": {"账号": "account_id", "客户号": "customer_id", "产品": "product_family", "开户日": "open_date", "额度": "limit_amount"},
}
FILES = {"customers.csv": (CUSTOMERS_GBK, "gbk"), "accounts.csv": (ACCOUNTS, "utf-8"), "loan.asc": (LOANS, "utf-8")}


@pytest.fixture
def bank(tmp_path) -> RunContext:
    loans = {"name": "loan", "path": "data/loan.asc", "date_formats": ["%y%m%d"]}
    loan_accounts = {
        "name": "loan_accounts",
        "table": "accounts",
        "sql": (
            "SELECT CAST(l.loan_id AS VARCHAR) AS account_id, a.customer_id, 'loan' AS product_family, "
            "l.date AS open_date, l.amount AS limit_amount, l.status FROM loan l JOIN acct a ON a.account_id = l.account_id"
        ),
    }
    return _engagement(tmp_path, [CUSTOMER_SOURCE, ACCOUNT_SOURCE, loans, loan_accounts], files=FILES)


def test_run_ingest_writes_typed_tables(bank, pseudonym_key):
    report = run_ingest(bank)

    customers = pq.read_table(bank.tables_dir / "customers.parquet")
    assert customers.schema.field("customer_id").type == pa.string()
    assert customers.schema.field("open_date").type == pa.date32()
    assert customers.schema.field("income").type == pa.float64()
    assert customers.column("income").to_pylist() == [125000.0, 80000.0, 12_000_000.0]
    assert customers.column("open_date").to_pylist() == [dt.date(2019, 3, 15), dt.date(2020, 11, 2), dt.date(2018, 7, 21)]
    assert customers.column("birth_date").to_pylist() == [dt.date(1990, 1, 1), dt.date(1985, 1, 1), dt.date(1977, 1, 1)]
    key = pseudonym_key.encode()
    assert customers.column("customer_id").to_pylist() == [pseudonymize_value(v, key) for v in ("000123", "004560", "012000")]
    assert customers.column("id_number").to_pylist()[1] == pseudonymize_value("99000019851231507X", key)
    assert customers.column("phone").to_pylist()[1] is None
    assert customers.column("备注").to_pylist() == ["常客", None, None]
    assert report["key_fingerprint"] == key_fingerprint(key)


def test_union_and_query_sources(bank, pseudonym_key):
    run_ingest(bank)

    accounts = pq.read_table(bank.tables_dir / "accounts.parquet").to_pylist()
    key = pseudonym_key.encode()
    assert len(accounts) == 5
    loan = next(row for row in accounts if row["account_id"] == pseudonymize_value("5314", key))
    assert loan["customer_id"] == pseudonymize_value("004560", key)
    assert loan["product_family"] == "loan"
    assert loan["open_date"] == dt.date(1993, 7, 5)
    assert loan["limit_amount"] == 96396.0
    assert loan["status"] == "B"
    deposit = next(row for row in accounts if row["account_id"] == pseudonymize_value("A01", key))
    assert deposit["status"] is None
    assert deposit["limit_amount"] is None
    assert not (bank.tables_dir / "loan.parquet").exists()


def test_columns_json_contract(bank):
    run_ingest(bank)

    columns = json.loads((bank.artifacts("00_ingest") / "columns.json").read_text(encoding="utf-8"))
    assert set(columns) == {"customers", "accounts"}
    assert columns["customers"]["customer_id"] == {
        "type": "id",
        "role": None,
        "declared": False,
        "pseudonymized": True,
        "source": "cust",
        "source_column": "客户号",
    }
    assert columns["customers"]["birth_date"]["type"] == "date"
    assert columns["customers"]["备注"]["type"] in ("category", "text")
    assert columns["accounts"]["account_id"]["source"] == "acct, loan_accounts"
    assert columns["accounts"]["limit_amount"]["type"] == "amount"
    for table in columns.values():
        for entry in table.values():
            assert set(entry) == {"type", "role", "declared", "pseudonymized", "source", "source_column"}


def test_ingest_report_per_source(bank):
    report = run_ingest(bank)

    written = json.loads((bank.artifacts("00_ingest") / "ingest_report.json").read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(report, default=str))
    by_name = {source["name"]: source for source in report["sources"]}
    assert by_name["cust"]["encoding"] == "gbk"
    assert by_name["cust"]["separator"] == ","
    assert by_name["acct"]["separator"] == ";"
    assert by_name["cust"]["rows_read"] == 3
    assert by_name["cust"]["rows_written"] == 3
    assert by_name["loan"]["rows_written"] == 0
    assert by_name["cust"]["columns_guessed"] == ["备注"]
    assert report["tables"]["accounts"]["rows"] == 5
    assert report["privacy"]["year_only"] == {"customers": ["birth_date"]}
    assert set(report["privacy"]["pseudonymized"]["customers"]) == {"customer_id", "id_number", "phone"}


def test_key_never_written(bank, pseudonym_key):
    run_ingest(bank)

    for path in bank.run_dir.rglob("*"):
        if path.is_file():
            assert pseudonym_key.encode() not in path.read_bytes(), path


def test_no_personal_values_in_outputs(bank):
    run_ingest(bank)

    for path in bank.run_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for value in ("990000199001011239", "13812345678", "000123"):
                assert value.encode() not in content, (path, value)


def test_undeclared_personal_data_stops(tmp_path):
    source = dict(CUSTOMER_SOURCE, columns={"客户号": "customer_id"})
    extra = "客户号,联系电话,证件,客户姓名\n001,13812345678,990000199001011239,张三\n002,13912345678,990000198512315070,李四\n"
    ctx = _engagement(tmp_path, [source], files={"customers.csv": (extra, "utf-8")})

    with pytest.raises(PrivacyError) as caught:
        run_ingest(ctx)

    message = str(caught.value)
    assert "联系电话：2 个值符合手机号" in message
    assert "证件：1 个值符合居民身份证号" in message
    assert "客户姓名：2 个值符合姓名" in message
    assert "privacy.personal_data" in message
    for value in ("13812345678", "990000199001011239", "张三"):
        assert value not in message
    assert not ctx.tables_dir.exists() or list(ctx.tables_dir.iterdir()) == []


def test_declared_treatments(tmp_path, pseudonym_key):
    source = dict(CUSTOMER_SOURCE, columns={"客户号": "customer_id"})
    extra = "客户号,联系电话,证件,客户姓名\n001,13812345678,990000199001011239,张三\n"
    privacy = {
        "personal_data": [
            {"column": "customers.联系电话", "treatment": "drop"},
            {"column": "证件", "treatment": "pseudonymize"},
            {"column": "客户姓名"},
            {"column": "accounts.nothing"},
        ]
    }
    ctx = _engagement(tmp_path, [source], privacy=privacy, files={"customers.csv": (extra, "utf-8")})

    report = run_ingest(ctx)

    row = pq.read_table(ctx.tables_dir / "customers.parquet").to_pylist()[0]
    assert "联系电话" not in row
    assert row["证件"] == pseudonymize_value("990000199001011239", pseudonym_key.encode())
    assert row["客户姓名"] == pseudonymize_value("张三", pseudonym_key.encode())
    assert report["privacy"]["dropped"] == {"customers": ["联系电话"]}
    assert report["privacy"]["unmatched_personal_data"] == ["accounts.nothing"]


def test_allowlisted_hotline_passes(tmp_path):
    source = dict(CUSTOMER_SOURCE, columns={"客户号": "customer_id"})
    text = "客户号,服务电话\n001,13800000000\n002,13800000000\n"
    ctx = _engagement(tmp_path, [source], privacy={"allowlist": ["13800000000"]}, files={"customers.csv": (text, "utf-8")})

    assert run_ingest(ctx)["tables"]["customers"]["rows"] == 2


def test_missing_key_stops_before_reading(tmp_path, monkeypatch):
    monkeypatch.delenv("RELMAP_PSEUDONYM_KEY")
    ctx = _engagement(tmp_path, [CUSTOMER_SOURCE], files=FILES)

    with pytest.raises(PrivacyError, match="RELMAP_PSEUDONYM_KEY"):
        run_ingest(ctx)


def test_required_column_missing(tmp_path):
    source = dict(ACCOUNT_SOURCE, columns={"账号": "account_id", "客户号": "customer_id"})
    ctx = _engagement(tmp_path, [source], files=FILES)

    with pytest.raises(SourceError, match=r"acct.*accounts.*product_family.*name: product_family.*constants"):
        run_ingest(ctx)


def test_required_column_from_constant(tmp_path):
    source = dict(ACCOUNT_SOURCE, columns={"账号": "account_id", "客户号": "customer_id"}, constants={"product_family": "deposit"})
    ctx = _engagement(tmp_path, [source], files=FILES)

    run_ingest(ctx)

    families = pq.read_table(ctx.tables_dir / "accounts.parquet").column("product_family").to_pylist()
    assert families == ["deposit"] * 3


def test_unknown_table(tmp_path):
    ctx = _engagement(tmp_path, [dict(ACCOUNT_SOURCE, table="acounts")], files=FILES)

    with pytest.raises(SourceError, match=r"acounts.*accounts, balances"):
        run_ingest(ctx)


def test_query_naming_unknown_source(tmp_path):
    query = {"name": "q", "sql": "SELECT * FROM nowhere", "table": "accounts"}
    ctx = _engagement(tmp_path, [ACCOUNT_SOURCE, query], files=FILES)

    with pytest.raises(SourceError, match=r"查询数据源 q.*nowhere.*acct"):
        run_ingest(ctx)


def test_validate_sources_clean(bank):
    engagement = load_engagement(bank.engagement_dir)

    assert validate_sources(engagement, bank.engagement_dir) == []


def test_validate_sources_lists_problems(tmp_path, monkeypatch):
    monkeypatch.delenv("RELMAP_PSEUDONYM_KEY")
    sources = [
        dict(CUSTOMER_SOURCE, columns={"客户编码": "customer_id"}),
        dict(ACCOUNT_SOURCE, columns={"账号": "account_id", "客户号": "customer_id"}),
        {"name": "gone", "path": "data/gone.csv", "table": "events"},
        {"name": "q", "sql": "SELECT a.* FROM acct a JOIN elsewhere e USING (account_id)", "table": "relations"},
    ]
    ctx = _engagement(tmp_path, sources, files=FILES)

    problems = validate_sources(load_engagement(ctx.engagement_dir), ctx.engagement_dir)

    messages = [str(problem) for problem in problems]
    assert len(messages) == 5
    assert "RELMAP_PSEUDONYM_KEY" in messages[0]
    assert "客户编码" in messages[1]
    assert "客户号" in messages[1]
    assert "product_family" in messages[2]
    assert "gone.csv" in messages[3]
    assert "elsewhere" in messages[4]
    assert not ctx.tables_dir.exists()


UNDECLARED_PHONE_SOURCE = dict(CUSTOMER_SOURCE, columns={k: v for k, v in CUSTOMER_SOURCE["columns"].items() if k != "手机号"})


def test_validate_finds_what_ingest_stops_on(tmp_path):
    ctx = _engagement(tmp_path, [UNDECLARED_PHONE_SOURCE], files=FILES)
    with pytest.raises(PrivacyError) as stopped:
        run_ingest(ctx)

    problems = validate_sources(load_engagement(ctx.engagement_dir), ctx.engagement_dir)

    assert [type(problem) for problem in problems] == [PrivacyError]
    message = str(problems[0])
    assert str(stopped.value) in message
    assert "表 customers 的列 手机号：2 个值符合手机号" in message
    assert "检查了每个数据源的全部行" in message


def test_validate_scan_reads_start_of_large_file(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_validate, "FULL_SCAN_BYTES", 100)
    monkeypatch.setattr(ingest_validate, "SCAN_SAMPLE_BYTES", 300)
    # GBK: the header "客户号,手机号" takes 14 bytes with its line break and each row 19,
    # so 300 bytes hold 15 whole rows.
    rows = "".join(f"{index:06d},138{index:08d}\n" for index in range(50))
    files = {"customers.csv": ("客户号,手机号\n" + rows, "gbk")}
    source = {"name": "cust", "path": "data/customers.csv", "table": "customers", "columns": {"客户号": "customer_id"}}
    ctx = _engagement(tmp_path, [source], files=files)

    problems = validate_sources(load_engagement(ctx.engagement_dir), ctx.engagement_dir)

    message = str(problems[0])
    assert "表 customers 的列 手机号：15 个值符合手机号" in message
    assert "数据源 cust：文件 0.0 MB，检查了前 15 行" in message
    assert "relmap run 会检查全部行" in message


def test_validate_scan_reads_first_parquet_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_validate, "FULL_SCAN_BYTES", 10)
    monkeypatch.setattr(ingest_validate, "SCAN_SAMPLE_ROWS", 5)
    ctx = _engagement(tmp_path, [{"name": "cust", "path": "data/customers.parquet", "table": "customers"}])
    table = pa.table({"customer_id": [f"{index:04d}" for index in range(20)],
                      "contact": [f"user{index}@example.com" for index in range(20)]})
    pq.write_table(table, ctx.engagement_dir / "data" / "customers.parquet")

    problems = validate_sources(load_engagement(ctx.engagement_dir), ctx.engagement_dir)

    message = str(problems[0])
    assert "表 customers 的列 contact：5 个值符合电子邮箱" in message
    assert "检查了前 5 行" in message


def test_validate_scan_skips_failed_sources(tmp_path):
    broken = dict(UNDECLARED_PHONE_SOURCE, columns={"客户编码": "customer_id"})
    ctx = _engagement(tmp_path, [broken], files=FILES)

    problems = validate_sources(load_engagement(ctx.engagement_dir), ctx.engagement_dir)

    assert [type(problem) for problem in problems] == [SourceError]


def test_complete_lines_keeps_quoted_line_breaks():
    text = 'a,b\n1,"x\ny"\n2,"p\nq'

    assert ingest_validate._complete_lines(text) == 'a,b\n1,"x\ny"\n'


@pytest.mark.slow
def test_notebook_runs_under_papermill(bank, tmp_path):
    papermill = pytest.importorskip("papermill")
    output = tmp_path / "00_ingest.out.ipynb"

    papermill.execute_notebook(
        str(NOTEBOOK_DIR / "00_ingest.ipynb"),
        str(output),
        parameters={"run_dir": str(bank.run_dir)},
        kernel_name="python3",
        cwd=str(tmp_path),
    )

    assert (bank.tables_dir / "customers.parquet").exists()
    text = output.read_text(encoding="utf-8")
    assert "loan_accounts" in text
    assert "990000199001011239" not in text


def test_ingest_reads_files_with_duckdb_on_a_spark_engagement(bank, monkeypatch):
    def no_spark(*args, **kwargs):
        raise AssertionError("ingest must not start a Spark session")

    monkeypatch.setattr("relmap_utils.spark.spark_session", no_spark, raising=False)
    bank.engagement.engine.backend = "pyspark"

    run_ingest(bank)

    customers = pq.read_table(bank.tables_dir / "customers.parquet")
    assert customers.num_rows == 3
