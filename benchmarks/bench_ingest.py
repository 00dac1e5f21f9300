#!/usr/bin/env python3
"""Benchmark relmap's ingest of a GBK CSV with Chinese headers.

The input is the seeded transaction extract of ``gen_gbk_transactions.py``
(GBK, CRLF, 14 columns, formatted amounts and Chinese dates), generated into
the work folder when missing. Two modes, each measured in a fresh process per
repeat:

- ``stage``: the whole ingest stage, :func:`relmap_utils.ingest.run_ingest`,
  through an engagement in a temporary folder: encoding and separator
  detection, transcoding to UTF-8, typing, pseudonyms of the key columns, the
  personal-data scan, and the canonical ``transactions.parquet`` with
  ``columns.json`` and ``ingest_report.json``.
- ``read``: :func:`relmap_utils.ingest.read_source` of the same source and
  the typed table written to Parquet, without privacy treatments. The
  difference to ``stage`` is the cost of pseudonyms and the scan.

The pseudonym key is a random key made for each child process, never
printed or stored.

Examples
--------
    .venv/bin/python benchmarks/bench_ingest.py --rows 1000000 --repeat 3 \\
        --out benchmarks/.work/ingest_1m.json
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402  (the benchmark folder is not a package)

MODES = ("stage", "read")
# Target for the 1M-row file: the ingest stage takes at most this many seconds.
MAX_SECONDS_1M = 30.0
TARGET_ROWS = 1_000_000
GENERATOR = Path(__file__).resolve().parent / "gen_gbk_transactions.py"

# Mapping of the extract's headers onto the canonical transactions table.
# Every mapped column has a declared role, as a consultant would write after a
# first look at the file. 记账日期, 网点号 and 摘要 stay unmapped, so type
# guessing also runs.
COLUMNS = {
    "流水号": {"name": "txn_id", "role": "identifier"},
    "客户号": {"name": "customer_id", "role": "identifier"},
    "账号": {"name": "account_id", "role": "identifier"},
    "交易时间": {"name": "txn_time", "role": "datetime"},
    "交易金额": {"name": "amount", "role": "amount"},
    "借贷标志": {"name": "direction", "role": "category", "values": {"借": "out", "贷": "in"}},
    "渠道": {"name": "channel", "role": "category"},
    "商户类别": {"name": "merchant_category", "role": "category"},
    "交易类型": {"name": "txn_type", "role": "category"},
    "对手方账号": {"name": "counterparty_id", "role": "identifier"},
    "交易后余额": {"name": "balance_after", "role": "amount"},
}


def engagement_config(csv: Path, threads: int) -> dict[str, Any]:
    """Return the engagement.yaml content that ingests ``csv`` as the transactions table."""
    return {
        "name": "bench_ingest",
        "client": "基准测试银行",
        "engine": {"backend": "duckdb", "threads": threads},
        "sources": [
            {
                "name": "transactions",
                "path": str(csv),
                "table": "transactions",
                "columns": COLUMNS,
                "missing_values": ["", "NULL"],
            }
        ],
        "stages": {"ingest": {"enabled": True}, "profiling": {"enabled": False}},
    }


def _make_run(folder: Path, csv: Path, threads: int) -> Path:
    import yaml

    engagement_dir = folder / "bench_ingest"
    run_dir = engagement_dir / "runs" / "bench"
    run_dir.mkdir(parents=True)
    text = yaml.safe_dump(engagement_config(csv, threads), allow_unicode=True, sort_keys=False)
    (engagement_dir / "engagement.yaml").write_text(text, encoding="utf-8")
    # RunContext.open reads the run's snapshot of the engagement file, as the runner writes it.
    (run_dir / "engagement.yaml").write_text(text, encoding="utf-8")
    return run_dir


def _null_counts(parquet: Path) -> dict[str, int]:
    # A fast ingest that turned values into NULLs would be wrong, so the
    # results show how many NULLs each output column holds.
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    return {name: table[name].null_count for name in table.column_names}


def _ingest_stage(csv: Path, threads: int, scratch: Path) -> dict[str, Any]:
    import json

    from relmap_utils.context import RunContext
    from relmap_utils.ingest import run_ingest

    imported = time.perf_counter()
    run_dir = _make_run(scratch, csv, threads)
    report = run_ingest(RunContext.open(run_dir))
    finished = time.perf_counter()

    columns = json.loads((run_dir / "artifacts" / "00_ingest" / "columns.json").read_text(encoding="utf-8"))
    source = report["sources"][0]
    return {
        "work_s": round(finished - imported, 3),
        "import_s": round(imported - STARTED, 3),
        "rows": report["tables"]["transactions"]["rows"],
        "encoding": source.get("encoding"),
        "separator": source.get("separator"),
        "column_types": {name: meta["type"] for name, meta in columns["transactions"].items()},
        "pseudonymized": report["privacy"]["pseudonymized"].get("transactions", []),
        "null_counts": _null_counts(run_dir / report["tables"]["transactions"]["file"]),
    }


def _read_and_write(csv: Path, threads: int, scratch: Path) -> dict[str, Any]:
    from relmap_utils.config import Engine, parse_engagement
    from relmap_utils.engine import connect
    from relmap_utils.ingest import read_source

    imported = time.perf_counter()
    engagement = parse_engagement(engagement_config(csv, threads), scratch / "engagement.yaml")
    backend = connect(Engine(threads=threads))
    result = read_source(engagement.sources[0], scratch, backend, temp_dir=scratch)
    backend.to_parquet(result.table, scratch / "transactions.parquet")
    finished = time.perf_counter()

    nulls = _null_counts(scratch / "transactions.parquet")
    return {
        "work_s": round(finished - imported, 3),
        "import_s": round(imported - STARTED, 3),
        "rows": int(result.info.get("rows") or 0),
        "encoding": result.info.get("encoding"),
        "separator": result.info.get("separator"),
        "column_types": result.column_types,
        "null_counts": nulls,
    }


def run_child(mode: str, csv: Path, threads: int, work: Path, result: str) -> None:
    """Measure one mode once in this process and write its timings to ``result``."""
    # Scratch files go in the work folder, not /tmp, because /tmp is
    # memory-backed (tmpfs) on some machines and would compete for memory.
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ingest-", dir=work) as scratch:
        if mode == "stage":
            measured = _ingest_stage(csv, threads, Path(scratch))
        elif mode == "read":
            measured = _read_and_write(csv, threads, Path(scratch))
        else:
            raise SystemExit(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    harness.write_child_result(result, {"mode": mode, **measured})


def ensure_csv(path: Path, rows: int, python: str) -> None:
    """Generate the GBK extract at ``path`` unless it exists."""
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, str(GENERATOR), "--rows", str(rows), "--out", str(path)], check=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="data rows of the CSV (default 1000000)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per mode; the median is reported")
    parser.add_argument("--out", type=Path, help="results JSON file (default WORK/ingest_<rows>.json)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {', '.join(MODES)}")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    parser.add_argument("--work", type=Path, default=harness.WORK_DIR, help="folder of generated data and scratch")
    parser.add_argument("--data", type=Path, help="CSV to ingest (default WORK/transactions_<rows>_gbk.csv)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a measurement is killed")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="seconds to wait at most, before each measurement, for the machine to fall idle (default 0: no wait)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=0,
        help="repeats of a measurement during which other processes used over a tenth of the CPUs (default 0)",
    )
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--child``, one measurement) and print a table."""
    args = _parse(argv)
    csv = args.data or args.work / f"transactions_{args.rows}_gbk.csv"
    if args.child:
        run_child(args.child, csv, args.threads, args.work, args.result)
        return 0

    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise SystemExit(f"unknown modes: {', '.join(unknown)}; expected a subset of {', '.join(MODES)}")
    ensure_csv(csv, args.rows, sys.executable)
    out = args.out or args.work / f"ingest_{args.rows}.json"

    env = dict(os.environ)
    results: dict[str, Any] = {
        "benchmark": "ingest",
        "rows": args.rows,
        "data": str(csv),
        "data_mb": round(csv.stat().st_size / 1024**2, 1),
        "threads": args.threads,
        "repeat": args.repeat,
        "machine": harness.machine_info(),
        "measurements": {mode: [] for mode in modes},
    }
    script = str(Path(__file__).resolve())
    for repeat in range(args.repeat):
        for mode in modes:
            env["RELMAP_PSEUDONYM_KEY"] = secrets.token_hex(32)
            command = [
                sys.executable, script, "--child", mode, "--data", str(csv),
                "--threads", str(args.threads), "--work", str(args.work),
            ]
            measurement = harness.measure(
                command, env=env, timeout=args.timeout, quiet_wait=args.quiet_wait, retries=args.retries
            )
            results["measurements"][mode].append(measurement)
            seconds = measurement["child"].get("work_s", "failed")
            print(
                f"[{repeat + 1}/{args.repeat}] {mode}: {seconds} s, {measurement['max_rss_mb']} MiB, "
                f"other processes {measurement['other_cpu_s']} CPU s, attempt {measurement['attempts']}",
                flush=True,
            )
            if not measurement["ok"]:
                print(measurement["error"], file=sys.stderr)

    results["summary"] = {mode: harness.summarize(results["measurements"][mode]) for mode in modes}
    stage = results["summary"].get("stage", {})
    if args.rows >= TARGET_ROWS and stage.get("runs"):
        results["targets"] = {"seconds_1m_met": stage["median_wall_s"] <= MAX_SECONDS_1M}
    harness.write_results(out, results)

    rows = [
        (mode, s.get("median_work_s"), s.get("median_wall_s"), s.get("max_rss_mb"), f"{s['runs']}/{args.repeat}")
        for mode, s in results["summary"].items()
    ]
    print(f"\ningest, GBK CSV, {args.rows:,} rows x 14 columns ({results['data_mb']} MiB), {args.threads} threads")
    print(harness.format_table(("mode", "median work s", "median process s", "peak RSS MiB", "runs"), rows))
    if "targets" in results:
        print(f"targets: {results['targets']}")
    print(f"results: {out}")
    failed = any(s["failed"] for s in results["summary"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
