"""Message catalogs for everything a person reads: CLI output, errors, reports.

Catalogs are gettext ``.po`` files under ``relmap_utils/locale/<locale>/LC_MESSAGES/``,
one file per area (``core.po``, ``ingest.po``, ...). Message ids are dotted keys,
not English text, so both ``zh_CN`` and ``en`` carry a full translation and a
test can check that they list the same keys. Messages use ``str.format`` fields.

The active locale is chosen in this order: an explicit ``locale=`` argument,
then the ``RELMAP_LANG`` environment variable (the person at the console, or a
reviewer re-running a report, chooses explicitly), then :func:`set_locale`
(the runner calls it with the engagement's ``locale``), then ``zh_CN``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

SUPPORTED_LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
_LOCALE_DIR = Path(__file__).parent / "locale"
_active_locale: str | None = None


def normalize_locale(value: str | None) -> str | None:
    """Map spellings such as ``zh``, ``zh-CN``, ``en_US.UTF-8`` to a supported locale."""
    if not value:
        return None
    text = value.split(".")[0].replace("-", "_").lower()
    if text.startswith("zh"):
        return "zh_CN"
    if text.startswith("en"):
        return "en"
    return None


def set_locale(locale: str | None) -> None:
    """Set the process-wide report and message language (``None`` resets it)."""
    global _active_locale
    _active_locale = normalize_locale(locale)


def get_locale() -> str:
    """Return the locale in force (see the module docstring for the order)."""
    from_environment = normalize_locale(os.environ.get("RELMAP_LANG"))
    return from_environment or _active_locale or DEFAULT_LOCALE


@lru_cache(maxsize=None)
def catalog(locale: str) -> dict[str, str]:
    """Return all messages of ``locale`` as a key-to-text mapping."""
    messages: dict[str, str] = {}
    folder = _LOCALE_DIR / locale / "LC_MESSAGES"
    for po_path in sorted(folder.glob("*.po")):
        with po_path.open("rb") as handle:
            parsed = read_po(handle, locale=locale)
        for message in parsed:
            if message.id and message.string:
                messages[str(message.id)] = str(message.string)
    return messages


class Msg:
    """A message key with parameters, rendered later in whatever locale is asked for.

    Use it for parts of a message that are messages themselves, for example
    the list of problems inside a configuration error.
    """

    def __init__(self, key: str, /, **params: Any) -> None:
        self.key = key
        self.params = params

    def render(self, locale: str | None = None) -> str:
        return tr(self.key, locale=locale, **self.params)

    def __repr__(self) -> str:
        return f"Msg({self.key!r}, {self.params!r})"


class LocalText(Msg):
    """A text that already exists in each language (for example read from an artifact), used like a :class:`Msg`."""

    def __init__(self, texts: dict[str, str], /) -> None:
        super().__init__("", **texts)
        self.texts = {name: text for name, text in texts.items() if text}

    def render(self, locale: str | None = None) -> str:
        locale = locale or get_locale()
        return self.texts.get(locale) or next(iter(self.texts.values()), "")

    def __repr__(self) -> str:
        return f"LocalText({self.texts!r})"


def _render_param(value: Any, locale: str) -> Any:
    if isinstance(value, Msg):
        return value.render(locale)
    if isinstance(value, (list, tuple)) and value and all(isinstance(item, Msg) for item in value):
        return "\n".join("  - " + item.render(locale) for item in value)
    return value


def tr(key: str, /, locale: str | None = None, **params: Any) -> str:
    """Translate ``key`` into ``locale`` and fill in ``params``.

    A key missing from the catalog falls back to English, then to the key
    itself, so a catalog gap never hides the error that was being reported.

    Examples
    --------
    >>> tr("core.yes", locale="en")
    'yes'
    """
    chosen = normalize_locale(locale) or get_locale()
    template = catalog(chosen).get(key) or catalog("en").get(key) or key
    if not params:
        return template
    rendered = {name: _render_param(value, chosen) for name, value in params.items()}
    try:
        return template.format(**rendered)
    except (KeyError, IndexError, ValueError):
        return f"{template} {rendered}"


def bilingual(key: str, /, **params: Any) -> dict[str, str]:
    """Return ``{"zh_CN": ..., "en": ...}`` for texts stored in artifacts."""
    return {locale: tr(key, locale=locale, **params) for locale in SUPPORTED_LOCALES}


def format_amount(value: float | None, locale: str | None = None) -> str:
    """Format an amount the way bankers read it: 万/亿 in Chinese, thousands in English.

    Examples
    --------
    >>> format_amount(123456789, locale="zh_CN")
    '1.23亿'
    >>> format_amount(123456789, locale="en")
    '123,456,789'
    """
    if value is None or value != value:
        return "-"
    chosen = normalize_locale(locale) or get_locale()
    if chosen == "zh_CN":
        magnitude = abs(value)
        if magnitude >= 1e8:
            return f"{value / 1e8:.2f}亿"
        if magnitude >= 1e4:
            return f"{value / 1e4:.2f}万"
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}".rstrip("0").rstrip(".")
