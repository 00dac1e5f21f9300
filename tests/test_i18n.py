"""Message catalogs: both languages carry every key used in the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from relmap_utils import i18n
from relmap_utils.i18n import Msg, bilingual, format_amount, set_locale, tr

PACKAGE_DIR = Path(i18n.__file__).parent
# Keys look like "area.name" (two or more dotted lowercase parts).
KEY_CALL = re.compile(
    r"""(?:\btr|\bbilingual|\bMsg|Error|Warning)\(\s*["']([a-z0-9_]+(?:\.[a-z0-9_]+)+)["']"""
)


def _keys_used_in_code() -> set[str]:
    keys: set[str] = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        keys.update(KEY_CALL.findall(path.read_text(encoding="utf-8")))
    return keys


def test_catalogs_have_the_same_keys():
    zh = set(i18n.catalog("zh_CN"))
    en = set(i18n.catalog("en"))
    assert sorted(zh - en) == []
    assert sorted(en - zh) == []


def test_every_key_in_code_is_translated():
    zh = set(i18n.catalog("zh_CN"))
    missing = sorted(_keys_used_in_code() - zh)
    assert missing == [], f"keys used in relmap_utils but absent from the catalogs: {missing}"


def test_placeholders_agree_between_languages():
    field = re.compile(r"\{([a-z_]+)[^}]*\}")
    zh, en = i18n.catalog("zh_CN"), i18n.catalog("en")
    for key in zh:
        assert set(field.findall(zh[key])) == set(field.findall(en[key])), key


def test_chinese_is_the_default(monkeypatch):
    monkeypatch.delenv("RELMAP_LANG", raising=False)
    assert tr("core.yes") == "是"


@pytest.mark.parametrize("value", ["en", "en_US.UTF-8", "EN"])
def test_relmap_lang_selects_english(monkeypatch, value):
    monkeypatch.setenv("RELMAP_LANG", value)
    assert tr("core.yes") == "yes"


def test_engagement_locale_applies_without_environment(monkeypatch):
    monkeypatch.delenv("RELMAP_LANG", raising=False)
    set_locale("en")
    try:
        assert tr("core.yes") == "yes"
    finally:
        set_locale(None)


def test_environment_overrides_engagement_locale(monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")
    set_locale("zh_CN")
    try:
        assert tr("core.yes") == "yes"
    finally:
        set_locale(None)


def test_nested_messages_render_in_the_same_language():
    text = tr("config.invalid", locale="en", file="e.yaml", problems=[Msg("core.yes"), Msg("core.no")])
    assert "  - yes\n  - no" in text


def test_bilingual_returns_both_languages():
    assert bilingual("core.no") == {"zh_CN": "否", "en": "no"}


@pytest.mark.parametrize(
    ("value", "locale", "expected"),
    [
        (123456789, "zh_CN", "1.23亿"),
        (56789, "zh_CN", "5.68万"),
        (-20000, "zh_CN", "-2.00万"),
        (999.5, "zh_CN", "999.5"),
        (123456789, "en", "123,456,789"),
        (None, "en", "-"),
    ],
)
def test_format_amount(value, locale, expected):
    assert format_amount(value, locale=locale) == expected
