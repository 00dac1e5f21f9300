"""run_stage on a hand-made run folder: bad inputs are reported and the rest still runs.

The run folder contains a synthetic map (one to four month-ends, 600
customers) and a labels table, written straight to Parquet, so the stage
runs without ingest or the map stage.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from relmap_utils.context import RunContext
from relmap_utils.errors import ConfigError, StageError
from relmap_utils.risk.stage import run_stage

DATES = ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]


def _write_run(folder: Path, dates: list[str], defaulters: int, with_labels: bool = True) -> Path:
    run_dir = folder / "runs" / "20240501-000000"
    (run_dir / "artifacts" / "00_ingest" / "tables").mkdir(parents=True)
    config = {"name": "synthetic", "client": "test", "stages": {},
              "sources": [{"name": "customers", "path": "customers.csv", "table": "customers"}]}
    (run_dir / "engagement.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    rng = np.random.default_rng(5)
    customers = [f"c{number:04d}" for number in range(600)]
    bad = np.zeros(600, dtype=bool)
    bad[:defaulters] = True
    for index, day in enumerate(dates):
        late = np.where(bad & (index >= 1), 3, rng.poisson(0.05, 600))
        frame = pd.DataFrame({
            "customer_id": customers,
            "income": np.where(bad, 3000.0, 8000.0) * rng.lognormal(0, 0.3, 600),
            "late_instalments_recent": late,
            "constant": 1,
            "all_missing": np.nan,
        })
        target = run_dir / "artifacts" / "02_map" / "customer_map" / f"as_of={day}" / "part-0.parquet"
        target.parent.mkdir(parents=True)
        frame.to_parquet(target, index=False)
    if with_labels:
        labels = pd.DataFrame({
            "customer_id": customers,
            "label_type": "default",
            "label_date": pd.to_datetime(np.where(bad, "2024-06-15", "2024-04-30")).date,
            "value": bad.astype(int),
        })
        labels.to_parquet(run_dir / "artifacts" / "00_ingest" / "tables" / "labels.parquet", index=False)
    return run_dir


def _keys(result: dict) -> list[str]:
    return [item["key"] for item in result["summary"]["notices"]]


def test_unusable_variables_named_rest_runs(tmp_path):
    ctx = RunContext.open(_write_run(tmp_path, DATES, defaulters=60))
    result = run_stage(ctx, outcome="any", min_defaults=20)

    assert "risk.notice.variable_constant" in _keys(result)
    assert "risk.notice.variable_all_missing" in _keys(result)
    assert set(result["summary"]["indicators"]["kept"]) <= {"income", "late_instalments_recent"}
    assert result["summary"]["indicators"]["kept"]
    assert (tmp_path / "runs" / "20240501-000000" / "artifacts" / "05_risk" / "summary.json").is_file()


def test_too_few_defaults_skips_screening(tmp_path):
    ctx = RunContext.open(_write_run(tmp_path, DATES, defaulters=5))
    result = run_stage(ctx, outcome="any", min_defaults=20)

    assert "risk.notice.few_defaults" in _keys(result)
    assert result["indicators"].empty
    assert len(result["profile"]) == 600 * len(DATES)


def test_missing_labels_still_profiles(tmp_path):
    ctx = RunContext.open(_write_run(tmp_path, DATES, defaulters=60, with_labels=False))
    result = run_stage(ctx)

    assert "risk.notice.no_labels" in _keys(result)
    assert result["summary"]["backtest"] is None
    assert "late_payment" in result["summary"]["signals"]["available"]


def test_single_map_date_has_no_backtest(tmp_path):
    ctx = RunContext.open(_write_run(tmp_path, DATES[-1:], defaulters=60))
    result = run_stage(ctx, outcome="any")

    assert "risk.notice.single_snapshot" in _keys(result)
    assert result["summary"]["backtest"] is None
    summary = json.loads(Path(result["artifacts"]["summary"]).read_text(encoding="utf-8"))
    assert summary["headline_metrics"]


def test_warned_customers_before_default(tmp_path):
    ctx = RunContext.open(_write_run(tmp_path, DATES, defaulters=60))
    result = run_stage(ctx, outcome="any", warning={"min_signals": 1, "late_instalments": 2})

    warned = set(result["warnings"]["customer_id"])
    assert {f"c{number:04d}" for number in range(60)} <= warned
    backtest = result["summary"]["backtest"]
    assert backtest["warned_lead_share"] == 1.0


def test_observation_date_must_be_map_date(tmp_path):
    ctx = RunContext.open(_write_run(tmp_path, DATES, defaulters=60))

    with pytest.raises(StageError, match="2024-01-31"):
        run_stage(ctx, observation_as_of="2024-01-15")


def test_unknown_parameter_rejected(tmp_path):
    ctx = RunContext.open(_write_run(tmp_path, DATES, defaulters=60))

    with pytest.raises(ConfigError, match="stages.risk.params.colour"):
        run_stage(ctx, colour="red")


def test_misspelled_sensitive_variable_rejected(tmp_path):
    ctx = RunContext.open(_write_run(tmp_path, DATES, defaulters=60))

    with pytest.raises(ConfigError, match="gendre"):
        run_stage(ctx, sensitive=["gendre", "life_stage"])
