"""The relationship map on PySpark equals the map on DuckDB.

A small demo bank goes through ingest once. The map is then built from the
same canonical Parquet files by DuckDB and by Spark (local[2]) and compared
customer by customer. The map uses exact aggregates only, so the engines
must agree to a relative tolerance of 1e-9, with NULLs in the same places.
"""

from __future__ import annotations

import math
import secrets
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from relmap_utils import engine, spark

from test_map_spark_engine import require_spark

from tests.conftest import make_small_demo_engagement

CUSTOMERS = 2000
TRANSACTIONS = 60_000
TIMEZONE = "Asia/Shanghai"
RELATIVE_TOLERANCE = 1e-9
# Summing floating-point numbers in another order changes the last bits. A
# change ratio that is exactly 0 on one engine can then be -2.2e-16 on the
# other, and no relative tolerance covers a value that cancels to 0.
ABSOLUTE_TOLERANCE = 1e-12
# The demo bank's last day, and a month-end in the middle of its history.
AS_OF_DATES = ("2024-06-30", "2023-12-31")


@pytest.fixture(scope="module")
def tables_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Canonical tables of a copy of engagements/demo with a small demo bank."""
    from relmap_utils.runner import run_engagement

    folder = tmp_path_factory.mktemp("spark_parity")
    make_small_demo_engagement(folder, n_customers=CUSTOMERS, n_transactions=TRANSACTIONS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_PSEUDONYM_KEY", secrets.token_hex(32))
        result = run_engagement(folder, stages=["ingest"])
    assert result.status == "succeeded", result.failure and result.failure.render("en")
    return result.run_dir / "artifacts" / "00_ingest" / "tables"


@pytest.fixture(scope="module")
def spark_backend(tmp_path_factory: pytest.TempPathFactory):
    """One local[2] session for the module: two shuffle partitions, no UI, loopback only."""
    require_spark()
    conf = {
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("parity_warehouse")),
    }
    backend = spark.connect_spark(conf, master="local[2]", timezone=TIMEZONE)
    yield backend
    backend.disconnect()


@pytest.fixture(scope="module")
def duckdb_backend():
    backend = engine.connect()
    yield backend
    backend.disconnect()


def discovered_spec(backend, tables_dir: Path, prefix: str):
    """Return the default MapSpec with its value lists (topics, channels, ...) filled from the data."""
    from relmap_utils.features import MapSpec, discover_values

    spec, _ = discover_values(spark.read_tables(backend, tables_dir, prefix=prefix), MapSpec())
    return spec


def build(backend, tables_dir: Path, as_of: str, spec, prefix: str) -> tuple[pd.DataFrame, object]:
    """Build the map on ``backend`` and return it sorted by customer, with its Ibis schema."""
    from relmap_utils.features import build_map

    tables = spark.read_tables(backend, tables_dir, prefix=prefix)
    expr = build_map(tables, as_of, spec, timezone=TIMEZONE)
    frame = spark.collect(backend, expr).to_pandas()
    return frame.sort_values("customer_id", ignore_index=True), expr.schema()


def differing_rows(expected: pd.Series, actual: pd.Series) -> list[int]:
    """Return the row positions where two columns differ beyond the tolerance."""
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


def test_spec_discovery_agrees(spark_backend, duckdb_backend, tables_dir):
    on_duckdb = discovered_spec(duckdb_backend, tables_dir, prefix="")
    on_spark = discovered_spec(spark_backend, tables_dir, prefix="discover_")
    assert on_spark == on_duckdb


@pytest.mark.parametrize("as_of", AS_OF_DATES)
def test_spark_map_equals_duckdb(spark_backend, duckdb_backend, tables_dir, as_of):
    spec = discovered_spec(duckdb_backend, tables_dir, prefix="")
    expected, expected_schema = build(duckdb_backend, tables_dir, as_of, spec, prefix="")
    actual, actual_schema = build(spark_backend, tables_dir, as_of, spec, prefix=f"map_{as_of[:4]}_")

    assert list(actual.columns) == list(expected.columns)
    assert {name: str(kind) for name, kind in actual_schema.items()} == {
        name: str(kind) for name, kind in expected_schema.items()
    }
    assert len(expected) == CUSTOMERS
    assert actual["customer_id"].tolist() == expected["customer_id"].tolist()

    mismatches = {}
    for column in expected.columns:
        rows = differing_rows(expected[column], actual[column])
        if rows:
            first = rows[0]
            mismatches[column] = (len(rows), expected[column].iloc[first], actual[column].iloc[first])
    assert mismatches == {}, "column: (rows that differ, DuckDB value, Spark value) of the first difference"


def test_map_stage_runs_on_spark_engine(spark_backend, duckdb_backend, tables_dir, tmp_path, monkeypatch):
    """With engine.backend pyspark in the run's engagement.yaml, stage 02 builds the map on Spark."""
    import yaml

    from relmap_utils.context import RunContext
    from relmap_utils.features import run_stage

    source_run = tables_dir.parents[2]
    run_dir = tmp_path / source_run.name
    shutil.copytree(source_run, run_dir, ignore=shutil.ignore_patterns("02_map"))
    snapshot = yaml.safe_load((run_dir / "engagement.yaml").read_text(encoding="utf-8"))
    snapshot["engine"] = {"backend": "pyspark", "threads": 2, "spark_conf": {"spark.sql.shuffle.partitions": "2"}}
    (run_dir / "engagement.yaml").write_text(yaml.safe_dump(snapshot, allow_unicode=True), encoding="utf-8")

    backends = []
    original = spark.connect_spark

    def recording_connect(*args, **kwargs):
        backend = original(*args, **kwargs)
        backends.append(backend)
        return backend

    monkeypatch.setattr(spark, "connect_spark", recording_connect)
    result = run_stage(RunContext.open(run_dir, engagement_dir=source_run.parent.parent), as_of=AS_OF_DATES[0])

    assert len(backends) == 1
    assert backends[0]._session is spark_backend._session
    written = pd.read_parquet(result["partitions"][result["as_of_dates"][-1]])
    spec = discovered_spec(duckdb_backend, tables_dir, prefix="")
    expected, _ = build(duckdb_backend, tables_dir, AS_OF_DATES[0], spec, prefix="")
    assert written["customer_id"].tolist() == expected["customer_id"].tolist()
    assert list(written.columns) == [name for name in expected.columns if name != "as_of"]
