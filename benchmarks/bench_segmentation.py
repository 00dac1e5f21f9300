#!/usr/bin/env python3
"""Benchmark stage 03 (segmentation) on a synthetic map of many customers.

The input is one map partition of ``--customers`` customers and 50 numeric
features (``f01``..``f50`` plus ``aum``, the RFM columns and
``products_held``), generated with a seeded NumPy generator around eight
latent groups and written to Parquet in a child process, so generation does
not count. A second child process runs what the stage computes: rule tiers
(four rules in 万元), RFM scores, and clustering with k chosen from 3 to 10
by silhouette on a stratified sample of 100,000 customers, five bootstrap
refits and the chunked assignment of every customer, then writes
``customer_segments.parquet``. It reports the wall time of that work and
the peak resident memory of the process (``ru_maxrss``), and the process's
CPU time (user plus system, imports included), which other processes on a
shared machine do not inflate as they inflate the wall time.

Targets: at most 120 s and 6 GB at 1,000,000 customers on 2 cores.

Examples
--------
    .venv/bin/python benchmarks/bench_segmentation.py --customers 1000000 --out benchmarks/.work/segmentation_1m.json
    .venv/bin/python benchmarks/bench_segmentation.py --customers 20000   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAX_SECONDS = 120.0
MAX_RSS_MB = 6 * 1024.0
FEATURES = 50
GROUPS = 8
AS_OF = "2024-06-30"


def prepare(folder: Path, customers: int, seed: int) -> None:
    """Write the synthetic map partition and a feature dictionary under ``folder``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    group = rng.integers(0, GROUPS, customers)
    centres = rng.normal(0, 2.0, (GROUPS, FEATURES))
    data = {"customer_id": [f"{number:024x}" for number in rng.permutation(customers * 7)[:customers]]}
    values = centres[group] + rng.normal(0, 1.0, (customers, FEATURES))
    for j in range(FEATURES):
        data[f"f{j + 1:02d}"] = values[:, j].astype("float64")
    data["aum"] = np.round(np.exp(9 + values[:, 0] + rng.normal(0, 0.5, customers)), 2)
    bought = rng.random(customers) < 0.8
    data["days_since_last_purchase"] = np.where(bought, rng.integers(0, 365, customers), np.nan)
    data["purchase_count"] = np.where(bought, rng.poisson(np.exp(1 + values[:, 1] / 3)), 0)
    data["purchase_amount"] = np.where(bought, np.round(rng.lognormal(7, 1.2, customers), 2), 0.0)
    data["products_held"] = rng.poisson(2, customers)
    frame = pd.DataFrame(data)
    target = folder / "artifacts" / "02_map" / "customer_map" / f"as_of={AS_OF}" / "part-0.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(target, index=False)
    units = [("aum", "yuan"), ("purchase_amount", "yuan"), ("purchase_count", "count"), ("products_held", "count")]
    pd.DataFrame(units, columns=["name", "unit"]).to_parquet(
        folder / "artifacts" / "02_map" / "feature_dictionary.parquet", index=False
    )


def measure(folder: Path) -> dict[str, float]:
    """Run tiers, RFM and clustering on the prepared map and return seconds and peak RSS."""
    from relmap_utils import engine
    from relmap_utils.segmentation.params import parse_params
    from relmap_utils.segmentation.stage import open_map, segment_map, write_artifacts

    params = parse_params({
        "tiers": {"amount_unit": "万元", "rules": [
            {"code": "private", "when": {"aum": {"min": 600}}},
            {"code": "wealth", "when": {"aum": {"min": 50}}},
            {"code": "affluent", "when": [{"aum": {"min": 5}}, {"products_held": {"min": 4}}]},
            {"code": "mass"},
        ]},
        "clusters": {"features": [f"f{j + 1:02d}" for j in range(FEATURES)], "k": [3, 10], "sample_size": 100_000,
                     "bootstrap": 5, "random_state": 0},
        "migration": {"enabled": False},
    })
    started = time.perf_counter()
    backend = engine.connect()
    table, dates = open_map(backend, folder)
    units = {"aum": "yuan", "purchase_amount": "yuan", "purchase_count": "count", "products_held": "count"}
    result = segment_map(backend, table, dates, dates[-1], params, units, __import__("pandas").DataFrame())
    out = folder / "artifacts" / "03_segmentation"
    out.mkdir(parents=True, exist_ok=True)
    write_artifacts(backend, out, result)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = usage.ru_utime + usage.ru_stime
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    clusters = result["summary"]["clusters"]
    return {"seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1), "peak_rss_mb": round(peak_mb), "k": clusters["k"],
            "sample_size": clusters["sample_size"], "model": clusters["model"],
            "stability_ari_mean": clusters["stability"]["ari_mean"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20241205)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--child", choices=("prepare", "measure"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "prepare":
        prepare(args.folder, args.customers, args.seed)
        return 0
    if args.child == "measure":
        print(json.dumps(measure(args.folder)))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench_segmentation_") as work:
        folder = Path(work)
        base = [sys.executable, __file__, "--folder", str(folder), "--customers", str(args.customers),
                "--seed", str(args.seed)]
        began = time.perf_counter()
        subprocess.run([*base, "--child", "prepare"], check=True)
        generated = time.perf_counter() - began
        output = subprocess.run([*base, "--child", "measure"], check=True, capture_output=True, text=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    figures.update({"customers": args.customers, "features": FEATURES, "generate_seconds": round(generated, 1),
                    "cpus": os.cpu_count(), "within_target": figures["seconds"] <= MAX_SECONDS
                    and figures["peak_rss_mb"] <= MAX_RSS_MB})
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
