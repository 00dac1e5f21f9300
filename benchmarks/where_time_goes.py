#!/usr/bin/env python3
"""Show where relmap's profiling of one Parquet file, or the relationship map, spends its time.

Runs :func:`relmap_utils.profiling.profile_tables` once under cProfile and
prints, per pass of :mod:`relmap_utils.profiling.profiler`, the wall time
and how much of it went to building Ibis expressions and compiling them to
SQL (Python) versus executing the SQL in DuckDB. A first, unprofiled call
warms the file cache and imports, so the profiled call measures a steady state.
cProfile itself slows the Python side by roughly a third, so the Python
shares printed here are upper bounds.

With ``--map``, the argument is instead a folder of canonical Parquet tables
(the ``00_ingest/tables`` folder of a run), and the script builds the
relationship map at one ``as_of`` the way stage 02 does on DuckDB. It prints
each step the map is computed in (a shared table or a family, each a
temporary table), with its seconds and rows, then the final join.

With ``--map-core`` it times the phases of the map narrowed to the core
columns of ``bench_map.py --scenarios compare`` (connect, read, build the
expression, compile, execute) in wall and CPU seconds, and lists the
slowest DuckDB operators of that query and of the hand-written one.

Usage::

    .venv/bin/python benchmarks/where_time_goes.py benchmarks/.work/bank_1000000.parquet
    .venv/bin/python benchmarks/where_time_goes.py --map \
        benchmarks/.work/map/demo-20000-1000000/run/artifacts/00_ingest/tables
    .venv/bin/python benchmarks/where_time_goes.py --map-core \
        benchmarks/.work/map/demo-20000-1000000/run/artifacts/00_ingest/tables
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path
from typing import Any

# Functions whose cumulative time is reported, by (file name suffix, function name).
PASSES = {
    "whole profile": ("profiling/profiler.py", "profile_tables"),
    "summary pass": ("profiling/profiler.py", "_summary_pass"),
    "pattern pass": ("profiling/profiler.py", "_pattern_pass"),
    "distribution pass": ("profiling/profiler.py", "_distribution_pass"),
    "sample pass (quantiles, correlations)": ("profiling/profiler.py", "_sample_pass"),
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


def map_steps(tables_dir: Path, as_of: str, threads: int, memory_limit: str | None) -> None:
    """Build the map of ``tables_dir`` at ``as_of`` step by step and print each step's time."""
    import tempfile

    from relmap_utils.config import Engine
    from relmap_utils.engine import connect
    from relmap_utils.features import MapSpec, build_map, discover_values
    from relmap_utils.features.builder import TemporaryTables
    from relmap_utils.spark import read_tables

    backend = connect(Engine(threads=threads, memory_limit=memory_limit))
    started = time.perf_counter()
    tables = read_tables(backend, tables_dir)
    spec, _ = discover_values(tables, MapSpec())
    print(f"read the tables and discover the value lists: {time.perf_counter() - started:.2f} s")
    print("| step (shared table or family) | seconds | rows | first columns |")
    print("|---|---|---|---|")

    class Timed(TemporaryTables):
        def __call__(self, table, label=""):  # type: ignore[no-untyped-def]
            began = time.perf_counter()
            result = super().__call__(table, label)
            seconds = time.perf_counter() - began
            rows = self.backend.raw_sql(f'SELECT count(*) FROM temp.main."{self.names[-1]}"').fetchone()[0]
            print(f"| {label} | {seconds:.2f} | {rows:,} | {', '.join(table.columns[:4])} |", flush=True)
            return result

    began = time.perf_counter()
    with Timed(backend) as materialize, tempfile.TemporaryDirectory() as scratch:
        expression = build_map(tables, as_of, spec, materialize=materialize)
        joined = time.perf_counter()
        backend.to_parquet(expression.order_by("customer_id"), Path(scratch) / "map.parquet")
        finished = time.perf_counter()
    print(f"| final join, sorted, to Parquet | {finished - joined:.2f} | | |")
    print(f"whole map: {finished - began:.2f} s")


def _top_operators(connection: Any, sql: str, params: dict[str, Any] | None, count: int = 8) -> list[str]:
    """Run ``EXPLAIN ANALYZE`` on ``sql`` and return its ``count`` slowest operators as text lines."""
    import json

    plan = json.loads(connection.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).fetchall()[0][1])
    found: list[tuple[float, str]] = []

    def walk(node: dict[str, Any]) -> None:
        name = node.get("operator_name") or node.get("operator_type") or "?"
        extra = node.get("extra_info") or {}
        detail = extra.get("Aggregates") or extra.get("Conditions") or extra.get("Projections") or ""
        found.append((node.get("operator_timing", 0.0), f"{name.strip()} rows={node.get('operator_cardinality')} "
                      f"{str(detail)[:90]}"))
        for child in node.get("children", []):
            walk(child)

    for child in plan.get("children", []):
        walk(child)
    found.sort(reverse=True)
    lines = [f"DuckDB: {plan.get('latency', 0):.3f} s latency, {plan.get('cpu_time', 0):.3f} s CPU (all threads)"]
    lines += [f"  {seconds:.3f} s  {text}" for seconds, text in found[:count]]
    return lines


def map_core(tables_dir: Path, as_of: str, threads: int) -> None:
    """Time each phase of relmap's narrowed map (the benchmark's ``relmap_core``) and of the hand-written query.

    Prints the wall and CPU seconds of connecting, reading the tables,
    building the Ibis expression, compiling it to SQL and executing it into
    Parquet, then the slowest DuckDB operators of each query.
    """
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import duckdb
    import ibis.backends.duckdb  # noqa: F401  (imported before the clock, as in bench_map.py)

    import bench_map
    from relmap_utils.features import MapSpec, build_map
    from relmap_utils.spark import read_tables

    # Collect the imports' garbage before the clock, as bench_map.py does.
    marks = [("start", bench_map._start_clock(), time.process_time())]

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter(), time.process_time()))

    with tempfile.TemporaryDirectory() as scratch:
        backend = bench_map._connect(threads)
        mark("connect")
        tables = read_tables(backend, tables_dir, bench_map.CORE_TABLES)
        mark("read_tables (views)")
        expression = build_map(tables, as_of, MapSpec(), "Asia/Shanghai", features=bench_map.CORE_COLUMNS)
        expression = expression.drop("as_of").order_by("customer_id")
        mark("build the Ibis expression")
        sql = backend.compile(expression)
        mark("compile to SQL")
        backend.raw_sql(f"COPY ({sql}) TO '{Path(scratch) / 'map.parquet'}' (FORMAT parquet)")
        mark("execute and write Parquet")
    print("relmap_core, phase by phase:")
    print("| phase | wall s | CPU s |")
    print("|---|---|---|")
    for (_, wall0, cpu0), (name, wall, cpu) in zip(marks, marks[1:]):
        print(f"| {name} | {wall - wall0:.3f} | {cpu - cpu0:.3f} |")
    print(f"| total | {marks[-1][1] - marks[0][1]:.3f} | {marks[-1][2] - marks[0][2]:.3f} |")
    print(f"compiled SQL: {len(sql):,} characters")
    for line in _top_operators(backend.con, sql, None):
        print(line)

    day = bench_map.dt.date.fromisoformat(as_of)
    connection = duckdb.connect(config={"threads": threads})
    params = {name: str(tables_dir / f"{name}.parquet") for name in bench_map.CORE_TABLES}
    params.update(end=bench_map.dt.datetime.combine(day + bench_map.dt.timedelta(days=1), bench_map.dt.time()),
                  as_of=day, as_of_month=day.year * 12 + day.month)
    print("hand-written query (bench_map.DUCKDB_CORE_SQL):")
    for line in _top_operators(connection, bench_map.DUCKDB_CORE_SQL, params):
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="Parquet file to profile (with --map: folder of canonical tables)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    parser.add_argument("--save", type=Path, help="also write the raw cProfile data to this file")
    parser.add_argument("--map", action="store_true", help="time the relationship map's steps instead")
    parser.add_argument("--map-core", action="store_true",
                        help="time the phases of the map narrowed to the benchmark's core columns, and show the "
                        "slowest DuckDB operators of it and of the hand-written query")
    parser.add_argument("--as-of", default="2024-06-30", help="map date with --map (default 2024-06-30)")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit with --map, for example 4GB")
    args = parser.parse_args(argv)
    if args.map_core:
        map_core(args.data, args.as_of, args.threads)
        return 0
    if args.map:
        map_steps(args.data, args.as_of, args.threads, args.memory_limit)
        return 0

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
