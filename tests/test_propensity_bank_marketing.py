"""Stage 04 on the real UCI Bank Marketing file (bank-additional-full, target y, duration dropped).

The engagement's own settings use the default time split: the first contacts
(about 70 % of rows, May 2008 to March 2009) train and the later ones test.
The take-up rate rises from about 5 % to about 24 % across the cut-off and
the test AUC falls to about 0.6; the test states those figures so that a
change in them is seen. The stratified random 70/30 split with seed 42 over
the file's rows must reach a test AUC of 0.80, the level Moro, Cortez and
Rita (2014) report with richer private features; measured here: 0.807.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="module")
def run_dir(real_engagement_run, shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared bank-marketing run, with the random split's stage 04 summary beside the time split's."""
    from relmap_utils.context import RunContext
    from relmap_utils.propensity import run_stage

    shared_run = real_engagement_run("bank_marketing")
    engagement = tmp_path_factory.mktemp("bank_marketing_propensity")
    (engagement / "runs").mkdir()
    shutil.copy(shared_run.parent.parent / "engagement.yaml", engagement / "engagement.yaml")
    run = engagement / "runs" / shared_run.name
    shutil.copytree(shared_run, run)
    time_summary = _summary(run)
    ctx = RunContext.open(run)
    params = {**ctx.engagement.stage("propensity").params, "explain_sample": 300,
              "split": {"method": "random", "test_share": 0.3, "seed": 42}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_SHARED_DIR", str(shared))
        random_result = run_stage(ctx, **params)
    (run / "time_split_summary.json").write_text(json.dumps(time_summary), encoding="utf-8")
    (run / "random_split_summary.json").write_text(json.dumps(random_result["summary"], default=str),
                                                   encoding="utf-8")
    return run


def _summary(run: Path) -> dict:
    return json.loads((run / "artifacts" / "04_propensity" / "summary.json").read_text(encoding="utf-8"))


def test_random_split_auc_at_least_080(run_dir):
    summary = json.loads((run_dir / "random_split_summary.json").read_text(encoding="utf-8"))
    deposit = summary["products"]["term_deposit"]

    assert summary["split"] == "random"
    assert deposit["test"]["rows"] == pytest.approx(0.3 * 41_188, abs=1)
    assert deposit["auc_test"] >= 0.80


def test_time_split_reported_plainly(run_dir):
    summary = json.loads((run_dir / "time_split_summary.json").read_text(encoding="utf-8"))
    deposit = summary["products"]["term_deposit"]
    train_rate = deposit["train"]["takers"] / deposit["train"]["rows"]
    test_rate = deposit["test"]["takers"] / deposit["test"]["rows"]

    assert summary["split"] == "time"
    assert deposit["cutoff"] == "2009-04-01"
    assert train_rate == pytest.approx(0.052, abs=0.01)
    assert test_rate == pytest.approx(0.24, abs=0.02)
    # Out of time the AUC depends on which development rows early stopping and
    # calibration hold out: 0.60 to 0.66 was seen. The point is the fall.
    assert 0.55 <= deposit["auc_test"] <= 0.72
    assert deposit["auc_test"] < deposit["auc_train"] - 0.08


def test_duration_dropped_and_reported(run_dir):
    summary = json.loads((run_dir / "time_split_summary.json").read_text(encoding="utf-8"))
    registry = json.loads((run_dir / "artifacts" / "04_propensity" / "models.json").read_text(encoding="utf-8"))

    assert summary["dropped_post_outcome"] == ["duration"]
    assert "duration" not in registry["term_deposit"]["features"]


def test_campaign_list_written(run_dir):
    campaign = run_dir / "artifacts" / "04_propensity" / "campaign"
    assert (campaign / "term_deposit.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert (campaign / "term_deposit.xlsx").is_file()
