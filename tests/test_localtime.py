"""Times shown to people: in the engagement's time zone, with the zone named."""

from __future__ import annotations

import datetime as dt
import logging

from relmap_utils.localtime import ZoneFormatter, format_local_time, log_to_notebook

UTC_MOMENT = dt.datetime(2026, 12, 4, 21, 17, 24, tzinfo=dt.timezone.utc)


def test_format_local_time_converts_and_names_zone():
    assert format_local_time(UTC_MOMENT, "Asia/Shanghai") == "2026-12-05 05:17:24 (Asia/Shanghai)"
    assert format_local_time(UTC_MOMENT, "Europe/Prague") == "2026-12-04 22:17:24 (Europe/Prague)"


def test_zone_formatter_stamps_records_in_zone():
    record = logging.LogRecord("relmap_utils.ingest", logging.INFO, __file__, 1, "read %d rows", (3,), None)
    record.created = UTC_MOMENT.timestamp()

    line = ZoneFormatter("Asia/Shanghai").format(record)

    assert line == "2026-12-05 05:17:24 (Asia/Shanghai) INFO relmap_utils.ingest: read 3 rows"


def test_log_to_notebook_replaces_root_handlers():
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        log_to_notebook("Asia/Shanghai")

        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0].formatter, ZoneFormatter)
        assert root.level == logging.INFO
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
