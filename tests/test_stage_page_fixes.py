"""Stage reports and pages as a fresh reader sees them: header times, runs with nothing to do."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from relmap_utils.context import RunContext
from relmap_utils.export import report_header_time, report_timezone
from relmap_utils.manifest import stage_skip_reason
from relmap_utils.propensity import report as propensity_report
from relmap_utils.risk.stage import run_stage as run_risk
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
