"""Validation errors of engagement.yaml and of stage parameters, in zh_CN and en."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from relmap_utils import i18n
from relmap_utils.config import parse_engagement
from relmap_utils.errors import ConfigError
from relmap_utils.features.spec import MapSpec, make_spec
from relmap_utils.propensity.params import check_parameters
from relmap_utils.risk.params import make_params
from relmap_utils.segmentation.params import check_threshold_units, parse_params

MINIMAL = {"name": "demo", "client": "示例银行", "sources": [{"name": "customers", "path": "c.csv", "table": "customers"}]}


def _engagement_error(**changes) -> ConfigError:
    data = {**MINIMAL, **changes}
    with pytest.raises(ConfigError) as caught:
        parse_engagement(data, Path("engagement.yaml"))
    return caught.value


def _rendered(call, values) -> tuple[str, str]:
    with pytest.raises(ConfigError) as caught:
        call(values)
    return caught.value.render("zh_CN"), caught.value.render("en")


def test_engagement_missing_key_in_chinese():
    data = {key: value for key, value in MINIMAL.items() if key != "client"}
    with pytest.raises(ConfigError) as caught:
        parse_engagement(data, Path("engagement.yaml"))
    assert "client：缺少必填项" in caught.value.render("zh_CN")
    assert "client: required key is missing" in caught.value.render("en")


def test_engagement_unknown_key_lists_known_keys():
    error = _engagement_error(engine={"backend": "duckdb", "thread": 2})
    zh = error.render("zh_CN")
    assert "engine.thread：未知的配置项" in zh
    assert "允许：backend, threads, memory_limit, spark_conf" in zh
    assert "allowed: backend, threads, memory_limit, spark_conf" in error.render("en")


def test_engagement_literal_lists_values():
    error = _engagement_error(locale="fr")
    assert "locale：取值不在允许范围内（当前值：fr；允许：以下之一：'zh_CN', 'en'）" in error.render("zh_CN")
    assert "one of 'zh_CN', 'en'" in error.render("en")


def test_engagement_range_and_type():
    error = _engagement_error(privacy={"min_group_size": 0}, engine={"threads": "many"})
    zh = error.render("zh_CN")
    assert "privacy.min_group_size：超出允许范围（当前值：0；允许：>= 1）" in zh
    assert "engine.threads：应为整数（当前值：many）" in zh


def test_engagement_union_member_names_translated():
    source = {**MINIMAL["sources"][0], "header_rows": "two"}
    error = _engagement_error(sources=[source])
    assert "sources[0].header_rows：类型不对（当前值：two；允许：以下之一：整数 | 'auto'）" in error.render("zh_CN")
    assert "one of an integer | 'auto'" in error.render("en")


def test_engagement_rules_translated():
    error = _engagement_error(sources=[MINIMAL["sources"][0], MINIMAL["sources"][0]])
    assert "数据源名称 customers 重复" in error.render("zh_CN")
    assert "source name customers is used twice" in error.render("en")
    both = {**MINIMAL["sources"][0], "sql": "select 1"}
    assert "须且只能给出 path（文件）或 sql（查询）之一" in _engagement_error(sources=[both]).render("zh_CN")
    assert "未知的 IANA 时区" in _engagement_error(timezone="Mars/Base").render("zh_CN")


def test_segmentation_unknown_key_in_chinese():
    zh, en = _rendered(parse_params, {"clusters": {"metod": "kmeans"}})
    assert zh.startswith("engagement.yaml 中的 stages.segmentation.params 有误")
    assert "stages.segmentation.params.clusters.metod：未知的配置项" in zh
    assert "method" in zh.split("允许：", 1)[1]
    assert "stages.segmentation.params.clusters.metod: unknown key" in en


def test_segmentation_literal_and_rule():
    zh, _ = _rendered(parse_params, {"clusters": {"method": "dbscan", "k": [8, 3]}})
    assert "clusters.method：取值不在允许范围内（当前值：dbscan；允许：以下之一：'kmeans', 'gmm'）" in zh
    assert "clusters.k：k 应为不小于 2 的整数" in zh


def test_segmentation_amount_text_names_bound():
    rules = [{"code": "a", "when": {"aum": {"min": "lots"}}}]
    zh, en = _rendered(parse_params, {"tiers": {"rules": rules}})
    assert "stages.segmentation.params.tiers.rules[0].when.aum.min：应为数字或带单位的金额（当前值：lots" in zh
    assert "must be a number or an amount with a unit" in en


def test_tier_min_above_max_rejected():
    rules = [{"code": "vip", "when": {"aum": {"min": 1}}}, {"code": "a", "when": {"aum": {"min": "500万", "max": 100}}}]
    zh, en = _rendered(parse_params, {"tiers": {"amount_unit": "万元", "rules": rules}})
    assert "stages.segmentation.params.tiers.rules[1].when.aum：min 大于 max" in zh
    assert "min=500万, max=100" in zh
    assert "min is greater than max" in en


def test_tier_min_above_max_in_any_clause():
    rules = [{"code": "a", "when": [{"age": {"min": 30}}, {"age": {"min": 60, "max": 18}}]}]
    zh, _ = _rendered(parse_params, {"tiers": {"rules": rules}})
    assert "tiers.rules[0].when[1].age：min 大于 max" in zh


def test_tier_min_equal_max_accepted():
    rules = [{"code": "a", "when": {"aum": {"min": "50万", "max": 50}}}]
    params = parse_params({"tiers": {"amount_unit": "万元", "rules": rules}})
    assert params.tiers.rules[0].code == "a"


def test_tier_unit_on_count_rejected():
    params = parse_params({"tiers": {"rules": [{"code": "a", "when": {"purchase_count": {"min": "5万"}}}]}})
    with pytest.raises(ConfigError) as caught:
        check_threshold_units(params.tiers, {"aum"})
    zh = caught.value.render("zh_CN")
    assert "stages.segmentation.params.tiers.rules[0].when.purchase_count" in zh
    assert "不是金额列" in zh
    assert "is not an amount" in caught.value.render("en")


def test_tier_unit_on_amount_accepted():
    rules = [{"code": "a", "when": {"aum": {"min": "5万", "max": 80}}}]
    params = parse_params({"tiers": {"amount_unit": "万元", "rules": rules}})
    check_threshold_units(params.tiers, {"aum"})


def test_propensity_every_problem_listed():
    values = {"split": {"method": "sideways"}, "min_positives": 0}
    zh, en = _rendered(check_parameters, values)
    assert "stages.propensity.params.split.method：取值不在允许范围内" in zh
    assert "stages.propensity.params.min_positives：超出允许范围（当前值：0；允许：>= 1）" in zh
    assert "stages.propensity.params.split.method: value not allowed" in en


def test_propensity_risk_level_rule():
    values = {"campaign": {"suitability": {"risk_levels": {"fund": "R9"}}}}
    zh, _ = _rendered(check_parameters, values)
    assert "campaign.suitability.risk_levels.fund：产品风险等级无效（当前值：R9；允许：R1, R2, R3, R4, R5）" in zh


def test_propensity_bad_date():
    zh, _ = _rendered(check_parameters, {"features_as_of": "2024-02-30"})
    assert "stages.propensity.params.features_as_of：应为有效日期" in zh


def test_risk_problems_in_chinese():
    zh, en = _rendered(make_params, {"horizon_months": 0, "monotonic_trend": "up", "risk_bands": [0.5, 0.1]})
    assert "stages.risk.params.horizon_months：超出允许范围（当前值：0；允许：>= 1）" in zh
    assert "stages.risk.params.monotonic_trend：未知的单调趋势（当前值：up；允许：auto," in zh
    assert "unknown monotonic trend" in en


def test_risk_unknown_nested_key():
    zh, _ = _rendered(make_params, {"screening": {"min_ivv": 0.1}})
    assert "stages.risk.params.screening.min_ivv：未知的配置项" in zh
    assert "min_iv, correlation_threshold" in zh


def test_risk_breaks_must_increase():
    zh, en = _rendered(make_params, {"variables": {"income": {"breaks": [100, 50]}}})
    assert "stages.risk.params.variables.income.breaks：" in zh
    assert "递增" in zh
    assert "increasing" in en


def test_risk_breaks_must_be_numbers():
    zh, _ = _rendered(make_params, {"variables": {"income": {"breaks": ["low"]}}})
    assert "stages.risk.params.variables.income.breaks[0]：应为数字（当前值：low）" in zh


def test_rule_keys_in_both_catalogs():
    package = Path(i18n.__file__).parent
    used = set()
    for path in package.rglob("*.py"):
        used.update(re.findall(r"""rule_error\(\s*["']([a-z0-9_.]+)["']""", path.read_text(encoding="utf-8")))
    assert used
    for locale in ("zh_CN", "en"):
        missing = sorted(used - set(i18n.catalog(locale)))
        assert missing == [], f"{locale} lacks {missing}"


def test_map_value_list_item_must_be_text():
    with pytest.raises(ConfigError) as caught:
        make_spec({"married_values": ["已婚", 1]})
    zh = caught.value.render("zh_CN")
    assert "married_values[1]" in zh
    assert "文本列表" in zh
    assert "a list of text" in caught.value.render("en")


def test_map_value_list_not_text_or_mapping():
    for value in ("已婚", {"married": 1}, 3):
        with pytest.raises(ConfigError, match="married_values"):
            make_spec({"married_values": value})


def test_map_value_tuple_checked_too():
    with pytest.raises(ConfigError, match=r"topics\[1\]"):
        MapSpec(topics=("education", None))


def test_map_value_list_accepted():
    spec = make_spec({"married_values": ["已婚", "1"], "cash_txn_types": ["取现"]})
    assert spec.married_values == ("已婚", "1")
    assert spec.cash_txn_types == ("取现",)
