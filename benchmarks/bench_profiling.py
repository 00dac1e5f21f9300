#!/usr/bin/env python3
"""Benchmark relmap's profiling against ydata-profiling and DuckDB on one Parquet table.

The table is the seeded 30-column bank table of ``gen_synth_bank.py`` (in
``RELMAP_SHARED_DIR/bench``): 20 skewed numeric columns with about 5% missing,
8 categorical columns with 5 to 200 levels, a date and a binary target. It is
generated into the work folder when missing.

Tools, each measured in a fresh process per repeat, repeats interleaved so
that a slow moment of the machine hits every tool alike:

- ``relmap``: :func:`relmap_utils.profiling.profile_tables` on an Ibis DuckDB
  table over the Parquet file. The table is not a canonical table and has no
  ingest metadata, so every semantic type is inferred, as for an unmapped
  extract.
- ``duckdb_summarize``: DuckDB's ``SUMMARIZE`` of the file, the engine's own
  one-call profile.
- ``duckdb_aggregate``: one hand-written aggregate query (count, approximate
  distinct, min, max, mean, standard deviation per column), about the least
  work a profile can do.
- ``ydata``: ydata-profiling ``minimal=True`` on the file read into pandas,
  statistics only (``get_description``), without rendering the HTML report.
- ``relmap_report`` and ``ydata_report``: the same plus each tool's HTML
  report written to a file (relmap's ``write_html_report``, ydata-profiling's
  ``to_file``), as a consultant would use them.

relmap runs under this interpreter, the peers under the peers' virtual
environment (``benchmarks/.venv-peers``, made by ``setup_peers.sh``). Every
tool gets ``--threads`` DuckDB threads; ydata-profiling sizes its own thread
pool from the CPU count.

Each child reports ``work_s``, from after its imports to the end of its
work: for relmap opening the DuckDB connection, profiling and (``_report``)
writing the HTML; for ydata-profiling reading the file into pandas,
describing it and (``_report``) writing the HTML. Libraries that would be
imported on first use inside that span are imported before it on both sides
(Ibis's DuckDB backend, pandas' Parquet engine). The parent also records the
whole process (``wall_s``), imports and interpreter start included.

Examples
--------
    .venv/bin/python benchmarks/bench_profiling.py --rows 1000000 --repeat 3 \\
        --out benchmarks/.work/profiling_1m.json
    .venv/bin/python benchmarks/bench_profiling.py --rows 10000000 --repeat 1 \\
        --tools relmap --out benchmarks/.work/profiling_10m.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402  (the benchmark folder is not a package)

TOOLS = ("relmap", "relmap_report", "duckdb_summarize", "duckdb_aggregate", "ydata", "ydata_report")
PEER_TOOLS = ("duckdb_summarize", "duckdb_aggregate", "ydata", "ydata_report")
# Targets for the 1M-row table: ydata-profiling time / relmap time, at least;
# relmap time / SUMMARIZE time, at most.
MIN_SPEEDUP_OVER_YDATA = 4.0
MAX_RATIO_TO_SUMMARIZE = 1.5
# Targets for relmap alone on the 10M-row table.
MAX_SECONDS_10M = 90.0
MAX_RSS_MB_10M = 2048.0
TARGET_10M_ROWS = 10_000_000


def _profile_relmap(data: Path, threads: int, memory_limit: str | None, report: Path | None) -> dict[str, Any]:
    # Ibis imports its DuckDB backend on first use, inside connect(); it is
    # imported here so that, as for ydata-profiling, the work excludes imports.
    import duckdb
    import ibis
    import ibis.backends.duckdb  # noqa: F401

    from relmap_utils.config import Engine
    from relmap_utils.engine import connect
    from relmap_utils.profiling import profile_tables

    if report is not None:
        from relmap_utils.profiling.report import write_html_report

    imported = time.perf_counter()
    backend = connect(Engine(threads=threads, memory_limit=memory_limit))
    table = backend.read_parquet(data, table_name="bank")
    profile = profile_tables({"bank": table})
    profiled = time.perf_counter()
    if report is not None:
        write_html_report(profile, report)
    finished = time.perf_counter()

    table_profile = profile.tables["bank"]
    types: dict[str, int] = {}
    for column in table_profile.columns.values():
        types[column.semantic_type] = types.get(column.semantic_type, 0) + 1
    return {
        "work_s": round(finished - imported, 3),
        "profile_s": round(profiled - imported, 3),
        "import_s": round(imported - STARTED, 3),
        "rows": table_profile.rows,
        "columns": len(table_profile.columns),
        "semantic_types": dict(sorted(types.items())),
        "findings": len(profile.findings),
        "versions": {"duckdb": duckdb.__version__, "ibis": ibis.__version__},
    }


def _duckdb_connection(threads: int) -> Any:
    import duckdb

    return duckdb.connect(config={"threads": threads})


def _summarize_duckdb(data: Path, threads: int) -> dict[str, Any]:
    import duckdb

    imported = time.perf_counter()
    connection = _duckdb_connection(threads)
    rows = connection.execute("SUMMARIZE SELECT * FROM read_parquet($path)", {"path": str(data)}).fetchall()
    finished = time.perf_counter()
    return {
        "work_s": round(finished - imported, 3),
        "import_s": round(imported - STARTED, 3),
        "columns": len(rows),
        "versions": {"duckdb": duckdb.__version__},
    }


def _aggregate_duckdb(data: Path, threads: int) -> dict[str, Any]:
    import duckdb

    imported = time.perf_counter()
    connection = _duckdb_connection(threads)
    schema = connection.execute("DESCRIBE SELECT * FROM read_parquet($path)", {"path": str(data)}).fetchall()
    expressions = []
    for name, dtype, *_ in schema:
        quoted = '"' + name.replace('"', '""') + '"'
        expressions += [f"count({quoted})", f"approx_count_distinct({quoted})", f"min({quoted})", f"max({quoted})"]
        if dtype in ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT"):
            expressions += [f"avg({quoted})", f"stddev_samp({quoted})"]
    query = f"SELECT {', '.join(expressions)} FROM read_parquet($path)"
    values = connection.execute(query, {"path": str(data)}).fetchone()
    finished = time.perf_counter()
    return {
        "work_s": round(finished - imported, 3),
        "import_s": round(imported - STARTED, 3),
        "metrics": len(values),
        "versions": {"duckdb": duckdb.__version__},
    }


def _profile_ydata(data: Path, report: Path | None) -> dict[str, Any]:
    import warnings

    # ydata-profiling 4.18 warns at import that it was renamed; the warning is not a result.
    warnings.simplefilter("ignore")
    import pandas as pd
    import pyarrow.parquet  # noqa: F401  (pandas' Parquet engine, imported on first use otherwise)
    import ydata_profiling

    imported = time.perf_counter()
    frame = pd.read_parquet(data)
    loaded = time.perf_counter()
    profile = ydata_profiling.ProfileReport(frame, minimal=True, progress_bar=False)
    description = profile.get_description()
    profiled = time.perf_counter()
    if report is not None:
        profile.to_file(report, silent=True)
    finished = time.perf_counter()
    return {
        "work_s": round(finished - imported, 3),
        "read_s": round(loaded - imported, 3),
        "profile_s": round(profiled - imported, 3),
        "import_s": round(imported - STARTED, 3),
        "columns": len(description.variables),
        "versions": {"ydata_profiling": ydata_profiling.__version__, "pandas": pd.__version__},
    }


def run_child(tool: str, data: Path, threads: int, memory_limit: str | None, work: Path, result: str) -> None:
    """Measure one tool once in this process and write its timings to ``result``."""
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-", dir=work) as scratch:
        report = Path(scratch) / "report.html" if tool.endswith("_report") else None
        if tool in ("relmap", "relmap_report"):
            measured = _profile_relmap(data, threads, memory_limit, report)
        elif tool == "duckdb_summarize":
            measured = _summarize_duckdb(data, threads)
        elif tool == "duckdb_aggregate":
            measured = _aggregate_duckdb(data, threads)
        elif tool in ("ydata", "ydata_report"):
            measured = _profile_ydata(data, report)
        else:
            raise SystemExit(f"unknown tool {tool!r}; expected one of {', '.join(TOOLS)}")
        if report is not None:
            measured["report_mb"] = round(report.stat().st_size / 1024**2, 2)
    harness.write_child_result(result, {"tool": tool, **measured})


def ensure_table(path: Path, rows: int, python: str) -> None:
    """Generate the benchmark table at ``path`` with ``gen_synth_bank.py`` unless it exists."""
    if path.is_file():
        return
    generator = harness.shared_dir() / "bench" / "gen_synth_bank.py"
    if not generator.is_file():
        raise SystemExit(
            f"table generator not found: {generator}; set RELMAP_SHARED_DIR to the folder that contains bench/"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    subprocess.run([python, str(generator), "--rows", str(rows), "--out", str(temporary)], check=True)
    temporary.replace(path)


def _ratios(summary: dict[str, dict[str, Any]], key: str) -> dict[str, float | None]:
    def value(tool: str) -> float | None:
        return summary.get(tool, {}).get(key)

    def ratio(numerator: str, denominator: str) -> float | None:
        top, bottom = value(numerator), value(denominator)
        return round(top / bottom, 2) if top and bottom else None

    return {
        "ydata_over_relmap": ratio("ydata", "relmap"),
        "ydata_report_over_relmap_report": ratio("ydata_report", "relmap_report"),
        "relmap_over_summarize": ratio("relmap", "duckdb_summarize"),
    }


def check_targets(rows: int, summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Compare the medians with the performance targets that apply at ``rows``.

    The 1M-row ratios are judged on the measured section (``median_work_s``),
    the 10M-row limits on the whole process (``median_wall_s``). The speedup
    over ydata-profiling is judged twice: statistics only, and with both HTML
    reports written.
    """
    ratios = _ratios(summary, "median_work_s")
    targets: dict[str, Any] = {"ratios_work": ratios, "ratios_wall": _ratios(summary, "median_wall_s")}
    if ratios["ydata_over_relmap"] is not None:
        targets["speedup_over_ydata_met"] = ratios["ydata_over_relmap"] >= MIN_SPEEDUP_OVER_YDATA
    if ratios["ydata_report_over_relmap_report"] is not None:
        speedup = ratios["ydata_report_over_relmap_report"]
        targets["speedup_over_ydata_with_reports_met"] = speedup >= MIN_SPEEDUP_OVER_YDATA
    if ratios["relmap_over_summarize"] is not None:
        targets["within_summarize_met"] = ratios["relmap_over_summarize"] <= MAX_RATIO_TO_SUMMARIZE
    relmap = summary.get("relmap", {})
    if rows >= TARGET_10M_ROWS and relmap.get("runs"):
        targets["seconds_10m_met"] = relmap["median_wall_s"] <= MAX_SECONDS_10M
        targets["memory_10m_met"] = relmap["max_rss_mb"] <= MAX_RSS_MB_10M
    return targets


def _duckdb_versions(measurements: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    versions = {}
    for tool, runs in measurements.items():
        for run in runs:
            version = run["child"].get("versions", {}).get("duckdb")
            if version:
                versions[tool] = version
    return versions


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the benchmark table (default 1000000)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per tool; the median is reported")
    parser.add_argument("--out", type=Path, help="results JSON file (default WORK/profiling_<rows>.json)")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {', '.join(TOOLS)}")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads for every tool (default 2)")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit for relmap, for example 1GB (default none)")
    parser.add_argument("--work", type=Path, default=harness.WORK_DIR, help="folder of generated data")
    parser.add_argument("--data", type=Path, help="Parquet file to profile (default WORK/bank_<rows>.parquet)")
    parser.add_argument("--peer-python", default=str(harness.PEERS_PYTHON), help="interpreter of the peer tools")
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
    parser.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--child``, one measurement) and print a table."""
    args = _parse(argv)
    data = args.data or args.work / f"bank_{args.rows}.parquet"
    if args.child:
        run_child(args.child, data, args.threads, args.memory_limit, args.work, args.result)
        return 0

    tools = [tool.strip() for tool in args.tools.split(",") if tool.strip()]
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        raise SystemExit(f"unknown tools: {', '.join(unknown)}; expected a subset of {', '.join(TOOLS)}")
    ensure_table(data, args.rows, sys.executable)
    out = args.out or args.work / f"profiling_{args.rows}.json"

    results: dict[str, Any] = {
        "benchmark": "profiling",
        "rows": args.rows,
        "data": str(data),
        "data_mb": round(data.stat().st_size / 1024**2, 1),
        "threads": args.threads,
        "memory_limit": args.memory_limit,
        "repeat": args.repeat,
        "machine": harness.machine_info(),
        "measurements": {tool: [] for tool in tools},
    }
    script = str(Path(__file__).resolve())
    for repeat in range(args.repeat):
        for tool in tools:
            python = args.peer_python if tool in PEER_TOOLS else sys.executable
            command = [
                python, script, "--child", tool, "--data", str(data),
                "--threads", str(args.threads), "--work", str(args.work),
            ]
            if args.memory_limit:
                command += ["--memory-limit", args.memory_limit]
            measurement = harness.measure(
                command, timeout=args.timeout, quiet_wait=args.quiet_wait, retries=args.retries
            )
            results["measurements"][tool].append(measurement)
            seconds = measurement["child"].get("work_s", "failed")
            print(
                f"[{repeat + 1}/{args.repeat}] {tool}: {seconds} s, {measurement['max_rss_mb']} MiB, "
                f"other processes {measurement['other_cpu_s']} CPU s, attempt {measurement['attempts']}",
                flush=True,
            )
            if not measurement["ok"]:
                print(measurement["error"], file=sys.stderr)

    results["summary"] = {tool: harness.summarize(results["measurements"][tool]) for tool in tools}
    results["targets"] = check_targets(args.rows, results["summary"])
    results["duckdb_versions"] = _duckdb_versions(results["measurements"])
    if len(set(results["duckdb_versions"].values())) > 1:
        print(
            f"warning: the tools ran on different DuckDB versions {results['duckdb_versions']}; "
            "run setup_peers.sh to align the peers' DuckDB with relmap's pin",
            file=sys.stderr,
        )
    harness.write_results(out, results)

    rows = [
        (tool, s.get("median_work_s"), s.get("median_wall_s"), s.get("max_rss_mb"), f"{s['runs']}/{args.repeat}")
        for tool, s in results["summary"].items()
    ]
    print(f"\nprofiling, {args.rows:,} rows x 30 columns, {args.threads} threads")
    print(harness.format_table(("tool", "median work s", "median process s", "peak RSS MiB", "runs"), rows))
    print(f"targets: {results['targets']}")
    print(f"results: {out}")
    failed = any(s["failed"] for s in results["summary"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
