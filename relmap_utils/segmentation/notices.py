"""Notices: consequences of the input that the stage states instead of failing on."""

from __future__ import annotations

from typing import Any

from relmap_utils.i18n import bilingual

SEVERITIES = ("critical", "high", "medium", "low", "info")


class Notice:
    """A message in both languages with a severity, for summary.json and the report.

    Parameters
    ----------
    severity : str
        One of ``critical``, ``high``, ``medium``, ``low``, ``info``.
    key : str
        Catalog key of the message.
    **params
        Values substituted into the message.
    """

    def __init__(self, severity: str, key: str, /, **params: Any) -> None:
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}; got {severity!r}")
        self.severity = severity
        self.key = key
        self.params = params

    def as_dict(self) -> dict[str, Any]:
        """Return the notice as summary.json stores it (``headline_findings`` format)."""
        texts = bilingual(self.key, **self.params)
        return {"severity": self.severity, "code": self.key.rsplit(".", 1)[-1],
                "message_zh": texts["zh_CN"], "message_en": texts["en"]}

    def __repr__(self) -> str:
        return f"Notice({self.severity!r}, {self.key!r}, {self.params!r})"
