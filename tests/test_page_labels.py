"""Words in place of codes on the client pages: feature labels, category values, products, tiers and risk bins."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from relmap_utils.dashboard.overview import propensity_cards
from relmap_utils.features.labels import (
    feature_label,
    format_value,
    sorted_values,
    value_label,
)
from relmap_utils.propensity import explain
from relmap_utils.propensity.report import product_labels, product_name
from relmap_utils.risk import report as risk_report
from relmap_utils.segmentation import report as segmentation_report


@pytest.mark.parametrize(
    ("name", "chinese", "english"),
    [
        ("T", "首次消费至今天数", "days since the first purchase"),
        ("age_band", "年龄段", "age band"),
        ("channel_share_mobile", "手机银行交易占比", "share of mobile banking transactions"),
        ("interest_education_count", "浏览子女教育类内容次数", "children's education pages browsed"),
        ("wealth_balance", "理财余额", "wealth management balance"),
        ("rel_device_count", "关联对象数（设备）", "related parties (device)"),
    ],
)
def test_feature_label_names(name, chinese, english):
    assert feature_label(name, "zh_CN") == chinese
    assert feature_label(name, "en") == english


def test_feature_label_unknown_code_kept():
    assert feature_label("merchant_share_wechat", "zh_CN") == "wechat消费占比"
    assert feature_label("campaign_x", "zh_CN") == "campaign_x"


def test_reason_keeps_label_same_as_column():
    frame = pd.DataFrame({"city": ["武汉"]})
    dictionary = {"city": {"zh_CN": "客户属性：城市（客户主数据的提取值）", "en": "Customer attribute: city (extraction-time value)",
                           "unit": "category"}}

    codes = explain.reason_codes(np.array([[0.4]]), frame, ["city"], dictionary, top=1)

    assert codes.loc[0, "reason_1_zh"] == "城市为“武汉”"
    assert codes.loc[0, "reason_1_en"] == 'city is "武汉"'


def test_feature_label_from_dictionary_head():
    dictionary = pd.DataFrame({"name": ["score_x"], "description_zh": ["内部评分（0-100）"],
                               "description_en": ["internal score (0-100)"]})

    assert feature_label("score_x", "zh_CN", dictionary) == "内部评分"
    assert feature_label("score_x", "en", dictionary) == "internal score"


def test_value_labels_of_codes():
    assert value_label("age_band", "45_54", "zh_CN") == "45-54岁"
    assert value_label("life_stage", "mid_family", "zh_CN") == "中年成家"
    assert value_label("life_stage", "mid_family", "en") == "mid-life family"
    assert value_label("gender", "F", "zh_CN") == "女"
    assert value_label("marital_status", "married", "zh_CN") == "已婚"
    assert value_label("marital_status", "已婚", "zh_CN") == "已婚"
    assert value_label("is_married", True, "zh_CN") == "是"
    assert value_label("salary_regular", 0.0, "en") == "no"
    assert value_label("city", None, "zh_CN") == "缺失"
    assert value_label("city", "上海", "en") == "上海"


def test_age_bands_sort_by_age():
    assert sorted_values("age_band", ["65_plus", "25_34", "under_25", "45_54"]) == [
        "under_25", "25_34", "45_54", "65_plus"]
    assert sorted_values("life_stage", ["retirement", "young_single", "mid_family"]) == [
        "young_single", "mid_family", "retirement"]


def test_format_value_by_unit():
    assert format_value("aum", 80900, "yuan", "zh_CN") == "8.09万元"
    assert format_value("aum", 80900, "yuan", "en") == "80,900 yuan"
    assert format_value("channel_share_mobile", 0.0909, "share", "zh_CN") == "9.1%"
    assert format_value("inflow_change", -0.35, "ratio", "zh_CN") == "-35%"
    assert format_value("leverage", 0.5, "ratio", "zh_CN") == "0.50"
    assert format_value("txn_count", 12.0, "count", "zh_CN") == "12"
    assert format_value("age_band", "35_44", "category", "zh_CN") == "35-44岁"


def test_reason_sentences_use_labels():
    frame = pd.DataFrame({"age_band": ["45_54"], "channel_share_online": [0.0909], "T": [396.0]})
    dictionary = {
        "age_band": {"zh_CN": "年龄段（25 岁以下、25-34……）", "en": "age band (...)", "unit": "category"},
        "channel_share_online": {"zh_CN": "近 12 个月渠道“online”的交易笔数占比", "en": "share", "unit": "share"},
        "T": {"zh_CN": "客户生命周期模型的客户年龄 T", "en": "T", "unit": "days"},
    }

    codes = explain.reason_codes(np.array([[0.9, 0.5, 0.2]]), frame, list(frame.columns), dictionary)

    assert codes.loc[0, "reason_1_zh"] == "年龄段为“45-54岁”"
    assert codes.loc[0, "reason_2_zh"] == "网上银行交易占比为 9.1%"
    assert codes.loc[0, "reason_3_zh"] == "首次消费至今天数为 396"
    assert codes.loc[0, "reason_1_en"] == 'age band is "45-54"'


def _engagement(configured: dict | None = None) -> SimpleNamespace:
    column = SimpleNamespace(name="product", values={"子女教育金理财计划": "education_wealth", "个人住房贷款": "mortgage"})
    source = SimpleNamespace(table="labels", column_maps=lambda: {"产品": column})
    stage = SimpleNamespace(params={"product_labels": configured or {}})
    return SimpleNamespace(sources=[source], stages={"propensity": stage})


def test_product_labels_from_labels_source():
    labels = product_labels(_engagement())

    assert product_name("education_wealth", "zh_CN", labels) == "子女教育金理财计划"
    assert product_name("education_wealth", "en", labels) == "education wealth"
    assert product_name("card", "zh_CN", labels) == "card"


def test_product_labels_configured_first():
    labels = product_labels(_engagement({"mortgage": {"zh_CN": "房贷", "en": "home mortgage"}}))

    assert product_name("mortgage", "zh_CN", labels) == "房贷"
    assert product_name("mortgage", "en", labels) == "home mortgage"


TIERS = {
    "amount_unit": "万元",
    "rules": [
        {"code": "wealth", "when": {"aum": {"min": 50}}},
        {"code": "affluent", "when": [{"aum": {"min": "5万"}}, {"products_held": {"min": 3.0}}]},
        {"code": "mass"},
    ],
}
DICTIONARY = pd.DataFrame({"name": ["aum", "products_held"], "unit": ["yuan", "count"]})


def test_tier_descriptions_state_rules():
    chinese = segmentation_report.tier_descriptions(TIERS, "zh_CN", DICTIONARY)
    english = segmentation_report.tier_descriptions(TIERS, "en", DICTIONARY)

    assert chinese["wealth"] == "资产 ≥ 50万元"
    assert chinese["affluent"] == "资产 ≥ 5万元；或 持有产品数 ≥ 3"
    assert chinese["mass"] == "不符合以上层级的其余客户"
    assert english["wealth"] == "assets ≥ 500,000 yuan"


def test_descriptions_fill_only_empty():
    groups = pd.DataFrame({"kind": ["tier", "rfm_cell", "segment"], "group": ["wealth", "important_value", "S1"],
                           "description_zh": ["", None, "自动说明"], "description_en": ["", "", "auto"]})

    filled = segmentation_report.with_descriptions(groups, TIERS, DICTIONARY)

    assert filled["description_zh"].tolist() == ["资产 ≥ 50万元", "近期有消费、消费频繁、消费金额高", "自动说明"]
    assert filled["description_en"].iloc[1] == "bought recently, buys often, spends much"


def test_groups_table_without_codes():
    groups = pd.DataFrame({"kind": ["tier"] * 2, "group": ["wealth", "mass"], "customers": [20, 30],
                           "share": [0.4, 0.6], "aum_share": [0.9, 0.1], "name_zh": ["财富客户", "大众客户"],
                           "name_en": ["wealth", "mass"], "description_zh": ["", ""], "description_en": ["", ""],
                           "action_zh": ["", ""], "action_en": ["", ""]})

    table = segmentation_report.groups_table(groups, "tier", 10, "zh_CN", codes=False)

    assert "代码" not in table.columns
    assert table["名称"].tolist() == ["财富客户", "大众客户"]


def test_risk_bins_and_notices_named():
    assert risk_report.bin_label("life_stage", "{pre_retirement,retirement}", "categories", "zh_CN") == "临近退休、退休"
    assert risk_report.bin_label("aum", "[0,5)", "interval", "zh_CN") == "0 至 5"
    assert risk_report.bin_label("aum", "missing", "missing", "zh_CN") == "缺失"
    text = "变量 T 只有一个取值；Tax 与 T_x 不变。"
    assert risk_report.named_in_text(text, ["T", "T_x"], "zh_CN") == "变量 首次消费至今天数 只有一个取值；Tax 与 T_x 不变。"


def test_risk_indicator_table_named():
    indicators = pd.DataFrame({"variable": ["T", "channel_share_atm"], "iv": [0.2, 0.1], "iv_band": ["medium", "weak"],
                               "status": ["dropped", "kept"], "trend": ["other", "ascending"],
                               "uni_basis": ["std", "woe"], "reason_zh": ["与 channel_share_atm 高度相关", "入选"],
                               "reason_en": ["correlated with channel_share_atm", "kept"]})

    table = risk_report.indicator_table(indicators, "zh_CN")

    assert table["指标"].tolist() == ["首次消费至今天数", "ATM交易占比"]
    assert table["列名"].tolist() == ["T", "channel_share_atm"]
    assert table["坏账率趋势"].tolist() == ["非单调", "递增"]
    assert table.iloc[0, -1] == "与 ATM交易占比 高度相关"


def test_overview_propensity_cards():
    summary = {"products_modelled": 1, "products": {
        "mortgage": {"status": "modelled", "auc_test": 0.8017},
        "travel_card": {"status": "skipped"},
    }}

    cards = propensity_cards(summary, "zh_CN")

    assert cards == [("已建模产品", "1"), ("mortgage：测试集 AUC", "0.802")]
