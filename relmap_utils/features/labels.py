"""Short display names of map features and of their category values, for client-facing pages.

The feature dictionary describes each feature in a full sentence. Charts,
tables and reason sentences need a short name ("年龄段", "手机银行交易占比")
and readable values ("45-54岁", "中年成家") in place of the codes that the
map stores (``age_band = 45_54``, ``life_stage = mid_family``). The texts
are in the ``labels.po`` catalogs:

- ``labels.feature.<name>``: short name of a fixed feature;
- ``labels.pattern.<kind>`` with ``labels.code.<kind>.<code>``: names built
  from a code, such as ``channel_share_<group>`` or ``interest_<topic>_count``;
- ``labels.value.<feature>.<value>``: one category value (lower case).

A name or value the catalogs do not know is shown as the dictionary's short
description or, failing that, as stored, so a page never loses information.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from relmap_utils.features.profile import AGE_BANDS, LIFE_STAGES
from relmap_utils.i18n import get_locale, tr

PRODUCT_FAMILIES = ("deposit", "wealth", "loan", "card", "insurance")
# Feature name pattern -> (pattern catalog key, code kind, placeholder), tried in order.
_PATTERNS = (
    (re.compile(rf"^({'|'.join(PRODUCT_FAMILIES)})_accounts$"), "family_accounts", "family", "family"),
    (re.compile(rf"^({'|'.join(PRODUCT_FAMILIES)})_balance$"), "family_balance", "family", "family"),
    (re.compile(r"^channel_share_(.+)$"), "channel_share", "channel", "group"),
    (re.compile(r"^merchant_share_(.+)$"), "merchant_share", "merchant", "group"),
    (re.compile(r"^interest_(.+)_count$"), "interest_count", "topic", "topic"),
    (re.compile(r"^interest_(.+)_days_since$"), "interest_days_since", "topic", "topic"),
    (re.compile(r"^rel_(.+)_count$"), "relation_count", "relation", "relation"),
    (re.compile(r"^shared_(.+)_customers$"), "shared_customers", "relation", "relation"),
)
# Features whose values are true/false flags.
_FLAG_SUFFIXES = ("_covered",)
_FLAGS = ("is_married", "salary_regular", "joined_by_as_of")
# Ratio features that are relative changes, shown as signed percentages.
_CHANGE_SUFFIXES = ("_change", "_trend", "_change_recent")
# Category values in their natural order (youngest age band first).
VALUE_ORDER: dict[str, tuple[str, ...]] = {
    "age_band": tuple(code for _, code in reversed(AGE_BANDS)),
    "life_stage": LIFE_STAGES,
    "risk_tolerance": ("C1", "C2", "C3", "C4", "C5"),
}
# Dictionary descriptions are sentences; their head before one of these is the short name.
_DESCRIPTION_SEPARATORS = ("（", "：", " (", ": ", "，", ", ")


def _known(key: str, locale: str, **params: Any) -> str | None:
    text = tr(key, locale=locale, **params)
    return None if text == key else text


def code_label(kind: str, code: str, locale: str | None = None) -> str:
    """Return the display name of a code of ``kind`` (``topic``, ``channel``, ``merchant``, ...), or the code."""
    locale = locale or get_locale()
    return _known(f"labels.code.{kind}.{code}", locale) or code


def code_labels(kind: str, code: str, fallback: str | None = None) -> Mapping[str, str]:
    """Return the display name of a code in each language, for a feature description's parameters.

    The names are looked up when first read, not here: building the map
    lists every candidate feature, and reading the catalogs for their
    descriptions would cost more than the rest of the list.

    Parameters
    ----------
    kind : str
        ``topic``, ``relation``, ``channel``, ...
    code : str
        The code as it appears in feature names (``education``, ``device``).
    fallback : str, optional
        Text for a language whose catalog does not name the code, such as
        the value as stored in the data; default ``code``.

    Returns
    -------
    mapping of str to str
        ``{"zh_CN": ..., "en": ...}``, read only.
    """
    return _CodeLabels(kind, code, code if fallback is None else fallback)


class _CodeLabels(Mapping[str, str]):
    """The names of one code by language, looked up in the catalogs when read."""

    _LOCALES = ("zh_CN", "en")

    def __init__(self, kind: str, code: str, fallback: str) -> None:
        self._key = f"labels.code.{kind}.{code}"
        self._fallback = fallback

    def __getitem__(self, locale: str) -> str:
        if locale not in self._LOCALES:
            raise KeyError(locale)
        return _known(self._key, locale) or self._fallback

    def __iter__(self) -> Iterator[str]:
        return iter(self._LOCALES)

    def __len__(self) -> int:
        return len(self._LOCALES)

    def __repr__(self) -> str:
        return repr(dict(self))


def is_labelled(name: str) -> bool:
    """Return True when the catalogs name ``name``, even where the name reads the same as the column (``city``)."""
    if _known(f"labels.feature.{name}", "zh_CN"):
        return True
    return any(pattern.match(name) for pattern, *_ in _PATTERNS)


def feature_label(name: str, locale: str | None = None, dictionary: pd.DataFrame | None = None) -> str:
    """Return the short display name of a map feature in ``locale``.

    Parameters
    ----------
    name : str
        Column name of the map (``age_band``, ``channel_share_mobile``, ``T``).
    locale : str, optional
        ``zh_CN`` or ``en``; default the active language.
    dictionary : pandas.DataFrame, optional
        The map's feature dictionary. For a feature the catalogs do not
        name, the head of its description is used.

    Returns
    -------
    str
        The short name; the column name itself when nothing better is known.
    """
    locale = locale or get_locale()
    fixed = _known(f"labels.feature.{name}", locale)
    if fixed:
        return fixed
    for pattern, key, kind, placeholder in _PATTERNS:
        match = pattern.match(name)
        if match:
            return tr(f"labels.pattern.{key}", locale=locale, **{placeholder: code_label(kind, match.group(1), locale)})
    described = _dictionary_head(name, locale, dictionary)
    return described or name


def _dictionary_head(name: str, locale: str, dictionary: pd.DataFrame | None) -> str | None:
    if dictionary is None or dictionary.empty or "name" not in dictionary.columns:
        return None
    row = dictionary[dictionary["name"] == name]
    if row.empty:
        return None
    description = str(row.iloc[0]["description_en" if locale == "en" else "description_zh"] or "")
    for separator in _DESCRIPTION_SEPARATORS:
        description = description.split(separator)[0]
    return description.strip() or None


def is_missing(value: Any) -> bool:
    """Return True for ``None``, NaN, ``pd.NA`` and ``NaT``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def is_flag(feature: str) -> bool:
    """Return True when ``feature`` holds true/false values."""
    return feature in _FLAGS or feature.endswith(_FLAG_SUFFIXES)


def value_label(feature: str, value: Any, locale: str | None = None) -> str:
    """Return the display text of one value of a category or flag feature.

    Known codes (age bands, life stages, gender M/F, marital status,
    risk tolerance C1-C5, true/false) get their catalog name; other values
    are shown as stored. A missing value is "缺失" / "missing".
    """
    locale = locale or get_locale()
    if is_missing(value):
        return tr("labels.value.missing", locale=locale)
    if isinstance(value, (bool, np.bool_)) or (is_flag(feature) and _flag_text(value) is not None):
        truth = bool(value) if isinstance(value, (bool, np.bool_)) else _flag_text(value)
        return tr(f"labels.value.flag.{'true' if truth else 'false'}", locale=locale)
    text = str(value)
    return _known(f"labels.value.{feature}.{text.strip().lower()}", locale) or text


def _flag_text(value: Any) -> bool | None:
    # Flags arrive as booleans, 0/1 (int or float, after a join) or the texts true/false.
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    return {"true": True, "false": False}.get(text)


def value_sort_key(feature: str, value: Any) -> tuple[int, str]:
    """Return a key that sorts values of ``feature`` in their natural order (age bands by age), others by text."""
    order = VALUE_ORDER.get(feature, ())
    text = "" if is_missing(value) else str(value)
    if text in order:
        return (order.index(text), "")
    if text.upper() in order:
        return (order.index(text.upper()), "")
    return (len(order), text)


def sorted_values(feature: str, values: Iterable[Any]) -> list[Any]:
    """Return ``values`` in the natural order of ``feature`` (see :func:`value_sort_key`)."""
    return sorted(values, key=lambda value: value_sort_key(feature, value))


def format_value(feature: str, value: Any, unit: str | None, locale: str | None = None) -> str:
    """Return one value of ``feature`` as a client reads it, by the dictionary ``unit``.

    Amounts in 万/亿 (Chinese) with 元, shares and change rates in percent,
    counts and days as whole numbers, categories and flags through
    :func:`value_label`.

    Examples
    --------
    >>> format_value("aum", 80900, "yuan", "zh_CN")
    '8.09万元'
    >>> format_value("channel_share_mobile", 0.0909, "share", "en")
    '9.1%'
    >>> format_value("inflow_change", -0.35, "ratio", "zh_CN")
    '-35%'
    """
    from relmap_utils.i18n import format_amount

    locale = locale or get_locale()
    if is_missing(value) or isinstance(value, (bool, str)) or unit in ("category", "flag") or is_flag(feature):
        return value_label(feature, value, locale)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value_label(feature, value, locale)
    if unit in ("yuan", "yuan_per_month"):
        return tr(f"labels.unit.{unit}", locale=locale, value=format_amount(number, locale))
    if unit == "share":
        return f"{number:.1%}"
    if unit == "ratio":
        return f"{number:+.0%}" if feature.endswith(_CHANGE_SUFFIXES) else f"{number:,.2f}"
    if number.is_integer():
        return f"{int(number):,}"
    return f"{number:,.3g}" if abs(number) < 1000 else f"{number:,.0f}"
