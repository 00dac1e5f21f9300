"""Column types: declared roles, canonical types, and guesses for unmapped columns.

A column's canonical type comes from the role declared in engagement.yaml.
Without a role it comes from the canonical schema when the column name is a
canonical column of the target table, and otherwise from a guess. Guessing looks at every value
of the column in one aggregate query per source (SQL pushdown), never at a
sample in Python.

Guessing rules, applied to the non-missing values of a text column:

- all values are integers or scientific notation, with at least one in
  scientific notation: ``id``, reported as damaged;
- all parse as dates: ``date``, or ``datetime`` when some value has a time of
  day. Eight-digit integers count as dates only when the header names a date
  (日期, 时间, date, time, ...) or a configured format matches; five-digit
  Excel serial day numbers count under such a header in Excel sources;
- all are digits (an 18-character resident ID may end in X), and a value has a
  leading zero, or a value has 12 or more digits, or the header names an
  identifier (号, 码, 代码, id, code, ...): ``id``;
- all are integers: ``amount`` under a money header (see below), else ``integer``;
- all are numbers: ``amount`` when a value carries a currency sign, a
  thousands separator, parentheses, 万 or 亿, or the header names money
  (金额, 余额, 元, amount, balance, ...); ``number`` otherwise;
- all are yes/no words: ``boolean``;
- short codes of letters and digits with an identifier header, or nearly all
  distinct: ``id``;
- otherwise ``category`` when at most half the values (and at most 1,000) are
  distinct and no value is longer than 50 characters, else ``text``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from relmap_utils.ingest import parsing

ROLE_TYPES = {
    "identifier": "id",
    "category": "category",
    "amount": "amount",
    "number": "number",
    "integer": "integer",
    "date": "date",
    "datetime": "datetime",
    "text": "text",
    "boolean": "boolean",
}

# Parquet/Ibis type of each canonical type.
IBIS_TYPES: dict[str, dt.DataType] = {
    "id": dt.string,
    "category": dt.string,
    "text": dt.string,
    "amount": dt.float64,
    "number": dt.float64,
    "integer": dt.int64,
    "date": dt.date,
    "datetime": dt.timestamp,
    "boolean": dt.boolean,
}

DATE_HEADER = re.compile(r"日期|时间|年月|date|time|(^|_)dt($|_)|issued", re.IGNORECASE)
ID_HEADER = re.compile(r"号|码|代码|编码|编号|(^|_)id$|^id(_|$)|id$|(^|_)no$|code|key|账号|卡号", re.IGNORECASE)
AMOUNT_HEADER = re.compile(
    r"金额|余额|元|收入|工资|薪|额度|价|费|amount|balance|salary|income|payment|price|limit", re.IGNORECASE
)

INTEGER = r"^[+-]?\d+$"
INTEGER_DOT_ZERO = r"^[+-]?\d+\.0+$"
LEADING_ZERO = r"^0\d+$"
LONG_DIGITS = r"^\d{12,}$"
RESIDENT_ID_SHAPE = r"^\d{17}[\dXx]$"
ALPHANUMERIC_CODE = r"^[A-Za-z]{0,6}[-_]?\d+[A-Za-z]?$"
AMOUNT_DECORATION = r"[,，¥￥$元万亿()（）]|CNY|RMB|-$"

MAX_CATEGORY_LEVELS = 1000
MAX_CATEGORY_LENGTH = 50


@dataclass(frozen=True)
class ColumnGuess:
    """A guessed canonical type and why."""

    type: str
    damaged_identifier: bool = False


def type_of_role(role: str | None) -> str | None:
    """Return the canonical type of a declared role (``None`` for ``personal``)."""
    return ROLE_TYPES.get(role) if role else None


def canonical_type_of_ibis(dtype: dt.DataType) -> str:
    """Return the canonical type that best describes an already typed column."""
    if dtype.is_boolean():
        return "boolean"
    if dtype.is_integer():
        return "integer"
    if dtype.is_floating() or dtype.is_decimal():
        return "number"
    if dtype.is_timestamp():
        return "datetime"
    if dtype.is_date():
        return "date"
    return "text"


DATE_LIKE = r"^\d{4}\s*[-/.年]|^\d{8}(\.0+)?$|^\d{14}$|^\d{5}(\.\d+)?$"


def _count(flag: ir.BooleanValue) -> ir.IntegerScalar:
    return flag.fill_null(False).cast(dt.int64).sum().fill_null(0)


def profile_columns(
    table: ir.Table,
    columns: dict[str, tuple[list[str], bool]],
) -> dict[str, dict[str, int]]:
    """Count, in one query, what :func:`decide_type` needs for each column.

    Parameters
    ----------
    table : Table
        Table of cleaned text columns (trimmed, blanks and markers NULL).
    columns : dict
        For each column to profile: the configured date formats and whether
        five-digit Excel serial dates count as dates.

    Returns
    -------
    dict
        ``{column: {measure: count}}``.

    Notes
    -----
    Parsed dates and amounts are computed once per row in an inner
    projection and only counted in the outer query, because the same parse
    appears in several measures. Date parsing runs only on values shaped
    like a date.
    """
    if not columns:
        return {}
    parsed_columns: dict[str, ir.Value] = {}
    for index, (name, (formats, allow_serial)) in enumerate(columns.items()):
        text = table[name]
        # Configured formats may match any shape, so only the built-in forms are prefiltered.
        date_like = ibis.literal(True) if formats else text.re_search(DATE_LIKE)
        parsed_columns[f"t{index}"] = text
        parsed_columns[f"d{index}"] = ibis.ifelse(
            date_like, parsing.parse_timestamp(text, formats, allow_serial), ibis.null(dt.timestamp)
        )
        parsed_columns[f"a{index}"] = parsing.parse_amount(text)
        if formats:
            configured = ibis.coalesce(*[parsing._try_strptime(text, fmt) for fmt in formats])
            parsed_columns[f"c{index}"] = configured
    parsed = table.select(**parsed_columns).view()  # view(): one parse per row, not one per measure

    aggregates: dict[str, ir.Scalar] = {}
    keys: list[tuple[str, str, str]] = []
    for index, (name, (formats, allow_serial)) in enumerate(columns.items()):
        text, date, amount = parsed[f"t{index}"], parsed[f"d{index}"], parsed[f"a{index}"]
        serial = text.re_search(parsing.EXCEL_SERIAL) & date.notnull() if allow_serial else None
        measures: dict[str, ir.Scalar] = {
            "n": text.count(),
            "integer": _count(text.re_search(INTEGER)),
            "digits": _count(text.re_search(r"^\d+$")),
            "integer_dot_zero": _count(text.re_search(INTEGER_DOT_ZERO)),
            "leading_zero": _count(text.re_search(LEADING_ZERO)),
            "long_digits": _count(text.re_search(LONG_DIGITS)),
            "resident_id_shape": _count(text.re_search(RESIDENT_ID_SHAPE)),
            "id_with_x": _count(text.re_search(r"^\d{17}[Xx]$")),
            "scientific": _count(text.re_search(parsing.SCIENTIFIC)),
            "compact_date": _count(text.re_search(parsing.COMPACT_DATE) | text.re_search(parsing.COMPACT_DATETIME)),
            "date": _count(date.notnull() & ~text.re_search(parsing.EXCEL_SERIAL)),
            "configured_date": _count(parsed[f"c{index}"].notnull()) if formats else ibis.literal(0, dt.int64),
            "time_of_day": _count(date.notnull() & (date.cast(dt.time) != ibis.time("00:00:00"))),
            "serial_date": _count(serial) if serial is not None else ibis.literal(0, dt.int64),
            "amount": _count(amount.notnull()),
            "non_finite": _count(text.re_search(parsing.NAN_TEXT) | text.re_search(parsing.INFINITY_TEXT)),
            "amount_decorated": _count(amount.notnull() & text.re_search(AMOUNT_DECORATION)),
            "boolean": _count(text.lower().isin(list(parsing.TRUE_WORDS + parsing.FALSE_WORDS))),
            "code": _count(text.re_search(ALPHANUMERIC_CODE)),
            "distinct": text.approx_nunique(),
            "max_length": text.length().max().fill_null(0),
        }
        for measure, expression in measures.items():
            alias = f"m{len(keys)}"
            keys.append((name, measure, alias))
            aggregates[alias] = expression

    row = parsed.aggregate(**aggregates).to_pyarrow().to_pylist()[0]
    profiles: dict[str, dict[str, int]] = {}
    for name, measure, alias in keys:
        profiles.setdefault(name, {})[measure] = int(row[alias] or 0)
    return profiles


def decide_type(header: str, profile: dict[str, int], has_formats: bool = False) -> ColumnGuess:
    """Choose a canonical type from a column profile (rules in the module docstring).

    Parameters
    ----------
    header : str
        Column header as written in the source, used for hints.
    profile : dict
        Counts from :func:`profile_columns`.
    has_formats : bool, default=False
        Whether the source configures date formats.

    Returns
    -------
    ColumnGuess
    """
    n = profile["n"]
    if n == 0:
        return ColumnGuess("text")

    integers = profile["integer"]
    if profile["scientific"] and integers + profile["scientific"] + profile["integer_dot_zero"] == n:
        return ColumnGuess("id", damaged_identifier=True)

    date_hint = bool(DATE_HEADER.search(header))
    if profile["date"] == n:
        compact_only = profile["compact_date"] == n
        configured = has_formats and profile["configured_date"] == n
        if not compact_only or date_hint or configured:
            return ColumnGuess("datetime" if profile["time_of_day"] else "date")

    if date_hint and profile["serial_date"] == n:
        return ColumnGuess("date")

    id_hint = bool(ID_HEADER.search(header))
    if profile["digits"] == n or profile["resident_id_shape"] == n:
        if profile["leading_zero"] or profile["long_digits"] or id_hint or profile["id_with_x"]:
            return ColumnGuess("id")
    if profile["integer_dot_zero"] and id_hint and integers + profile["integer_dot_zero"] == n:
        # 12345.0 under an ID header: an ID column that went through a float.
        return ColumnGuess("id", damaged_identifier=True)

    # NaN and infinities written as text do not stop a column from being numbers.
    non_finite = profile.get("non_finite", 0)
    whole = integers + profile["integer_dot_zero"]
    if whole and whole + non_finite == n and profile["max_length"] <= 18:
        return ColumnGuess("amount" if AMOUNT_HEADER.search(header) else "integer")

    if profile["amount"] and profile["amount"] + non_finite == n:
        if profile["amount_decorated"] or AMOUNT_HEADER.search(header):
            return ColumnGuess("amount")
        return ColumnGuess("number")

    if profile["boolean"] == n:
        return ColumnGuess("boolean")

    if profile["code"] == n and (id_hint or profile["distinct"] >= 0.9 * n):
        return ColumnGuess("id")

    distinct = profile["distinct"]
    if distinct <= MAX_CATEGORY_LEVELS and distinct <= 0.5 * n and profile["max_length"] <= MAX_CATEGORY_LENGTH:
        return ColumnGuess("category")
    return ColumnGuess("text")
