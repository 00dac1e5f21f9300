"""The benchmark scripts on about 10,000 rows, so that they keep working.

No timing is asserted here: performance is judged by the full benchmark runs
recorded in docs/benchmarks.md. These tests check that every script runs,
measures in fresh processes and writes the results the documentation reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO_ROOT / "benchmarks"
PEERS_PYTHON = BENCH_DIR / ".venv-peers" / "bin" / "python"
SMALL_ROWS = 10_000
LARGE_ROWS = 20_000

sys.path.insert(0, str(BENCH_DIR))
import bench_profiling  # noqa: E402
import gen_gbk_transactions  # noqa: E402
import harness  # noqa: E402


@pytest.fixture(scope="module")
def run_all(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """run_all.sh on tiny tables, without the peers' environment."""
    work = tmp_path_factory.mktemp("bench")
    env = {
        **os.environ,
        "RELMAP_PYTHON": sys.executable,
        "RELMAP_SHARED_DIR": str(shared),
        "WORK": str(work),
        "ROWS_SMALL": str(SMALL_ROWS),
        "ROWS_LARGE": str(LARGE_ROWS),
        "ROWS_INGEST": str(SMALL_ROWS),
        "REPEAT": "1",
        "PEERS": "0",
        "QUIET_WAIT": "0",
        "RETRIES": "0",
    }
    completed = subprocess.run(
        ["bash", str(BENCH_DIR / "run_all.sh")], env=env, capture_output=True, text=True, timeout=600
    )
    return work, completed


def read_results(work: Path, name: str) -> dict:
    return json.loads((work / name).read_text(encoding="utf-8"))


def test_run_all_exits_cleanly(run_all):
    _, completed = run_all
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| benchmark | rows | tool or mode |" in completed.stdout
    assert "| profiling | 10,000 | relmap |" in completed.stdout
    assert "| ingest | 10,000 | stage |" in completed.stdout


def test_profiling_results_small_table(run_all):
    work, _ = run_all
    results = read_results(work, f"profiling_{SMALL_ROWS}.json")

    assert set(results["summary"]) == {"relmap", "relmap_report", "duckdb_summarize", "duckdb_aggregate"}
    for tool, summary in results["summary"].items():
        assert summary["runs"] == 1, results["measurements"][tool]
        assert summary["max_rss_mb"] > 0
    relmap = results["measurements"]["relmap"][0]["child"]
    assert relmap["rows"] == SMALL_ROWS
    assert relmap["columns"] == 30
    assert sum(relmap["semantic_types"].values()) == 30
    assert results["measurements"]["duckdb_summarize"][0]["child"]["columns"] == 30
    assert results["measurements"]["relmap_report"][0]["child"]["report_mb"] > 0
    assert len(set(results["duckdb_versions"].values())) == 1
    assert results["machine"]["nproc"] >= 1


def test_profiling_targets_only_where_they_apply(run_all):
    work, _ = run_all
    small = read_results(work, f"profiling_{SMALL_ROWS}.json")["targets"]
    large = read_results(work, f"profiling_{LARGE_ROWS}.json")

    assert "within_summarize_met" in small
    assert "speedup_over_ydata_met" not in small
    assert "seconds_10m_met" not in large["targets"]
    assert set(large["summary"]) == {"relmap"}
    assert large["measurements"]["relmap"][0]["child"]["rows"] == LARGE_ROWS


def test_ingest_results_match_generated_csv(run_all):
    work, _ = run_all
    results = read_results(work, f"ingest_{SMALL_ROWS}.json")
    frame = gen_gbk_transactions.transactions(SMALL_ROWS)
    expected_nulls = {
        "counterparty_id": int(frame["对手方账号"].isin(["", "NULL"]).sum()),
        "merchant_category": int((frame["商户类别"] == "").sum()),
        "amount": 0,
        "balance_after": 0,
        "txn_time": 0,
        "记账日期": 0,
    }

    for mode in ("stage", "read"):
        child = results["measurements"][mode][0]["child"]
        assert child["rows"] == SMALL_ROWS
        assert child["encoding"] == "gbk"
        assert child["separator"] == ","
        assert child["column_types"]["amount"] == "amount"
        assert child["column_types"]["txn_time"] == "datetime"
        assert child["column_types"]["记账日期"] == "date"
        for column, nulls in expected_nulls.items():
            assert child["null_counts"][column] == nulls, (mode, column)
    stage = results["measurements"]["stage"][0]["child"]
    assert sorted(stage["pseudonymized"]) == ["account_id", "counterparty_id", "customer_id"]
    assert "targets" not in results


def test_print_results_lists_targets(run_all):
    work, _ = run_all
    completed = subprocess.run(
        [sys.executable, str(BENCH_DIR / "print_results.py"), str(work / f"profiling_{SMALL_ROWS}.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "relmap / DuckDB SUMMARIZE" in completed.stdout


def test_where_time_goes_lists_passes(run_all):
    work, _ = run_all
    completed = subprocess.run(
        [sys.executable, str(BENCH_DIR / "where_time_goes.py"), str(work / f"bank_{SMALL_ROWS}.parquet")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| summary pass | 1 |" in completed.stdout
    # Six queries: the table has float columns, so one more counts their NaN and infinities.
    assert "| DuckDB execution (to_arrow_table) | 6 |" in completed.stdout


@pytest.mark.skipif(not PEERS_PYTHON.is_file(), reason="benchmarks/.venv-peers not set up (setup_peers.sh)")
def test_ydata_peer_runs(shared: Path, tmp_path: Path):
    out = tmp_path / "ydata.json"
    env = {**os.environ, "RELMAP_SHARED_DIR": str(shared)}
    completed = subprocess.run(
        [
            sys.executable, str(BENCH_DIR / "bench_profiling.py"), "--rows", str(SMALL_ROWS), "--repeat", "1",
            "--tools", "ydata,ydata_report", "--work", str(tmp_path), "--out", str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    measurements = json.loads(out.read_text(encoding="utf-8"))["measurements"]
    assert measurements["ydata"][0]["child"]["columns"] == 30
    assert measurements["ydata_report"][0]["child"]["report_mb"] > 0


def test_unknown_tool_rejected(tmp_path: Path):
    completed = subprocess.run(
        [sys.executable, str(BENCH_DIR / "bench_profiling.py"), "--tools", "relmap,pandas", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert completed.returncode != 0
    assert "unknown tools: pandas" in completed.stderr


@pytest.mark.parametrize(
    ("relmap", "ydata", "summarize", "fast_enough", "close_to_summarize"),
    [
        (2.0, 8.0, 1.5, True, True),
        (2.0, 7.9, 1.5, False, True),
        (3.1, 20.0, 2.0, True, False),
    ],
    ids=["both-met", "speedup-missed", "summarize-missed"],
)
def test_check_targets_ratios(relmap, ydata, summarize, fast_enough, close_to_summarize):
    summary = {
        "relmap": {"runs": 3, "median_work_s": relmap, "median_wall_s": relmap + 1},
        "ydata": {"runs": 3, "median_work_s": ydata, "median_wall_s": ydata + 5},
        "duckdb_summarize": {"runs": 3, "median_work_s": summarize, "median_wall_s": summarize + 0.3},
    }
    targets = bench_profiling.check_targets(1_000_000, summary)
    assert targets["speedup_over_ydata_met"] is fast_enough
    assert targets["within_summarize_met"] is close_to_summarize
    assert targets["ratios_work"]["ydata_over_relmap"] == round(ydata / relmap, 2)


def test_check_targets_large_table():
    summary = {"relmap": {"runs": 1, "median_work_s": 80.0, "median_wall_s": 91.0, "max_rss_mb": 1500.0}}
    targets = bench_profiling.check_targets(10_000_000, summary)
    assert targets["seconds_10m_met"] is False
    assert targets["memory_10m_met"] is True


def test_summarize_takes_median_and_peak():
    def run(ok, wall, rss, work, cpu, disturbed):
        child = {"work_s": work} if ok else {}
        return {
            "ok": ok, "wall_s": wall, "max_rss_mb": rss, "user_s": cpu, "system_s": 0.5,
            "other_cpu_s": 0.1, "disturbed": disturbed, "child": child,
        }

    runs = [
        run(True, 5.0, 300.0, 4.0, 6.5, False),
        run(True, 3.0, 320.0, 2.0, 3.5, True),
        run(True, 4.0, 310.0, 3.0, 5.5, False),
        run(False, 1.0, 900.0, None, 1.0, False),
    ]
    summary = harness.summarize(runs)
    assert summary["runs"] == 3
    assert summary["failed"] == 1
    assert summary["median_work_s"] == 3.0
    assert summary["median_wall_s"] == 4.0
    assert summary["median_cpu_s"] == 6.0
    assert summary["max_rss_mb"] == 320.0
    assert summary["disturbed"] == 1


@pytest.mark.parametrize(
    ("other_cpu_s", "disturbed"),
    [(None, False), (0.0, False), (0.1 * 4.0 * (os.cpu_count() or 1), False), (0.5 * 4.0 * (os.cpu_count() or 1), True)],
    ids=["unknown", "idle", "at-limit", "busy"],
)
def test_is_disturbed_by_other_load(other_cpu_s, disturbed):
    assert harness.is_disturbed({"wall_s": 4.0, "other_cpu_s": other_cpu_s}) is disturbed


def test_wait_for_quiet_without_wait():
    waited = harness.wait_for_quiet(0)
    assert waited["quiet"] is True
    assert waited["waited_s"] == 0.0
