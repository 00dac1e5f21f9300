"""The PySpark engine: session settings, engine.connect, canonical tables and results on Spark.

Tests that start Spark share one local[2] session per module. The Hive test
runs in its own process, because the catalog is fixed when a session starts.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relmap_utils import engine, spark
from relmap_utils.config import Engine
from relmap_utils.errors import ConfigError, RunError

TIMEZONE = "Asia/Shanghai"


def require_spark() -> None:
    """Skip without PySpark or Java; in CI (CI=true) fail instead, so a green run means Spark ran."""
    reason = spark.spark_unavailable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory):
    """engine.connect on a local[2] session: no UI, loopback only, two shuffle partitions."""
    require_spark()
    warehouse = tmp_path_factory.mktemp("spark_warehouse")
    spark_conf = {"spark.sql.shuffle.partitions": "2", "spark.sql.warehouse.dir": str(warehouse)}
    backend = engine.connect(Engine(backend="pyspark", threads=2, spark_conf=spark_conf), timezone=TIMEZONE)
    yield backend
    backend.disconnect()


# Settings, without starting Spark.


def test_local_settings_bind_loopback():
    settings = spark.session_settings({"spark.sql.shuffle.partitions": "4"}, master="local[2]")
    assert settings["spark.master"] == "local[2]"
    assert settings["spark.driver.host"] == "127.0.0.1"
    assert settings["spark.driver.bindAddress"] == "127.0.0.1"
    assert settings["spark.ui.enabled"] == "false"
    assert settings["spark.ui.showConsoleProgress"] == "false"
    assert settings["spark.sql.shuffle.partitions"] == "4"


def test_default_master_uses_every_core():
    assert spark.session_settings()["spark.master"] == "local[*]"


def test_cluster_settings_keep_network_defaults():
    settings = spark.session_settings({"spark.master": "yarn"}, master="local[2]")
    assert settings["spark.master"] == "yarn"
    assert "spark.driver.host" not in settings
    assert "spark.ui.enabled" not in settings
    assert settings["spark.ui.showConsoleProgress"] == "false"


def test_configured_values_win_over_defaults():
    settings = spark.session_settings({"spark.ui.enabled": "true"})
    assert settings["spark.ui.enabled"] == "true"


@pytest.mark.parametrize("key", spark.DOWNLOADING_SETTINGS)
def test_downloading_setting_rejected(key):
    with pytest.raises(ConfigError, match=f"{key}.*spark.jars"):
        spark.session_settings({key: "org.example:lib:1.0"})


def test_downloading_setting_message_in_english(monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")
    with pytest.raises(ConfigError, match="download jars when it starts; relmap runs offline"):
        spark.session_settings({"spark.jars.packages": "org.example:lib:1.0"})


@pytest.mark.parametrize(
    ("memory", "expected"),
    [("6GB", "6g"), ("512MB", "512m"), ("2g", "2g"), ("1 TiB", "1t")],
    ids=["GB", "MB", "spark-style", "TiB"],
)
def test_memory_limit_becomes_driver_memory(memory, expected):
    conf, master = spark.engine_settings(Engine(backend="pyspark", memory_limit=memory))
    assert conf == {"spark.driver.memory": expected}
    assert master is None


def test_spark_conf_memory_wins_over_memory_limit():
    engine_section = Engine(backend="pyspark", memory_limit="6GB", spark_conf={"spark.driver.memory": "3g"})
    conf, _ = spark.engine_settings(engine_section)
    assert conf["spark.driver.memory"] == "3g"


def test_threads_become_local_master():
    _, master = spark.engine_settings(Engine(backend="pyspark", threads=3))
    assert master == "local[3]"


def test_invalid_memory_limit_rejected():
    with pytest.raises(ConfigError, match="1.5GB"):
        spark.engine_settings(Engine(backend="pyspark", memory_limit="1.5GB"))


def test_missing_pyspark_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setenv("RELMAP_LANG", "en")
    with pytest.raises(RunError, match=r'PySpark is not installed.*pip install "relmap\[spark\]"'):
        engine.connect(Engine(backend="pyspark"))
    assert "PySpark is not installed" in spark.spark_unavailable()


def test_missing_java_reported(monkeypatch, tmp_path):
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    monkeypatch.setattr(SparkSession, "getActiveSession", classmethod(lambda cls: None))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(RunError, match="Java 17"):
        spark.spark_session()
    assert "Java" in spark.spark_unavailable()


def test_duckdb_stays_the_default():
    backend = engine.connect()
    assert backend.name == "duckdb"
    assert not spark.is_spark(backend)


# A running local session.


def test_connect_sets_engagement_timezone(backend):
    session = backend._session
    assert spark.is_spark(backend)
    assert session.conf.get("spark.sql.session.timeZone") == TIMEZONE
    assert session.sparkContext.master == "local[2]"
    assert session.conf.get("spark.ui.enabled") == "false"
    assert session.conf.get("spark.driver.host") == "127.0.0.1"


def test_read_tables_registers_each_file(backend, tmp_path):
    pq.write_table(pa.table({"customer_id": ["a", "b"]}), tmp_path / "customers.parquet")
    pq.write_table(pa.table({"customer_id": ["a"], "amount": [1.0]}), tmp_path / "transactions.parquet")
    tables = spark.read_tables(backend, tmp_path, prefix="read_")
    assert sorted(tables) == ["customers", "transactions"]
    assert spark.collect(backend, tables["customers"]).num_rows == 2
    assert "read_transactions" in backend.list_tables()


def test_read_tables_missing_table(backend, tmp_path):
    with pytest.raises(RunError, match="accounts"):
        spark.read_tables(backend, tmp_path, ["accounts"])


@pytest.fixture
def typed_table(tmp_path) -> pa.Table:
    table = pa.table(
        {
            "customer_id": ["a", "b", "c"],
            "count": pa.array([1, None, 3], pa.int64()),
            "txn_time": pa.array(
                [dt.datetime(2024, 6, 30, 23, 59, 59), dt.datetime(2024, 1, 1, 0, 0), None], pa.timestamp("us")
            ),
            "open_date": pa.array([dt.date(2024, 6, 30), None, dt.date(2020, 2, 29)]),
            "amount": [0.1, None, 1e300],
        }
    )
    pq.write_table(table, tmp_path / "typed.parquet")
    return table


def test_collect_keeps_types_and_nulls(backend, tmp_path, typed_table):
    tables = spark.read_tables(backend, tmp_path, ["typed"], prefix="collect_")
    result = spark.collect(backend, tables["typed"])
    assert result.schema.field("count").type == pa.int64()
    assert result.to_pydict() == typed_table.to_pydict()


def test_collect_matches_duckdb_on_time_expressions(backend, tmp_path, typed_table):
    def expressions(table: ibis.Table) -> ibis.Table:
        cutoff = ibis.timestamp("2024-06-30 23:59:59")
        return table.select(
            "customer_id",
            day=table.txn_time.date(),
            cutoff=cutoff,
            before_cutoff=table.txn_time <= cutoff,
            next_day=table.open_date + ibis.interval(days=1),
        ).order_by("customer_id")

    on_spark = spark.collect(backend, expressions(spark.read_tables(backend, tmp_path, ["typed"], prefix="time_")["typed"]))
    duckdb = engine.connect()
    on_duckdb = spark.collect(duckdb, expressions(spark.read_tables(duckdb, tmp_path, ["typed"])["typed"]))
    assert on_spark.to_pydict() == on_duckdb.to_pydict()
    assert on_spark.column("cutoff")[0].as_py() == dt.datetime(2024, 6, 30, 23, 59, 59)


HIVE_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from relmap_utils import engine, spark
    from relmap_utils.config import Engine

    root = Path(sys.argv[1])
    conf = {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root / 'metastore'};create=true",
        "spark.sql.shuffle.partitions": "2",
    }
    # The bank's warehouse: a Hive table written by another Spark job.
    session = spark.spark_session(conf, master="local[1]")
    session.sql("CREATE DATABASE bank")
    rows = [("a", 1.5), ("a", 2.0), ("b", 4.0)]
    session.createDataFrame(rows, "cust_no string, txn_amt double").write.saveAsTable("bank.transactions")
    session.stop()

    backend = engine.connect(Engine(backend="pyspark", threads=1, spark_conf=conf), timezone="Asia/Shanghai")
    print("catalog", backend._session.conf.get("spark.sql.catalogImplementation"))
    table = backend.table("transactions", database="bank")
    totals = table.group_by("cust_no").aggregate(total=table.txn_amt.sum()).order_by("cust_no")
    print("totals", spark.collect(backend, totals).to_pydict())
    backend.disconnect()
    """
)


@pytest.mark.slow
def test_hive_catalog_from_spark_conf(tmp_path):
    require_spark()
    script = tmp_path / "hive_check.py"
    script.write_text(HIVE_SCRIPT, encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        cwd=tmp_path,  # Derby writes derby.log into the working folder
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "catalog hive" in completed.stdout
    assert "totals {'cust_no': ['a', 'b'], 'total': [3.5, 4.0]}" in completed.stdout
