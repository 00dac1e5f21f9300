#!/usr/bin/env python3
"""Benchmark relmap's WoE/IV binning against optbinning and toad on the benchmark table.

The table is the seeded bank table of ``gen_synth_bank.py`` (in
``RELMAP_SHARED_DIR/bench``), generated into a temporary folder (or
``--work``) and removed afterwards unless ``--keep``. The 28 features are its
20 numeric and 8 categorical columns; the target is ``target``.

Tools, each in a fresh process, measured side by side in one run:

- ``relmap``: :func:`relmap_utils.risk.binning.fit_variables` on the 28
  features with the stage's default settings (optbinning underneath,
  monotonic trend ``auto``, missing values in their own bin), one process;
- ``relmap_2jobs``: the same in two worker processes (``binning.n_jobs: 2``);
- ``optbinning``: ``optbinning.BinningProcess`` with its default settings;
- ``toad``: ``toad.quality`` with its default settings (IV, Gini, entropy
  and unique count per column), under ``benchmarks/.work/venv-toad``
  (made by ``setup_toad.sh``).

The IV of relmap and optbinning are compared per feature. relmap applies its
empty-class rule ``zero`` here, the rule optbinning uses, so the two must
agree.

Examples
--------
    benchmarks/setup_toad.sh
    .venv/bin/python benchmarks/bench_risk.py --rows 100000 --tools relmap,optbinning,toad
    .venv/bin/python benchmarks/bench_risk.py --rows 1000000 --tools relmap,optbinning
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402  (the benchmark folder is not a package)

BENCH_DIR = Path(__file__).resolve().parent
TOAD_PYTHON = BENCH_DIR / ".work" / "venv-toad" / "bin" / "python"
TOOLS = ("relmap", "relmap_2jobs", "optbinning", "toad")
TARGET = "target"
NUMERIC = [
    "balance_current", "balance_avg_3m", "income_monthly", "credit_limit", "utilization", "loan_amount",
    "num_txn_30d", "num_products", "days_past_due_max", "tenure_months", "age", "net_flow_30d",
    "card_spend_30d", "cash_withdrawals_30d", "overdraft_days_90d", "num_inquiries_6m", "debt_to_income",
    "savings_balance", "fx_txn_share", "ext_risk_score",
]
CATEGORICAL = ["segment", "channel", "education", "region", "occupation", "product_type", "merchant_cat_top",
               "branch_id"]
FEATURES = NUMERIC + CATEGORICAL
# Targets: toad time / relmap time at 100k rows, at least; relmap time /
# optbinning time at 1M rows, at most; largest IV difference to optbinning.
MIN_SPEEDUP_OVER_TOAD = 20.0
MAX_RATIO_TO_OPTBINNING = 1.0
IV_TOLERANCE = 1e-9


def generate(rows: int, folder: Path) -> Path:
    """Write the benchmark table with ``rows`` rows into ``folder`` and return its path."""
    target = folder / f"bank_{rows}.parquet"
    if not target.is_file():
        script = harness.shared_dir() / "bench" / "gen_synth_bank.py"
        subprocess.run([sys.executable, str(script), "--rows", str(rows), "--out", str(target)], check=True,
                       stdout=subprocess.DEVNULL)
    return target


def child_relmap(path: Path, jobs: int = 1) -> dict[str, Any]:
    import optbinning  # noqa: F401  (imported before the clock starts, as for the optbinning child)
    import pandas as pd

    from relmap_utils.risk.binning import fit_variables

    frame = pd.read_parquet(path, columns=[*FEATURES, TARGET])
    options = {name: {"zero_cell_rule": "zero"} for name in FEATURES}
    started = time.perf_counter()
    fitted = fit_variables(frame, frame[TARGET].to_numpy(), options, n_jobs=jobs)
    work = time.perf_counter() - started
    return {"work_s": work, "iv": {name: result.iv for name, result in fitted.items()}}


def child_relmap_2jobs(path: Path) -> dict[str, Any]:
    return child_relmap(path, jobs=2)


def child_optbinning(path: Path) -> dict[str, Any]:
    import pandas as pd
    from optbinning import BinningProcess

    frame = pd.read_parquet(path, columns=[*FEATURES, TARGET])
    started = time.perf_counter()
    process = BinningProcess(FEATURES, categorical_variables=CATEGORICAL)
    process.fit(frame[FEATURES], frame[TARGET].to_numpy())
    summary = process.summary()
    work = time.perf_counter() - started
    return {"work_s": work, "iv": dict(zip(summary["name"], summary["iv"].astype(float)))}


def child_toad(path: Path) -> dict[str, Any]:
    import pandas as pd
    import toad

    frame = pd.read_parquet(path, columns=[*FEATURES, TARGET])
    started = time.perf_counter()
    quality = toad.quality(frame, target=TARGET)
    work = time.perf_counter() - started
    return {"work_s": work, "iv": {name: float(value) for name, value in quality["iv"].items()}}


CHILDREN = {"relmap": child_relmap, "relmap_2jobs": child_relmap_2jobs, "optbinning": child_optbinning,
            "toad": child_toad}


def run_tool(tool: str, path: Path, quiet_wait: float) -> dict[str, Any]:
    """Measure one tool in a fresh process (toad under its own virtual environment)."""
    python = str(TOAD_PYTHON) if tool == "toad" else sys.executable
    command = [python, str(Path(__file__).resolve()), "--child", tool, "--table", str(path)]
    return harness.measure(command, quiet_wait=quiet_wait, timeout=3600)


def compare(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Return the speed ratios and the IV agreement that the targets check."""
    work = {tool: result["child"].get("work_s") for tool, result in results.items() if result.get("ok")}
    figures: dict[str, Any] = {"work_s": work}
    if "relmap" in work and "toad" in work:
        figures["speedup_over_toad"] = work["toad"] / work["relmap"]
    for tool in ("relmap", "relmap_2jobs"):
        if tool in work and "optbinning" in work:
            figures[f"{tool}_ratio_to_optbinning"] = work[tool] / work["optbinning"]
            ours, theirs = results[tool]["child"]["iv"], results["optbinning"]["child"]["iv"]
            figures[f"{tool}_max_iv_difference"] = max(abs(ours[name] - theirs[name]) for name in FEATURES)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--tools", default="relmap,optbinning,toad", help="comma-separated: " + ", ".join(TOOLS))
    parser.add_argument("--work", type=Path, help="folder for the table; default a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the generated table")
    parser.add_argument("--quiet-wait", type=float, default=0.0, help="seconds to wait for an idle machine first")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--table", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        if args.child != "toad":
            sys.path.insert(0, str(BENCH_DIR.parent))
        args.result.write_text(json.dumps(CHILDREN[args.child](args.table)), encoding="utf-8")
        return 0

    tools = [tool.strip() for tool in args.tools.split(",") if tool.strip()]
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        parser.error(f"unknown tools {unknown}; choose from {', '.join(TOOLS)}")
    if "toad" in tools and not TOAD_PYTHON.is_file():
        parser.error(f"{TOAD_PYTHON} not found; run benchmarks/setup_toad.sh first")
    folder = args.work or Path(tempfile.mkdtemp(prefix="relmap-bench-risk-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        path = generate(args.rows, folder)
        results = {tool: run_tool(tool, path, args.quiet_wait) for tool in tools}
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(folder, ignore_errors=True)

    figures = compare(results)
    print("| rows | tool | work s | process s | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for tool, result in results.items():
        work = result["child"].get("work_s") if result.get("ok") else None
        shown = f"{work:.2f}" if work is not None else "failed"
        print(f"| {args.rows:,} | {tool} | {shown} | {result['wall_s']:.2f} | {result['max_rss_mb']:,.0f} |")
    for name, value in figures.items():
        if name != "work_s":
            print(f"{name}: {value:.4g}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": args.rows, "results": results, "figures": figures}, indent=2),
                            encoding="utf-8")
    failed = [tool for tool, result in results.items() if not result.get("ok")]
    for tool in failed:
        print(f"{tool} failed: {results[tool].get('error', '')[-500:]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
