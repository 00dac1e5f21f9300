"""Point in time: nothing dated after as_of changes the map, and values follow as_of.

The tiny bank of test_map_support has its values worked out by hand (see its docstring).
"""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pytest

from relmap_utils.features import MapSpec, build_map
from test_map_support import AS_OF, frames, load

SPEC = MapSpec(
    topics=("education", "travel", "retirement"),
    relation_types=("family", "phone", "address", "guarantor"),
    channels={"mobile": ("手机银行",), "pos": ("POS",)},
    merchant_categories={"travel": ("旅游酒店",), "dining": ("餐饮",)},
    purchase_txn_types=("消费",),
    cash_txn_types=("取现",),
    shared_types=("phone", "address"),
)


@pytest.fixture
def backend():
    connection = ibis.duckdb.connect()
    yield connection
    connection.disconnect()


def build(backend, tables: dict[str, pd.DataFrame], as_of: str = AS_OF) -> pd.DataFrame:
    expression = build_map(load(backend, tables), as_of, SPEC)
    return expression.order_by("customer_id").to_pandas().set_index("customer_id")


def _append(frame: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    extra = pd.DataFrame(rows)
    for column in extra.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            extra[column] = pd.to_datetime(extra[column])
    return pd.concat([frame, extra], ignore_index=True)


def future_tables() -> dict[str, pd.DataFrame]:
    """The tiny bank plus rows dated after 2024-06-30 in every dated table, and future-dated updates."""
    tables = frames()
    later = pd.Timestamp("2024-07-01 00:00:00")

    tables["transactions"] = pd.concat([tables["transactions"], pd.DataFrame({
        "txn_id": ["f1", "f2", "f3"],
        "customer_id": ["c1", "c2", "c4"],
        "txn_time": [later, later + pd.Timedelta(days=40), later + pd.Timedelta(hours=5)],
        "amount": [-999.0, 50_000.0, -70.0],
        "direction": ["out", "in", "out"],
        "channel": ["POS", "批量代发", "手机银行"],
        "merchant_category": ["餐饮", None, "旅游酒店"],
        "txn_type": ["消费", "代发工资", "消费"],
        "counterparty_id": ["M9", "E2", "M9"],
    })], ignore_index=True)

    tables["events"] = pd.concat([tables["events"], pd.DataFrame({
        "customer_id": ["c1", "c4"],
        "event_time": [later, later + pd.Timedelta(days=3)],
        "event_type": ["view", "view"],
        "topic": ["travel", "education"],
        "device_id": ["D7", "D8"],
    })], ignore_index=True)

    tables["balances"] = _append(tables["balances"], [
        {"account_id": "a1", "customer_id": "c1", "month": "2024-07-31", "balance": 1.0},
        {"account_id": "a5", "customer_id": "c1", "month": "2024-07-31", "balance": 9_000.0},
    ])

    accounts = _append(tables["accounts"], [
        {"account_id": "a6", "customer_id": "c4", "product_family": "loan", "product_code": "L02",
         "open_date": "2024-07-02", "limit_amount": 10_000.0},
    ])
    # A deposit that closes after as_of was still held on as_of.
    accounts.loc[accounts.account_id == "a1", "close_date"] = pd.Timestamp("2024-09-30")
    tables["accounts"] = accounts

    relations = _append(tables["relations"], [
        {"customer_id": "c4", "related_id": "P1", "relation_type": "phone", "related_type": "phone",
         "start_date": "2024-07-10"},
        {"customer_id": "c1", "related_id": "c4", "relation_type": "guarantor", "related_type": "customer",
         "start_date": "2024-08-01"},
    ])
    relations.loc[relations.related_id == "ADDR1", "end_date"] = pd.Timestamp("2024-08-31")
    tables["relations"] = relations

    tables["repayments"] = _append(tables["repayments"], [
        {"loan_id": "L1", "customer_id": "c1", "due_date": "2024-07-10", "paid_date": None},
    ])
    tables["labels"] = _append(tables["labels"], [
        {"customer_id": "c1", "label_type": "default", "label_date": "2024-07-01", "value": 1},
    ])
    return tables


def test_future_rows_leave_map_unchanged(backend):
    expected = build(backend, frames())
    actual = build(backend, future_tables())

    pd.testing.assert_frame_equal(actual, expected)


def test_future_customer_appears_without_features(backend):
    tables = frames()
    tables["customers"] = _append(tables["customers"], [
        {"customer_id": "c5", "birth_date": "1995-01-01", "open_date": "2024-07-20"},
    ])

    base = build(backend, frames())
    with_newcomer = build(backend, tables)

    pd.testing.assert_frame_equal(with_newcomer.drop(index="c5"), base)
    assert with_newcomer.loc["c5", "joined_by_as_of"] == False  # noqa: E712
    assert pd.isna(with_newcomer.loc["c5", "tenure_months"])
    assert with_newcomer.loc["c5", "txn_count"] == 0
    assert with_newcomer.loc["c5", "months_observed"] == 0


# Hand-computed values at two dates (see test_map_support).
MOVING = [
    ("2024-05-31", "c1", "tenure_months", 52),
    ("2024-06-30", "c1", "tenure_months", 53),
    ("2024-05-31", "c2", "age_years", 63),
    ("2024-06-30", "c2", "age_years", 64),
    ("2024-05-31", "c1", "aum", 10_000.0),
    ("2024-06-30", "c1", "aum", 12_000.0),
    ("2024-05-31", "c1", "liabilities", 0.0),
    ("2024-06-30", "c1", "liabilities", 2_000.0),
    ("2024-05-31", "c2", "wealth_balance", 29_000.0),
    ("2024-05-31", "c1", "months_observed", 11),
    ("2024-06-30", "c1", "months_observed", 12),
    ("2024-05-31", "c1", "txn_count", 15),
    ("2024-05-31", "c1", "inflow_monthly_avg", 130_000 / 11),
    ("2024-05-31", "c1", "frequency", 2),
    ("2024-06-30", "c1", "frequency", 3),
    ("2024-05-31", "c1", "recency", 288),
    ("2024-06-30", "c1", "recency", 332),
    ("2024-05-31", "c1", "T", 304),
    ("2024-06-30", "c1", "T", 334),
    ("2024-05-31", "c1", "monetary_value", 250.0),
    ("2024-06-30", "c1", "monetary_value", 650 / 3),
    ("2024-05-31", "c1", "days_since_last_purchase", 16),
    ("2024-06-30", "c1", "days_since_last_purchase", 2),
    ("2024-05-31", "c2", "frequency", None),
    ("2024-06-30", "c2", "frequency", 0),
    ("2024-05-31", "c2", "months_observed", 1),
    ("2024-05-31", "c1", "related_defaulted", 0),
    ("2024-06-30", "c1", "related_defaulted", 1),
    ("2024-05-31", "c1", "degree", 4),
    ("2024-06-30", "c1", "degree", 5),
    ("2024-05-31", "c1", "address_changes_recent", 0),
    ("2024-06-30", "c1", "address_changes_recent", 1),
    ("2024-05-31", "c1", "late_instalments_recent", 1),
    ("2024-06-30", "c1", "late_instalments_recent", 2),
    ("2024-05-31", "c1", "days_past_due", 0),
    ("2024-06-30", "c1", "days_past_due", 20),
    ("2024-05-31", "c1", "interest_education_count", 1),
    ("2024-06-30", "c1", "interest_education_count", 2),
    ("2024-05-31", "c1", "interest_education_days_since", 26),
    ("2024-06-30", "c1", "interest_education_days_since", 10),
]


@pytest.fixture(scope="module")
def maps() -> dict[str, pd.DataFrame]:
    connection = ibis.duckdb.connect()
    result = {as_of: build(connection, frames(), as_of) for as_of in ("2024-05-31", "2024-06-30")}
    connection.disconnect()
    return result


@pytest.mark.parametrize(("as_of", "customer", "feature", "expected"), MOVING,
                         ids=[f"{as_of}-{customer}-{feature}" for as_of, customer, feature, _ in MOVING])
def test_values_follow_as_of(maps, as_of, customer, feature, expected):
    value = maps[as_of].loc[customer, feature]

    if expected is None:
        assert pd.isna(value)
    else:
        assert value == pytest.approx(expected, rel=1e-12)


def test_as_of_column_is_the_date(backend):
    expression = build_map(load(backend, frames()), dt.date(2024, 5, 31), SPEC)

    assert expression.columns[:2] == ("customer_id", "as_of")
    assert expression.schema()["as_of"].is_date()
    assert set(expression.as_of.to_pandas()) == {pd.Timestamp("2024-05-31")}
