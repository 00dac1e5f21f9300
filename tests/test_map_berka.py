"""engagements/berka through the runner: the map on the real PKDD'99 Czech bank files.

Berka has no transactions table (only a 100-row sample exists), so the
transaction and interest families are left out with that reason. Holdings
come from accounts, loans and cards; relations from dispositions (an owner
and a disponent share an account) and payment orders. Expected counts are
recomputed here from ingest's canonical tables with DuckDB SQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from relmap_utils.features import read_map

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="module")
def run_dir(real_engagement_run) -> Path:
    return real_engagement_run("berka")


@pytest.fixture(scope="module")
def customer_map(run_dir: Path) -> pd.DataFrame:
    return read_map(run_dir / "artifacts" / "02_map" / "customer_map").set_index("customer_id")


@pytest.fixture(scope="module")
def sql(run_dir: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    for path in (run_dir / "artifacts" / "00_ingest" / "tables").glob("*.parquet"):
        connection.execute(f"create view {path.stem} as select * from '{path}'")
    return connection


def test_every_client_once(customer_map):
    assert len(customer_map) == 5369
    assert set(customer_map.as_of.astype(str)) == {"1998-12-31"}


def test_transaction_families_left_out(run_dir):
    dictionary = pd.read_parquet(run_dir / "artifacts" / "02_map" / "feature_dictionary.parquet")
    coverage = pd.read_parquet(run_dir / "artifacts" / "02_map" / "coverage.parquet").set_index("family")

    transactions = dictionary[dictionary.family == "transactions"]
    assert (transactions.status == "left_out").all()
    assert transactions.reason_en.str.startswith("table transactions is missing").all()
    assert transactions.reason_zh.str.startswith("缺少表 transactions").all()
    assert coverage.loc["transactions", "status"] == "left_out"
    assert coverage.loc["interests", "status"] == "left_out"
    assert coverage.loc["relations", "covered"] == 5369


def test_holdings_count_every_product(customer_map):
    assert customer_map.deposit_accounts.sum() == 4500
    assert customer_map.loan_accounts.sum() == 682
    assert customer_map.card_accounts.sum() == 892
    assert "aum" not in customer_map.columns  # no balances in the data


def test_shared_accounts_link_owner_and_disponent(customer_map, sql):
    pairs = sql.execute(
        "select count(*) from relations a join relations b on a.related_id = b.related_id "
        "and a.customer_id <> b.customer_id where a.related_type = 'account' and b.related_type = 'account'"
    ).fetchone()[0]

    assert customer_map.shared_account_customers.sum() == pairs
    assert customer_map.rel_disponent_count.sum() == 869
    assert customer_map.rel_payment_order_count.sum() == 6471


def test_related_defaults_counted_by_label_date(customer_map, sql):
    expected = sql.execute(
        """
        select count(*) from relations a
        join relations b on a.related_id = b.related_id and a.customer_id <> b.customer_id
        where a.related_type = 'account' and b.related_type = 'account'
          and b.customer_id in (select customer_id from labels
                                where label_type = 'default' and value = 1 and label_date <= date '1998-12-31')
        """
    ).fetchone()[0]

    assert customer_map.related_defaulted.sum() == expected
    has_related = customer_map.related_customers > 0
    assert customer_map.related_default_rate.notna().sum() == has_related.sum()


def test_region_attributes_joined(customer_map, sql):
    salaries = dict(sql.execute(
        "select c.customer_id, r.avg_salary from customers c join regions r on r.region_id = c.region_id"
    ).fetchall())

    assert customer_map.region_avg_salary.to_dict() == pytest.approx(salaries)
    assert customer_map.age_years.between(10, 90).all()


def test_summary_names_missing_values(run_dir):
    summary = json.loads((run_dir / "artifacts" / "02_map" / "summary.json").read_text(encoding="utf-8"))

    absent = [notice for notice in summary["notices"] if notice["code"] == "values_absent"]
    assert any("device, phone, address" in notice["message_en"] for notice in absent)
