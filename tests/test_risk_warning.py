"""Early-warning rules against the customer's own history, and the backtest arithmetic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from relmap_utils.risk.params import WarningSettings
from relmap_utils.risk.warning import backtest, compute_signals, months_between, signal_sentences

DATES = pd.to_datetime(["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"])


def _panel() -> pd.DataFrame:
    """Customer a loses salary and withdraws cash at the last date; b gets one new device."""
    rows = []
    for number, day in enumerate(DATES):
        last = number == len(DATES) - 1
        rows.append({"customer_id": "a", "as_of": day, "regular_income_months_recent": 1 if last else 3,
                     "cash_withdrawals_recent": 9 if last else 0, "cash_withdrawals_monthly_avg": 0.0,
                     "new_devices_recent": 0, "late_instalments_recent": 0, "days_past_due": 0,
                     "aum_change_recent": 0.0, "related_defaulted": 0})
        rows.append({"customer_id": "b", "as_of": day, "regular_income_months_recent": 3,
                     "cash_withdrawals_recent": 1, "cash_withdrawals_monthly_avg": 0.3,
                     "new_devices_recent": 1 if number == 1 else 0, "late_instalments_recent": 0,
                     "days_past_due": 0, "aum_change_recent": 0.1, "related_defaulted": 0})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def signals():
    return compute_signals(_panel(), WarningSettings(), recent_months=3)


def test_income_drop_against_own_history(signals):
    frame = signals.frame.set_index(["customer_id", "as_of"])

    assert bool(frame.loc[("a", DATES[-1]), "income_drop"])
    assert frame.loc[("a", DATES[-1]), "income_drop_before"] == 3
    assert frame.loc[("a", DATES[-1]), "income_drop_now"] == 1
    assert not frame.loc["a", "income_drop"].iloc[:-1].any()


def test_cash_jump_needs_minimum_and_ratio(signals):
    frame = signals.frame.set_index(["customer_id", "as_of"])

    assert bool(frame.loc[("a", DATES[-1]), "cash_jump"])
    assert not frame.loc["b", "cash_jump"].any()


def test_single_signal_counts_one(signals):
    frame = signals.frame.set_index(["customer_id", "as_of"])

    assert frame.loc[("a", DATES[-1]), "n_signals"] == 2
    assert frame.loc[("b", DATES[1]), "n_signals"] == 1
    assert signals.unavailable == []


def test_missing_columns_leave_rule_out():
    panel = _panel().drop(columns=["related_defaulted", "aum_change_recent"])
    result = compute_signals(panel, WarningSettings())

    assert result.unavailable == ["aum_drop", "related_default"]
    assert "aum_drop" not in result.frame.columns


def test_sentences_in_both_languages(signals):
    row = signals.frame.set_index(["customer_id", "as_of"]).loc[("a", DATES[-1])]
    text = signal_sentences(row, signals.available)

    assert "fell from 3 to 1" in text["en"]
    assert "regular income" in text["en"]
    assert "取现" in text["zh_CN"]


def test_months_between_calendar_months():
    start = pd.Series(pd.to_datetime(["2024-01-31", "2023-11-30"]))
    end = pd.Series(pd.to_datetime(["2024-04-02", "2024-02-01"]))

    assert months_between(start, end).tolist() == [3, 3]


def test_backtest_lead_and_false_alarms():
    warnings = pd.DataFrame({
        "customer_id": ["a", "a", "b", "b", "c", "c"],
        "as_of": pd.to_datetime(["2024-01-31", "2024-02-29"] * 3),
        "warned": [False, True, True, False, False, False],
        "score": [0.1, 0.9, 0.5, 0.2, 0.05, 0.01],
    })
    population = pd.DataFrame({
        "customer_id": ["a", "b", "c"],
        "default_date": pd.to_datetime(["2024-05-15", None, None]),
    })
    summary, monthly, lead_times, customers = backtest(
        warnings, population, pd.to_datetime(["2024-01-31", "2024-02-29"]), horizon_months=6, top_k=1, lead_months=2)

    assert summary["defaulters"] == 1
    assert summary["warned_lead"] == 1
    assert summary["warned_lead_share"] == 1.0
    assert summary["false_alarms"] == 1
    assert summary["false_alarm_rate"] == pytest.approx(0.5)
    assert lead_times.to_dict(orient="records") == [{"lead_months": 3, "customers": 1}]
    second = monthly.set_index("as_of").iloc[1]
    assert second["precision_at_k"] == 1.0
    assert second["recall_at_k"] == 1.0
    first = monthly.set_index("as_of").iloc[0]
    assert first["precision_at_k"] == 0.0
    assert np.isnan(customers.set_index("customer_id").loc["c", "lead_months"])


def test_warning_after_default_not_counted():
    warnings = pd.DataFrame({"customer_id": ["a", "a"], "as_of": pd.to_datetime(["2024-01-31", "2024-03-31"]),
                             "warned": [False, True], "score": [0.1, 0.9]})
    population = pd.DataFrame({"customer_id": ["a"], "default_date": pd.to_datetime(["2024-02-15"])})
    summary, _, _, _ = backtest(warnings, population, pd.to_datetime(["2024-01-31", "2024-03-31"]), 6, 5, 2)

    assert summary["warned_in_advance"] == 0
