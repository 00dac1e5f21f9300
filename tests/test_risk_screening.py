"""Indicator screening, VIF, correlation clusters, scorecard points and parameters."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from relmap_utils.errors import ConfigError
from relmap_utils.risk.binning import transform_woe
from relmap_utils.risk.params import make_params
from relmap_utils.risk.scorecard import build_scorecard, scaling
from relmap_utils.risk.screening import (
    correlation_clusters,
    iv_band,
    screen_indicators,
    unusable_reason,
    variance_inflation,
)


@pytest.fixture(scope="module")
def bad_inputs() -> tuple[pd.DataFrame, np.ndarray]:
    """Two real indicators, one near copy of the first, and every kind of unusable variable."""
    rng = np.random.default_rng(11)
    rows = 2000
    income = rng.lognormal(8.5, 0.5, rows)
    late = rng.poisson(0.4, rows).astype(float)
    logit = -2.5 - 1.2 * (income > np.median(income)) + 0.9 * late
    target = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({
        "income": income,
        "income_copy": income * 1.01 + rng.normal(0, 1, rows),
        "late": late,
        "constant": 1.0,
        "all_missing": np.nan,
        "label_copy": np.where(target == 1, "bad", "good"),
        "rare": np.where(np.arange(rows) < 30, 1.0, np.nan),
    })
    frame.loc[np.flatnonzero(target == 1)[:1], "rare"] = 2.0
    return frame, target


@pytest.fixture(scope="module")
def screened(bad_inputs):
    frame, target = bad_inputs
    params = make_params({"screening": {"min_variable_defaults": 5}})
    return screen_indicators(frame, target, list(frame.columns), params)


@pytest.mark.parametrize(
    ("variable", "reason"),
    [("constant", "constant"), ("all_missing", "all_missing"), ("label_copy", "label_copy"),
     ("rare", "few_defaults"), ("income_copy", "correlated")],
)
def test_unusable_variable_named(screened, variable, reason):
    row = screened.indicators.set_index("variable").loc[variable]

    assert row["status"] == "dropped"
    assert row["reason"] == reason
    assert row["reason_en"]


def test_notices_name_each_variable(screened):
    messages = [notice.render("en") for notice in screened.notices]

    for name in ("constant", "all_missing", "label_copy", "rare"):
        assert any(name in message for message in messages), name


def test_real_indicators_kept(screened):
    assert sorted(screened.kept) == ["income", "late"]
    row = screened.indicators.set_index("variable").loc["income"]
    assert row["iv"] > 0.1
    assert 0.5 < row["auc"] <= 1
    assert row["ks"] > 0
    assert row["multi_odds_ratio"] == pytest.approx(math.exp(row["multi_coef"]))


def test_correlated_pair_forms_cluster(screened):
    clusters = screened.clusters.set_index("variable")

    assert clusters.loc["income", "cluster"] == clusters.loc["income_copy", "cluster"]
    assert bool(clusters.loc["income", "representative"]) or bool(clusters.loc["income_copy", "representative"])
    assert screened.indicators.set_index("variable").loc["income_copy", "related"] == "income"


def test_sensitive_variable_not_kept(bad_inputs):
    frame, target = bad_inputs
    params = make_params({})
    result = screen_indicators(frame[["income", "late"]], target, ["income", "late"], params, sensitive=["late"])

    assert result.kept == ["income"]
    assert result.indicators.set_index("variable").loc["late", "reason"] == "sensitive"


def test_vif_with_intercept_flags_constant():
    rng = np.random.default_rng(3)
    first = rng.normal(size=500)
    frame = pd.DataFrame({"a": first, "b": first + rng.normal(scale=0.5, size=500), "c": 2.0})
    result = variance_inflation(frame).set_index("variable")

    assert bool(result.loc["c", "constant"])
    assert result.loc["c", "vif"] is None or np.isnan(result.loc["c", "vif"])
    # With an intercept, VIF of a is 1 / (1 - R^2) of a regressed on b.
    r_squared = sm.OLS(frame["a"], sm.add_constant(frame["b"])).fit().rsquared
    assert result.loc["a", "vif"] == pytest.approx(1 / (1 - r_squared), rel=1e-9)


def test_clusters_join_transitively():
    correlation = pd.DataFrame(
        [[1.0, 0.8, 0.1], [0.8, 1.0, 0.75], [0.1, 0.75, 1.0]], index=list("abc"), columns=list("abc"))
    clusters = correlation_clusters(correlation, {"a": 0.1, "b": 0.3, "c": 0.2}, 0.7)

    assert clusters["cluster"].nunique() == 1
    assert clusters.loc[clusters.representative, "variable"].tolist() == ["b"]


@pytest.mark.parametrize(("iv", "band"), [(0.01, "useless"), (0.05, "weak"), (0.2, "medium"),
                                          (0.4, "strong"), (0.7, "suspicious")])
def test_iv_bands(iv, band):
    assert iv_band(iv) == band


def test_label_copy_detected_for_negation():
    target = np.array([0, 1, 0, 1])

    assert unusable_reason(pd.Series([1, 0, 1, 0]), target, 1) == "label_copy"


def test_scorecard_scaling_defaults():
    factor, offset = scaling(make_params({}).scorecard)

    # 600 points at odds 19:1, and 50 more points double the odds.
    assert offset + factor * math.log(19) == pytest.approx(600)
    assert offset + factor * math.log(38) == pytest.approx(650)


def test_scorecard_points_reproduce_logit(screened, bad_inputs):
    frame, _ = bad_inputs
    scorecard = build_scorecard(screened.bins, screened.logit, make_params({}).scorecard)
    points = scorecard.table.groupby("variable")["points_exact"]

    assert set(scorecard.table["variable"]) == {"income", "late"}
    assert points.count().sum() == len(scorecard.table)
    woe = transform_woe(screened.bins, frame, scorecard.variables)
    coefficients = screened.logit.set_index("variable")["coef"]
    log_odds_bad = coefficients["const"] + sum(coefficients[name] * woe[name] for name in scorecard.variables)
    exact = scorecard.offset - scorecard.factor * log_odds_bad
    # Rounded points differ from the exact score by at most 0.5 per variable.
    assert np.abs(scorecard.score(frame) - exact).max() <= 0.5 * len(scorecard.variables) + 1e-9
    np.testing.assert_allclose(scorecard.probability(exact), 1 / (1 + np.exp(-log_odds_bad)), rtol=1e-9)


@pytest.mark.parametrize(
    ("values", "path"),
    [({"horizon_months": 0}, "horizon_months"), ({"monotonic_trend": "up"}, "monotonic_trend"),
     ({"scorecard": {"pdo": -1}}, "scorecard.pdo"), ({"unknown": 1}, "unknown"),
     ({"risk_bands": [0.5, 0.1]}, "risk_bands")],
    ids=["horizon", "trend", "pdo", "unknown", "bands"],
)
def test_bad_parameter_names_key_path(values, path):
    with pytest.raises(ConfigError, match="stages.risk.params"):
        make_params(values)
    try:
        make_params(values)
    except ConfigError as error:
        assert path.split(".")[0] in error.render("en")
