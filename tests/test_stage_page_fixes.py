"""Stage reports and pages as a fresh reader sees them: header times, runs with nothing to do."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from relmap_utils.context import RunContext
from relmap_utils.dashboard import render
from relmap_utils.dashboard.propensity_page import PropensityPage
from relmap_utils.dashboard.run import open_run
from relmap_utils.export import report_header_time, report_timezone
from relmap_utils.manifest import stage_skip_reason
from relmap_utils.propensity import report as propensity_report
from relmap_utils.risk.stage import run_stage as run_risk
from test_dashboard import engagement, write_run  # noqa: F401  (engagement is a fixture)
from test_risk_stage import DATES, _write_run

MOMENT = dt.datetime(2026, 12, 5, 4, 19, 12, tzinfo=dt.timezone.utc)


def test_header_time_is_in_the_engagement_zone_with_offset():
    assert report_header_time("Asia/Shanghai", MOMENT) == "2026-12-05 12:19:12 (UTC+08:00)"
    assert report_header_time("America/New_York", MOMENT) == "2026-12-04 23:19:12 (UTC-05:00)"
    # Without a known zone the engagement default applies.
    assert report_header_time(None, MOMENT) == "2026-12-05 12:19:12 (UTC+08:00)"


def test_report_timezone_comes_from_the_run_manifest(tmp_path):
    run = tmp_path / "runs" / "20261205-121912"
    (run / "reports").mkdir(parents=True)
    assert report_timezone(run / "reports" / "02_map.html") is None
    (run / "manifest.json").write_text(json.dumps({"timezone": "Europe/London"}), encoding="utf-8")
    assert report_timezone(run / "reports" / "02_map.html") == "Europe/London"


def _skipped_outcome() -> dict:
    summary = {"stage": "04_propensity", "status": "skipped", "reason": "propensity.no_labels",
               "message_zh": "没有产品开通标签，无法建模。", "message_en": "No take-up labels, nothing to model."}
    empty = pd.DataFrame()
    outcome = {name: empty for name in ("products", "metrics", "gains", "reliability", "importance")}
    outcome.update(summary=summary, inputs=None)
    return outcome


def test_propensity_report_without_labels_shows_time_and_reason_only(tmp_path):
    run = tmp_path / "run"
    (run / "reports").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"timezone": "Asia/Shanghai"}), encoding="utf-8")
    path = propensity_report.write_html_report(run / "reports" / "04_propensity.html", _skipped_outcome(),
                                               "zh_CN", "demo", "20261205-121912")
    page = path.read_text(encoding="utf-8")
    assert "(UTC+08:00)" in page
    assert "没有产品开通标签，无法建模。" in page
    assert "<table" not in page and "<h2>" not in page


def test_risk_without_default_labels_is_nothing_to_do(tmp_path):
    ctx = RunContext.open(_write_run(tmp_path, DATES, defaulters=60, with_labels=False))
    result = run_risk(ctx)

    summary = json.loads(open(result["artifacts"]["summary"], encoding="utf-8").read())
    assert summary["status"] == "skipped"
    assert summary["reason"] == "risk.notice.no_labels"
    reason = stage_skip_reason(ctx.run_dir, "05_risk")
    assert reason["key"] == "risk.notice.no_labels"
    assert "标签" in reason["message_zh"] and "label" in reason["message_en"]


def test_risk_with_labels_is_not_skipped(tmp_path):
    ctx = RunContext.open(_write_run(tmp_path, DATES, defaulters=60))
    result = run_risk(ctx, outcome="any")
    assert result["summary"].get("status") != "skipped"
    assert stage_skip_reason(ctx.run_dir, "05_risk") is None


# Codes and raw values on client pages.

def test_findings_name_variables_by_label():
    from relmap_utils.dashboard.overview import headline_findings

    summary = {"headline_findings": [{"severity": "warning", "message_zh": "变量 phone_changes_recent 只有一个取值，未参与筛选。",
                                      "message_en": "Variable phone_changes_recent has one value."}]}
    zh = headline_findings(summary, "zh_CN")["message"].iloc[0]
    assert "phone_changes_recent" not in zh and "近期更换手机号次数" in zh
    assert "phone_changes_recent" not in headline_findings(summary, "en")["message"].iloc[0]


def test_bin_edges_read_as_numbers():
    from relmap_utils.risk.report import bin_label

    assert bin_label("x", "[0.0778112,0.181327)", "interval", "zh_CN") == "0.078 至 0.18"
    assert bin_label("x", "[-inf,0.0778112)", "interval", "zh_CN") == "低于 0.078"
    assert bin_label("x", "[0.181327,+inf)", "interval", "en") == "0.18 and above"
    # Close edges keep enough digits to stay apart.
    assert bin_label("x", "[0.181,0.184)", "interval", "en") == "0.181 to 0.184"
    assert bin_label("aum", "[80900,200000)", "interval", "zh_CN", unit="yuan") == "8.09万元 至 20.00万元"


def test_horizon_complete_in_words():
    from relmap_utils.risk.report import monthly_table

    monthly = pd.DataFrame({"as_of": ["2024-01-31", "2024-02-29"], "customers": [10, 10],
                            "horizon_complete": [True, False]})
    shown = monthly_table(monthly, "zh_CN")
    assert shown.iloc[:, -1].tolist() == ["是", "否"]
    assert monthly_table(monthly, "en").iloc[:, -1].tolist() == ["yes", "no"]


def test_segment_groups_named_with_code_last():
    from relmap_utils.segmentation.report import groups_table

    groups = pd.DataFrame({"kind": ["tier", "tier"], "group": ["private", "mass"], "name_zh": ["私行客户", "大众客户"],
                           "name_en": ["private", "mass"], "customers": [19, 1981], "share": [0.0095, 0.9905],
                           "aum_share": [0.445, 0.555], "description_zh": ["", ""], "description_en": ["", ""],
                           "action_zh": ["", ""], "action_en": ["", ""]})
    table = groups_table(groups, "tier", 1, "zh_CN")
    assert table.columns[0] == "名称" and table.iloc[0, 0] == "私行客户"
    assert table.columns[-1] == "系统代码（供风控/IT 对接）"


# Number formats.

def test_table_columns_format_alike():
    from relmap_utils.dashboard import render

    frame = pd.DataFrame({"share": [1.0, 44.5], "precision": [1.0, 0.9], "customers": [3, 4000]})
    page = render.html_table(frame, {"share": "客户占比 %", "precision": "precision", "customers": "n"})
    assert "<td>1.0</td>" in page and "<td>44.5</td>" in page
    assert "<td>1.00</td>" in page and "<td>0.90</td>" in page
    assert "<td>4,000</td>" in page


def test_profile_heatmap_says_no_data_for_missing_means():
    from relmap_utils.segmentation.report import profile_heatmap

    groups = pd.DataFrame({"kind": ["segment"] * 2, "group": ["S1", "S3"], "customers": [50, 40],
                           "name_zh": ["S1 资产高", "S3 交易笔数低"], "name_en": ["S1 high assets", "S3 few transactions"]})
    contrasts = pd.DataFrame({"kind": ["segment"] * 4, "group": ["S1", "S1", "S3", "S3"],
                              "feature": ["aum", "channel_share_mobile"] * 2,
                              "contrast": [1.2, 0.4, -0.3, float("nan")]})
    figure = profile_heatmap(groups, contrasts, "segment", 10, "zh_CN")
    notes = [annotation.text for annotation in figure.layout.annotations]
    assert notes == ["无数据"]


def test_page_run_facts_show_zone_offset():
    from types import SimpleNamespace

    from relmap_utils.dashboard.overview import run_facts

    run = SimpleNamespace(manifest={"timezone": "Asia/Shanghai", "ended_at": "2026-12-05T12:19:12+08:00"},
                          engagement=SimpleNamespace(client="示例银行", name="demo"), run_id="20261205-121912")
    assert "2026-12-05 12:19:12 (UTC+08:00)" in run_facts(run)


def test_segmentation_workbook_names_groups(tmp_path):
    from relmap_utils.export import EXPORT_TABLES, _lookups

    folder = tmp_path / "03_segmentation"
    folder.mkdir()
    pd.DataFrame({"kind": ["tier"], "group": ["private"], "name_zh": ["私行客户"],
                  "name_en": ["private banking"]}).to_parquet(folder / "groups.parquet")
    transitions = next(table for table in EXPORT_TABLES["03_segmentation"] if table.file == "transitions.parquet")
    lookups = _lookups(folder, list(transitions.columns))
    assert lookups["group"]("private") == "私行客户"
    assert lookups["group"]("unknown") == "unknown"
    assert lookups["feature"]("phone_changes_recent") == "近期更换手机号次数"


# The 04 page of a run without take-up labels, and its segment heat map.


@pytest.fixture
def shown(monkeypatch) -> dict:
    collected: dict = {"html": [], "figures": []}
    monkeypatch.setattr(render, "display_html", collected["html"].append)
    monkeypatch.setattr(render, "show_figure", collected["figures"].append)
    return collected


def test_propensity_page_without_labels_shows_reason_only(engagement, shown):  # noqa: F811
    summary = _skipped_outcome()["summary"]
    page = PropensityPage(open_run(write_run(engagement, "20260101-090000", stages={"04_propensity": summary})))
    for section in (page.header, page.product_status, page.gains_chart, page.calibration_chart,
                    page.shap_summary, page.segment_heatmap):
        section()
    markup = "".join(shown["html"])
    assert "没有产品开通标签，无法建模。" in markup
    assert "<table" not in markup
    assert "客户分群（03）" not in markup
    assert shown["figures"] == []


def test_segment_heatmap_uses_tiers_without_clusters(engagement, shown):  # noqa: F811
    run_dir = write_run(engagement, "20260101-090000",
                        stages={"03_segmentation": {"stage": "03_segmentation"},
                                "04_propensity": {"stage": "04_propensity", "products": {}}})
    customers = [f"c{i:02d}" for i in range(30)]
    pd.DataFrame({"as_of": ["2024-06-30"] * 30, "customer_id": customers, "tier": ["mass"] * 20 + ["wealth"] * 10,
                  "segment": [None] * 30}).to_parquet(run_dir / "artifacts" / "03_segmentation" / "customer_segments.parquet")
    pd.DataFrame({"customer_id": customers, "product": ["fund"] * 30,
                  "probability": [0.1] * 20 + [0.4] * 10}).to_parquet(run_dir / "artifacts" / "04_propensity" / "scores.parquet")
    matrix = PropensityPage(open_run(run_dir)).segment_matrix()
    assert matrix.loc["mass", "fund"] == pytest.approx(0.1)
    assert matrix.loc["wealth", "fund"] == pytest.approx(0.4)


def test_bin_edges_use_the_feature_unit():
    from relmap_utils.risk.report import bin_label, scorecard_table

    assert bin_label("channel_share_payroll", "[0.0259,0.168)", "interval", "zh_CN", unit="share") == "2.6% 至 16.8%"
    card = pd.DataFrame({"variable": ["channel_share_payroll"], "bin": ["[-inf,0.0259)"], "kind": ["interval"],
                         "count": [149], "bad_rate": [0.05], "woe": [0.2], "coef": [0.96], "points": [107]})
    table = scorecard_table(card, "en", {"channel_share_payroll": "share"})
    assert "below 2.6%" in table.iloc[0].tolist()
