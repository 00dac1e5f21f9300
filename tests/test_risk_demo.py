"""engagements/demo through the runner: stage 05 on a small demo bank.

A copy of the engagement runs ingest, the map (8 monthly dates, to keep the
test short) and the risk stage notebook as `relmap run` does. The planted
pre-default behaviour must be warned early and rarely elsewhere, and the
saved bins must give the WoE the profile holds.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from relmap_utils.features import read_map
from relmap_utils.ingest.privacy import pseudonymize_value
from relmap_utils.risk.binning import transform_woe

from tests.conftest import make_small_demo_engagement

pytestmark = pytest.mark.slow

CUSTOMERS = 1500
TRANSACTIONS = 45_000
MAP_DATES = 8
REMOTE_SCRIPT = re.compile(r"<script[^>]+src=[\"']?(https?:)?//", re.IGNORECASE)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """Return the engagement folder, the run folder and the run's pseudonym key."""
    from relmap_utils.runner import run_engagement

    folder = tmp_path_factory.mktemp("demo_risk")
    make_small_demo_engagement(folder, n_customers=CUSTOMERS, n_transactions=TRANSACTIONS)
    key = secrets.token_hex(32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_PSEUDONYM_KEY", key)
        result = run_engagement(folder, stages=["ingest", "map", "risk"],
                                overrides={"map": {"as_of_dates": MAP_DATES}})
    assert result.status == "succeeded", result.failure and result.failure.render("en")
    return folder, result.run_dir, key


@pytest.fixture(scope="module")
def artifacts(demo_run) -> Path:
    return demo_run[1] / "artifacts" / "05_risk"


@pytest.fixture(scope="module")
def summary(artifacts) -> dict:
    return json.loads((artifacts / "summary.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def truth(demo_run) -> pd.DataFrame:
    folder, _, key = demo_run
    frame = pd.read_parquet(folder / "data" / "planted_truth.parquet")
    frame["customer_id"] = [pseudonymize_value(number, key.encode()) for number in frame.customer_no]
    return frame.set_index("customer_id")


@pytest.fixture(scope="module")
def first_warning(artifacts) -> pd.Series:
    profile = pd.read_parquet(artifacts / "profile.parquet")
    profile["as_of"] = pd.to_datetime(profile["as_of"])
    return profile[profile["warned"]].groupby("customer_id")["as_of"].min()


def test_stage_recorded_in_manifest(demo_run):
    _, run_dir, _ = demo_run
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))

    stage = next(entry for entry in manifest["stages"] if entry["key"] == "risk")
    assert stage["status"] == "succeeded"
    paths = {item["path"] for item in stage["artifacts"]}
    for name in ("indicators", "bins", "scorecard", "profile", "warnings", "backtest_monthly"):
        assert f"artifacts/05_risk/{name}.parquet" in paths, name


def test_notebook_runs_offline(demo_run):
    _, run_dir, _ = demo_run
    notebook = nbformat.read(run_dir / "executed" / "05_risk.ipynb", as_version=4)

    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert errors == []
    html = "".join(str(output.get("data", {}).get("text/html", ""))
                   for cell in notebook.cells for output in cell.get("outputs", []))
    assert "plotly" in html
    assert not REMOTE_SCRIPT.search(html)


def test_planted_defaulters_warned_early(summary, truth, first_warning):
    first_date = pd.Timestamp(summary["as_of_dates"][0])
    default_date = pd.to_datetime(truth["default_date"])
    # Only defaults at least 2 months after the first map date can be warned 2 months ahead.
    planted = truth[(truth["pre_default_behaviour"] == True) & (default_date >= first_date + pd.DateOffset(months=2))]  # noqa: E712
    warned = first_warning.reindex(planted.index)
    lead = ((default_date[planted.index].dt.year - warned.dt.year) * 12
            + (default_date[planted.index].dt.month - warned.dt.month))

    assert len(planted) >= 10
    assert (lead >= 2).mean() >= 0.7


def test_false_alarm_rate_low(truth, first_warning):
    clean = truth[(truth["borrower"] == True) & (truth["defaulted"] != True)]  # noqa: E712

    assert first_warning.reindex(clean.index).notna().mean() <= 0.10


def test_backtest_headline(summary):
    backtest = summary["backtest"]

    assert backtest["defaulters"] > 0
    assert backtest["false_alarm_rate"] <= 0.10
    assert backtest["warned_in_advance"] >= backtest["warned_lead"]
    cards = {card["label"]["en"] for card in summary["headline_metrics"]}
    assert "False-alarm rate (non-defaulters warned)" in cards


def test_scorecard_excludes_sensitive(summary, artifacts):
    scorecard = pd.read_parquet(artifacts / "scorecard.parquet")

    assert summary["sensitive_excluded"]
    assert not set(summary["sensitive_excluded"]) & set(scorecard["variable"])
    assert summary["scorecard"]["base_score"] == 600
    test = next(row for row in summary["performance"] if row["sample"] == "test")
    assert test["auc"] > 0.7


def test_saved_bins_give_profile_woe(demo_run, artifacts, summary):
    _, run_dir, _ = demo_run
    bins = pd.read_parquet(artifacts / "bins.parquet")
    profile = pd.read_parquet(artifacts / "profile.parquet")
    latest = summary["as_of_dates"][-1]
    frame = read_map(run_dir / "artifacts" / "02_map" / "customer_map", latest).set_index("customer_id")
    kept = summary["indicators"]["kept"]
    woe = transform_woe(bins, frame, kept)
    stored = profile[profile["as_of"].astype(str) == latest].set_index("customer_id")

    for name in kept:
        pd.testing.assert_series_equal(stored[f"woe_{name}"].reindex(woe.index), woe[name],
                                       check_names=False, rtol=1e-12)


def test_warnings_carry_bilingual_reasons(artifacts):
    warnings = pd.read_parquet(artifacts / "warnings.parquet")

    assert len(warnings) > 0
    assert (warnings["reasons_zh"].str.len() > 0).all()
    assert (warnings["reasons_en"].str.len() > 0).all()
    assert warnings["customer_id"].str.fullmatch(r"[0-9a-f]{24}").all()


def test_dashboard_page_renders(demo_run, tmp_path):
    from relmap_utils.dashboard.pages import REPORTS_DIR
    from relmap_utils.notebook_exec import execute_notebook

    folder, run_dir, _ = demo_run
    output = tmp_path / "05_risk_page.ipynb"
    execute_notebook(REPORTS_DIR / "05_risk.ipynb", output, {"run_dir": str(run_dir)}, cwd=run_dir, timeout=600)

    executed = nbformat.read(output, as_version=4)
    outputs = [item for cell in executed.cells for item in cell.get("outputs", [])]
    assert [item for item in outputs if item["output_type"] == "error"] == []
    html = "".join(str(item.get("data", {}).get("text/html", "")) for item in outputs)
    assert "预警回测" in html
    assert "评分卡" in html
    assert not REMOTE_SCRIPT.search(html)
    names = pd.read_csv(folder / "data" / "customers.csv", encoding="gbk", dtype=str)["姓名"].head(50)
    everything = nbformat.writes(executed)
    assert not any(name in everything for name in names if len(name) >= 3)
