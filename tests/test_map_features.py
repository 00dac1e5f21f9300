"""Feature values of every family on the tiny bank at 2024-06-30, worked out by hand.

The derivations are in test_map_support's docstring and beside the cases below.
"""

from __future__ import annotations

import statistics

import ibis
import pandas as pd
import pytest

from relmap_utils.errors import ConfigError, StageError
from relmap_utils.features import MapSpec, build_map
from test_map_pointintime import SPEC
from test_map_support import AS_OF, frames, load

# c1's monthly net flow, June 2024 back to July 2023. The salary is 10,000 every month. On top
# come +5 - 100 - 50 - 1,000 in June, -200 in May, the bonus 20,000 and -300 in January, -400 in August.
C1_NET = [8_855, 9_800, 10_000, 10_000, 10_000, 29_700, 10_000, 10_000, 10_000, 10_000, 9_600, 10_000]

EXPECTED = [
    # profile
    ("c1", "age_years", 33),  # born 1990-07-01: the birthday is the day after as_of
    ("c2", "age_years", 64),  # born 1960-06-30
    ("c1", "age_band", "25_34"),
    ("c2", "age_band", "55_64"),
    ("c3", "age_band", "under_25"),
    ("c1", "life_stage", "young_family"),
    ("c2", "life_stage", "pre_retirement"),
    ("c3", "life_stage", None),  # marital status unknown under 55
    ("c1", "is_married", True),
    ("c2", "is_married", False),
    ("c1", "tenure_months", 53),
    ("c2", "tenure_months", 1),
    ("c3", "tenure_months", None),  # joins after as_of
    ("c3", "joined_by_as_of", False),
    ("c4", "joined_by_as_of", True),  # no open_date
    ("c1", "region_name", "上海市"),
    ("c2", "region_avg_salary", 8_000.0),
    ("c1", "income", 120_000.0),
    ("c4", "profile_covered", False),
    # holdings: a3 closed on 2024-03-31, a5 opens after as_of
    ("c1", "accounts_held", 2),
    ("c1", "deposit_accounts", 1),
    ("c1", "loan_accounts", 0),
    ("c1", "insurance_accounts", 0),
    ("c1", "product_families_held", 2),
    ("c1", "months_since_last_opening", 39),  # card opened 2021-03-01
    ("c1", "credit_limit", 50_000.0),
    ("c1", "deposit_balance", 12_000.0),
    ("c1", "card_balance", 2_000.0),  # stored as -2,000
    ("c1", "aum", 12_000.0),
    ("c1", "liabilities", 2_000.0),
    ("c1", "leverage", 2_000 / 12_000),
    ("c1", "card_utilization", 2_000 / 50_000),
    ("c2", "wealth_balance", 30_000.0),
    ("c2", "leverage", 0.0),
    ("c2", "card_utilization", None),
    ("c4", "accounts_held", 0),
    ("c4", "aum", 0.0),
    ("c4", "leverage", None),
    ("c4", "holdings_covered", False),
    # transactions: data from 2023-07-10, so c1 observes all 12 months
    ("c1", "months_observed", 12),
    ("c2", "months_observed", 2),  # joined 2024-05-10: May and June
    ("c3", "months_observed", 0),
    ("c4", "months_observed", 12),
    ("c1", "txn_count", 20),
    ("c1", "inflow_monthly_avg", 140_005 / 12),
    ("c1", "outflow_monthly_avg", 2_050 / 12),
    ("c1", "net_flow_monthly_avg", (140_005 - 2_050) / 12),
    ("c1", "net_flow_monthly_std", statistics.stdev(C1_NET)),
    ("c2", "outflow_monthly_avg", 40.0),
    ("c2", "net_flow_monthly_std", statistics.stdev([-80, 0])),
    ("c3", "inflow_monthly_avg", None),
    ("c3", "net_flow_monthly_std", None),
    ("c4", "inflow_monthly_avg", 0.0),
    ("c4", "net_flow_monthly_std", 0.0),
    ("c1", "inflow_trend", 30_005 / 50_000 - 1),  # April-June against January-March (with the bonus)
    ("c1", "outflow_trend", 1_350 / 300 - 1),
    ("c2", "inflow_trend", None),  # fewer than 6 months observed
    ("c4", "outflow_trend", None),  # nothing before
    ("c1", "purchase_count", 5),
    ("c1", "purchase_amount", 1_050.0),
    ("c1", "days_since_last_purchase", 2),
    ("c1", "days_since_last_transaction", 0),  # 2024-06-30 23:59:59
    ("c1", "frequency", 3),
    ("c1", "recency", 332),
    ("c1", "T", 334),
    ("c1", "monetary_value", (300 + 200 + 150) / 3),  # 2024-06-28 sums 100 and 50
    ("c2", "frequency", 0),
    ("c2", "recency", 0),
    ("c2", "T", 29),
    ("c2", "monetary_value", 0.0),
    ("c4", "frequency", None),
    ("c4", "days_since_last_purchase", None),
    ("c1", "salary_regular", True),
    ("c1", "salary_monthly_amount", 10_000.0),  # the bonus month counts its smallest inflow
    ("c2", "salary_regular", False),
    ("c1", "cash_withdrawals_recent", 0),
    ("c1", "channels_used", 3),
    ("c1", "channel_share_mobile", 4 / 20),
    ("c1", "channel_share_pos", 3 / 20),
    ("c1", "merchant_share_travel", 300 / 1_050),
    ("c1", "merchant_share_dining", 750 / 1_050),
    ("c4", "channel_share_mobile", None),
    ("c4", "transactions_covered", False),
    # stability: recent = April-June 2024, baseline = July 2023-March 2024
    ("c1", "inflow_change", (30_005 / 3) / (110_000 / 9) - 1),
    ("c1", "outflow_change", (1_350 / 3) / (700 / 9) - 1),
    ("c1", "txn_count_change", (8 / 3) / (12 / 9) - 1),
    ("c2", "inflow_change", None),  # the recent window is not fully observed
    ("c4", "txn_count_change", None),  # baseline 0
    ("c1", "event_count_change", (3 / 3) / (2 / 6) - 1),  # events start 2023-10-01: 9 months observed
    ("c1", "regular_income_months", 12),
    ("c1", "regular_income_months_recent", 3),
    ("c1", "new_devices_recent", 1),  # D2
    ("c1", "devices_recent", 2),  # D1 and D2
    ("c2", "new_devices_recent", 1),
    ("c4", "new_devices_recent", 0),
    ("c1", "new_counterparties_recent", 3),  # M2, M3 and c2
    ("c4", "new_counterparties_recent", 0),
    ("c1", "phone_changes_recent", 0),
    ("c2", "phone_changes_recent", 0),  # the first phone of a new customer is no change
    ("c1", "address_changes_recent", 1),
    ("c1", "aum_change_recent", 12_000 / 8_000 - 1),
    ("c2", "aum_change_recent", None),
    ("c1", "instalments_due_recent", 3),
    ("c1", "late_instalments_recent", 2),
    ("c1", "days_past_due", 20),  # due 2024-06-10, paid after as_of
    ("c2", "days_past_due", None),
    ("c3", "stability_covered", False),
    # interests: interest window April-June 2024
    ("c1", "event_count", 5),
    ("c1", "days_since_last_event", 5),
    ("c1", "topics_browsed", 1),
    ("c1", "interest_education_count", 2),
    ("c1", "interest_education_days_since", 10),
    ("c1", "interest_travel_count", 0),
    ("c1", "interest_travel_days_since", 273),
    ("c1", "interest_retirement_days_since", None),
    ("c2", "interest_retirement_count", 1),
    ("c4", "event_count", 0),
    ("c4", "interests_covered", False),
    # relations: c3's guarantee starts after as_of; x9 is not a customer
    ("c1", "degree", 5),
    ("c1", "rel_family_count", 2),
    ("c1", "rel_address_count", 2),
    ("c1", "rel_guarantor_count", 0),
    ("c3", "degree", 0),
    ("c1", "shared_phone_customers", 1),
    ("c2", "shared_phone_customers", 1),
    ("c1", "shared_address_customers", 0),
    ("c1", "related_customers", 1),
    ("c1", "related_defaulted", 1),
    ("c1", "related_default_rate", 1.0),
    ("c2", "related_customers", 1),
    ("c2", "related_default_rate", 0.0),
    ("c3", "related_default_rate", None),
    ("c1", "counterparties", 5),
    ("c3", "relations_covered", False),
]


@pytest.fixture(scope="module")
def backend():
    connection = ibis.duckdb.connect()
    yield connection
    connection.disconnect()


@pytest.fixture(scope="module")
def tables(backend):
    return load(backend, frames())


@pytest.fixture(scope="module")
def customer_map(tables) -> pd.DataFrame:
    return build_map(tables, AS_OF, SPEC).to_pandas().set_index("customer_id")


@pytest.mark.parametrize(("customer", "feature", "expected"), EXPECTED,
                         ids=[f"{customer}-{feature}" for customer, feature, _ in EXPECTED])
def test_feature_value(customer_map, customer, feature, expected):
    value = customer_map.loc[customer, feature]

    if expected is None:
        assert pd.isna(value)
    elif isinstance(expected, (bool, str)):
        assert value == expected
    else:
        assert value == pytest.approx(expected, rel=1e-12)


def test_every_customer_once(customer_map):
    assert sorted(customer_map.index) == ["c1", "c2", "c3", "c4"]


def test_relations_active_only_drops_ended(backend):
    tiny = frames()
    tiny["relations"].loc[tiny["relations"].related_id == "ADDR1", "end_date"] = pd.Timestamp("2024-06-01")

    counted = build_map(load(backend, tiny), AS_OF, SPEC).to_pandas().set_index("customer_id")
    active = build_map(load(backend, tiny), AS_OF, SPEC.replace(relations_active_only=True))
    active = active.to_pandas().set_index("customer_id")

    assert counted.loc["c1", "rel_address_count"] == 2
    assert active.loc["c1", "rel_address_count"] == 1


def test_purchase_direction_any_counts_inflows(backend, tables):
    spec = SPEC.replace(purchase_direction="any", purchase_txn_types=None)

    frame = build_map(tables, AS_OF, spec).to_pandas().set_index("customer_id")

    # All 20 of c1's transactions are purchases, on 19 distinct days.
    assert frame.loc["c1", "purchase_count"] == 20
    assert frame.loc["c1", "frequency"] == 18


def test_without_counterparty_salary_pools_inflows(backend):
    tiny = frames()
    tiny["transactions"] = tiny["transactions"].drop(columns=["counterparty_id"])

    frame = build_map(load(backend, tiny), AS_OF, SPEC).to_pandas().set_index("customer_id")

    assert frame.loc["c1", "salary_regular"]
    assert "counterparties" not in frame.columns
    assert "new_counterparties_recent" not in frame.columns


# ------------------------------------------------------------------ bad input


def test_customers_table_required(tables):
    others = {name: table for name, table in tables.items() if name != "customers"}

    with pytest.raises(StageError, match="customers"):
        build_map(others, AS_OF)


def test_customer_id_required(backend):
    tiny = frames()
    tiny["customers"] = tiny["customers"].rename(columns={"customer_id": "client_no"})

    with pytest.raises(StageError, match="customer_id"):
        build_map(load(backend, tiny), AS_OF)


def test_text_dates_rejected(backend):
    tiny = frames()
    tiny["transactions"]["txn_time"] = tiny["transactions"]["txn_time"].astype(str)

    with pytest.raises(StageError, match=r"transactions.*txn_time|txn_time.*transactions"):
        build_map(load(backend, tiny), AS_OF)


def test_time_zone_aware_timestamps_rejected(backend, tables):
    aware = dict(tables)
    aware["events"] = tables["events"].mutate(event_time=tables["events"].event_time.cast("timestamp('UTC')"))

    with pytest.raises(StageError, match="event_time"):
        build_map(aware, AS_OF)


@pytest.mark.parametrize(
    ("as_of", "timezone", "match"),
    [("30/06/2024", "Asia/Shanghai", "as_of"), (AS_OF, "Mars/Olympus", "timezone")],
    ids=["bad-date", "bad-zone"],
)
def test_bad_arguments(tables, as_of, timezone, match):
    with pytest.raises(ConfigError, match=match):
        build_map(tables, as_of, timezone=timezone)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"recent_months": 0}, "recent_months"),
        ({"recent_months": 12}, "history_months"),
        ({"history_months": "12"}, "history_months"),
        ({"purchase_direction": "sideways"}, "purchase_direction"),
        ({"salary_min_share": 1.5}, "salary_min_share"),
        ({"topics": "education"}, "topics"),
        ({"channels": {"Mobile App": ["手机银行"]}}, "channels"),
        ({"shared_entity_max_customers": 1}, "shared_entity_max_customers"),
    ],
    ids=["zero-window", "recent-not-shorter", "text-months", "direction", "share", "text-list", "bad-code",
         "cap"],
)
def test_bad_settings(settings, match):
    with pytest.raises(ConfigError, match=match):
        MapSpec(**settings)


# ------------------------------------------------------------------ Spark


def test_map_compiles_to_spark_sql(tables):
    """The map compiles with Ibis's PySpark compiler (the parity test runs it on Spark)."""
    pytest.importorskip("pyspark")
    # Loading the backend through ibis registers the PySpark options its compiler reads.
    assert ibis.pyspark is not None
    expression = build_map(tables, AS_OF, SPEC)

    sql = ibis.to_sql(expression, dialect="pyspark")

    assert "APPROX" not in sql.upper()
    assert "PERCENTILE" not in sql.upper()
