"""Findings of ``relmap audit verify``: what is wrong, in which file, where."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relmap_utils.audit.pii_scan import mask_personal
from relmap_utils.i18n import Msg, tr

ERROR = "error"
NOTE = "note"


@dataclass
class Finding:
    """One result of a check.

    Parameters
    ----------
    code : str
        The check that produced it; its message is the catalog entry
        ``audit.finding.<code>``.
    file : str
        The file concerned, relative to the run folder (inputs and exports
        outside the run folder are given as absolute paths).
    where : Msg, optional
        Location inside the file (cell, line, column and row, sheet cell).
    params : dict, optional
        Further values of the message. Never a personal value: personal
        data appears only in masked form.
    severity : {"error", "note"}, default="error"
        Errors make verify fail; notes are information, such as an input
        that is not available on this machine.
    """

    code: str
    file: str
    where: Msg | None = None
    params: dict[str, Any] = field(default_factory=dict)
    severity: str = ERROR

    def message(self, locale: str | None = None) -> str:
        """Return the finding as one sentence in ``locale`` (default: the active locale)."""
        where = self.where.render(locale) if self.where is not None else ""
        text = tr(f"audit.finding.{self.code}", locale=locale, file=self.file, where=where, **self.params)
        # File names and stage error messages come from the run; they must not carry personal data either.
        return mask_personal(text)

    def as_dict(self, locale: str | None = None) -> dict[str, Any]:
        """Return the finding for JSON output: its fields and its message in ``locale``."""
        location = None
        if self.where is not None:
            location = {"kind": self.where.key.rsplit(".", 1)[-1], **self.where.params}
        params = {}
        for name, value in self.params.items():
            value = value.render("en") if isinstance(value, Msg) else value
            params[name] = mask_personal(value) if isinstance(value, str) else value
        return {
            "severity": self.severity,
            "code": self.code,
            "file": mask_personal(self.file),
            "location": location,
            "params": params,
            "message": self.message(locale),
        }
