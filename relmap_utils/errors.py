"""Exception hierarchy for errors a user can fix.

Every error raised for bad input derives from :class:`RelmapError`. Its text
comes from the message catalogs (see :mod:`relmap_utils.i18n`), so it is shown
in the engagement's language, and it names the file, column, row or value at
fault and what to do. The CLI prints these errors without a traceback; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any

from relmap_utils.i18n import tr


class RelmapError(Exception):
    """Base class of all user-facing relmap errors.

    Parameters
    ----------
    key : str
        Message catalog key, for example ``"ingest.encoding_unknown"``.
    **params
        Values substituted into the message (file, column, value, ...).
    """

    exit_code = 2

    def __init__(self, key: str, /, **params: Any) -> None:
        self.key = key
        self.params = params
        super().__init__(key)

    def __str__(self) -> str:
        return tr(self.key, **self.params)

    def render(self, locale: str | None = None) -> str:
        """Return the message in ``locale`` (default: the active locale)."""
        return tr(self.key, locale=locale, **self.params)


class ConfigError(RelmapError):
    """engagement.yaml or a command-line parameter is invalid."""


class SourceError(RelmapError):
    """A source file cannot be read or does not match its mapping."""


class PrivacyError(RelmapError):
    """Personal data would leave ingest without a pseudonym, or the key is missing."""


class RunError(RelmapError):
    """A run cannot start, or a stage failed."""


class StageError(RelmapError):
    """A stage cannot compute its result from the data it was given."""
