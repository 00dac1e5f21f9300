"""Times as a person reads them: in the engagement's time zone, with the zone named.

The run id, run.log and the manifest use the engagement's time zone
(``timezone`` in engagement.yaml, Asia/Shanghai by default). Report headers
and the log lines a stage notebook shows use it too, through the helpers
here, so that one run never shows times in two zones.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def format_local_time(moment: dt.datetime, timezone: str) -> str:
    """Format ``moment`` in ``timezone`` with the zone's name.

    A naive ``moment`` is taken to be in the machine's local time zone, which
    is what ``datetime.now()`` returns.

    Examples
    --------
    >>> moment = dt.datetime(2026, 12, 4, 21, 17, 24, tzinfo=dt.timezone.utc)
    >>> format_local_time(moment, "Asia/Shanghai")
    '2026-12-05 05:17:24 (Asia/Shanghai)'
    """
    local = moment.astimezone(zoneinfo.ZoneInfo(timezone))
    return f"{local.strftime(TIME_FORMAT)} ({timezone})"


class ZoneFormatter(logging.Formatter):
    """Logging formatter whose ``asctime`` is in a given time zone, with the zone named."""

    def __init__(self, timezone: str, fmt: str = LOG_FORMAT) -> None:
        super().__init__(fmt)
        self.timezone = timezone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging API)
        moment = dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
        return format_local_time(moment, self.timezone)


def log_to_notebook(timezone: str, level: int = logging.INFO) -> None:
    """Show log records in the notebook's cell output, stamped in ``timezone``.

    Replaces the root logger's handlers (like ``logging.basicConfig(force=True)``).
    Stage notebooks call it once, after opening the run, so that their
    progress lines carry the engagement's time zone and not the server's.

    Parameters
    ----------
    timezone : str
        IANA time zone name, usually ``ctx.engagement.timezone``.
    level : int, default=logging.INFO
    """
    handler = logging.StreamHandler()
    handler.setFormatter(ZoneFormatter(timezone))
    logging.basicConfig(level=level, handlers=[handler], force=True)
