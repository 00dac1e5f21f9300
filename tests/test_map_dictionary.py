"""The feature dictionary, features left out with a reason, and the values the stage discovers."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from relmap_utils import i18n
from relmap_utils.errors import ConfigError
from relmap_utils.features import FAMILIES, MapSpec, available_columns, build_map, discover_values, feature_dictionary
from relmap_utils.features.base import UNITS
from relmap_utils.features.dictionary import DICTIONARY_COLUMNS, candidate_features
from relmap_utils.features.spec import make_spec
from test_map_pointintime import SPEC
from test_map_support import AS_OF, frames, load


@pytest.fixture(scope="module")
def backend():
    connection = ibis.duckdb.connect()
    yield connection
    connection.disconnect()


def test_dictionary_columns():
    frame = feature_dictionary(SPEC)

    assert list(frame.columns) == list(DICTIONARY_COLUMNS)
    assert frame.name.is_unique
    assert set(frame.family) == set(FAMILIES)
    assert set(frame.unit) <= set(UNITS)
    assert set(frame.status) == {"included"}
    assert set(frame.no_data_value) <= {"0", "false", "NULL"}


def test_every_description_translated():
    frame = feature_dictionary(SPEC)

    assert frame.description_zh.str.len().min() > 4
    assert frame.description_en.str.len().min() > 4
    assert not frame.description_zh.str.contains("features.feature").any()
    assert not frame.description_en.str.contains(r"\{").any()
    chinese = frame.description_zh.str.contains(r"[\u4e00-\u9fff]")
    assert chinese.all(), list(frame.name[~chinese])


def test_every_description_key_in_both_catalogs():
    keys = {feature.description for feature in candidate_features(SPEC)}

    assert sorted(keys - set(i18n.catalog("zh_CN"))) == []
    assert sorted(keys - set(i18n.catalog("en"))) == []


def test_dictionary_matches_map_columns(backend):
    tables = load(backend, frames())

    expression = build_map(tables, AS_OF, SPEC)
    dictionary = feature_dictionary(SPEC, available_columns(tables))

    included = list(dictionary.name[dictionary.status == "included"])
    assert list(expression.columns) == ["customer_id", "as_of", *included]


def test_missing_table_leaves_family_out(backend):
    tiny = {name: frame for name, frame in frames().items() if name not in ("transactions", "events")}
    tables = load(backend, tiny)

    dictionary = feature_dictionary(SPEC, available_columns(tables)).set_index("name")
    columns = build_map(tables, AS_OF, SPEC).columns

    left_out = dictionary[dictionary.status == "left_out"]
    assert set(left_out.family) >= {"transactions", "interests"}
    assert dictionary.loc["frequency", "reason_en"] == "table transactions is missing"
    assert dictionary.loc["frequency", "reason_zh"] == "缺少表 transactions"
    assert dictionary.loc["transactions_covered", "status"] == "left_out"
    assert not any(name in columns for name in left_out.index)
    assert "counterparties" not in columns
    assert "degree" in columns


def test_missing_relations_table_leaves_relation_features_out(backend):
    # SPEC names relation types, but the engagement has no relations table.
    assert SPEC.relation_types
    tables = load(backend, {name: frame for name, frame in frames().items() if name != "relations"})

    dictionary = feature_dictionary(SPEC, available_columns(tables)).set_index("name")
    frame = build_map(tables, AS_OF, SPEC).to_pandas()

    relation_features = dictionary[(dictionary.family == "relations") & (dictionary.index != "counterparties")]
    assert set(relation_features.status) == {"left_out"}
    assert set(relation_features.reason_en.str.split("; ").str[0]) == {"table relations is missing"}
    assert dictionary.loc["rel_guarantor_count", "reason_zh"] == "缺少表 relations"
    assert not any(name in frame.columns for name in relation_features.index)
    # Counterparties come from the transactions, which are there.
    assert dictionary.loc["counterparties", "status"] == "included"
    assert frame.counterparties.notna().all()
    assert len(frame) == frame.customer_id.nunique() == len(frames()["customers"])


def test_missing_column_named_in_reason():
    available = {name: list(frame.columns) for name, frame in frames().items()}
    available["accounts"].remove("limit_amount")

    dictionary = feature_dictionary(SPEC, available).set_index("name")

    assert dictionary.loc["credit_limit", "status"] == "left_out"
    assert dictionary.loc["credit_limit", "reason_en"] == "column limit_amount is missing from table accounts"
    assert dictionary.loc["credit_limit", "reason_zh"] == "表 accounts 缺少列 limit_amount"
    assert dictionary.loc["aum", "status"] == "included"


def test_unset_value_lists_leave_features_out():
    dictionary = feature_dictionary(MapSpec()).set_index("name")

    for name, setting in [("channel_share_*", "channels"), ("merchant_share_*", "merchant_categories"),
                          ("interest_*_count", "topics"), ("rel_*_count", "relation_types"),
                          ("cash_withdrawals_recent", "cash_txn_types")]:
        assert dictionary.loc[name, "status"] == "left_out", name
        assert setting in dictionary.loc[name, "reason_en"], name


def test_lone_coverage_flag_left_out():
    available = {"customers": ["customer_id", "birth_date"], "relations": ["customer_id", "start_date"]}

    dictionary = feature_dictionary(SPEC, available).set_index("name")

    assert dictionary.loc["age_years", "status"] == "included"
    assert dictionary.loc["relations_covered", "status"] == "left_out"
    assert dictionary.loc["stability_covered", "status"] == "left_out"
    assert "relations" in dictionary.loc["relations_covered", "reason_en"]


def test_no_zero_filled_balances(backend):
    tiny = frames()
    del tiny["balances"]

    frame = build_map(load(backend, tiny), AS_OF, SPEC).to_pandas()

    assert "aum" not in frame.columns
    assert "deposit_balance" not in frame.columns
    assert "accounts_held" in frame.columns


def test_discover_values_fills_lists(backend):
    tables = load(backend, frames())

    spec, notices = discover_values(tables, MapSpec())

    assert set(spec.topics) == {"education", "travel", "retirement"}
    assert set(spec.relation_types) == {"phone", "address", "family", "guarantor"}
    assert spec.channels["pos"] == ("POS",)
    assert spec.channels["手机银行"] == ("手机银行",)
    assert spec.merchant_categories["餐饮"] == ("餐饮",)
    # The tiny bank has phones and addresses but no shared devices or accounts.
    assert spec.shared_types == ("phone", "address")
    assert [notice.code for notice in notices] == ["values_absent"]
    assert "device, account" in notices[0].as_dict()["message_en"]


def test_discover_values_keeps_given_lists(backend):
    tables = load(backend, frames())

    spec, _ = discover_values(tables, SPEC)

    assert spec.topics == SPEC.topics
    assert spec.channels == SPEC.channels


def test_discover_values_cuts_long_lists(backend):
    tiny = frames()
    events = tiny["events"]
    extra = pd.concat([events.iloc[[0]]] * 25, ignore_index=True)
    extra["topic"] = [f"topic{index:02d}" for index in range(25)]
    tiny["events"] = pd.concat([events, extra], ignore_index=True)

    spec, notices = discover_values(load(backend, tiny), MapSpec())

    assert len(spec.topics) == 20
    cut = [notice for notice in notices if notice.code == "values_cut"]
    assert cut and cut[0].params["total"] == 28


def test_unknown_setting_rejected():
    with pytest.raises(ConfigError, match="purchase_types"):
        make_spec({"purchase_types": ["消费"]})


def test_spec_from_plain_values():
    spec = make_spec({"topics": ["education"], "channels": {"mobile": "手机银行"}, "history_months": 6})

    assert spec.topics == ("education",)
    assert spec.channels == {"mobile": ("手机银行",)}
    assert spec.months_needed == 6
    assert spec.as_dict()["channels"] == {"mobile": ["手机银行"]}
