"""Semantic types of columns: declared roles first, rules over statistics otherwise.

The semantic type decides which statistics a column gets: identifiers get no
mean, histogram or correlation, categories get top values instead of a mean,
personal data gets counts only. The order of precedence is:

1. a role declared in engagement.yaml (``columns.json`` from ingest, ``declared``);
2. a pseudonym written by ingest (``pseudonymized``): key columns stay
   identifiers, everything else is personal data;
3. the canonical schema's type for canonical columns;
4. the rules in :func:`infer_type` for every other column.

docs/profiling.md lists the rules with their thresholds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ibis.expr import datatypes as dt

from relmap_utils.profiling.model import SemanticType
from relmap_utils.schema import PSEUDONYMIZED_KEYS, Column

# Declared roles of engagement.yaml (config.Role) mapped onto semantic types.
ROLE_TYPES = {
    "identifier": "identifier",
    "category": "category",
    "amount": "numeric",
    "number": "numeric",
    "integer": "numeric",
    "date": "date",
    "datetime": "date",
    "text": "text",
    "boolean": "boolean",
    "personal": "personal",
}

# Canonical schema types (schema.CANONICAL_TYPES) mapped onto semantic types.
SCHEMA_TYPES = {
    "id": "identifier",
    "category": "category",
    "text": "text",
    "amount": "numeric",
    "number": "numeric",
    "integer": "numeric",
    "date": "date",
    "datetime": "date",
    "boolean": "boolean",
}

# Value patterns of personal data, evaluated in SQL (DuckDB regexp syntax).
# Ingest checks resident ID check digits and card numbers with Luhn; profiling
# counts pattern matches only, as a second line of defence.
PII_PATTERNS = {
    "mobile": r"^\+?(86)?1[3-9][0-9]{9}$",
    "resident_id": r"^[1-9][0-9]{16}[0-9Xx]$",
    "email": r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$",
}
# An identifier that went through a spreadsheet as a number, e.g. 6.2E+18.
DAMAGED_ID_PATTERN = r"^[0-9](\.[0-9]+)?[eE]\+?[0-9]+$"

# A string column is scanned for personal-data patterns only when it has many
# distinct values: personal data identifies people, so a column with a few
# hundred repeated values cannot be a name, phone or ID number column.
PATTERN_SCAN_MIN_DISTINCT = 1000
PATTERN_SCAN_MIN_RATIO = 0.5
# Share of non-null values that must match a personal-data pattern before an
# undeclared column is typed as personal data.
PERSONAL_MATCH_SHARE = 0.5

# Integer columns with at most this many distinct values, covering at most
# CODE_MAX_RATIO of the non-null rows, are codes (categories), not quantities.
CODE_MAX_DISTINCT = 10
CODE_MAX_RATIO = 0.5
# String columns with at most this many distinct values, or at most this
# share of distinct values, are categories.
CATEGORY_MAX_DISTINCT = 200
CATEGORY_MAX_RATIO = 0.05
# Distinct / non-null above which a column counts as unique. Below 1 because
# large tables use HyperLogLog distinct counts, which err by about 1 to 2 %.
UNIQUE_RATIO = 0.98
# Mean length in characters above which a string column is free text.
TEXT_MIN_MEAN_LENGTH = 30
TEXT_MIN_SPACE_SHARE = 0.5

_IDENTIFIER_NAME = re.compile(
    r"((^|_)(id|no|nr|number|code|key)$|^id_|_id_|号$|编号|代码|编码|账号|卡号|流水号)",
    re.IGNORECASE,
)
_PERSONAL_NAME = re.compile(
    r"(^(name|full_?name|first_?name|last_?name|customer_?name|client_?name|contact_?name"
    r"|address|addr|home_?address|phone|mobile|tel|telephone|phone_?number|mobile_?number|e_?mail"
    r"|id_?number|id_?card|card_?no|card_?number)$"
    r"|姓名|客户名称|客户姓名|联系人|户名|地址|住址|电话|手机|联系方式|邮箱|电子邮件|身份证|证件号|卡号)",
    re.IGNORECASE,
)
_ORDINAL_NAME = re.compile(r"(等级|级别|评级|档次|星级|层级|(^|_)(level|grade|rating|tier|rank)($|_))", re.IGNORECASE)
_NOMINAL_NAME = re.compile(
    r"(性别|婚姻|地区|省|城市|职业|渠道|类型|状态|产品|"
    r"(^|_)(gender|sex|marital|region|province|city|occupation|channel|type|status|product)($|_))",
    re.IGNORECASE,
)
_BOOLEAN_PAIRS = [
    {"0", "1"},
    {"y", "n"},
    {"yes", "no"},
    {"t", "f"},
    {"true", "false"},
    {"是", "否"},
    {"有", "无"},
]


def declared_type(
    name: str,
    meta: Mapping[str, Any] | None,
    schema_column: Column | None,
) -> SemanticType | None:
    """Return the semantic type a declaration fixes, or ``None`` when only inference can tell.

    Parameters
    ----------
    name : str
        Column name, used to recognise pseudonymized key columns.
    meta : mapping, optional
        The column's entry of ingest's ``columns.json`` (``role``, ``declared``,
        ``pseudonymized``, ``type``).
    schema_column : relmap_utils.schema.Column, optional
        The canonical column of that name, when the table is canonical.

    Returns
    -------
    SemanticType or None
    """
    meta = meta or {}
    role = meta.get("role")
    if meta.get("declared") and role in ROLE_TYPES:
        return SemanticType(ROLE_TYPES[role], _ordinal_by_name(name), "role", f"role:{role}")

    if meta.get("pseudonymized"):
        is_key = name in PSEUDONYMIZED_KEYS or (schema_column is not None and schema_column.type == "id"
                                                and not schema_column.personal)
        return SemanticType("identifier" if is_key else "personal", False, "pseudonymized", "pseudonym")

    if schema_column is not None:
        if schema_column.personal:
            return SemanticType("personal", False, "schema", "schema:personal")
        semantic = SCHEMA_TYPES.get(schema_column.type)
        if semantic:
            ordinal = semantic == "category" and _ordinal_by_name(name)
            return SemanticType(semantic, ordinal, "schema", f"schema:{schema_column.type}")

    # Ingest keeps identifier-like text (leading zeros, long digit strings) as
    # type "id", unmapped columns included.
    if meta.get("type") == "id":
        return SemanticType("identifier", False, "inferred", "ingest_id_text")
    return None


def needs_pattern_scan(dtype: dt.DataType, stats: Mapping[str, Any]) -> bool:
    """Return whether a string column has enough distinct values to hold personal data."""
    if not dtype.is_string():
        return False
    distinct = stats.get("distinct") or 0
    count = stats.get("count") or 0
    return distinct >= PATTERN_SCAN_MIN_DISTINCT or (count > 0 and distinct / count >= PATTERN_SCAN_MIN_RATIO)


def infer_type(name: str, dtype: dt.DataType, stats: Mapping[str, Any]) -> SemanticType:
    """Infer the semantic type of an undeclared column from its name and statistics.

    Parameters
    ----------
    name : str
        Column name; a few name patterns (``客户号``, ``*_id``, ``姓名``,
        ``风险等级``) count as evidence.
    dtype : ibis DataType
        Physical type in the table.
    stats : mapping
        ``count`` (non-null), ``distinct``, ``min``, ``max``, and for strings
        ``mean_length``, optionally ``pattern_matches`` (pattern name to
        count) and ``spaces`` (values containing a space).

    Returns
    -------
    SemanticType
        With ``source="inferred"`` and ``reason`` naming the rule applied.

    Examples
    --------
    >>> import ibis.expr.datatypes as dt
    >>> infer_type("风险等级", dt.int64, {"count": 12, "distinct": 5, "min": 1, "max": 5}).ordinal
    True
    """
    count = stats.get("count") or 0
    distinct = stats.get("distinct") or 0
    ratio = distinct / count if count else 0.0

    if dtype.is_boolean():
        return SemanticType("boolean", reason="boolean_type")
    if dtype.is_temporal():
        return SemanticType("date", reason="date_type")
    if _PERSONAL_NAME.search(name):
        return SemanticType("personal", reason="personal_name")
    if dtype.is_string():
        return _infer_string(name, stats, count, distinct, ratio)
    if dtype.is_integer():
        return _infer_integer(name, stats, count, distinct, ratio)
    if dtype.is_numeric():
        return SemanticType("numeric", reason="numeric_type")
    return SemanticType("text", reason="other_type")


def decide_type(
    name: str,
    dtype: dt.DataType,
    stats: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
    schema_column: Column | None = None,
) -> SemanticType:
    """Return the declared semantic type if there is one, else the inferred type.

    See :func:`declared_type` and :func:`infer_type` for the two steps. Only
    a numeric column can be an ordinal category, whatever its name or
    declared role. Text labels such as 普通/金卡/白金 carry their order only in
    the bank's business rules, and sorting them by code point gives a wrong one.
    """
    semantic = declared_type(name, meta, schema_column)
    if semantic is None:
        semantic = infer_type(name, dtype, stats)
    if semantic.ordinal and not dtype.is_numeric():
        semantic.ordinal = False
    return semantic


def _ordinal_by_name(name: str) -> bool:
    return bool(_ORDINAL_NAME.search(name))


def _looks_personal(stats: Mapping[str, Any], count: int) -> bool:
    matches = stats.get("pattern_matches") or {}
    return bool(count) and max(matches.values(), default=0) / count >= PERSONAL_MATCH_SHARE


def _infer_string(name: str, stats: Mapping[str, Any], count: int, distinct: int, ratio: float) -> SemanticType:
    if _looks_personal(stats, count):
        return SemanticType("personal", reason="personal_pattern")
    if distinct == 2 and _is_boolean_pair(stats.get("min"), stats.get("max")):
        return SemanticType("boolean", reason="two_boolean_values")

    mean_length = stats.get("mean_length") or 0.0
    space_share = (stats.get("spaces") or 0) / count if count else 0.0
    if mean_length >= TEXT_MIN_MEAN_LENGTH or (space_share >= TEXT_MIN_SPACE_SHARE and ratio > CATEGORY_MAX_RATIO):
        return SemanticType("text", reason="long_or_spaced_text")
    identifier_name = bool(_IDENTIFIER_NAME.search(name))
    # A small table's unique column is a key only when its name says so: twelve
    # different city names in twelve rows are still a category.
    if ratio >= UNIQUE_RATIO and (identifier_name or distinct > CATEGORY_MAX_DISTINCT):
        return SemanticType("identifier", reason="unique_short_text")
    if identifier_name and ratio >= 0.5:
        return SemanticType("identifier", reason="identifier_name")
    # Text categories are never ordinal (see decide_type).
    if distinct <= CATEGORY_MAX_DISTINCT or ratio <= CATEGORY_MAX_RATIO:
        return SemanticType("category", reason="few_distinct_values")
    return SemanticType("category", reason="many_distinct_values")


def _infer_integer(name: str, stats: Mapping[str, Any], count: int, distinct: int, ratio: float) -> SemanticType:
    low, high = stats.get("min"), stats.get("max")
    if distinct == 2 and low == 0 and high == 1:
        return SemanticType("boolean", reason="zero_one")

    if ratio >= UNIQUE_RATIO and count > 1:
        if _IDENTIFIER_NAME.search(name):
            return SemanticType("identifier", reason="unique_with_identifier_name")
        # Fixed-width numbering such as 100001..100012 is a key; ages or
        # amounts that happen to be unique in a small table are not.
        if low is not None and high is not None and low >= 1000 and len(str(low)) == len(str(high)):
            return SemanticType("identifier", reason="unique_fixed_width_integers")
    elif _IDENTIFIER_NAME.search(name):
        # A named code with repeats (branch_id, district_id): a category, never a quantity.
        if ratio >= 0.5:
            return SemanticType("identifier", reason="identifier_name")
        return SemanticType("category", reason="integer_code_with_identifier_name")

    if distinct <= CODE_MAX_DISTINCT and ratio <= CODE_MAX_RATIO:
        return SemanticType("category", _is_ordinal_code(name, low, high, distinct), reason="small_integer_codes")
    return SemanticType("numeric", reason="integer_quantity")


def _is_ordinal_code(name: str, low: Any, high: Any, distinct: int) -> bool:
    if _ordinal_by_name(name):
        return True
    if _NOMINAL_NAME.search(name):
        return False
    # Three or more consecutive integer codes (1..5) read as an ordered scale;
    # two codes (1/2) are usually a nominal flag such as sex.
    return distinct >= 3 and low is not None and high is not None and high - low + 1 == distinct


def _is_boolean_pair(low: Any, high: Any) -> bool:
    if low is None or high is None:
        return False
    pair = {str(low).strip().lower(), str(high).strip().lower()}
    return pair in _BOOLEAN_PAIRS
