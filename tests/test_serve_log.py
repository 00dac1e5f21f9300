"""serve.log stamps page views in the engagement's time zone, with its UTC offset."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

from relmap_utils.dashboard.server import PageViewLog


def test_view_time_in_engagement_zone(tmp_path):
    log = PageViewLog(tmp_path / "logs" / "serve.log", "20261205-100000", zoneinfo.ZoneInfo("Asia/Shanghai"))

    log.view("overview", "ab12cd34")

    record = json.loads((tmp_path / "logs" / "serve.log").read_text(encoding="utf-8"))
    assert record["time"].endswith("+08:00")
    stamped = dt.datetime.fromisoformat(record["time"])
    assert abs((stamped - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 60
    assert record["event"] == "view"
    assert record["page"] == "overview"


def test_other_zone_offset(tmp_path):
    log = PageViewLog(tmp_path / "serve.log", "r1", zoneinfo.ZoneInfo("America/New_York"))

    log.refused("/etc/passwd", 404, None)

    record = json.loads((tmp_path / "serve.log").read_text(encoding="utf-8"))
    assert record["time"][-6:] in ("-05:00", "-04:00")
