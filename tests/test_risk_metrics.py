"""AUC, KS and Gini per group, with groups that have one class only.

Expected values are read from the case's expected.json, where AUC is the
share of bad-good pairs ranked correctly, ties counting one half.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from relmap_utils.risk.metrics import discrimination, group_discrimination

TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def branch_case(cases):
    folder = cases / "B14"
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))["expected"]
    return pd.read_csv(folder / "branch_scores.csv"), expected


def test_branch_metrics(branch_case):
    frame, expected = branch_case
    per_group, _ = group_discrimination(frame, "分行", "违约概率", "是否违约")
    rows = per_group.set_index("group")

    for branch, values in expected["per_branch"].items():
        assert rows.loc[branch, "n"] == values["n"], branch
        assert rows.loc[branch, "n_bad"] == values["n_bad"], branch
        for metric in ("auc", "ks", "gini"):
            if values[metric] is None:
                assert rows.loc[branch, metric] is None or math.isnan(rows.loc[branch, metric]), branch
            else:
                assert rows.loc[branch, metric] == pytest.approx(values[metric], abs=TOLERANCE), (branch, metric)


def test_branch_without_defaults_is_undefined(branch_case):
    frame, _ = branch_case
    per_group, _ = group_discrimination(frame, "分行", "违约概率", "是否违约")

    assert per_group.set_index("group").loc["深圳分行", "undefined"] == "no_bad"


def test_pooled_and_mean_over_branches(branch_case):
    frame, expected = branch_case
    _, overall = group_discrimination(frame, "分行", "违约概率", "是否违约")

    pooled = expected["pooled_all_branches"]
    assert overall["n"] == pooled["n"]
    assert overall["n_bad"] == pooled["n_bad"]
    assert overall["auc"] == pytest.approx(pooled["auc"], abs=TOLERANCE)
    assert overall["ks"] == pytest.approx(pooled["ks"], abs=TOLERANCE)
    assert overall["gini"] == pytest.approx(pooled["gini"], abs=TOLERANCE)
    assert overall["mean_auc"] == pytest.approx(expected["mean_auc_over_branches_with_both_classes"], abs=TOLERANCE)
    assert overall["groups_in_mean"] == expected["n_branches_in_mean"]


@pytest.mark.parametrize(
    ("score", "target", "reason"),
    [([], [], "empty"), ([0.1, 0.2], [0, 0], "no_bad"), ([0.1, 0.2], [1, 1], "no_good")],
    ids=["empty", "no-bad", "no-good"],
)
def test_undefined_metrics(score, target, reason):
    result = discrimination(score, target)

    assert result["undefined"] == reason
    assert result["auc"] is None
    assert result["ks"] is None


def test_ties_count_half():
    result = discrimination([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0])

    assert result["auc"] == pytest.approx(0.5)
    assert result["ks"] == pytest.approx(0.0)
