"""WoE/IV binning: the hard cases, saved bin tables and agreement with optbinning.

Expected values of the cases are read from each case's expected.json. The optbinning comparison fits
``optbinning.OptimalBinning`` with the same settings on the same rows and
compares the IV it reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from relmap_utils.risk.binning import (
    BIN_COLUMNS,
    SolverSettings,
    apply_woe,
    assign_bins,
    fit_variable,
    transform_woe,
    woe_iv,
)

TOLERANCE = 1e-6


def _case(cases: Path, name: str) -> tuple[pd.DataFrame, dict]:
    folder = cases / name
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    data = pd.read_csv(next(folder.glob("*.csv")))
    return data, expected


def _by_kind(table: pd.DataFrame) -> dict[str, pd.Series]:
    """Map a bin to the label the cases use: 缺失, 特殊值:v or the interval."""
    labels = {}
    for _, row in table[~table["empty"]].iterrows():
        if row.kind == "missing":
            labels["缺失"] = row
        elif row.kind == "special":
            labels["特殊值:" + row.bin.removeprefix("special:")] = row
        else:
            labels[row.bin] = row
    return labels


def _check_bins(table: pd.DataFrame, expected_bins: list[dict]) -> None:
    found = _by_kind(table)
    assert sorted(found) == sorted(item["bin"] for item in expected_bins)
    for item in expected_bins:
        row = found[item["bin"]]
        assert row.good == item["good"], item["bin"]
        assert row.bad == item["bad"], item["bin"]
        assert row.pct_bad == pytest.approx(item["pct_bad"], abs=TOLERANCE), item["bin"]
        assert row.pct_good == pytest.approx(item["pct_good"], abs=TOLERANCE), item["bin"]
        assert row.woe == pytest.approx(item["woe"], abs=TOLERANCE), item["bin"]
        assert row.iv_part == pytest.approx(item["iv_part"], abs=TOLERANCE), item["bin"]


def test_empty_class_bin_gets_half_count(cases):
    data, expected = _case(cases, "B10")
    result = fit_variable(data["近12月逾期次数"], data["是否坏客户"], breaks=[3, 6], fixed_breaks=True)

    _check_bins(result.table, expected["expected"]["bins"])
    assert result.iv == pytest.approx(expected["expected"]["iv_total"], abs=TOLERANCE)
    assert np.isfinite(result.table["woe"]).all()
    assert result.table["count"].sum() == len(data)
    assert result.table.loc[result.table.zero_cell, "kind"].tolist() == ["missing"]
    assert [notice.key for notice in result.notices] == ["risk.notice.zero_cell"]


def test_empty_class_bin_zero_rule(cases):
    data, expected = _case(cases, "B10")
    result = fit_variable(data["近12月逾期次数"], data["是否坏客户"], breaks=[3, 6], fixed_breaks=True,
                          zero_cell_rule="zero")

    missing = result.table[result.table.kind == "missing"].iloc[0]
    assert missing.woe == 0.0
    assert missing.iv_part == 0.0
    assert result.iv == pytest.approx(expected["alternative_rule_for_reference"]["iv_total"], abs=TOLERANCE)


def test_woe_iv_sign_convention():
    table = woe_iv([150, 300, 130], [5, 30, 65], rule="zero")

    # ln(%bad / %good): the riskiest bin has the largest, positive WoE.
    assert table.woe.iloc[2] > 0 > table.woe.iloc[0]
    assert table.woe.iloc[0] == pytest.approx(np.log((5 / 100) / (150 / 580)), abs=1e-12)


def test_special_value_gets_own_bin(cases):
    data, expected = _case(cases, "B12")
    result = fit_variable(data["月收入"], data["是否坏客户"], breaks=[5000, 10000], fixed_breaks=True,
                          special_values=[-999])

    _check_bins(result.table, expected["expected"]["bins"])
    assert result.iv == pytest.approx(expected["expected"]["iv_total"], abs=TOLERANCE)
    lowest = assign_bins(result.table, data["月收入"]) == 0
    assert data.loc[lowest, "月收入"].min() == expected["expected"]["min_value_in_bin_[-inf,5000)"]

    probe = pd.Series([item["月收入"] for item in expected["expected"]["apply"]], dtype=float)
    woe = apply_woe(result.table, probe)
    np.testing.assert_allclose(woe, [item["woe"] for item in expected["expected"]["apply"]], atol=TOLERANCE)


def test_impossible_trend_is_reported(cases):
    data, expected = _case(cases, "B13")
    result = fit_variable(data["年龄"], data["是否坏客户"], breaks=[25, 35, 45, 55], monotonic_trend="ascending")

    assert result.n_bins == expected["expected"]["with_trend_ascending"]["n_bins"]
    assert result.iv == pytest.approx(0.0, abs=TOLERANCE)
    assert [notice.key for notice in result.notices] == ["risk.notice.trend_one_bin"]
    message = result.notices[0].render("en")
    assert "年龄" in message
    assert "ascending" in message


@pytest.mark.parametrize("trend", ["auto", "descending"])
def test_auto_trend_finds_descending_bins(cases, trend):
    data, expected = _case(cases, "B13")
    target = expected["expected"]["with_trend_descending_or_auto"]
    result = fit_variable(data["年龄"], data["是否坏客户"], breaks=[25, 35, 45, 55], monotonic_trend=trend)

    assert result.n_bins == target["n_bins"]
    assert result.trend == target["trend_detected"]
    _check_bins(result.table, target["bins"])
    assert result.iv == pytest.approx(target["iv_total"], abs=TOLERANCE)
    assert result.notices == []


def _synthetic(rows: int = 3000, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(8.5, 0.6, rows).round(0)
    city = rng.choice(["一线", "二线", "三线", "四线"], rows, p=[0.2, 0.3, 0.3, 0.2])
    logit = -2.0 - 0.8 * (income > 6000) + 0.6 * (city == "四线")
    target = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    income[rng.random(rows) < 0.05] = np.nan
    return pd.DataFrame({"income": income, "city": city}), target


@pytest.mark.parametrize("column", ["income", "city"])
def test_iv_equals_optbinning(column):
    from optbinning import OptimalBinning

    frame, target = _synthetic()
    ours = fit_variable(frame[column], target)
    assert not ours.table.zero_cell.any()

    dtype = "numerical" if column == "income" else "categorical"
    reference = OptimalBinning(name=column, dtype=dtype, **SolverSettings().as_kwargs()).fit(
        frame[column].to_numpy(), target)
    table = reference.binning_table.build()
    assert ours.iv == pytest.approx(float(table.loc["Totals", "IV"]), rel=1e-9)
    if dtype == "numerical":
        np.testing.assert_allclose(ours.table.loc[ours.table.kind == "interval", "upper"].to_numpy()[:-1],
                                   reference.splits)


def test_saved_bins_apply_unchanged(tmp_path):
    frame, target = _synthetic()
    result = fit_variable(frame["income"], target)
    path = tmp_path / "bins.parquet"
    result.table.to_parquet(path, index=False)
    saved = pd.read_parquet(path)

    assert list(saved.columns) == list(BIN_COLUMNS)
    new = pd.DataFrame({"income": [np.nan, 0.0, 1e9, frame["income"].median()]})
    from_saved = transform_woe(saved, new)["income"].to_numpy()
    np.testing.assert_allclose(from_saved, apply_woe(result.table, new["income"]))
    missing_woe = saved.loc[saved.kind == "missing", "woe"].iloc[0]
    assert from_saved[0] == pytest.approx(missing_woe)
    assert from_saved[1] == pytest.approx(saved.loc[saved.kind == "interval", "woe"].iloc[0])
    assert from_saved[2] == pytest.approx(saved.loc[saved.kind == "interval", "woe"].iloc[-1])


def test_training_woe_matches_bin_table():
    frame, target = _synthetic()
    result = fit_variable(frame["city"], target)
    woe = apply_woe(result.table, frame["city"])
    ids = assign_bins(result.table, frame["city"])

    for row in result.table[~result.table["empty"]].itertuples():
        assert np.all(woe[ids == row.bin_id] == row.woe)


def test_unseen_category_gets_neutral_woe():
    frame, target = _synthetic()
    result = fit_variable(frame["city"], target)

    assert apply_woe(result.table, pd.Series(["五线", None]))[0] == 0.0
    assert assign_bins(result.table, pd.Series(["五线"]))[0] == -1


def test_missing_bin_without_training_missing():
    values = pd.Series([1.0, 2.0, 3.0, 4.0] * 50)
    target = np.array([0, 0, 1, 1] * 50)
    result = fit_variable(values, target)

    missing = result.table[result.table.kind == "missing"].iloc[0]
    assert bool(missing["empty"])
    assert apply_woe(result.table, pd.Series([np.nan]))[0] == 0.0


def test_unknown_trend_rejected():
    with pytest.raises(ValueError, match="monotonic_trend must be one of"):
        fit_variable(pd.Series([1.0, 2.0]), [0, 1], monotonic_trend="upwards")
