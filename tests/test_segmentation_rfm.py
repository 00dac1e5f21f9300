"""RFM scores: the tie rule on hand-computed data and on the single-purchase card case."""

from __future__ import annotations

import json
from pathlib import Path

import ibis
import pandas as pd
import pytest

from relmap_utils.errors import ConfigError
from relmap_utils.segmentation.params import RfmParams
from relmap_utils.segmentation.rfm import NO_PURCHASE, rfm_values_from_transactions, score_rfm


def scored(frame: pd.DataFrame, **params) -> pd.DataFrame:
    return score_rfm(ibis.memtable(frame), RfmParams(**params)).order_by("customer_id").to_pandas()


@pytest.fixture(scope="module")
def card_case(cases: Path) -> tuple[pd.DataFrame, dict]:
    """The ten card customers, seven with one purchase, scored through the public API."""
    folder = cases / "B19"
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    [name] = expected["inputs"]
    backend = ibis.duckdb.connect()
    raw = backend.read_csv(folder / name)
    customer, day, amount = raw.columns  # customer number, transaction date, amount
    log = raw.select(customer_id=raw[customer], txn_time=raw[day], amount=raw[amount])
    values = rfm_values_from_transactions(log, expected["conventions"]["as_of_date"])
    frame = score_rfm(values).order_by("customer_id").to_pandas().set_index("customer_id")
    return frame, expected["expected"]


@pytest.mark.parametrize(
    ("column", "key"),
    [("days_since_last_purchase", "R_days"), ("purchase_count", "F"), ("purchase_amount", "M"),
     ("r_score", "R_score"), ("f_score", "F_score"), ("m_score", "M_score")],
)
def test_card_case_matches_expected(card_case, column, key):
    frame, expected = card_case
    assert frame[column].to_dict() == pytest.approx(expected[key], abs=1e-9)


def test_card_case_invariants(card_case):
    frame, _ = card_case
    by_frequency = frame.groupby("purchase_count")["f_score"].agg(["min", "max"])

    assert (by_frequency["min"] == by_frequency["max"]).all()
    assert by_frequency["min"].is_monotonic_increasing
    assert by_frequency.loc[1, "min"] < by_frequency.loc[2, "min"]


def test_ties_share_score_whatever_the_row_order():
    # 10 customers: F = 1 for seven, then 2, 3, 6. minrank of F=1 is 1, so
    # ceil(5 * 1 / 10) = 1; F=2: ceil(5 * 8 / 10) = 4; F=3: ceil(4.5) = 5; F=6: 5.
    frame = pd.DataFrame({"customer_id": [f"k{i}" for i in range(10)], "days_since_last_purchase": list(range(10)),
                          "purchase_count": [1, 1, 1, 1, 1, 1, 1, 2, 3, 6], "purchase_amount": [1.0] * 10})
    forward = scored(frame)
    backward = scored(frame.iloc[::-1])

    assert forward.f_score.tolist() == [1, 1, 1, 1, 1, 1, 1, 4, 5, 5]
    assert backward.f_score.tolist() == forward.f_score.tolist()
    # Equal monetary values for everyone: minrank 1, score 1.
    assert set(forward.m_score) == {1}


def test_recency_fewer_days_better():
    # Days 0, 10, 10, 40: strictly worse counts are 3, 1, 1, 0, so minranks 4, 2, 2, 1 of n = 4.
    frame = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "days_since_last_purchase": [0, 10, 10, 40],
                          "purchase_count": [1, 1, 1, 1], "purchase_amount": [1.0, 1.0, 1.0, 1.0]})
    assert scored(frame).r_score.tolist() == [5, 3, 3, 2]


def test_customer_without_purchase_not_scored():
    frame = pd.DataFrame({"customer_id": ["a", "b"], "days_since_last_purchase": [3.0, None],
                          "purchase_count": [2, 0], "purchase_amount": [50.0, 0.0]})
    result = scored(frame)

    assert result.rfm_cell.tolist() == ["important_value", NO_PURCHASE]
    assert result.r_score.isna().tolist() == [False, True]


def test_cells_split_at_high_score():
    frame = pd.DataFrame({"customer_id": ["a", "b"], "days_since_last_purchase": [1, 90],
                          "purchase_count": [1, 9], "purchase_amount": [900.0, 10.0]})
    result = scored(frame, bins=2, high_score=2)

    # a: R 2, F 1, M 2 -> recent, rare, high spend. b: R 1, F 2, M 1.
    assert result.rfm_code.tolist() == ["212", "121"]
    assert result.rfm_cell.tolist() == ["important_development", "general_retention"]


def test_scores_within_each_map_date():
    frame = pd.DataFrame({"customer_id": ["a", "b", "a", "b"], "as_of": ["2024-05-31"] * 2 + ["2024-06-30"] * 2,
                          "days_since_last_purchase": [1, 2, 2, 1], "purchase_count": [1, 1, 1, 1],
                          "purchase_amount": [1.0, 1.0, 1.0, 1.0]})
    result = score_rfm(ibis.memtable(frame), RfmParams(bins=2, high_score=2)).order_by(["as_of", "customer_id"]).to_pandas()
    assert result.r_score.tolist() == [2, 1, 1, 2]


def test_missing_column_names_parameter():
    frame = pd.DataFrame({"customer_id": ["a"], "recency_days": [1]})
    with pytest.raises(ConfigError, match="rfm.recency"):
        score_rfm(ibis.memtable(frame))
