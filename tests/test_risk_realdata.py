"""Risk indicators on real data: German credit (textbook IV, scorecard quality) and Berka.

German credit: the IV of each categorical variable on its raw categories is
compared with the textbook formula, computed here from a crosstab of the
original coded file (german.data, where 2 marks a bad customer). That checks
the decoding of the CSV too. Reference values from the literature:
status of checking account 0.6660 and credit history 0.2932.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from relmap_utils.risk.binning import fit_categories
from relmap_utils.risk.metrics import discrimination
from relmap_utils.risk.params import make_params
from relmap_utils.risk.scorecard import build_scorecard
from relmap_utils.risk.screening import screen_indicators

# Columns of german.data, in order; 21st is the outcome (1 good, 2 bad).
GERMAN_COLUMNS = [
    "checking_status", "duration_months", "credit_history", "purpose", "credit_amount", "savings_status",
    "employment_since", "installment_rate_pct", "personal_status_sex", "other_debtors", "residence_since",
    "property", "age_years", "other_installment_plans", "housing", "existing_credits", "job", "num_dependents",
    "telephone", "foreign_worker", "outcome",
]
CATEGORICAL = [
    "checking_status", "credit_history", "purpose", "savings_status", "employment_since", "personal_status_sex",
    "other_debtors", "property", "other_installment_plans", "housing", "job", "telephone", "foreign_worker",
]


@pytest.fixture(scope="module")
def decoded(shared) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.read_csv(shared / "datasets" / "german_credit" / "german_credit_decoded.csv")
    return frame, (frame["credit_risk"] == "bad").astype(int).to_numpy()


@pytest.fixture(scope="module")
def coded(shared) -> pd.DataFrame:
    return pd.read_csv(shared / "datasets" / "german_credit" / "german.data", sep=" ", header=None,
                       names=GERMAN_COLUMNS)


def _textbook_iv(values: pd.Series, bad: pd.Series) -> float:
    counts = pd.crosstab(values, bad)
    share_bad = counts[True] / counts[True].sum()
    share_good = counts[False] / counts[False].sum()
    return float(((share_bad - share_good) * np.log(share_bad / share_good)).sum())


@pytest.mark.parametrize("column", CATEGORICAL)
def test_raw_category_iv_is_textbook(decoded, coded, column):
    frame, target = decoded
    result = fit_categories(frame[column], target)

    expected = _textbook_iv(coded[column], coded["outcome"] == 2)
    assert result.iv == pytest.approx(expected, abs=1e-9)
    assert result.table.loc[~result.table["empty"], "bin"].size == coded[column].nunique()


@pytest.mark.parametrize(("column", "iv"), [("checking_status", 0.6660), ("credit_history", 0.2932)])
def test_reference_iv_values(decoded, column, iv):
    frame, target = decoded

    assert round(fit_categories(frame[column], target).iv, 4) == iv


def test_raw_category_woe_sign(decoded):
    frame, target = decoded
    table = fit_categories(frame["checking_status"], target).table.set_index("bin")
    no_account = table.loc["{no checking account}"]

    assert no_account.woe == pytest.approx(np.log((no_account.bad / 300) / (no_account.good / 700)), abs=1e-12)
    assert no_account.woe < 0


def test_woe_logit_holdout_quality(decoded):
    frame, target = decoded
    features = frame.drop(columns=["row_id", "credit_risk"])
    train, test = train_test_split(np.arange(len(frame)), test_size=0.3, stratify=target, random_state=42)
    params = make_params({"categorical_bins": "raw", "outcome": "any"})
    screening = screen_indicators(features.iloc[train], target[train], list(features.columns), params)
    scorecard = build_scorecard(screening.bins, screening.logit, params.scorecard)

    result = discrimination(-scorecard.score(features.iloc[test]), target[test])
    assert result["auc"] >= 0.78
    assert result["ks"] >= 0.45


@pytest.mark.slow
def test_german_engagement_stage(real_engagement_run):
    run_dir = real_engagement_run("german_credit")
    summary = json.loads((run_dir / "artifacts" / "05_risk" / "summary.json").read_text(encoding="utf-8"))

    test = next(row for row in summary["performance"] if row["sample"] == "test")
    assert test["auc"] >= 0.78
    assert test["ks"] >= 0.45
    assert summary["training"] == {"customers": 1000, "defaulters": 300}
    assert "personal_status_sex" in summary["sensitive_excluded"]
    assert "personal_status_sex" not in summary["indicators"]["kept"]


@pytest.mark.slow
def test_berka_separating_indicators(real_engagement_run):
    run_dir = real_engagement_run("berka")
    folder = run_dir / "artifacts" / "05_risk"
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    indicators = pd.read_parquet(folder / "indicators.parquet")

    # Loan status B (31 loans) and D (45) are defaults among the 682 loan owners.
    assert summary["training"] == {"customers": 682, "defaulters": 76}
    kept = indicators[indicators["status"] == "kept"]
    assert len(kept) >= 1
    assert kept["iv"].max() > 0.1
    assert (kept["auc"] > 0.5).all()
    constant = indicators[indicators["reason"] == "constant"]["variable"]
    assert "loan_accounts" in set(constant)
