#!/usr/bin/env python3
"""Benchmark the relationship map (stage 02) on the demo bank.

The input is the demo bank of :func:`relmap_utils.demo.generate_demo_bank`
after ingest: the canonical Parquet tables a real run hands to the map stage.
They are prepared once per size into the work folder (generation and ingest
are not measured here; ``bench_ingest.py`` measures ingest).

Scenarios, each measurement in a fresh process:

- ``full``: the whole customer table for one ``as_of`` on DuckDB, built and
  written to Parquet as stage 02 does (:func:`relmap_utils.features.stage.build_partition`).
- ``snapshots``: the map for 12 month-ends, each written as a partition.
- ``compare``: the same three core aggregates (marketing RFM, monthly inflow
  and outflow, holdings by product family) computed by four tools, repeats
  interleaved: relmap's whole map (``relmap_map``), relmap's map narrowed to
  those columns with ``build_map(features=...)`` (``relmap_core``), a
  straightforward pandas groupby version (``pandas``) and one hand-written
  DuckDB SQL query (``duckdb_sql``). The pandas and SQL results are checked
  against relmap's columns, so every tool computes the same numbers. Each
  tool's imports happen before its clock starts.
- ``spark``: the whole map on PySpark ``local[2]`` (optional, for reference).

Examples
--------
    .venv/bin/python benchmarks/bench_map.py --scenarios full --customers 100000 \\
        --transactions 10000000 --out benchmarks/.work/map_full_10m.json
    .venv/bin/python benchmarks/bench_map.py --scenarios snapshots,compare --repeat 3 \\
        --out benchmarks/.work/map_default.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402  (the benchmark folder is not a package)

SCENARIOS = ("full", "snapshots", "compare", "spark")
COMPARE_TOOLS = ("relmap_map", "relmap_core", "pandas", "duckdb_sql")
CHILD_MODES = ("prepare", "full", "snapshots", "spark", *COMPARE_TOOLS)
AS_OF = "2024-06-30"
SNAPSHOTS = 12
# The demo bank is synthetic, so a fixed pseudonym key is harmless here. A real
# engagement reads its key from the variable its engagement.yaml names.
BENCH_KEY = "relmap-benchmark-key-synthetic-data-only"
# Targets.
MAX_FULL_SECONDS = 60.0
MAX_FULL_RSS_MB = 6 * 1024.0
MAX_SNAPSHOTS_SECONDS = 180.0
MIN_SPEEDUP_OVER_PANDAS = 5.0
MAX_RATIO_TO_DUCKDB_SQL = 2.0
TARGET_FULL_SIZE = (100_000, 10_000_000)


def bank_folder(work: Path, customers: int, transactions: int) -> Path:
    """Return the folder of the prepared demo bank of one size."""
    return work / "map" / f"demo-{customers}-{transactions}"


def tables_folder(work: Path, customers: int, transactions: int) -> Path:
    """Return the folder of the canonical Parquet tables of one size."""
    return bank_folder(work, customers, transactions) / "run" / "artifacts" / "00_ingest" / "tables"


def _prepare(work: Path, customers: int, transactions: int, threads: int) -> dict[str, Any]:
    """Generate the demo bank and ingest it, unless the tables of these files exist."""
    import yaml

    from relmap_utils.context import RunContext
    from relmap_utils.demo import demo_bank_is_current, generate_demo_bank
    from relmap_utils.ingest import run_ingest
    from relmap_utils.paths import ENGAGEMENTS_DIR

    folder = bank_folder(work, customers, transactions)
    data = folder / "data"
    marker = folder / "prepared.json"
    started = time.perf_counter()
    generated = False
    if not demo_bank_is_current(data, customers, transactions):
        generate_demo_bank(data, n_customers=customers, n_transactions=transactions)
        generated = True
    generated_at = time.perf_counter()

    bank_hash = file_sha256(data / "demo_bank.json")
    if not generated and marker.is_file() and json.loads(marker.read_text())["demo_bank_sha256"] == bank_hash:
        return {"work_s": 0.0, "reused": True}

    config = yaml.safe_load((ENGAGEMENTS_DIR / "demo" / "engagement.yaml").read_text(encoding="utf-8"))
    config["engine"] = {"backend": "duckdb", "threads": threads}
    run_dir = folder / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    text = yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
    (folder / "engagement.yaml").write_text(text, encoding="utf-8")
    # RunContext.open reads the run's snapshot of the engagement file, as the runner writes it.
    (run_dir / "engagement.yaml").write_text(text, encoding="utf-8")
    os.environ.setdefault("RELMAP_PSEUDONYM_KEY", BENCH_KEY)
    report = run_ingest(RunContext.open(run_dir, engagement_dir=folder))
    finished = time.perf_counter()
    marker.write_text(json.dumps({"demo_bank_sha256": bank_hash}), encoding="utf-8")
    return {
        "work_s": round(finished - started, 3),
        "generate_s": round(generated_at - started, 3),
        "ingest_s": round(finished - generated_at, 3),
        "rows": {name: table["rows"] for name, table in report["tables"].items()},
        "reused": False,
    }


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file, in hex."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Columns of the three core aggregates, as build_map names them.
FAMILIES = ("deposit", "wealth", "loan", "card", "insurance")
CORE_COLUMNS = (
    "days_since_last_purchase",
    "purchase_count",
    "purchase_amount",
    "inflow_monthly_avg",
    "outflow_monthly_avg",
    *(f"{family}_accounts" for family in FAMILIES),
    *(f"{family}_balance" for family in FAMILIES),
)
# The tables the core columns read.
CORE_TABLES = ["customers", "transactions", "accounts", "balances"]
LIABILITY_FAMILIES = ("loan", "card")
HISTORY_MONTHS = 12


def _connect(threads: int, memory_limit: str | None = None) -> Any:
    from relmap_utils.config import Engine
    from relmap_utils.engine import connect

    return connect(Engine(threads=threads, memory_limit=memory_limit))


def _start_clock() -> float:
    """Collect the garbage the imports left, then return the start of a tool's work clock.

    Python's first full garbage collection after the imports walks every
    object they created (Ibis, sqlglot, pandas): about 0.05 s of CPU. It
    runs whenever enough objects have been allocated, so it fell inside a
    tool's work or not by chance. Every tool now collects and freezes its
    imported objects before its clock starts, like the imports themselves.
    """
    gc.collect()
    gc.freeze()
    return time.perf_counter()


def _import_relmap() -> None:
    """Import what relmap's modes use, so that their clock starts after the imports like the peers'.

    Ibis loads its DuckDB backend module (with the SQL dialect) on the first
    ``ibis.duckdb.connect``. It is imported here, before the clock, just as
    ``import duckdb`` comes before the hand-written query's clock. Until
    then the import counted as about 0.3 s of relmap's work time.
    """
    import ibis.backends.duckdb  # noqa: F401

    import relmap_utils.engine  # noqa: F401
    import relmap_utils.features.stage  # noqa: F401
    import relmap_utils.spark  # noqa: F401


def _map_expression(backend: Any, tables_dir: Path, as_of: str) -> Any:
    """Return build_map's expression with the value lists discovered, as run_stage builds it."""
    from relmap_utils.features import MapSpec, build_map, discover_values
    from relmap_utils.spark import read_tables

    tables = read_tables(backend, tables_dir)
    spec, _ = discover_values(tables, MapSpec())
    return build_map(tables, as_of, spec, timezone="Asia/Shanghai"), tables


def _relmap_full(tables_dir: Path, threads: int, scratch: Path, as_of: str, memory_limit: str | None) -> dict[str, Any]:
    from relmap_utils.features import MapSpec, discover_values
    from relmap_utils.features.stage import build_partition
    from relmap_utils.features.windows import parse_date
    from relmap_utils.spark import read_tables

    imported = _start_clock()
    cpu_started = time.process_time()
    backend = _connect(threads, memory_limit)
    tables = read_tables(backend, tables_dir)
    spec, _ = discover_values(tables, MapSpec())
    path = build_partition(backend, tables, parse_date(as_of), spec, scratch / "customer_map", "Asia/Shanghai")
    finished = time.perf_counter()
    return {"work_s": round(finished - imported, 3), "work_cpu_s": round(time.process_time() - cpu_started, 3),
            "import_s": round(imported - STARTED, 3),
            **_parquet_shape(path)}


def _relmap_snapshots(
    tables_dir: Path, threads: int, scratch: Path, as_of: str, memory_limit: str | None
) -> dict[str, Any]:
    from relmap_utils.features import MapSpec, discover_values
    from relmap_utils.features.stage import build_partition
    from relmap_utils.features.windows import month_ends, parse_date
    from relmap_utils.spark import read_tables

    imported = _start_clock()
    cpu_started = time.process_time()
    backend = _connect(threads, memory_limit)
    tables = read_tables(backend, tables_dir)
    spec, _ = discover_values(tables, MapSpec())
    seconds = {}
    rows = 0
    for day in month_ends(parse_date(as_of), SNAPSHOTS):
        began = time.perf_counter()
        path = build_partition(backend, tables, day, spec, scratch / "customer_map", "Asia/Shanghai")
        seconds[day.isoformat()] = round(time.perf_counter() - began, 3)
        rows += _parquet_shape(path)["rows"]
    finished = time.perf_counter()
    return {"work_s": round(finished - imported, 3), "work_cpu_s": round(time.process_time() - cpu_started, 3),
            "import_s": round(imported - STARTED, 3),
            "snapshots": len(seconds), "rows": rows, "seconds_per_snapshot": seconds}


def _relmap_spark(tables_dir: Path, threads: int, scratch: Path, as_of: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from relmap_utils.spark import collect, connect_spark

    imported = _start_clock()
    cpu_started = time.process_time()
    conf = {"spark.sql.shuffle.partitions": str(2 * threads), "spark.sql.warehouse.dir": str(scratch / "warehouse"),
            "spark.driver.memory": "4g"}
    backend = connect_spark(conf, master=f"local[{threads}]", timezone="Asia/Shanghai")
    started = time.perf_counter()
    expression, _ = _map_expression(backend, tables_dir, as_of)
    table = collect(backend, expression.order_by("customer_id"))
    pq.write_table(table, scratch / "map.parquet")
    finished = time.perf_counter()
    backend.disconnect()
    return {"work_s": round(finished - imported, 3), "work_cpu_s": round(time.process_time() - cpu_started, 3),
            "session_start_s": round(started - imported, 3),
            "map_s": round(finished - started, 3), "import_s": round(imported - STARTED, 3),
            "rows": table.num_rows, "columns": table.num_columns}


def _relmap_core(
    tables_dir: Path, threads: int, scratch: Path, as_of: str, narrow: bool, memory_limit: str | None
) -> dict[str, Any]:
    """Run relmap's whole map as stage 02 does, or the map narrowed to the core columns.

    The whole map discovers the value lists and is computed step by step
    into temporary tables (:func:`relmap_utils.features.stage.build_partition`).
    The narrowed map builds only the core features (``build_map(features=...)``)
    from the four tables they read, as one query: it is small enough not to
    need the steps. Their definitions read no value list, so none is discovered.
    """
    from relmap_utils.features import MapSpec, build_map, discover_values
    from relmap_utils.features.builder import TemporaryTables
    from relmap_utils.spark import read_tables

    imported = _start_clock()
    cpu_started = time.process_time()
    backend = _connect(threads, memory_limit)
    path = scratch / "map.parquet"
    if narrow:
        tables = read_tables(backend, tables_dir, CORE_TABLES)
        expression = build_map(tables, as_of, MapSpec(), "Asia/Shanghai", features=CORE_COLUMNS)
        backend.to_parquet(expression.drop("as_of").order_by("customer_id"), path)
    else:
        tables = read_tables(backend, tables_dir)
        spec, _ = discover_values(tables, MapSpec())
        with TemporaryTables(backend) as materialize:
            expression = build_map(tables, as_of, spec, "Asia/Shanghai", materialize=materialize)
            backend.to_parquet(expression.drop("as_of").order_by("customer_id"), path)
    finished = time.perf_counter()
    return {"work_s": round(finished - imported, 3), "work_cpu_s": round(time.process_time() - cpu_started, 3),
            "import_s": round(imported - STARTED, 3),
            **_parquet_shape(path), "output": str(path)}


def _period_boundaries(as_of: str) -> list[int]:
    """Day numbers of the month boundaries back from as_of (relmap_utils.features.windows)."""
    from relmap_utils.features.windows import Windows, day_number, parse_date

    windows = Windows(parse_date(as_of), HISTORY_MONTHS)
    return [day_number(day) for day in windows.boundaries]


def _pandas_core(tables_dir: Path, scratch: Path, as_of: str) -> dict[str, Any]:
    """Compute the three core aggregates the straightforward pandas way: read, filter, groupby, merge."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet  # noqa: F401  (read_parquet's engine, imported on its first call)

    imported = _start_clock()
    cpu_started = time.process_time()
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    as_of_day = (pd.Timestamp(as_of) - pd.Timestamp("1970-01-01")).days
    boundaries = np.array(_period_boundaries(as_of))

    customers = pd.read_parquet(tables_dir / "customers.parquet", columns=["customer_id", "open_date"])
    customers = customers.dropna(subset=["customer_id"])
    customers["open_date"] = pd.to_datetime(customers.open_date)
    starts = customers.groupby("customer_id").open_date.min()
    result = pd.DataFrame(index=starts.index)

    tx = pd.read_parquet(tables_dir / "transactions.parquet",
                         columns=["customer_id", "txn_time", "amount", "direction"])
    tx = tx[(tx.txn_time < end) & tx.customer_id.notna()]
    tx["day"] = (tx.txn_time.dt.normalize() - pd.Timestamp("1970-01-01")).dt.days
    amount = tx.amount.astype("float64")
    tx["flow"] = np.where(tx.direction == "out", -amount.abs(), np.where(tx.direction == "in", amount.abs(), amount))
    tx["purchase"] = tx.flow < 0
    tx["value"] = amount.abs()
    # Month period k (0 = the month ending at as_of): how many boundaries lie on or after the day.
    tx["k"] = (tx.day.to_numpy()[:, None] <= boundaries[None, 1:]).sum(axis=1)

    first_day = tx.day.min()
    open_day = (starts - pd.Timestamp("1970-01-01")).dt.days
    start = open_day.where(open_day >= first_day, first_day).fillna(first_day)
    observed = (start.to_numpy()[:, None] <= boundaries[None, :HISTORY_MONTHS]).sum(axis=1)
    result["months_observed"] = observed

    in_window = tx[tx.k < HISTORY_MONTHS].merge(result[["months_observed"]], left_on="customer_id", right_index=True)
    in_window = in_window[in_window.k < in_window.months_observed]
    in_window["inflow"] = in_window.flow.where(in_window.flow > 0, 0.0)
    in_window["outflow"] = (-in_window.flow).where(in_window.flow < 0, 0.0)
    in_window["purchase_value"] = in_window.value.where(in_window.purchase, 0.0)
    sums = in_window.groupby("customer_id").agg(
        inflow=("inflow", "sum"), outflow=("outflow", "sum"),
        purchase_count=("purchase", "sum"), purchase_amount=("purchase_value", "sum"),
    )
    result = result.join(sums)
    months = result.months_observed.where(result.months_observed > 0)
    result["inflow_monthly_avg"] = result.inflow.fillna(0.0) / months
    result["outflow_monthly_avg"] = result.outflow.fillna(0.0) / months
    result["purchase_count"] = result.purchase_count.fillna(0).astype("int64")
    result["purchase_amount"] = result.purchase_amount.fillna(0.0)
    last_purchase = tx[tx.purchase].groupby("customer_id").day.max()
    result["days_since_last_purchase"] = as_of_day - last_purchase

    accounts = pd.read_parquet(tables_dir / "accounts.parquet",
                               columns=["account_id", "customer_id", "product_family", "open_date", "close_date"])
    day = pd.Timestamp(as_of)
    for column in ("open_date", "close_date"):
        accounts[column] = pd.to_datetime(accounts[column])
    held = accounts[(accounts.open_date.isna() | (accounts.open_date <= day))
                    & (accounts.close_date.isna() | (accounts.close_date > day))]
    counts = held.groupby(["customer_id", "product_family"]).size().unstack(fill_value=0)
    for family in FAMILIES:
        result[f"{family}_accounts"] = counts[family] if family in counts else 0
        result[f"{family}_accounts"] = result[f"{family}_accounts"].fillna(0).astype("int64")

    balances = pd.read_parquet(tables_dir / "balances.parquet", columns=["account_id", "customer_id", "month", "balance"])
    balances["month"] = pd.to_datetime(balances.month)
    balances = balances[balances.month <= day]
    snapshot = balances[balances.month == balances.month.max()]
    families = accounts.dropna(subset=["account_id"]).groupby("account_id").product_family.max()
    snapshot = snapshot.join(families, on="account_id")
    value = snapshot.balance.astype("float64")
    snapshot["value"] = value.where(~snapshot.product_family.isin(LIABILITY_FAMILIES), value.abs())
    sums = snapshot.groupby(["customer_id", "product_family"]).value.sum().unstack(fill_value=0.0)
    for family in FAMILIES:
        result[f"{family}_balance"] = (sums[family] if family in sums else 0.0)
        result[f"{family}_balance"] = result[f"{family}_balance"].fillna(0.0)

    frame = result.reset_index()[["customer_id", *CORE_COLUMNS]].sort_values("customer_id")
    path = scratch / "map.parquet"
    frame.to_parquet(path, index=False)
    finished = time.perf_counter()
    return {"work_s": round(finished - imported, 3), "work_cpu_s": round(time.process_time() - cpu_started, 3),
            "import_s": round(imported - STARTED, 3),
            **_parquet_shape(path), "output": str(path)}


DUCKDB_CORE_SQL = """
-- as_of is a month-end, so month period k of a day is the calendar month k months before as_of.
WITH customers AS (
    SELECT customer_id, min(open_date) AS open_date
    FROM read_parquet($customers) WHERE customer_id IS NOT NULL GROUP BY customer_id
),
tx AS (
    SELECT customer_id,
           CAST(txn_time AS DATE) AS day,
           $as_of_month - (year(txn_time) * 12 + month(txn_time)) AS k,
           CASE direction WHEN 'out' THEN -abs(amount) WHEN 'in' THEN abs(amount) ELSE amount END AS flow,
           abs(amount) AS value
    FROM read_parquet($transactions)
    WHERE txn_time < $end AND customer_id IS NOT NULL
),
first_day AS (SELECT min(day) AS first_day FROM tx),
starts AS (
    SELECT c.customer_id, greatest(coalesce(c.open_date, f.first_day), f.first_day) AS start
    FROM customers c CROSS JOIN first_day f
),
observed AS (
    SELECT customer_id,
           least(12, greatest(0, $as_of_month + 1 - (year(start) * 12 + month(start)))) AS months_observed
    FROM starts
),
flows AS (
    SELECT tx.customer_id,
           sum(CASE WHEN flow > 0 THEN flow ELSE 0 END) AS inflow,
           sum(CASE WHEN flow < 0 THEN -flow ELSE 0 END) AS outflow,
           count(*) FILTER (WHERE flow < 0) AS purchase_count,
           sum(CASE WHEN flow < 0 THEN value ELSE 0 END) AS purchase_amount
    FROM tx JOIN observed o USING (customer_id)
    WHERE tx.k < o.months_observed
    GROUP BY tx.customer_id
),
last_purchase AS (SELECT customer_id, max(day) AS last_day FROM tx WHERE flow < 0 GROUP BY customer_id),
accounts AS (SELECT * FROM read_parquet($accounts)),
held AS (
    SELECT customer_id,
           count(*) FILTER (WHERE product_family = 'deposit') AS deposit_accounts,
           count(*) FILTER (WHERE product_family = 'wealth') AS wealth_accounts,
           count(*) FILTER (WHERE product_family = 'loan') AS loan_accounts,
           count(*) FILTER (WHERE product_family = 'card') AS card_accounts,
           count(*) FILTER (WHERE product_family = 'insurance') AS insurance_accounts
    FROM accounts
    WHERE customer_id IS NOT NULL AND (open_date IS NULL OR open_date <= $as_of)
      AND (close_date IS NULL OR close_date > $as_of)
    GROUP BY customer_id
),
balances AS (SELECT * FROM read_parquet($balances) WHERE month <= $as_of),
snapshot AS (
    SELECT b.customer_id, f.family, CAST(b.balance AS DOUBLE) AS balance
    FROM balances b
    LEFT JOIN (SELECT account_id, max(product_family) AS family FROM accounts
               WHERE account_id IS NOT NULL GROUP BY account_id) f USING (account_id)
    WHERE b.month = (SELECT max(month) FROM balances) AND b.customer_id IS NOT NULL
),
family_balances AS (
    SELECT customer_id,
           sum(CASE WHEN family = 'deposit' THEN balance ELSE 0 END) AS deposit_balance,
           sum(CASE WHEN family = 'wealth' THEN balance ELSE 0 END) AS wealth_balance,
           sum(CASE WHEN family = 'loan' THEN abs(balance) ELSE 0 END) AS loan_balance,
           sum(CASE WHEN family = 'card' THEN abs(balance) ELSE 0 END) AS card_balance,
           sum(CASE WHEN family = 'insurance' THEN balance ELSE 0 END) AS insurance_balance
    FROM snapshot GROUP BY customer_id
)
SELECT o.customer_id,
       date_diff('day', lp.last_day, $as_of) AS days_since_last_purchase,
       coalesce(fl.purchase_count, 0) AS purchase_count,
       coalesce(fl.purchase_amount, 0.0) AS purchase_amount,
       CASE WHEN o.months_observed = 0 THEN NULL ELSE coalesce(fl.inflow, 0.0) / o.months_observed END
           AS inflow_monthly_avg,
       CASE WHEN o.months_observed = 0 THEN NULL ELSE coalesce(fl.outflow, 0.0) / o.months_observed END
           AS outflow_monthly_avg,
       coalesce(h.deposit_accounts, 0) AS deposit_accounts,
       coalesce(h.wealth_accounts, 0) AS wealth_accounts,
       coalesce(h.loan_accounts, 0) AS loan_accounts,
       coalesce(h.card_accounts, 0) AS card_accounts,
       coalesce(h.insurance_accounts, 0) AS insurance_accounts,
       coalesce(fb.deposit_balance, 0.0) AS deposit_balance,
       coalesce(fb.wealth_balance, 0.0) AS wealth_balance,
       coalesce(fb.loan_balance, 0.0) AS loan_balance,
       coalesce(fb.card_balance, 0.0) AS card_balance,
       coalesce(fb.insurance_balance, 0.0) AS insurance_balance
FROM observed o
LEFT JOIN flows fl USING (customer_id)
LEFT JOIN last_purchase lp USING (customer_id)
LEFT JOIN held h USING (customer_id)
LEFT JOIN family_balances fb USING (customer_id)
ORDER BY o.customer_id
"""


def _duckdb_core(tables_dir: Path, threads: int, scratch: Path, as_of: str) -> dict[str, Any]:
    """Compute the three core aggregates with one hand-written DuckDB query over the Parquet files."""
    import duckdb

    day = dt.date.fromisoformat(as_of)
    if (day + dt.timedelta(days=1)).day != 1:
        raise SystemExit(f"the hand-written query counts calendar months and needs a month-end as_of, not {as_of}")
    imported = _start_clock()
    cpu_started = time.process_time()
    connection = duckdb.connect(config={"threads": threads})
    parameters = {
        "customers": str(tables_dir / "customers.parquet"),
        "transactions": str(tables_dir / "transactions.parquet"),
        "accounts": str(tables_dir / "accounts.parquet"),
        "balances": str(tables_dir / "balances.parquet"),
        "end": dt.datetime.combine(day + dt.timedelta(days=1), dt.time()),
        "as_of": day,
        "as_of_month": day.year * 12 + day.month,
    }
    path = scratch / "map.parquet"
    relation = connection.sql(DUCKDB_CORE_SQL, params=parameters)
    relation.write_parquet(str(path))
    finished = time.perf_counter()
    return {"work_s": round(finished - imported, 3), "work_cpu_s": round(time.process_time() - cpu_started, 3),
            "import_s": round(imported - STARTED, 3),
            **_parquet_shape(path), "output": str(path)}


def _parquet_shape(path: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    metadata = pq.read_metadata(path)
    return {"rows": metadata.num_rows, "columns": metadata.num_columns}


def compare_core_outputs(reference: Path, other: Path, tolerance: float = 1e-9) -> list[str]:
    """Return the core columns on which two result files differ (beyond ``tolerance``, relative)."""
    import numpy as np
    import pandas as pd

    left = pd.read_parquet(reference, columns=["customer_id", *CORE_COLUMNS]).sort_values("customer_id")
    right = pd.read_parquet(other, columns=["customer_id", *CORE_COLUMNS]).sort_values("customer_id")
    if left.customer_id.tolist() != right.customer_id.tolist():
        return ["customer_id"]
    differing = []
    for column in CORE_COLUMNS:
        expected = left[column].to_numpy(dtype="float64", na_value=np.nan)
        actual = right[column].to_numpy(dtype="float64", na_value=np.nan)
        if not np.allclose(actual, expected, rtol=tolerance, atol=0.0, equal_nan=True):
            differing.append(column)
    return differing


def run_child(mode: str, args: argparse.Namespace) -> None:
    """Measure one mode once in this process and write its timings to ``args.result``."""
    tables_dir = tables_folder(args.work, args.customers, args.transactions)
    args.work.mkdir(parents=True, exist_ok=True)
    # The output of a compare tool stays for the parent's check, in a folder it names.
    keep = Path(args.keep) if args.keep else None
    with tempfile.TemporaryDirectory(prefix="map-", dir=args.work) as scratch_name:
        scratch = keep or Path(scratch_name)
        scratch.mkdir(parents=True, exist_ok=True)
        if mode in ("full", "snapshots", "relmap_map", "relmap_core"):
            _import_relmap()
        if mode == "prepare":
            measured = _prepare(args.work, args.customers, args.transactions, args.threads)
        elif mode == "full":
            measured = _relmap_full(tables_dir, args.threads, scratch, args.as_of, args.memory_limit)
        elif mode == "snapshots":
            measured = _relmap_snapshots(tables_dir, args.threads, scratch, args.as_of, args.memory_limit)
        elif mode == "spark":
            measured = _relmap_spark(tables_dir, args.threads, scratch, args.as_of)
        elif mode in ("relmap_map", "relmap_core"):
            narrow = mode == "relmap_core"
            measured = _relmap_core(tables_dir, args.threads, scratch, args.as_of, narrow, args.memory_limit)
        elif mode == "pandas":
            measured = _pandas_core(tables_dir, scratch, args.as_of)
        elif mode == "duckdb_sql":
            measured = _duckdb_core(tables_dir, args.threads, scratch, args.as_of)
        else:
            raise SystemExit(f"unknown mode {mode!r}; expected one of {', '.join(CHILD_MODES)}")
    harness.write_child_result(args.result, {"mode": mode, **measured})


def _child_command(args: argparse.Namespace, mode: str, keep: Path | None = None) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode,
               "--customers", str(args.customers), "--transactions", str(args.transactions),
               "--threads", str(args.threads), "--work", str(args.work), "--as-of", args.as_of]
    if args.memory_limit:
        command += ["--memory-limit", args.memory_limit]
    if keep is not None:
        command += ["--keep", str(keep)]
    return command


def _measure(args: argparse.Namespace, mode: str, keep: Path | None = None) -> dict[str, Any]:
    measurement = harness.measure(
        _child_command(args, mode, keep), timeout=args.timeout, quiet_wait=args.quiet_wait, retries=args.retries
    )
    status = "ok" if measurement["ok"] else "FAILED"
    if measurement.get("disturbed"):
        status += " (disturbed by other processes)"
    print(f"  {mode}: {status}, {measurement['wall_s']} s wall, {measurement['max_rss_mb']} MiB peak", flush=True)
    if not measurement["ok"]:
        print(measurement.get("error", ""), file=sys.stderr)
    return measurement


def run_scenarios(args: argparse.Namespace) -> dict[str, Any]:
    """Prepare the data, run the chosen scenarios and return every measurement with summaries."""
    scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenarios {unknown}; expected a subset of {', '.join(SCENARIOS)}")
    env_key = {**os.environ}
    env_key.setdefault("RELMAP_PSEUDONYM_KEY", BENCH_KEY)
    os.environ.update(env_key)

    print(f"preparing the demo bank: {args.customers} customers, {args.transactions} transactions", flush=True)
    prepared = harness.run_measured(_child_command(args, "prepare"), timeout=args.timeout * 2)
    if not prepared["ok"]:
        raise SystemExit(f"preparing the demo bank failed:\n{prepared.get('error', '')}")

    results: dict[str, Any] = {
        "benchmark": "map",
        "machine": harness.machine_info(),
        "customers": args.customers,
        "transactions": args.transactions,
        "as_of": args.as_of,
        "threads": args.threads,
        "memory_limit": args.memory_limit,
        "code_version": _code_version(),
        "prepare": prepared["child"],
        "scenarios": {},
    }
    for scenario in scenarios:
        print(f"scenario {scenario}", flush=True)
        if scenario == "compare":
            results["scenarios"]["compare"] = _run_compare(args)
            continue
        repeat = 1 if scenario in ("full", "spark") and args.repeat > 1 and args.customers >= 100_000 else args.repeat
        measurements = [_measure(args, scenario) for _ in range(repeat)]
        results["scenarios"][scenario] = {"summary": harness.summarize(measurements), "measurements": measurements}
    return results


def _code_version() -> str:
    """Return the repository's commit, with ``-dirty`` when relmap_utils has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=harness.REPO_ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "relmap_utils"], cwd=harness.REPO_ROOT,
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if changed else commit


def _run_compare(args: argparse.Namespace) -> dict[str, Any]:
    outputs = args.work / "map" / "compare"
    if outputs.exists():
        shutil.rmtree(outputs)
    tools: dict[str, list[dict[str, Any]]] = {tool: [] for tool in COMPARE_TOOLS}
    # Interleaved repeats, so that a slow moment of the machine hits every tool alike.
    for index in range(args.repeat):
        for tool in COMPARE_TOOLS:
            keep = outputs / f"{tool}-{index}" if index == 0 else None
            tools[tool].append(_measure(args, tool, keep))
    summaries = {tool: harness.summarize(measurements) for tool, measurements in tools.items()}
    for tool, measurements in tools.items():
        # CPU seconds of the measured section (all threads), much less sensitive to other load than its wall time.
        cpu = [m["child"]["work_cpu_s"] for m in measurements if m["ok"] and "work_cpu_s" in m["child"]]
        if cpu:
            summaries[tool]["median_work_cpu_s"] = round(statistics.median(cpu), 3)

    checks = {}
    reference = outputs / "relmap_core-0" / "map.parquet"
    for tool in ("relmap_map", "pandas", "duckdb_sql"):
        other = outputs / f"{tool}-0" / "map.parquet"
        if reference.is_file() and other.is_file():
            checks[tool] = compare_core_outputs(reference, other)
    ratios = {}
    core = summaries["relmap_core"].get("median_work_s")
    whole = summaries["relmap_map"].get("median_work_s")
    pandas_time = summaries["pandas"].get("median_work_s")
    sql_time = summaries["duckdb_sql"].get("median_work_s")
    if core and pandas_time:
        ratios["pandas_over_relmap_core"] = round(pandas_time / core, 2)
    if whole and pandas_time:
        ratios["pandas_over_relmap_map"] = round(pandas_time / whole, 2)
    if core and sql_time:
        ratios["relmap_core_over_duckdb_sql"] = round(core / sql_time, 2)
    cpu = {tool: summary.get("median_work_cpu_s") for tool, summary in summaries.items()}
    if cpu["relmap_core"] and cpu["pandas"]:
        ratios["cpu_pandas_over_relmap_core"] = round(cpu["pandas"] / cpu["relmap_core"], 2)
    if cpu["relmap_core"] and cpu["duckdb_sql"]:
        ratios["cpu_relmap_core_over_duckdb_sql"] = round(cpu["relmap_core"] / cpu["duckdb_sql"], 2)
    if cpu["duckdb_sql"] and cpu["pandas"]:
        ratios["cpu_pandas_over_duckdb_sql"] = round(cpu["pandas"] / cpu["duckdb_sql"], 2)
    if sql_time and pandas_time:
        ratios["pandas_over_duckdb_sql"] = round(pandas_time / sql_time, 2)
    return {"summaries": summaries, "columns_differing_from_relmap": checks, "ratios": ratios,
            "measurements": tools}


def format_results(results: dict[str, Any]) -> str:
    """Return the results as Markdown tables with the targets."""
    lines = []
    size = f"{results['customers']:,} customers, {results['transactions']:,} transactions"
    rows = []
    for scenario, entry in results["scenarios"].items():
        if scenario == "compare":
            continue
        summary = entry["summary"]
        target = {"full": f"<= {MAX_FULL_SECONDS:.0f} s, <= {MAX_FULL_RSS_MB / 1024:.0f} GiB",
                  "snapshots": f"<= {MAX_SNAPSHOTS_SECONDS:.0f} s"}.get(scenario, "-")
        rows.append([scenario, size, summary.get("median_work_s"), summary.get("median_wall_s"),
                     summary.get("max_rss_mb"), summary.get("runs"), target])
    if rows:
        lines.append(harness.format_table(
            ["scenario", "data", "work s (median)", "process wall s", "peak RSS MiB", "runs", "target"], rows))
    compare = results["scenarios"].get("compare")
    if compare:
        rows = []
        for tool, summary in compare["summaries"].items():
            differing = compare["columns_differing_from_relmap"].get(tool)
            if differing is None:
                check = "-"
            elif differing:
                check = "differs: " + ", ".join(differing)
            else:
                check = "same values"
            rows.append([tool, summary.get("median_work_s"), summary.get("min_work_s"), summary.get("max_work_s"),
                         summary.get("median_work_cpu_s"), summary.get("max_rss_mb"), summary.get("runs"), check])
        lines.append("")
        lines.append(harness.format_table(
            ["tool", "work s (median)", "min", "max", "work CPU s (median)", "peak RSS MiB", "runs",
             "core columns vs relmap_core"], rows))
        lines.append("")
        for name, value in compare["ratios"].items():
            lines.append(f"- {name}: {value}")
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS[:3]),
                        help=f"comma-separated subset of {', '.join(SCENARIOS)} (default full,snapshots,compare)")
    parser.add_argument("--customers", type=int, default=20_000, help="demo bank customers (default 20000)")
    parser.add_argument("--transactions", type=int, default=1_000_000,
                        help="demo bank transactions (default 1000000)")
    parser.add_argument("--as-of", default=AS_OF, help=f"map date, the demo bank's last day by default ({AS_OF})")
    parser.add_argument("--repeat", type=int, default=3,
                        help="fresh processes per measurement; the median is reported (large full runs once)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads and Spark local cores (default 2)")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit of relmap's engine, for example 4GB "
                        "(engine.memory_limit in engagement.yaml; default DuckDB's own, 80%% of RAM)")
    parser.add_argument("--work", type=Path, default=harness.WORK_DIR, help="folder of generated data and scratch")
    parser.add_argument("--out", type=Path, help="results JSON file (default WORK/map_<customers>_<transactions>.json)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a measurement is killed")
    parser.add_argument("--quiet-wait", type=float, default=120.0,
                        help="seconds to wait for an idle machine before each measurement (default 120)")
    parser.add_argument("--retries", type=int, default=1,
                        help="repeats of a measurement that other processes disturbed (default 1)")
    parser.add_argument("--child", choices=CHILD_MODES, help=argparse.SUPPRESS)
    parser.add_argument("--keep", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--child``, one measurement) and print a table."""
    args = _parse(argv)
    args.work = args.work.resolve()
    if args.child:
        run_child(args.child, args)
        return 0
    results = run_scenarios(args)
    out = args.out or args.work / f"map_{args.customers}_{args.transactions}.json"
    harness.write_results(out, results)
    print()
    print(format_results(results))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
