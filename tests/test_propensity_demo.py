"""engagements/demo through the runner: stage 04 on a small demo bank.

One module-scoped run executes ingest, the map (the month-end before the
take-up window and the last day) and the propensity notebook. The planted
take-up driver of each product must be among its top 5 SHAP features, the
campaign lists must carry pseudonyms only, and the saved models must load
back through the trusted-types check.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from tests.conftest import make_small_demo_engagement

pytestmark = pytest.mark.slow

CUSTOMERS = 3000
TRANSACTIONS = 90_000
# Map features that carry each planted driver (relmap_utils/demo/truth.py TAKEUP_DRIVERS).
DRIVER_FEATURES = {
    "education_wealth": ("interest_education",),
    "mortgage": ("interest_mortgage",),
    "retirement_insurance": ("age_years", "age_band", "life_stage"),
    "travel_card": ("interest_travel",),
}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from relmap_utils.runner import run_engagement

    folder = tmp_path_factory.mktemp("demo_propensity")
    make_small_demo_engagement(folder, n_customers=CUSTOMERS, n_transactions=TRANSACTIONS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_PSEUDONYM_KEY", secrets.token_hex(32))
        result = run_engagement(
            folder, stages=["ingest", "map", "propensity"],
            overrides={"map": {"as_of_dates": ["2023-12-31", "2024-06-30"]},
                       "propensity": {"campaign": {"top_n": 100,
                                                   "suitability": {"risk_levels": {"education_wealth": "R2"}}},
                                      "options": {"explain_sample": 400}}},
        )
    assert result.status == "succeeded", result.failure and result.failure.render("en")
    return folder, result.run_dir


@pytest.fixture(scope="module")
def stage_folder(demo_run) -> Path:
    return demo_run[1] / "artifacts" / "04_propensity"


def test_notebook_ran_without_errors(demo_run):
    executed = nbformat.read(demo_run[1] / "executed" / "04_propensity.ipynb", as_version=4)
    outputs = [item for cell in executed.cells if cell.cell_type == "code" for item in cell.get("outputs", [])]
    assert [item for item in outputs if item["output_type"] == "error"] == []


@pytest.mark.parametrize("product", sorted(DRIVER_FEATURES))
def test_planted_driver_in_top_five_shap(stage_folder, product):
    importance = pd.read_parquet(stage_folder / "importance.parquet")
    top = importance[importance["product"] == product].head(5)["feature"].tolist()

    assert any(name.startswith(DRIVER_FEATURES[product]) for name in top), top


def test_every_explanation_checked(stage_folder):
    summary = json.loads((stage_folder / "summary.json").read_text(encoding="utf-8"))
    for product, entry in summary["products"].items():
        assert entry["status"] == "modelled", product
        assert entry["explainer"]["max_additivity_error"] < 1e-6
        assert entry["explainer"]["method"] in {"tree", "tree_interventional", "exact", "permutation"}
        assert entry["auc_test"] > 0.7


def test_campaign_lists_respect_holdings_and_suitability(demo_run, stage_folder):
    scores = pd.read_parquet(stage_folder / "scores.parquet")
    education = pd.read_csv(stage_folder / "campaign" / "education_wealth.csv", encoding="utf-8-sig", dtype=str)
    listed = set(education.iloc[:, 1])
    chosen = scores[(scores["product"] == "education_wealth") & scores["customer_id"].isin(listed)]

    assert len(education) == 100
    assert (chosen["excluded"] == "").all()
    assert not chosen["held"].any()
    raw = (stage_folder / "campaign" / "education_wealth.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")


def test_next_best_never_offers_held_products(stage_folder):
    scores = pd.read_parquet(stage_folder / "scores.parquet")
    best = pd.read_parquet(stage_folder / "next_best.parquet")
    held = scores[scores["held"]][["customer_id", "product"]]
    assert best.merge(held, on=["customer_id", "product"]).empty
    assert best.groupby("customer_id")["rank"].min().eq(1).all()


def test_no_personal_data_in_outputs(demo_run, stage_folder):
    folder, run_dir = demo_run
    raw = pd.read_csv(folder / "data" / "customers.csv", encoding="gbk", dtype=str)
    values = set(raw["客户号"]) | set(raw["姓名"]) | set(raw["证件号码"]) | set(raw["手机号"])
    texts = [nbformat.writes(nbformat.read(run_dir / "executed" / "04_propensity.ipynb", as_version=4))]
    texts += [path.read_text(encoding="utf-8-sig") for path in stage_folder.rglob("*.csv")]
    texts += [path.read_text(encoding="utf-8") for path in stage_folder.rglob("*.md")]
    texts += [pd.read_parquet(path).to_csv() for path in stage_folder.glob("*.parquet")]
    # The embedded plotly.js library is most of the text and holds no data.
    from plotly.offline import get_plotlyjs

    everything = "\n".join(texts).replace(get_plotlyjs(), "")
    assert sorted(value for value in values if value in everything) == []


def test_models_load_with_recorded_hashes(stage_folder):
    from relmap_utils.propensity.storage import load_product_model

    registry = json.loads((stage_folder / "models.json").read_text(encoding="utf-8"))
    for product in registry:
        model = load_product_model(stage_folder, product)
        assert hasattr(model, "predict_proba")


def test_model_documentation_pages(stage_folder):
    page = (stage_folder / "model_docs" / "mortgage.md").read_text(encoding="utf-8")
    assert "模型文档：mortgage" in page
    assert "Known limitations" in page
