"""Names in place of raw codes in dictionary descriptions, headlines, campaign lists, notices and charts."""

from __future__ import annotations

from relmap_utils.features import interests, relations
from relmap_utils.features.labels import code_labels
from relmap_utils.features.spec import MapSpec


def _descriptions(features):
    return {feature.name: (feature.description_in("zh_CN"), feature.description_in("en")) for feature in features}


def test_code_labels_fallback_value():
    assert code_labels("topic", "education") == {"zh_CN": "子女教育", "en": "children's education"}
    assert code_labels("topic", "yoga", "Yoga") == {"zh_CN": "Yoga", "en": "Yoga"}


def test_interest_descriptions_name_topic():
    spec = MapSpec(topics=("education", "Yoga"))
    texts = _descriptions(interests.features(spec))
    assert texts["interest_education_count"] == (
        "近 3 个月浏览“子女教育”主题的次数",
        "Browsing events on topic 'children's education' in the last 3 months",
    )
    assert texts["interest_education_days_since"][0] == "最近一次浏览“子女教育”主题距观察日的天数"
    # A topic the catalogs do not know is shown as stored.
    assert texts["interest_yoga_count"][0] == "近 3 个月浏览“Yoga”主题的次数"


def test_relation_descriptions_name_type():
    spec = MapSpec(relation_types=("guarantor",), shared_types=("address",))
    texts = _descriptions(relations.features(spec))
    assert texts["rel_guarantor_count"] == ("关系类型为“担保”的关联对象数", "Related entities of relation type 'guarantor'")
    assert texts["shared_address_customers"][0].startswith("与本客户共用同一“地址”的其他客户数")
    assert texts["shared_address_customers"][1].startswith("Other customers sharing the same 'address' as")


def test_top_tier_headline_name():
    from relmap_utils.segmentation.params import TierRule
    from relmap_utils.segmentation.stage import _tier_headline

    named = TierRule(code="private", name={"zh_CN": "私行客户", "en": "private banking"}, when={"aum": {"min": 600}})
    assert _tier_headline(named) == {
        "zh_CN": "最高层级（私行客户）的资产占比",
        "en": "share of assets in the top tier (private banking)",
    }
    # Without a name the code is the only text there is.
    assert _tier_headline(TierRule(code="gold"))["zh_CN"] == "最高层级（gold）的资产占比"


def test_campaign_list_product_name():
    import pandas as pd

    from relmap_utils.propensity.stage import campaign_headers, with_product_name

    listed = pd.DataFrame({"rank": [1, 2], "customer_id": ["p1", "p2"], "product": ["education_wealth"] * 2,
                           "explainer": ["tree"] * 2})
    labels = {"education_wealth": {"zh_CN": "子女教育金理财计划", "en": "education savings plan"}}
    shown = with_product_name(listed, "education_wealth", "zh_CN", labels)
    assert list(shown.columns) == ["rank", "customer_id", "product", "product_code", "explainer"]
    assert shown["product"].tolist() == ["子女教育金理财计划"] * 2
    assert shown["product_code"].tolist() == ["education_wealth"] * 2
    assert with_product_name(listed, "education_wealth", "en", labels)["product"].iloc[0] == "education savings plan"
    # A product without a label keeps its code as its name.
    assert with_product_name(listed, "education_wealth", "zh_CN", {})["product"].iloc[0] == "education_wealth"
    headers = campaign_headers("zh_CN")
    assert headers["product"] == "产品"
    assert headers["product_code"] == "产品代码"


def test_propensity_report_product_names(tmp_path):
    import pandas as pd

    from relmap_utils.propensity.report import write_html_report

    outcome = {
        "products": pd.DataFrame({"product": ["card_x"], "status": ["skipped"], "message_zh": ["样本太少"],
                                  "message_en": ["too few"]}),
        "metrics": pd.DataFrame(), "gains": pd.DataFrame(), "reliability": pd.DataFrame(),
        "importance": pd.DataFrame(), "inputs": None, "summary": {"message_zh": "", "message_en": ""},
    }
    labels = {"card_x": {"zh_CN": "白金信用卡", "en": "platinum card"}}
    page = write_html_report(tmp_path / "04.html", outcome, "zh_CN", "demo", "run1", labels=labels).read_text("utf-8")
    assert "白金信用卡" in page
    assert "card_x" not in page


def test_zero_cell_notice_words():
    import pandas as pd

    from relmap_utils.risk.binning import zero_cell_notice

    table = pd.DataFrame({"bin": ["[-inf, 3)", "{young_single}", "missing"],
                          "kind": ["interval", "categories", "missing"], "zero_cell": [False, True, True]})
    notice = zero_cell_notice("life_stage", table, "add_half")
    assert notice.render("zh_CN") == (
        "变量 life_stage：分箱 青年单身、缺失 中好客户或坏客户数为 0，已把为 0 的计数按 0.5 计，再计算 WoE 与 IV。")
    english = notice.render("en")
    assert "bins young single, missing have" in english
    assert "add_half" not in english
    assert "taken as 0.5" in english
    assert "WoE and IV were set to 0" in zero_cell_notice("life_stage", table, "zero").render("en")


def test_horizontal_bar_axis_titles():
    from relmap_utils import charts

    figure = charts.bar_chart(["年龄段", "资产"], [0.31, 0.12], title="IV", x_title="IV", y_title="指标", horizontal=True)
    assert figure.data[0].orientation == "h"
    assert figure.layout.xaxis.title.text == "IV"
    assert figure.layout.yaxis.title.text == "指标"
    upright = charts.bar_chart(["甲", "乙"], [1, 2], title="t", x_title="分群", y_title="客户数")
    assert upright.layout.xaxis.title.text == "分群"
    assert upright.layout.yaxis.title.text == "客户数"


def test_iv_importance_value_axis():
    import pandas as pd

    from relmap_utils.propensity.report import importance_chart
    from relmap_utils.risk.report import iv_chart

    indicators = pd.DataFrame({"variable": ["age_band", "aum"], "iv": [0.3, 0.1], "status": ["kept", "dropped"]})
    figure = iv_chart(indicators, locale="zh_CN")
    assert figure.layout.xaxis.title.text == "IV"
    assert not figure.layout.yaxis.title.text
    importance = pd.DataFrame({"product": ["card"] * 2, "feature": ["age_band", "aum"],
                               "mean_abs_shap": [0.2, 0.1], "method": ["tree"] * 2})
    shap = importance_chart(importance, "card")
    assert "SHAP" in shap.layout.xaxis.title.text
    assert not shap.layout.yaxis.title.text
