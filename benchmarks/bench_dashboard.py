"""Time to first render of the overview dashboard, alone and with ten concurrent sessions.

    .venv/bin/python benchmarks/bench_dashboard.py [--customers 20000] [--transactions 500000] [--sessions 10]

Steps: generate the demo bank into benchmarks/.work/dashboard/ and run ingest
and profiling on it (skipped when a succeeded run exists), start ``relmap
serve`` on 127.0.0.1 with ``--pool-size`` equal to the number of sessions,
wait until the kernel pools are filled and have executed the page
(``--settle`` seconds), then open the overview in Debian's
headless Chromium (through Playwright): once alone, then ``--sessions``
browser contexts at the same time. Each context has its own empty cache and
cookie jar, so every session is a first visit.

Time to first render is measured from the navigation start of a session until
every output of the page has rendered in the browser: Voilà has shown the
cells and every chart placeholder of the page has been drawn by plotly.js.
Results go to benchmarks/.work/dashboard.json and are printed as a Markdown
table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip
# Same predicate as tests/test_browser_dashboards.py.
RENDERED = """(minPlots) => {
  const cells = document.getElementById("rendered_cells");
  if (!cells || cells.style.display === "none" || document.getElementById("loading")) return false;
  const plots = document.querySelectorAll(".relmap-plot");
  const pending = document.querySelectorAll(".relmap-plot:not(.js-plotly-plot)");
  return plots.length >= minPlots && pending.length === 0;
}"""
OVERVIEW_PLOTS = 3
POOL_TIMEOUT = 900
SESSION_TIMEOUT = 600


def prepare_run(customers: int, transactions: int) -> Path:
    """Return the demo engagement folder with a succeeded run of the requested size."""
    from relmap_utils.demo import generate_demo_bank
    from relmap_utils.runner import list_runs, run_engagement

    folder = WORK_DIR / f"demo_{customers}_{transactions}"
    if folder.is_dir() and any(summary.status == "succeeded" for summary in list_runs(folder)):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "engagements" / "demo" / "engagement.yaml", folder / "engagement.yaml")
    generate_demo_bank(folder / "data", n_customers=customers, n_transactions=transactions)
    os.environ.setdefault("RELMAP_PSEUDONYM_KEY", secrets.token_hex(32))
    result = run_engagement(folder, stages=["ingest", "profiling"])
    if not result.ok:
        sys.exit(f"demo run failed: {result.failure}")
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(folder: Path, pool_size: int, token: str, port: int) -> tuple[subprocess.Popen, Path]:
    log = WORK_DIR / "serve.stderr.txt"
    env = {**os.environ, "RELMAP_SERVE_TOKEN": token}
    process = subprocess.Popen(
        [sys.executable, "-m", "relmap_utils.cli", "serve", str(folder), "--port", str(port),
         "--pool-size", str(pool_size)],
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )  # fmt: skip
    deadline = time.monotonic() + POOL_TIMEOUT
    filled = f"Kernel pool of overview.ipynb is filled with {pool_size} kernel(s)"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"relmap serve exited: {log.read_text()[-2000:]}")
        if filled in log.read_text():
            return process, log
        time.sleep(0.5)
    process.terminate()
    sys.exit(f"kernel pool not filled within {POOL_TIMEOUT} s")


async def time_sessions(url: str, sessions: int) -> list[float]:
    """Open ``url`` in ``sessions`` fresh browser contexts at once; return seconds to first render."""
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        contexts = [await browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(sessions)]

        async def one(context) -> float:
            page = await context.new_page()
            started = time.perf_counter()
            await page.goto(url, wait_until="commit")
            # Polled with evaluate: wait_for_function on ten pages at once stalled
            # in runs on this machine (Playwright 1.65, Chromium 156).
            while not await page.evaluate(RENDERED, OVERVIEW_PLOTS):
                if time.perf_counter() - started > SESSION_TIMEOUT:
                    raise TimeoutError(f"the overview did not render within {SESSION_TIMEOUT} s")
                await asyncio.sleep(0.1)
            return time.perf_counter() - started

        try:
            return list(await asyncio.gather(*(one(context) for context in contexts)))
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--transactions", type=int, default=500_000)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument(
        "--settle", type=float, default=90,
        help="seconds to wait after the pools are filled: Voila reports a pool as filled once its kernels "
        "started, before they finished executing the page",
    )  # fmt: skip
    args = parser.parse_args()

    WORK_DIR.mkdir(parents=True, exist_ok=True)
    folder = prepare_run(args.customers, args.transactions)
    token = secrets.token_urlsafe(24)
    port = free_port()
    process, _ = start_server(folder, args.sessions, token, port)
    url = f"http://127.0.0.1:{port}/pages/overview?token={token}"
    try:
        time.sleep(args.settle)
        load_before = os.getloadavg()[0]
        alone = asyncio.run(time_sessions(url, 1))
        # The session above used one pre-started kernel; let the pool refill and execute.
        time.sleep(args.settle)
        load_concurrent = os.getloadavg()[0]
        concurrent = asyncio.run(time_sessions(url, args.sessions))
    finally:
        process.terminate()
        process.wait(timeout=60)

    result = {
        "customers": args.customers,
        "transactions": args.transactions,
        "sessions": args.sessions,
        "pool_size": args.sessions,
        "cpus": os.cpu_count(),
        "load_average_before_alone": round(load_before, 1),
        "load_average_before_concurrent": round(load_concurrent, 1),
        "alone_seconds": round(alone[0], 2),
        "concurrent_seconds": [round(value, 2) for value in sorted(concurrent)],
        "concurrent_median": round(statistics.median(concurrent), 2),
        "concurrent_max": round(max(concurrent), 2),
    }
    (BENCH_DIR / ".work" / "dashboard.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    print()
    print("| sessions | pre-started kernels | time to first render, median | max | all sessions |")
    print("|---|---|---|---|---|")
    print(f"| 1 | {args.sessions} | {alone[0]:.2f} s | {alone[0]:.2f} s | {alone[0]:.2f} s |")
    print(f"| {args.sessions} | {args.sessions} | {result['concurrent_median']:.2f} s | {result['concurrent_max']:.2f} s | "
          + ", ".join(f"{value:.1f}" for value in sorted(concurrent)) + " |")


if __name__ == "__main__":
    main()
