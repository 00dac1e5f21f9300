"""Ingest of warehouse tables on Spark, and the map built from them.

A small bank is saved twice: as Parquet files for a DuckDB engagement, and
with saveAsTable into a Spark warehouse under tmp_path for a pyspark
engagement whose sources are Spark SQL queries. Both engagements map the
same columns. Ingest on Spark must write the same canonical tables
(pseudonyms included) and the map built on Spark must equal the map built
on DuckDB from the files.

The warehouse uses Spark's Hive catalog with a Derby metastore under
tmp_path when no Spark session is running yet in the test process. Otherwise
it uses Spark's built-in catalog, because the catalog is fixed when a session
starts and another test module may have started one.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from relmap_utils import spark
from relmap_utils.context import RunContext
from relmap_utils.errors import PrivacyError, SourceError
from relmap_utils.ingest import run_ingest, warehouse
from relmap_utils.ingest.privacy import pseudonymize_value

from test_map_spark_engine import require_spark

pytestmark = pytest.mark.slow

TIMEZONE = "Asia/Shanghai"
DATABASE = "bank_dw"
AS_OF = "2024-06-30"
CUSTOMERS = 40
RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_TOLERANCE = 1e-12

# Source column -> canonical mapping, shared by the file and the warehouse engagement.
MAPPINGS: dict[str, dict] = {
    "customers": {
        "cust_no": {"name": "customer_id", "role": "identifier"},
        "cust_name": {"name": "name", "role": "personal"},
        "id_no": {"name": "id_number", "role": "personal"},
        "mobile": {"name": "phone", "role": "personal"},
        "sex": {"name": "gender", "role": "category", "values": {"男": "M", "女": "F"}},
        "birth_dt": {"name": "birth_date", "role": "date"},
        "open_dt": {"name": "open_date", "role": "date"},
        "city": {"name": "city", "role": "category"},
        "city_tier": {"name": "city_tier", "role": "category"},
        "income_wan": {"name": "income", "role": "amount", "unit": 10000},
    },
    "accounts": {
        "acct_no": {"name": "account_id", "role": "identifier"},
        "cust_no": {"name": "customer_id", "role": "identifier"},
        "prod_family": {"name": "product_family", "role": "category"},
        "open_dt": {"name": "open_date", "role": "date"},
        "limit_amt": {"name": "limit_amount", "role": "amount"},
    },
    "balances": {
        "acct_no": {"name": "account_id", "role": "identifier"},
        "cust_no": {"name": "customer_id", "role": "identifier"},
        "stat_month": {"name": "month", "role": "date"},
        "bal": {"name": "balance", "role": "amount"},
    },
    "transactions": {
        "txn_no": {"name": "txn_id", "role": "identifier"},
        "cust_no": {"name": "customer_id", "role": "identifier"},
        "acct_no": {"name": "account_id", "role": "identifier"},
        "txn_ts": {"name": "txn_time", "role": "datetime"},
        "txn_amt": {"name": "amount", "role": "amount"},
        "channel": {"name": "channel", "role": "category"},
        "mcc": {"name": "merchant_category", "role": "category"},
        "txn_type": {"name": "txn_type", "role": "category"},
        "cpty": {"name": "counterparty_id", "role": "identifier"},
    },
    "events": {
        "cust_no": {"name": "customer_id", "role": "identifier"},
        "event_ts": {"name": "event_time", "role": "datetime"},
        "event_type": {"name": "event_type", "role": "category"},
        "topic": {"name": "topic", "role": "category"},
        "device_no": {"name": "device_id", "role": "identifier"},
    },
    "relations": {
        "cust_no": {"name": "customer_id", "role": "identifier"},
        "rel_id": {"name": "related_id", "role": "identifier"},
        "rel_type": {"name": "relation_type", "role": "category"},
        "rel_obj_type": {"name": "related_type", "role": "category"},
        "start_dt": {"name": "start_date", "role": "date"},
    },
}


def bank_tables(customers: int = CUSTOMERS, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Return a small bank as source-shaped frames: raw keys and personal data, some dates as text."""
    rng = np.random.default_rng(seed)
    ids = [f"{index:06d}" for index in range(1, customers + 1)]
    birth = [dt.date(1960, 1, 1) + dt.timedelta(days=int(days)) for days in rng.integers(0, 15000, customers)]
    frames = {
        "customers": pd.DataFrame(
            {
                "cust_no": ids,
                "cust_name": [f"客户{index}" for index in range(customers)],
                "id_no": [f"99000019{index:010d}" for index in range(customers)],
                "mobile": [f"138{index:08d}" for index in range(customers)],
                "sex": rng.choice(["男", "女"], customers),
                # Text in the warehouse: ingest parses it on Spark, as DuckDB does from the files.
                "birth_dt": [day.isoformat() if index % 2 else day.strftime("%Y%m%d") for index, day in enumerate(birth)],
                "open_dt": [dt.date(2015, 1, 1) + dt.timedelta(days=int(days)) for days in rng.integers(0, 3000, customers)],
                "city": rng.choice(["北京", "上海", "成都"], customers),
                "city_tier": rng.choice(["1", "2"], customers),
                "income_wan": np.round(rng.uniform(3, 60, customers), 2),
            }
        )
    }
    accounts = []
    for index, customer in enumerate(ids):
        for number, family in enumerate(rng.choice(["deposit", "wealth", "loan", "card"], 1 + index % 3, replace=False)):
            accounts.append((f"A{customer}{number}", customer, str(family), dt.date(2020, 1, 1) + dt.timedelta(days=int(rng.integers(0, 1500))), float(rng.integers(1, 50)) * 1000))
    frames["accounts"] = pd.DataFrame(accounts, columns=["acct_no", "cust_no", "prod_family", "open_dt", "limit_amt"])
    months = pd.date_range("2023-07-31", "2024-06-30", freq="ME").date
    frames["balances"] = pd.DataFrame(
        [(account, customer, month, round(float(rng.uniform(0, 90000)), 2)) for account, customer, *_ in accounts for month in months],
        columns=["acct_no", "cust_no", "stat_month", "bal"],
    )
    rows = 1500
    start = dt.datetime(2023, 1, 1)
    frames["transactions"] = pd.DataFrame(
        {
            "txn_no": np.arange(rows, dtype="int64") + 10**12,  # a BIGINT key: ingest writes it as text
            "cust_no": rng.choice(ids, rows),
            "acct_no": None,
            "txn_ts": [start + dt.timedelta(seconds=int(seconds)) for seconds in rng.integers(0, 570 * 86400, rows)],
            "txn_amt": np.round(rng.normal(0, 3000, rows), 2),
            "channel": rng.choice(["手机银行", "网银", "柜面"], rows),
            "mcc": rng.choice(["餐饮", "超市", "旅游", "教育"], rows),
            "txn_type": rng.choice(["消费", "转账", "工资"], rows),
            "cpty": rng.choice([f"C{index:04d}" for index in range(60)], rows),
        }
    )
    frames["transactions"]["acct_no"] = frames["transactions"]["cust_no"].map(lambda customer: f"A{customer}0")
    events = 300
    frames["events"] = pd.DataFrame(
        {
            "cust_no": rng.choice(ids, events),
            "event_ts": [start + dt.timedelta(seconds=int(seconds)) for seconds in rng.integers(0, 570 * 86400, events)],
            "event_type": rng.choice(["browse", "login"], events),
            "topic": rng.choice(["education", "mortgage", "travel"], events),
            "device_no": rng.choice(np.arange(5000, 5050, dtype="int64"), events),
        }
    )
    pairs = rng.choice(customers, (30, 2))
    frames["relations"] = pd.DataFrame(
        {
            "cust_no": [ids[left] for left, _ in pairs],
            "rel_id": [ids[right] for _, right in pairs],
            "rel_type": rng.choice(["family", "guarantor"], len(pairs)),
            "rel_obj_type": "customer",
            "start_dt": [dt.date(2021, 1, 1) + dt.timedelta(days=int(days)) for days in rng.integers(0, 900, len(pairs))],
        }
    )
    return frames


def make_run(folder: Path, sources: list[dict], engine: dict | None = None, privacy: dict | None = None) -> RunContext:
    """Write an engagement and an empty run folder, and open the run."""
    config: dict = {"name": folder.name, "client": "示例银行", "timezone": TIMEZONE, "sources": sources}
    if engine:
        config["engine"] = engine
    if privacy:
        config["privacy"] = privacy
    text = yaml.safe_dump(config, allow_unicode=True)
    run_dir = folder / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (folder / "engagement.yaml").write_text(text, encoding="utf-8")
    (run_dir / "engagement.yaml").write_text(text, encoding="utf-8")
    return RunContext.open(run_dir)


def warehouse_source(table: str, sql: str | None = None, columns: dict | None = None) -> dict:
    return {
        "name": f"dw_{table}",
        "sql": sql or f"SELECT * FROM {DATABASE}.{table}",
        "table": table,
        "columns": columns if columns is not None else MAPPINGS[table],
    }


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory):
    """A local[2] Spark session over a warehouse under tmp_path, with the bank saved in it."""
    require_spark()
    from pyspark.sql import SparkSession

    root = tmp_path_factory.mktemp("spark_warehouse")
    conf = {
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.sql.session.timeZone": TIMEZONE,
    }
    if SparkSession.getActiveSession() is None:
        conf["spark.sql.catalogImplementation"] = "hive"
        conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = f"jdbc:derby:;databaseName={root / 'metastore'};create=true"
    session = spark.spark_session(conf, master="local[2]")
    # Derby writes derby.log into the working folder by default. The metastore starts on first use, after this.
    session._jvm.java.lang.System.setProperty("derby.stream.error.file", str(root / "derby.log"))
    session.sql(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    for name, frame in bank_tables().items():
        # Python datetimes would be read as UTC; the warehouse holds wall-clock times in the
        # session time zone, so timestamps travel as text and Spark parses them.
        stamps = [column for column in frame.columns if column.endswith("_ts")]
        texts = frame.assign(**{column: frame[column].astype(str) for column in stamps})
        table = session.createDataFrame(texts)
        for column in stamps:
            table = table.withColumn(column, table[column].cast("timestamp"))
        table.write.mode("overwrite").saveAsTable(f"{DATABASE}.{name}")
    yield session
    session.sql(f"DROP DATABASE IF EXISTS {DATABASE} CASCADE")
    session.stop()


@pytest.fixture(scope="module")
def key() -> str:
    return "spark-ingest-test-key-0123456789"


@pytest.fixture(scope="module")
def runs(session, key, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunContext]:
    """Ingest of the bank from files on DuckDB and from the warehouse on Spark."""
    file_folder = tmp_path_factory.mktemp("files_bank")
    data = file_folder / "data"
    data.mkdir()
    file_sources = []
    for name, frame in bank_tables().items():
        frame.to_parquet(data / f"{name}.parquet", index=False)
        file_sources.append({"name": f"file_{name}", "path": f"data/{name}.parquet", "table": name, "columns": MAPPINGS[name]})
    spark_engine = {"backend": "pyspark", "threads": 2, "spark_conf": {"spark.sql.shuffle.partitions": "2"}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_PSEUDONYM_KEY", key)
        on_duckdb = make_run(file_folder, file_sources)
        run_ingest(on_duckdb)
        on_spark = make_run(tmp_path_factory.mktemp("warehouse_bank"), [warehouse_source(name) for name in MAPPINGS], spark_engine)
        run_ingest(on_spark)
    return {"duckdb": on_duckdb, "spark": on_spark}


def read(ctx: RunContext, table: str) -> pd.DataFrame:
    frame = pq.read_table(ctx.tables_dir / f"{table}.parquet").to_pandas()
    return frame.sort_values(list(frame.columns[:2]), ignore_index=True)


# Ingest on Spark.


def test_tables_equal_duckdb_ingest(runs):
    for table in MAPPINGS:
        expected = read(runs["duckdb"], table)
        actual = read(runs["spark"], table)
        assert list(actual.columns) == list(expected.columns), table
        assert pq.read_schema(runs["spark"].tables_dir / f"{table}.parquet").types == pq.read_schema(
            runs["duckdb"].tables_dir / f"{table}.parquet"
        ).types, table
        pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-12, obj=table)


def test_pseudonyms_equal_hmac_of_raw_keys(runs, key):
    customers = pq.read_table(runs["spark"].tables_dir / "customers.parquet").to_pandas()
    raw = bank_tables()["customers"]
    for position in (0, 1, CUSTOMERS - 1):
        assert pseudonymize_value(raw["cust_no"][position], key) in set(customers["customer_id"])
    assert pseudonymize_value(raw["mobile"][3], key) in set(customers["phone"])
    assert pseudonymize_value(raw["id_no"][5], key) in set(customers["id_number"])
    assert "000001" not in set(customers["customer_id"])
    events = pq.read_table(runs["spark"].tables_dir / "events.parquet").to_pandas()
    assert pseudonymize_value("5000", key) in set(events["device_id"])


def test_integer_keys_become_text(runs):
    transactions = pq.read_table(runs["spark"].tables_dir / "transactions.parquet")
    assert str(transactions.schema.field("txn_id").type) == "string"
    assert min(transactions.column("txn_id").to_pylist()) == "1000000000000"


def test_text_dates_and_units_parsed_on_spark(runs):
    customers = pq.read_table(runs["spark"].tables_dir / "customers.parquet").to_pandas()
    raw = bank_tables()["customers"]
    assert customers["birth_date"].notna().all()
    assert sorted(customers["birth_date"].astype(str)) == sorted(
        pd.to_datetime(raw["birth_dt"], format="mixed").dt.date.astype(str)
    )
    assert math.isclose(customers["income"].sum(), raw["income_wan"].sum() * 10000, rel_tol=1e-12)
    assert set(customers["gender"]) == {"M", "F"}


def test_timestamps_keep_wall_clock(runs):
    transactions = pq.read_table(runs["spark"].tables_dir / "transactions.parquet")
    assert transactions.schema.field("txn_time").type.tz is None
    raw = bank_tables()["transactions"]
    assert transactions.column("txn_time").to_pandas().min() == raw["txn_ts"].min()


def test_report_names_warehouse_tables(runs):
    import json

    report = json.loads((runs["spark"].run_dir / "artifacts" / "00_ingest" / "ingest_report.json").read_text(encoding="utf-8"))
    source = next(item for item in report["sources"] if item["name"] == "dw_customers")
    assert source["format"] == "spark_sql"
    assert source["warehouse_tables"] == [f"{DATABASE}.customers"]
    assert source["rows_written"] == CUSTOMERS
    assert report["privacy"]["pseudonymized"]["customers"] == ["customer_id", "name", "id_number", "phone"]


# Errors.


@pytest.fixture
def spark_run(session, key, tmp_path, monkeypatch):
    monkeypatch.setenv("RELMAP_PSEUDONYM_KEY", key)

    def open_run(sources: list[dict], **options) -> RunContext:
        engine = {"backend": "pyspark", "threads": 2}
        return make_run(tmp_path / "eng", sources, engine, **options)

    return open_run


def test_missing_warehouse_table_named(spark_run):
    ctx = spark_run([warehouse_source("customers", sql=f"SELECT * FROM {DATABASE}.customer_master")])
    with pytest.raises(SourceError, match=rf"{DATABASE}\.customer_master") as caught:
        run_ingest(ctx)
    assert DATABASE in caught.value.render("en").split("catalog:")[1]
    assert not (ctx.tables_dir / "customers.parquet").exists()


def test_missing_query_column_named(spark_run):
    ctx = spark_run([warehouse_source("customers", sql=f"SELECT cust_no, mobil FROM {DATABASE}.customers", columns={})])
    with pytest.raises(SourceError, match="mobil"):
        run_ingest(ctx)


def test_missing_mapped_column_named(spark_run):
    columns = {**MAPPINGS["customers"], "cust_grade": {"name": "risk_tolerance"}}
    ctx = spark_run([warehouse_source("customers", columns=columns)])
    with pytest.raises(SourceError, match="cust_grade") as caught:
        run_ingest(ctx)
    assert f"{DATABASE}.customers" in caught.value.render("en")


def test_undeclared_personal_data_caught(spark_run):
    columns = {name: mapping for name, mapping in MAPPINGS["customers"].items() if name != "mobile"}
    ctx = spark_run([warehouse_source("customers", columns=columns)])
    with pytest.raises(PrivacyError, match="mobile") as caught:
        run_ingest(ctx)
    assert "13800000001" not in caught.value.render("en")
    assert not (ctx.tables_dir / "customers.parquet").exists()


def test_query_joining_file_source_rejected(spark_run):
    sql = f"SELECT c.* FROM {DATABASE}.customers c JOIN branches b ON c.city = b.city"
    ctx = spark_run([{"name": "branches", "path": "data/branches.csv"}, warehouse_source("customers", sql=sql)])
    (ctx.engagement_dir / "data").mkdir()
    (ctx.engagement_dir / "data" / "branches.csv").write_text("city,branch\n北京,B01\n", encoding="utf-8")
    with pytest.raises(SourceError, match="branches") as caught:
        run_ingest(ctx)
    assert "names file sources: branches" in caught.value.render("en")


def test_query_over_files_stays_on_duckdb():
    from relmap_utils.config import Engagement

    engagement = Engagement.model_validate({
        "name": "e", "client": "c", "engine": {"backend": "pyspark"},
        "sources": [
            {"name": "branches", "path": "data/branches.csv"},
            {"name": "cities", "sql": "WITH b AS (SELECT * FROM branches) SELECT city FROM b", "table": None},
            {"name": "dw", "sql": f"SELECT * FROM {DATABASE}.customers"},
            {"name": "joined", "sql": "SELECT * FROM dw"},
        ],
    })
    assert [source.name for source in warehouse.spark_sources(engagement)] == ["dw", "joined"]


def test_query_reading_file_path_rejected(spark_run):
    ctx = spark_run([warehouse_source("customers", sql="SELECT * FROM parquet.`/tmp/customers.parquet`")])
    with pytest.raises(SourceError, match="parquet"):
        run_ingest(ctx)


def test_unparsed_dates_stop_ingest(spark_run):
    sql = f"SELECT *, 'not a date' AS bad_dt FROM {DATABASE}.customers"
    columns = {**MAPPINGS["customers"], "bad_dt": {"name": "close_date", "role": "date"}}
    ctx = spark_run([warehouse_source("customers", sql=sql, columns=columns)])
    with pytest.raises(SourceError, match="bad_dt"):
        run_ingest(ctx)


SCAN_VALUES = {
    "note": ["联系电话13812340001", "a.b@example.com", "ok", None, "11010519491231002X", "4111111111111111"],
    "card_no": ["12345678901234567890", "4111111111111111", "1234", "6222021234567890123", "", "x"],
    "holder_name": ["张三", "", None, "李四", "王五", "赵六"],
    "code": ["TX2023010500012345", "110105194912310021", " 13912345678 ", "4000000000000002", "0", "1"],
}


def test_spark_scan_counts_equal_duckdb(session):
    import ibis

    from relmap_utils import engine
    from relmap_utils.ingest import privacy

    frame = pd.DataFrame(SCAN_VALUES)
    duckdb_backend = engine.connect()
    expected = privacy.scan_personal_data(duckdb_backend.create_table("scan_values", frame), allowlist=["4000000000000002"])
    backend = ibis.pyspark.connect(session)
    # From tuples with a schema: from pandas, Spark would turn None into the text 'NaN'.
    rows = list(zip(*SCAN_VALUES.values()))
    session.createDataFrame(rows, ", ".join(f"{name} string" for name in SCAN_VALUES)).createOrReplaceTempView("scan_values")
    actual = privacy.scan_personal_data(backend.table("scan_values"), allowlist=["4000000000000002"])

    assert expected["note"] == {"mobile": 1, "email": 1, "resident_id": 1, "card": 1}
    assert expected["card_no"]["number"] == 2
    assert actual == expected


def test_validate_checks_warehouse_query_form(tmp_path, monkeypatch):
    from relmap_utils.config import Engagement
    from relmap_utils.ingest import validate_sources

    monkeypatch.setenv("RELMAP_PSEUDONYM_KEY", "spark-ingest-test-key-0123456789")
    engagement = Engagement.model_validate({
        "name": "e", "client": "c", "engine": {"backend": "pyspark"},
        "sources": [
            warehouse_source("customers"),
            warehouse_source("accounts", sql="SELECT * FROM parquet.`/tmp/accounts.parquet`"),
        ],
    })

    problems = validate_sources(engagement, tmp_path)

    assert [problem.key for problem in problems] == ["ingest.warehouse_query_reads_file"]
    assert "dw_accounts" in problems[0].render("en")


def test_strptime_formats_translate():
    source = warehouse.Source(name="s", sql="SELECT 1")
    assert warehouse.spark_pattern(source, "d", "%Y年%m月%d日") == "yyyy'年'MM'月'dd'日'"
    assert warehouse.spark_pattern(source, "d", "%y%m%d") == "yyMMdd"
    with pytest.raises(SourceError, match="%a"):
        warehouse.spark_pattern(source, "d", "%a %d")


def test_two_digit_years_follow_python(spark_run, session):
    sql = f"SELECT cust_no, '930705' AS start_txt FROM {DATABASE}.customers"
    columns = {"cust_no": {"name": "customer_id", "role": "identifier"}, "start_txt": {"name": "open_date", "role": "date", "date_format": "%y%m%d"}}
    ctx = spark_run([warehouse_source("customers", sql=sql, columns=columns)])
    run_ingest(ctx)
    customers = pq.read_table(ctx.tables_dir / "customers.parquet").to_pandas()
    assert set(customers["open_date"]) == {dt.date(1993, 7, 5)}


# The map on Spark from warehouse ingest.


def differing_rows(expected: pd.Series, actual: pd.Series) -> list[int]:
    expected_null = expected.isna().to_numpy()
    actual_null = actual.isna().to_numpy()
    rows = set(np.flatnonzero(expected_null != actual_null).tolist())
    both = ~expected_null & ~actual_null
    if pd.api.types.is_numeric_dtype(expected) and not pd.api.types.is_bool_dtype(expected):
        left = expected.to_numpy(dtype="float64")
        right = actual.to_numpy(dtype="float64")
        for row in np.flatnonzero(both):
            if not math.isclose(left[row], right[row], rel_tol=RELATIVE_TOLERANCE, abs_tol=ABSOLUTE_TOLERANCE):
                rows.add(int(row))
    else:
        unequal = expected.to_numpy(dtype=object) != actual.to_numpy(dtype=object)
        rows.update(np.flatnonzero(both & unequal).tolist())
    return sorted(rows)


def test_map_on_spark_equals_duckdb_map(runs):
    from relmap_utils.features import build_map, discover_values
    from relmap_utils.features.spec import MapSpec

    duckdb_backend = runs["duckdb"].connect()
    duckdb_tables = runs["duckdb"].canonical_tables(duckdb_backend)
    spec, _ = discover_values(duckdb_tables, MapSpec())
    expected = spark.collect(duckdb_backend, build_map(duckdb_tables, AS_OF, spec, timezone=TIMEZONE)).to_pandas()

    spark_backend = runs["spark"].connect()
    assert spark.is_spark(spark_backend)
    spark_tables = spark.read_tables(spark_backend, runs["spark"].tables_dir, prefix="wh_map_")
    actual = spark.collect(spark_backend, build_map(spark_tables, AS_OF, spec, timezone=TIMEZONE)).to_pandas()

    expected = expected.sort_values("customer_id", ignore_index=True)
    actual = actual.sort_values("customer_id", ignore_index=True)
    assert len(expected) == CUSTOMERS
    assert list(actual.columns) == list(expected.columns)
    assert actual["customer_id"].tolist() == expected["customer_id"].tolist()
    mismatches = {}
    for column in expected.columns:
        rows = differing_rows(expected[column], actual[column])
        if rows:
            mismatches[column] = (len(rows), expected[column].iloc[rows[0]], actual[column].iloc[rows[0]])
    assert mismatches == {}, "column: (rows that differ, DuckDB value, Spark value) of the first difference"
