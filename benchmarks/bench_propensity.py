#!/usr/bin/env python3
"""Benchmark stage 04 (propensity): training, calibration, test metrics and reason codes per product.

The input is the demo bank through ingest and the map (the month-end before
the take-up window and the last day), prepared once per size in the work
folder; generation, ingest and the map are not measured here
(``bench_map.py`` measures the map). For each of the four demo products the
labelled customers are sampled, seeded, to ``--per-product`` rows: without
replacement when the product has that many labelled customers (the
1M-customer bank has 670k to 800k each), else with replacement, so the
models see the map's real feature distribution at the target row count. Each product is then timed through
the stage's own functions: fit the boosted trees, fit the calibrator, score
train and test and compute every metric, and compute checked SHAP values and
top-3 reason codes for ``--per-product`` customers.

Examples
--------
    .venv/bin/python benchmarks/bench_propensity.py --customers 20000 --per-product 20000 \\
        --out benchmarks/.work/propensity_20k.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCH_KEY = "relmap-benchmark-key-synthetic-data-only"
WORK = Path(__file__).resolve().parent / ".work"
MAX_SECONDS = 15 * 60  # target for 4 products at 100,000 customers each


def prepare(customers: int, work: Path, transactions: int | None = None) -> Path:
    """Generate the demo bank and run ingest and the map once; return the run folder.

    ``transactions`` defaults to 50 per customer, the default demo bank's ratio.
    """
    from relmap_utils.demo import generate_demo_bank
    from relmap_utils.paths import ENGAGEMENTS_DIR
    from relmap_utils.runner import run_engagement

    transactions = transactions or customers * 50
    folder = work / f"propensity_demo_{customers}" if transactions == customers * 50 \
        else work / f"propensity_demo_{customers}_{transactions}"
    marker = folder / "run.txt"
    if marker.is_file() and Path(marker.read_text()).is_dir():
        return Path(marker.read_text())
    # The bank's description is written last: when it is there, generation finished.
    if not (folder / "data" / "demo_bank.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        generate_demo_bank(folder / "data", n_customers=customers, n_transactions=transactions)
    shutil.copy(ENGAGEMENTS_DIR / "demo" / "engagement.yaml", folder / "engagement.yaml")
    result = run_engagement(folder, stages=["ingest", "map"],
                            overrides={"map": {"as_of_dates": ["2023-12-31", "2024-06-30"]}})
    if result.status != "succeeded":
        raise SystemExit(result.failure.render("en") if result.failure else "preparing the demo failed")
    marker.write_text(str(result.run_dir))
    return result.run_dir


def measure(run_dir: Path, per_product: int, threads: int, seed: int = 42,
            products: list[str] | None = None) -> dict[str, Any]:
    """Time every step of stage 04 for each product at ``per_product`` labelled customers.

    Each step gets its wall time and the process's CPU time (user and
    system, all threads): on a shared machine the wall time is mostly
    waiting, and OpenMP threads spinning in a busy wait inflate it further.
    """
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    from relmap_utils.context import RunContext
    from relmap_utils.propensity import data, explain, metrics, models
    from relmap_utils.propensity.params import check_parameters
    from relmap_utils.propensity.stage import BACKGROUND_ROWS, load_inputs

    cpu_started = time.process_time()
    ctx = RunContext.open(run_dir)
    settings = check_parameters({**ctx.engagement.stage("propensity").params, "threads": threads})
    backend = ctx.connect()
    tables = ctx.canonical_tables(backend)
    began = time.perf_counter()
    labels = data.load_labels(backend, tables, settings)
    inputs = load_inputs(ctx, tables, settings, min(labels["label_date"]))
    load_seconds = time.perf_counter() - began
    rng = np.random.default_rng(seed)
    position = pd.Series(np.arange(len(inputs.train_frame)), index=inputs.train_frame["customer_id"])
    results = {}
    with threadpool_limits(limits=threads, user_api="openmp"):
        for product in products or sorted(labels["product"].unique()):
            own, _ = data.product_labels(labels, product)
            own = own[own["customer_id"].isin(position.index)]
            resampled = per_product > len(own)
            chosen = rng.choice(len(own), size=per_product, replace=resampled)
            rows = position.loc[own["customer_id"].to_numpy()[chosen]].to_numpy()
            target = own["target"].to_numpy()[chosen]
            matrix = inputs.matrix[rows]
            frame = inputs.train_frame.iloc[rows].reset_index(drop=True)
            clock: dict[str, float] = {}
            cpu_clock: dict[str, float] = {}
            step = _Step(clock, cpu_clock)

            step.start()
            train, test = train_test_split(np.arange(per_product), test_size=0.3, random_state=seed, stratify=target)
            fit, calibration = train_test_split(train, test_size=0.2, random_state=seed, stratify=target[train])
            model = models.fit_boosted(matrix[fit], target[fit], inputs.categorical, max_iter=settings.max_iter,
                                       seed=seed)
            step.stop("train")

            step.start()
            calibrator = models.fit_calibrator(model.predict_proba(matrix[calibration])[:, 1], target[calibration])
            step.stop("calibrate")

            step.start()
            scores = {}
            for name, part in (("train", train), ("test", test)):
                probability = calibrator(model.predict_proba(matrix[part])[:, 1])
                scores[name] = metrics.summary_metrics(target[part], probability, probability, f"{product}/{name}")
                metrics.gains_table(target[part], probability)
                metrics.reliability_table(target[part], probability)
            step.stop("metrics")

            step.start()
            background = matrix[rng.choice(train, size=BACKGROUND_ROWS, replace=False)]
            explanation = explain.explain(model, matrix, background, seed=seed, workers=threads)
            step.stop("shap")

            step.start()
            explain.reason_codes(explanation.values, frame, inputs.features, inputs.dictionary)
            step.stop("reason_codes")
            results[product] = {"seconds": {k: round(v, 2) for k, v in clock.items()},
                                "cpu_seconds": {k: round(v, 2) for k, v in cpu_clock.items()},
                                "total": round(sum(clock.values()), 2), "cpu_total": round(sum(cpu_clock.values()), 2),
                                "trees": int(model.n_iter_), "labelled": int(len(own)), "resampled": resampled,
                                "leaves": int(sum(tree[0].get_n_leaf_nodes() for tree in model._predictors)),
                                "auc_test": scores["test"]["auc"], "explainer": explanation.method,
                                "max_additivity_error": explanation.max_additivity_error}
            print(product, results[product], flush=True)
    total = sum(item["total"] for item in results.values()) + load_seconds
    cpu = time.process_time() - cpu_started
    # Linear in rows, so a lower bound: larger samples grow more trees, and the SHAP kernel's work is
    # rows times leaves.
    return {"per_product": per_product, "features": len(inputs.features), "threads": threads,
            "load_seconds": round(load_seconds, 2), "products": results, "total_seconds": round(total, 1),
            "cpu_seconds": round(cpu, 1), "extrapolated_100k_seconds": round(total * 100_000 / per_product, 0),
            "extrapolated_100k_cpu_seconds": round(cpu * 100_000 / per_product, 0)}


class _Step:
    """Wall and CPU seconds of one step at a time, written into two dicts by step name."""

    def __init__(self, clock: dict[str, float], cpu: dict[str, float]) -> None:
        self.clock, self.cpu = clock, cpu
        self.wall_started = self.cpu_started = 0.0

    def start(self) -> None:
        self.wall_started, self.cpu_started = time.perf_counter(), time.process_time()

    def stop(self, name: str) -> None:
        self.clock[name] = time.perf_counter() - self.wall_started
        self.cpu[name] = time.process_time() - self.cpu_started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000, help="demo bank customers (map size)")
    parser.add_argument("--transactions", type=int, help="demo bank transactions (default 50 per customer)")
    parser.add_argument("--prepare-only", action="store_true",
                        help="generate the bank and run ingest and the map, then stop without measuring")
    parser.add_argument("--per-product", type=int, default=100_000, help="labelled customers per product")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--products", nargs="+", help="time only these products (default: all four)")
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("RELMAP_PSEUDONYM_KEY", BENCH_KEY)
    args.work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    run_dir = prepare(args.customers, args.work, args.transactions)
    if args.prepare_only:
        print(f"prepared {run_dir} in {time.perf_counter() - began:.0f} s")
        return
    result = measure(run_dir, args.per_product, args.threads, products=args.products)
    result["customers"] = args.customers
    result["transactions"] = args.transactions or args.customers * 50
    result["within_target"] = result["extrapolated_100k_seconds"] <= MAX_SECONDS
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
