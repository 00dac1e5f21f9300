"""Findings ranked by severity and the quality score formula, on hand-built tables."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from relmap_utils.profiling import profile_tables
from relmap_utils.profiling.findings import quality_score
from relmap_utils.profiling.report import findings_table

TOLERANCE = 1e-4


@pytest.fixture
def backend():
    return ibis.duckdb.connect()


def _bank(backend, **extra_customer_columns):
    customers = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "gender": ["M", "F", None, "M"],
                              **extra_customer_columns})
    accounts = pd.DataFrame(
        {
            "account_id": ["k1", "k2", "k3", "k4", "k5", "k6"],
            "customer_id": ["a", "a", "b", "x", "y", None],
            "product_family": ["deposit", "loan", "card", "deposit", "deposit", "wealth"],
        }
    )
    return {
        "customers": backend.create_table("customers", customers, overwrite=True),
        "accounts": backend.create_table("accounts", accounts, overwrite=True),
    }


def test_score_dimensions_by_hand(backend):
    profile = profile_tables(_bank(backend))

    score = profile.score
    # completeness: mean of 1, 3/4 (customers) and 1, 5/6, 1 (accounts)
    assert score.completeness == pytest.approx((1 + 0.75 + 1 + 5 / 6 + 1) / 5, abs=TOLERANCE)
    # uniqueness: one accounts row has a null key part, out of 4 + 6 keyed rows
    assert score.uniqueness == pytest.approx(0.9, abs=TOLERANCE)
    # integrity: 2 orphan references out of 5 non-null ones
    assert score.integrity == pytest.approx(0.6, abs=TOLERANCE)
    assert score.validity == pytest.approx(1.0, abs=TOLERANCE)
    # 100 * (0.4 * 0.916667 + 0.2 * 0.9 + 0.3 * 0.6 + 0.1 * 1) = 82.67
    assert score.score == pytest.approx(82.7, abs=0.05)
    assert score.capped is False


def test_findings_ranked_by_severity(backend):
    profile = profile_tables(_bank(backend))

    ranked = [(finding.severity, finding.table, finding.column, finding.code) for finding in profile.findings]
    assert ranked == [
        ("high", "accounts", "account_id, customer_id", "profiling.finding.key_nulls"),
        ("high", "accounts", "customer_id", "profiling.finding.orphans"),
        ("high", "accounts", "customer_id", "profiling.finding.required_missing_values"),
        ("low", "customers", "gender", "profiling.finding.some_missing"),
        ("info", "customers", "customer_id", "profiling.finding.unreferenced"),
    ]


def test_critical_finding_caps_score(backend):
    names = ["甲", "乙", "丙", "丁"]
    profile = profile_tables(_bank(backend, 姓名=names))

    critical = [finding for finding in profile.findings if finding.severity == "critical"]
    assert [finding.code for finding in critical] == ["profiling.finding.personal_name"]
    assert profile.score.capped is True
    assert profile.score.score == 50.0
    for finding in profile.findings:
        for name in names:
            assert name not in finding.text("zh_CN")


def test_missing_required_column_is_critical(backend):
    accounts = backend.create_table("accounts", pd.DataFrame({"account_id": ["k1"], "customer_id": ["a"]}))

    profile = profile_tables({"accounts": accounts})

    [finding] = [item for item in profile.findings if item.severity == "critical"]
    assert finding.code == "profiling.finding.missing_required"
    assert finding.column == "product_family"
    assert "product_family" in finding.text("zh_CN")


def test_empty_table_is_critical(backend):
    customers = backend.create_table("customers", pd.DataFrame({"customer_id": pd.Series([], dtype="string")}))

    profile = profile_tables({"customers": customers})

    assert [finding.code for finding in profile.findings] == ["profiling.finding.empty_table"]
    assert profile.score.capped is True
    assert profile.score.score == 50.0


@pytest.mark.parametrize(
    ("share", "code", "severity"),
    [(0.6, "profiling.finding.mostly_missing", "medium"), (0.1, "profiling.finding.some_missing", "low")],
    ids=["mostly-missing", "some-missing"],
)
def test_missing_shares_of_optional_columns(backend, share, code, severity):
    missing = round(share * 10)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{index}" for index in range(10)],
            "occupation": [None] * missing + ["clerk"] * (10 - missing),
        }
    )

    profile = profile_tables({"customers": backend.create_table("customers", frame)})

    found = [(item.code, item.severity) for item in profile.findings if item.column == "occupation"]
    assert (code, severity) in found


def test_duplicate_keys_are_high(backend):
    frame = pd.DataFrame({"customer_id": ["a", "a", "b"], "gender": ["M", "M", "F"]})

    profile = profile_tables({"customers": backend.create_table("customers", frame)})

    [finding] = [item for item in profile.findings if item.code == "profiling.finding.duplicate_keys"]
    assert finding.severity == "high"
    assert finding.text("zh_CN") == "表 customers 的键（customer_id）有 1 个取值重复出现，涉及 2 行。"
    assert profile.score.uniqueness == pytest.approx(1 - 1 / 3, abs=TOLERANCE)


def test_findings_table_in_english(backend, monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")
    profile = profile_tables(_bank(backend))

    table = findings_table(profile)

    assert list(table.columns) == ["severity", "table", "column", "finding"]
    assert table.iloc[0]["severity"] == "high"
    assert table.iloc[0]["finding"].startswith("Table accounts has 1 row with an empty key")


def test_findings_table_in_chinese(backend):
    table = findings_table(profile_tables(_bank(backend)))

    assert list(table.columns) == ["严重程度", "表", "列", "说明"]
    assert table.iloc[0]["严重程度"] == "高"


def test_score_without_tables_is_perfect():
    from relmap_utils.profiling.model import Profile

    assert quality_score(Profile(tables={})).score == 100.0


def test_validity_counts_checked_cells(backend):
    import datetime as dt

    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "birth_date": pd.to_datetime(["1890-01-01", "1980-05-05", "1990-06-06", "2000-07-07"]),
        }
    )

    profile = profile_tables({"customers": backend.create_table("customers", frame)}, as_of=dt.date(2024, 1, 1))

    # 1 implausible date; checked: 4 dates + 4 identifiers scanned for scientific notation
    assert profile.score.validity == pytest.approx(1 - 1 / 8, abs=TOLERANCE)
    [finding] = [item for item in profile.findings if item.code == "profiling.finding.implausible_dates"]
    assert finding.severity == "medium"
    assert finding.column == "birth_date"
