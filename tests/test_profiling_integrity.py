"""Checks across tables: references both ways, orphan samples, date overlaps."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from relmap_utils.profiling import profile_tables
from relmap_utils.profiling.integrity import check_reference


@pytest.fixture
def backend():
    return ibis.duckdb.connect()


@pytest.fixture
def bank(backend):
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "open_date": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-01", "2020-04-01"]),
        }
    )
    accounts = pd.DataFrame(
        {
            "account_id": ["k1", "k2", "k3", "k4", "k5", "k6"],
            "customer_id": ["a", "a", "b", "x", "y", None],
            "product_family": ["deposit", "loan", "card", "deposit", "deposit", "wealth"],
            "open_date": pd.to_datetime(["2022-01-01"] * 6),
        }
    )
    return {
        "customers": backend.create_table("customers", customers),
        "accounts": backend.create_table("accounts", accounts),
    }


def test_orphans_counted_both_ways(bank):
    check = check_reference(
        bank["accounts"], "customer_id", bank["customers"], "customer_id", table="accounts", ref_table="customers"
    )

    assert check.checked_rows == 5
    assert check.null_rows == 1
    assert check.orphan_rows == 2
    assert check.orphan_keys == 2
    assert check.orphan_sample == ["x", "y"]
    assert check.orphan_share == pytest.approx(0.4)
    assert check.parent_keys == 4
    assert check.unreferenced_keys == 2


def test_orphan_sample_is_capped(bank):
    check = check_reference(
        bank["accounts"], "customer_id", bank["customers"], "customer_id",
        table="accounts", ref_table="customers", max_samples=1,
    )

    assert check.orphan_sample == ["x"]
    assert check.orphan_keys == 2


def test_integer_and_text_keys_match(backend):
    parent = backend.create_table("p", pd.DataFrame({"id": [1, 2]}))
    child = backend.create_table("c", pd.DataFrame({"ref": ["1", "3"]}))

    check = check_reference(child, "ref", parent, "id", table="c", ref_table="p")

    assert check.orphan_rows == 1
    assert check.orphan_sample == ["3"]


def test_profile_reports_orphan_finding(bank):
    profile = profile_tables(bank)

    [check] = profile.references
    assert (check.table, check.column, check.ref_table) == ("accounts", "customer_id", "customers")
    orphans = [finding for finding in profile.findings if finding.code == "profiling.finding.orphans"]
    assert len(orphans) == 1
    assert orphans[0].severity == "high"
    assert orphans[0].text("zh_CN") == (
        "表 accounts 有 2 行的 customer_id 在 customers 中找不到（2 个不同取值，占已填写行的 40.0%）。"
    )
    assert orphans[0].text("en").startswith("Table accounts has 2 rows whose customer_id is not found in customers")


def test_unreferenced_parents_are_info(bank):
    profile = profile_tables(bank)

    [finding] = [item for item in profile.findings if item.code == "profiling.finding.unreferenced"]
    assert finding.severity == "info"
    assert finding.table == "customers"


def test_missing_reference_is_skipped(backend):
    accounts = backend.create_table(
        "accounts", pd.DataFrame({"account_id": ["k1"], "customer_id": ["a"], "product_family": ["loan"]})
    )

    profile = profile_tables({"accounts": accounts})

    assert profile.references == []


def test_date_ranges_without_overlap(bank):
    profile = profile_tables(bank)

    [overlap] = profile.date_overlaps
    assert {overlap.table, overlap.other_table} == {"accounts", "customers"}
    assert overlap.related is True
    assert overlap.overlap_days == 0
    findings = [item for item in profile.findings if item.code == "profiling.finding.no_date_overlap"]
    assert [item.severity for item in findings] == ["low"]


def test_overlap_days_count_both_ends(backend):
    first = backend.create_table("customers", pd.DataFrame(
        {"customer_id": ["a", "b"], "open_date": pd.to_datetime(["2023-01-01", "2023-01-31"])}
    ))
    second = backend.create_table("labels", pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "label_type": ["default", "default"],
            "label_date": pd.to_datetime(["2023-01-31", "2023-03-01"]),
            "value": [0, 1],
        }
    ))

    profile = profile_tables({"customers": first, "labels": second})

    [overlap] = profile.date_overlaps
    assert overlap.overlap_days == 1
    assert overlap.related is True
