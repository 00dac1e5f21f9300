"""benchmarks/bench_map.py on the smallest demo bank, so that the script keeps working.

No timing is asserted: performance is judged by full benchmark runs, recorded
in docs/benchmarks.md. This test checks that every scenario runs in fresh
processes, Spark included, and that the pandas and hand-written SQL versions
compute the same core columns as relmap, which keeps the comparison fair.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_map_spark_engine import require_spark

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "benchmarks" / "bench_map.py"
CUSTOMERS = 500
TRANSACTIONS = 15_000


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, subprocess.CompletedProcess]:
    require_spark()
    work = tmp_path_factory.mktemp("bench_map")
    out = work / "results.json"
    command = [
        sys.executable, str(SCRIPT),
        "--scenarios", "full,snapshots,compare,spark",
        "--customers", str(CUSTOMERS), "--transactions", str(TRANSACTIONS),
        "--repeat", "1", "--quiet-wait", "0", "--retries", "0",
        "--work", str(work), "--out", str(out),
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900, env={**os.environ})
    results = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    return results, completed


def test_bench_map_exits_cleanly(bench_run):
    results, completed = bench_run
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| scenario | data |" in completed.stdout
    assert "| tool | work s (median) |" in completed.stdout
    assert results["customers"] == CUSTOMERS


@pytest.mark.parametrize("scenario", ["full", "snapshots", "spark"])
def test_bench_map_scenario_measured(bench_run, scenario):
    results, _ = bench_run
    summary = results["scenarios"][scenario]["summary"]
    assert summary["runs"] == 1
    assert summary["failed"] == 0
    assert summary["max_rss_mb"] > 0


def test_snapshots_cover_twelve_month_ends(bench_run):
    results, _ = bench_run
    child = results["scenarios"]["snapshots"]["measurements"][0]["child"]
    assert child["snapshots"] == 12
    assert child["rows"] == 12 * CUSTOMERS
    assert min(child["seconds_per_snapshot"]) == "2023-07-31"


def test_compare_tools_agree_with_relmap(bench_run):
    results, _ = bench_run
    compare = results["scenarios"]["compare"]
    assert set(compare["summaries"]) == {"relmap_map", "relmap_core", "pandas", "duckdb_sql"}
    assert compare["columns_differing_from_relmap"] == {"relmap_map": [], "pandas": [], "duckdb_sql": []}
    assert set(compare["ratios"]) == {
        "pandas_over_relmap_core", "pandas_over_relmap_map", "relmap_core_over_duckdb_sql", "pandas_over_duckdb_sql",
        "cpu_pandas_over_relmap_core", "cpu_relmap_core_over_duckdb_sql", "cpu_pandas_over_duckdb_sql",
    }  # fmt: skip
