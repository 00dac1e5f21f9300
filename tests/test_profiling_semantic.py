"""Semantic types: declared roles win, rules decide for undeclared columns."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest
from ibis.expr import datatypes as dt

from relmap_utils.profiling import profile_table
from relmap_utils.profiling.semantic import decide_type, declared_type, infer_type
from relmap_utils.schema import TABLES


@pytest.mark.parametrize(
    ("name", "dtype", "stats", "expected", "ordinal"),
    [
        ("客户号", dt.int64, {"count": 12, "distinct": 12, "min": 100001, "max": 100012}, "identifier", False),
        ("cust_no", dt.int64, {"count": 500, "distinct": 500, "min": 1, "max": 500}, "identifier", False),
        ("serial", dt.int64, {"count": 999, "distinct": 999, "min": 100001, "max": 100999}, "identifier", False),
        ("年龄", dt.int64, {"count": 12, "distinct": 12, "min": 23, "max": 66}, "numeric", False),
        ("性别", dt.int64, {"count": 12, "distinct": 2, "min": 1, "max": 2}, "category", False),
        ("风险等级", dt.int64, {"count": 12, "distinct": 5, "min": 1, "max": 5}, "category", True),
        ("score_band", dt.int64, {"count": 100, "distinct": 4, "min": 1, "max": 4}, "category", True),
        ("channel", dt.int64, {"count": 100, "distinct": 4, "min": 1, "max": 4}, "category", False),
        ("region_code", dt.int64, {"count": 100, "distinct": 7, "min": 1, "max": 7}, "category", False),
        ("district_id", dt.int64, {"count": 5000, "distinct": 77, "min": 1, "max": 77}, "category", False),
        ("target", dt.int8, {"count": 100, "distinct": 2, "min": 0, "max": 1}, "boolean", False),
        ("num_products", dt.int64, {"count": 1000, "distinct": 15, "min": 0, "max": 14}, "numeric", False),
        ("balance", dt.float64, {"count": 10, "distinct": 3, "min": 0.0, "max": 5.0}, "numeric", False),
        ("flag", dt.string, {"count": 100, "distinct": 2, "min": "N", "max": "Y"}, "boolean", False),
        ("是否有效", dt.string, {"count": 100, "distinct": 2, "min": "否", "max": "是"}, "boolean", False),
        ("segment", dt.string, {"count": 1000, "distinct": 5, "mean_length": 6.0}, "category", False),
        ("客户等级", dt.string, {"count": 1000, "distinct": 5, "mean_length": 2.0}, "category", False),
        ("remark", dt.string, {"count": 1000, "distinct": 990, "mean_length": 45.0}, "text", False),
        ("comment", dt.string, {"count": 1000, "distinct": 900, "mean_length": 20.0, "spaces": 800}, "text", False),
        ("order_ref", dt.string, {"count": 1000, "distinct": 1000, "mean_length": 12.0}, "identifier", False),
        ("备注编号", dt.string, {"count": 40, "distinct": 40, "mean_length": 6.0}, "identifier", False),
        ("city", dt.string, {"count": 12, "distinct": 12, "mean_length": 2.0}, "category", False),
        ("姓名", dt.string, {"count": 1000, "distinct": 990, "mean_length": 3.0}, "personal", False),
        ("phone", dt.string, {"count": 1000, "distinct": 990, "mean_length": 11.0}, "personal", False),
        ("contact", dt.string, {"count": 1000, "distinct": 990, "mean_length": 11.0,
                                "pattern_matches": {"mobile": 990, "resident_id": 0, "email": 0}}, "personal", False),
        ("product_name", dt.string, {"count": 1000, "distinct": 12, "mean_length": 6.0}, "category", False),
        ("open_date", dt.date, {"count": 10, "distinct": 10}, "date", False),
        ("txn_time", dt.timestamp, {"count": 10, "distinct": 10}, "date", False),
        ("is_active", dt.boolean, {"count": 10, "distinct": 2}, "boolean", False),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_inference_rules(name, dtype, stats, expected, ordinal):
    semantic = infer_type(name, dtype, stats)

    assert semantic.type == expected
    assert semantic.ordinal is ordinal
    assert semantic.source == "inferred"
    assert semantic.reason


def test_declared_role_wins_over_data():
    stats = {"count": 12, "distinct": 12, "min": 23, "max": 66}
    meta = {"role": "category", "declared": True, "pseudonymized": False}

    semantic = decide_type("年龄", dt.int64, stats, meta)

    assert semantic.type == "category"
    assert semantic.source == "role"


def test_declared_text_category_is_not_ordinal():
    stats = {"count": 300, "distinct": 3, "min": "普通", "max": "白金"}
    meta = {"role": "category", "declared": True, "pseudonymized": False}

    semantic = decide_type("customer_tier", dt.string, stats, meta)

    assert semantic.type == "category"
    assert semantic.ordinal is False


def test_numeric_code_with_scale_name_stays_ordinal():
    stats = {"count": 300, "distinct": 3, "min": 1, "max": 3}
    meta = {"role": "category", "declared": True, "pseudonymized": False}

    assert decide_type("customer_tier", dt.int64, stats, meta).ordinal is True


def test_text_category_has_no_min_max():
    backend = ibis.duckdb.connect()
    frame = pd.DataFrame({"customer_tier": ["普通", "金卡", "白金"] * 20, "risk_level": [1, 2, 3] * 20})
    table = backend.create_table("tiers", frame)

    profile = profile_table(table, "tiers")

    tier = profile.columns["customer_tier"]
    assert (tier.semantic_type, tier.semantic.ordinal) == ("category", False)
    assert tier.min is None
    assert tier.max is None
    risk = profile.columns["risk_level"]
    assert (risk.semantic_type, risk.semantic.ordinal) == ("category", True)
    assert (risk.min, risk.max) == (1, 3)


def test_undeclared_role_is_ignored():
    stats = {"count": 12, "distinct": 12, "min": 23, "max": 66}
    meta = {"role": "category", "declared": False}

    assert decide_type("年龄", dt.int64, stats, meta).type == "numeric"


@pytest.mark.parametrize(
    ("column", "expected"),
    [("customer_id", "identifier"), ("name", "personal"), ("phone", "personal")],
)
def test_pseudonymized_columns(column, expected):
    meta = {"pseudonymized": True, "declared": False}

    semantic = declared_type(column, meta, TABLES["customers"].column(column))

    assert semantic.type == expected
    assert semantic.source == "pseudonymized"


@pytest.mark.parametrize(
    ("table", "column", "expected"),
    [
        ("customers", "gender", "category"),
        ("customers", "income", "numeric"),
        ("customers", "birth_date", "date"),
        ("customers", "address", "personal"),
        ("accounts", "account_id", "identifier"),
        ("labels", "value", "numeric"),
    ],
)
def test_schema_types(table, column, expected):
    semantic = declared_type(column, None, TABLES[table].column(column))

    assert semantic.type == expected
    assert semantic.source == "schema"


def test_ingest_id_type_for_unmapped_column():
    semantic = declared_type("branch_ref", {"type": "id", "declared": False}, None)

    assert semantic.type == "identifier"


def test_pattern_scan_types_personal_data_from_values():
    backend = ibis.duckdb.connect()
    phones = [f"138{index:08d}" for index in range(40)]
    frame = pd.DataFrame({"联系方式": phones, "备注编号": [f"R{index:05d}" for index in range(40)]})
    table = backend.create_table("t", frame)

    profile = profile_table(table, "t")

    contact = profile.columns["联系方式"]
    assert contact.semantic_type == "personal"
    assert contact.semantic.reason in ("personal_name", "personal_pattern")
    assert contact.top_values is None
    assert contact.min is None


def test_pattern_scan_finds_values_under_neutral_name():
    backend = ibis.duckdb.connect()
    frame = pd.DataFrame({"contact_ref": [f"user{index}@example.cn" for index in range(40)]})
    table = backend.create_table("t", frame)

    column = profile_table(table, "t").columns["contact_ref"]

    assert column.semantic_type == "personal"
    assert column.semantic.reason == "personal_pattern"
    assert column.pattern_matches["email"] == 40
