#!/usr/bin/env python3
"""Show where relmap's profiling of one Parquet file spends its time.

Runs :func:`relmap_utils.profiling.profile_tables` once under cProfile and
prints, per pass of :mod:`relmap_utils.profiling.profiler`, the wall time
and how much of it went to building Ibis expressions and compiling them to
SQL (Python) versus executing the SQL in DuckDB. A first, unprofiled call
warms the file cache and imports, so the profiled call measures a steady state.
cProfile itself slows the Python side by roughly a third, so the Python
shares printed here are upper bounds.

Usage::

    .venv/bin/python benchmarks/where_time_goes.py benchmarks/.work/bank_1000000.parquet
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

# Functions whose cumulative time is reported, by (file name suffix, function name).
PASSES = {
    "whole profile": ("profiling/profiler.py", "profile_tables"),
    "summary pass": ("profiling/profiler.py", "_summary_pass"),
    "pattern pass": ("profiling/profiler.py", "_pattern_pass"),
    "distribution pass": ("profiling/profiler.py", "_distribution_pass"),
    "correlation pass": ("profiling/profiler.py", "_correlation_pass"),
    "top values": ("profiling/stats.py", "top_values"),
    "rows per month": ("profiling/stats.py", "rows_per_month"),
    "findings and score": ("profiling/findings.py", "collect_findings"),
}
# Steps that separate the Python side from DuckDB, summed over all passes.
# DuckDB 1.5's methods are C code, which cProfile lists under the file name
# "~" with names such as "<built-in method _duckdb.sql>".
STEPS = {
    "Ibis to SQL (compile)": ("ibis/backends/sql/__init__.py", "compile"),
    "DuckDB parse and plan (sql)": ("~", "_duckdb.sql>"),
    "DuckDB execution (to_arrow_table)": ("~", "_duckdb.to_arrow_table>"),
}


def cumulative(stats: pstats.Stats, suffix: str, function: str) -> tuple[int, float]:
    """Return the call count and cumulative seconds of the function matching ``suffix`` and ``function``."""
    calls, seconds = 0, 0.0
    for (file, _, name), (_, primitive, _, total, _) in stats.stats.items():  # type: ignore[attr-defined]
        if file.endswith(suffix) and (name == function or (file == "~" and name.endswith(function))):
            calls += primitive
            seconds += total
    return calls, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="Parquet file to profile")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    parser.add_argument("--save", type=Path, help="also write the raw cProfile data to this file")
    args = parser.parse_args(argv)

    from relmap_utils.config import Engine
    from relmap_utils.engine import connect
    from relmap_utils.profiling import profile_tables

    backend = connect(Engine(threads=args.threads))
    table = backend.read_parquet(args.data, table_name="bank")
    started = time.perf_counter()
    profile_tables({"bank": table})
    unprofiled = time.perf_counter() - started

    profiler = cProfile.Profile()
    profiler.enable()
    profile_tables({"bank": table})
    profiler.disable()
    if args.save:
        profiler.dump_stats(args.save)
    stats = pstats.Stats(profiler)

    print(f"profile_tables without cProfile: {unprofiled:.2f} s")
    print("| step | calls | seconds under cProfile |")
    print("|---|---|---|")
    for label, (suffix, function) in {**PASSES, **STEPS}.items():
        calls, seconds = cumulative(stats, suffix, function)
        print(f"| {label} | {calls} | {seconds:.2f} |")
    _, whole = cumulative(stats, *PASSES["whole profile"])
    _, compiled = cumulative(stats, *STEPS["Ibis to SQL (compile)"])
    _, planned = cumulative(stats, *STEPS["DuckDB parse and plan (sql)"])
    _, executed = cumulative(stats, *STEPS["DuckDB execution (to_arrow_table)"])
    rest = whole - compiled - planned - executed
    print(f"| rest: building Ibis expressions and other Python | | {rest:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
