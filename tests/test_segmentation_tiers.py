"""Rule tiers and stage parameters: ordered rules, 万元 thresholds, overlaps, gaps, bad input."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from relmap_utils.errors import ConfigError
from relmap_utils.segmentation.params import TierParams, amount_to_yuan, parse_params
from relmap_utils.segmentation.tiers import UNASSIGNED, assign_tiers

# Six customers; aum in yuan.
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
        "aum": [8_000_000.0, 600_000.0, 499_999.0, 20_000.0, None, 0.0],
        "products_held": [5, 1, 4, 3, 0, 1],
        "city_tier": ["一线", "二线", "一线", None, "三线", "一线"],
    }
)
AMOUNTS = {"aum"}


def tiers_of(params: dict) -> tuple[dict[str, str], object]:
    result = assign_tiers(ibis.memtable(CUSTOMERS), TierParams.model_validate(params), AMOUNTS)
    frame = result.expression.order_by("customer_id").to_pandas()
    return dict(zip(frame.customer_id, frame.tier)), result


RULES = {
    "amount_unit": "万元",
    "rules": [
        {"code": "private", "when": {"aum": {"min": 600}}},
        {"code": "wealth", "when": {"aum": {"min": 50}}},
        {"code": "active", "when": [{"products_held": {"min": 3}}, {"city_tier": {"in": ["一线"]}}]},
        {"code": "mass"},
    ],
}


def test_first_matching_rule_wins():
    tiers, result = tiers_of(RULES)

    assert tiers == {"c1": "private", "c2": "wealth", "c3": "active", "c4": "active", "c5": "mass", "c6": "active"}
    frame = result.expression.order_by("customer_id").to_pandas()
    assert frame.tier_rule.tolist() == [1, 2, 3, 3, 4, 3]


def test_wan_thresholds_convert_to_yuan():
    # 50 万元 is 500,000 yuan: 499,999 stays below, 600,000 is above.
    tiers, _ = tiers_of(RULES)
    assert tiers["c3"] != "wealth"
    assert tiers["c2"] == "wealth"


@pytest.mark.parametrize(
    ("value", "unit", "yuan"),
    [("50万", "元", 500_000.0), (50, "万元", 500_000.0), ("1.2亿", "元", 120_000_000.0), (300, "元", 300.0),
     ("3万元", "亿元", 30_000.0)],
    ids=["text_wan", "number_in_wan", "text_yi", "plain_yuan", "text_overrides_unit"],
)
def test_amount_to_yuan(value, unit, yuan):
    assert amount_to_yuan(value, unit) == yuan


def test_overlaps_counted_per_pair():
    _, result = tiers_of(RULES)
    overlaps = {(row.tier, row.other_tier): row.customers for row in result.overlaps.itertuples()}

    # c1 meets private, wealth and active (5 products); c2 (二线, 1 product) meets wealth only.
    assert overlaps == {("private", "wealth"): 1, ("private", "active"): 1, ("wealth", "active"): 1}


def test_missing_value_fails_condition():
    tiers, _ = tiers_of({"rules": [{"code": "any_assets", "when": {"aum": {"min": 0}}}, {"code": "rest"}]})
    assert tiers["c5"] == "rest"


def test_missing_test_matches_nulls():
    tiers, _ = tiers_of({"rules": [{"code": "unknown", "when": {"aum": {"missing": True}}}, {"code": "rest"}]})
    assert [code for code, tier in tiers.items() if tier == "unknown"] == ["c5"]


def test_customers_left_out_go_to_unassigned():
    tiers, result = tiers_of({"amount_unit": "万元", "rules": [{"code": "private", "when": {"aum": {"min": 600}}}]})

    assert tiers == {"c1": "private", "c2": UNASSIGNED, "c3": UNASSIGNED, "c4": UNASSIGNED, "c5": UNASSIGNED,
                     "c6": UNASSIGNED}
    messages = [notice.as_dict()["message_en"] for notice in result.notices]
    assert any("5 customers match none of the 1 tier rules" in message for message in messages)


def test_rule_matching_nobody_named():
    _, result = tiers_of({"rules": [{"code": "billionaire", "when": {"aum": {"min": "10亿"}}}, {"code": "rest"}]})
    messages = [notice.as_dict()["message_en"] for notice in result.notices]
    assert messages == ["Tier rule billionaire (rule 1) matches no customer. Check its thresholds and units."]


def test_rule_after_catch_all_named():
    _, result = tiers_of({"rules": [{"code": "everyone"}, {"code": "late", "when": {"products_held": {"min": 1}}}]})
    messages = [notice.as_dict()["message_en"] for notice in result.notices]
    assert messages == ["Tier rule late (rule 2) matches 5 customers, but earlier rules placed all of them, "
                        "so the tier is empty."]


def test_unknown_column_names_rule():
    with pytest.raises(ConfigError, match="分层规则 vip（第 1 条）引用的列 assets 不在关系地图中"):
        tiers_of({"rules": [{"code": "vip", "when": {"assets": {"min": 1}}}, {"code": "rest"}]})


def test_range_test_on_text_rejected():
    with pytest.raises(ConfigError, match="city_tier"):
        tiers_of({"rules": [{"code": "big", "when": {"city_tier": {"min": 1}}}, {"code": "rest"}]})


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"clusters": {"k": 1}}, "stages.segmentation.params.clusters.k"),
        ({"clusters": {"k": [8, 3]}}, "stages.segmentation.params.clusters.k"),
        ({"clusters": {"method": "dbscan"}}, "stages.segmentation.params.clusters.method"),
        ({"tiers": {"rules": [{"code": "a"}, {"code": "a"}]}}, "stages.segmentation.params.tiers"),
        ({"tiers": {"rules": [{"code": "a", "when": {"aum": {"min": "lots"}}}]}}, "tiers.rules[0].when"),
        ({"rfm": {"bins": 5, "high_score": 6}}, "stages.segmentation.params.rfm"),
        ({"colour": "red"}, "stages.segmentation.params.colour"),
        ({"clusters": {"method": "kmeans", "criterion": "bic"}}, "stages.segmentation.params.clusters"),
    ],
    ids=["k_below_2", "k_range_reversed", "unknown_method", "repeated_code", "bad_amount", "high_score", "unknown_key",
         "bic_with_kmeans"],
)
def test_bad_parameters_name_key_path(params, path):
    with pytest.raises(ConfigError) as caught:
        parse_params(params)
    assert path in caught.value.render("en")


def test_empty_parameters_use_defaults():
    params = parse_params({"as_of": "", "tiers": {}, "clusters": {}})
    assert params.clusters.k_values == [3, 4, 5, 6, 7, 8]
    assert params.clusters.sample_size == 100_000
    assert params.rfm.bins == 5
