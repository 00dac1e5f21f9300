#!/usr/bin/env python3
"""Print the results JSON files of the benchmarks as one Markdown table with the targets.

Usage::

    python print_results.py benchmarks/.work/profiling_1000000.json \\
        benchmarks/.work/profiling_10000000.json benchmarks/.work/ingest_1000000.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402  (the benchmark folder is not a package)


def result_rows(results: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Return one table row per tool or mode of one benchmark's results."""
    rows = []
    for name, summary in results["summary"].items():
        rows.append(
            (
                results["benchmark"],
                f"{results['rows']:,}",
                name,
                summary.get("median_work_s", "failed"),
                summary.get("median_wall_s", "failed"),
                summary.get("max_rss_mb", "failed"),
                f"{summary['runs']}/{results['repeat']}",
            )
        )
    return rows


def target_lines(results: dict[str, Any]) -> list[str]:
    """Return one line per target judged in one benchmark's results."""
    targets = results.get("targets") or {}
    lines = []
    label = f"{results['benchmark']} {results['rows']:,} rows"
    ratios = targets.get("ratios_work") or {}
    if "speedup_over_ydata_met" in targets:
        lines.append(
            f"{label}: statistics only, ydata-profiling / relmap = {ratios['ydata_over_relmap']} (target >= 4): "
            f"{'met' if targets['speedup_over_ydata_met'] else 'MISSED'}"
        )
    if "speedup_over_ydata_with_reports_met" in targets:
        lines.append(
            f"{label}: with HTML reports, ydata-profiling / relmap = {ratios['ydata_report_over_relmap_report']} "
            f"(target >= 4): {'met' if targets['speedup_over_ydata_with_reports_met'] else 'MISSED'}"
        )
    if "within_summarize_met" in targets:
        lines.append(
            f"{label}: relmap / DuckDB SUMMARIZE = {ratios['relmap_over_summarize']} (target <= 1.5): "
            f"{'met' if targets['within_summarize_met'] else 'MISSED'}"
        )
    if "seconds_10m_met" in targets:
        relmap = results["summary"]["relmap"]
        lines.append(
            f"{label}: relmap {relmap['median_wall_s']} s (target <= 90 s): "
            f"{'met' if targets['seconds_10m_met'] else 'MISSED'}"
        )
        lines.append(
            f"{label}: relmap peak {relmap['max_rss_mb']} MiB (target <= 2048 MiB): "
            f"{'met' if targets['memory_10m_met'] else 'MISSED'}"
        )
    if "seconds_1m_met" in targets:
        stage = results["summary"]["stage"]
        lines.append(
            f"{label}: ingest stage {stage['median_wall_s']} s (target <= 30 s): "
            f"{'met' if targets['seconds_1m_met'] else 'MISSED'}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="results JSON files written by the benchmark scripts")
    args = parser.parse_args(argv)

    rows: list[tuple[Any, ...]] = []
    lines: list[str] = []
    for file in args.files:
        results = json.loads(file.read_text(encoding="utf-8"))
        rows += result_rows(results)
        lines += target_lines(results)
    header = ("benchmark", "rows", "tool or mode", "median work s", "median process s", "peak RSS MiB", "runs")
    print(harness.format_table(header, rows))
    if lines:
        print()
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
