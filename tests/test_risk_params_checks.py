"""Risk stage: variable overrides checked before binning, leakage and observation-date notices."""

from __future__ import annotations

import pytest
from test_risk_stage import DATES, _write_run

from relmap_utils.context import RunContext
from relmap_utils.errors import ConfigError
from relmap_utils.risk.stage import run_stage


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return _write_run(tmp_path_factory.mktemp("risk_checks"), DATES, defaulters=60)


@pytest.fixture(scope="module")
def any_outcome(run_dir):
    return run_stage(RunContext.open(run_dir), outcome="any", min_defaults=20)


def _notice(result: dict, key: str) -> dict:
    found = [item for item in result["summary"]["notices"] if item["key"] == key]
    assert len(found) == 1, [item["key"] for item in result["summary"]["notices"]]
    return found[0]


def test_unknown_variable_rejected(run_dir):
    with pytest.raises(ConfigError) as caught:
        run_stage(RunContext.open(run_dir), variables={"incme": {"monotonic_trend": "descending"}})
    zh = caught.value.render("zh_CN")
    assert "stages.risk.params.variables.incme：关系地图中没有该变量" in zh
    assert "允许：income" in zh
    assert "the map has no such variable" in caught.value.render("en")


def test_breaks_on_categorical_rejected(run_dir):
    variables = {"income": {"dtype": "categorical", "breaks": [1000, 5000]}}
    with pytest.raises(ConfigError) as caught:
        run_stage(RunContext.open(run_dir), variables=variables)
    zh = caught.value.render("zh_CN")
    assert "stages.risk.params.variables.income.breaks" in zh
    assert "不能设 breaks" in zh


def test_every_variable_problem_listed(run_dir):
    variables = {"incme": {}, "income": {"dtype": "categorical", "breaks": [1.0]}}
    with pytest.raises(ConfigError) as caught:
        run_stage(RunContext.open(run_dir), variables=variables)
    en = caught.value.render("en")
    assert "variables.incme" in en
    assert "variables.income.breaks" in en


def test_decreasing_breaks_rejected_before_reading(tmp_path):
    # An empty run folder has no map, so only the parameter check can raise here.
    config = "name: x\nclient: y\nsources: [{name: customers, path: customers.csv, table: customers}]\n"
    (tmp_path / "engagement.yaml").write_text(config, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"stages\.risk\.params\.variables\.income\.breaks"):
        run_stage(RunContext.open(tmp_path), variables={"income": {"breaks": [5000, 1000]}})


def test_suspicious_iv_noticed(any_outcome):
    notice = _notice(any_outcome, "risk.notice.iv_suspicious")
    assert "指标 income 的 IV 为 7.200" in notice["message_zh"]
    assert "信息泄漏" in notice["message_zh"]
    assert "too good to be true" in notice["message_en"]
    findings = [item["message_en"] for item in any_outcome["summary"]["headline_findings"]]
    assert notice["message_en"] in findings


def test_suspicious_iv_threshold_configurable(run_dir):
    result = run_stage(RunContext.open(run_dir), outcome="any", screening={"suspicious_iv": 50})
    assert "risk.notice.iv_suspicious" not in [item["key"] for item in result["summary"]["notices"]]


def test_observation_notice_outcome_any(any_outcome):
    notice = _notice(any_outcome, "risk.notice.observation_latest_any")
    assert "训练快照日期为 2024-04-30" in notice["message_zh"]
    assert "outcome is any" in notice["message_en"]


def test_observation_notice_whole_window(run_dir):
    result = run_stage(RunContext.open(run_dir), horizon_months=2)
    notice = _notice(result, "risk.notice.observation_window")
    assert "2024-02-29" in notice["message_zh"]
    assert "whole 2-month outcome window (up to the last map date 2024-04-30)" in notice["message_en"]


def test_observation_notice_short_window(run_dir):
    result = run_stage(RunContext.open(run_dir), horizon_months=6)
    notice = _notice(result, "risk.notice.observation_short")
    assert "2024-01-31" in notice["message_zh"]
    assert "undercounted" in notice["message_en"]


def test_observation_notice_when_set(run_dir):
    result = run_stage(RunContext.open(run_dir), outcome="any", observation_as_of="2024-03-31")
    notice = _notice(result, "risk.notice.observation_set")
    assert "2024-03-31" in notice["message_zh"]
    assert "observation_as_of" in notice["message_en"]
