"""Ibis expressions that turn raw text cells into dates, amounts and numbers.

Every function here takes a string column expression whose values are
already trimmed, with blanks and missing-value markers turned into NULL, and
returns a typed expression. Nothing is computed in Python: the expressions
compile to SQL and run in the engine. A value that does not parse becomes
NULL, so callers can count failures as ``raw IS NOT NULL AND parsed IS NULL``.
"""

from __future__ import annotations

import re

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

# Year, month and day in that order, separated by - / . or 年 月 (日), with an
# optional time. Day-first and month-first orders (05/01/2023) are not
# guessed because they are ambiguous; such files need a date format in the config.
SEPARATED_DATE = r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?T?"
COMPACT_DATE = r"^\d{8}(\.0+)?$"  # 20230105, also 20230105.0 from a float export
COMPACT_DATETIME = r"^\d{14}$"  # 20230105143000
EXCEL_SERIAL = r"^\d{5}(\.\d+)?$"  # days since 1899-12-30 (1927-05-18 .. 2173-10-14)
MIN_YEAR, MAX_YEAR = 1800, 2200

SCIENTIFIC = r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$"
FLOAT_FORM_OF_LONG_INTEGER = r"^\d{16,}\.0+$"

# One amount: digits with thousands separators only between groups of three,
# at most one sign (leading -, +, trailing - or parentheses) and one unit.
# "1,2,3", "--5" and "5万万" do not match, so they count as unparsed.
_DECIMAL = r"(\d{1,3}([,，]\d{3})+|\d+)(\.\d+)?|\.\d+"
AMOUNT_SHAPE = (
    rf"^([(（]({_DECIMAL})[万亿]?[)）]|[+-]?({_DECIMAL})[万亿]?|({_DECIMAL})[万亿]?-)$"
)
# Text that pandas, numpy and spreadsheets write for NaN and the infinities
# (trimmed values, any case). Number columns store NULL for them.
NAN_TEXT = r"(?i)^[+-]?nan$"
INFINITY_TEXT = r"(?i)^[+-]?(inf|infinity)$"
TRUE_WORDS = ("true", "t", "yes", "y", "是", "有", "真", "√")
FALSE_WORDS = ("false", "f", "no", "n", "否", "无", "假", "×")

# Unit of amounts written in a header, for example 余额（万元） or 金额(亿元).
_HEADER_UNIT = re.compile(r"[（(]\s*(百万|千万|万|亿|千)?\s*元\s*[)）]|[（(]\s*(百万|千万|万|亿|千)\s*[)）]")
_UNIT_WORDS = {"千": 1e3, "万": 1e4, "百万": 1e6, "千万": 1e7, "亿": 1e8}


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(value: str, format: str) -> dt.timestamp:  # noqa: A002 - DuckDB's argument name
    """DuckDB's try_strptime: NULL instead of an error when the format does not match."""


@ibis.udf.scalar.builtin(name="timezone", signature=((dt.string, dt.Timestamp(timezone="UTC")), dt.timestamp))
def _to_local_time(zone, value):
    """DuckDB's timezone(zone, timestamptz): the wall-clock time in ``zone``."""


def header_unit(header: str) -> float:
    """Return the multiplier implied by a header such as ``余额（万元）`` (1 when none).

    Examples
    --------
    >>> header_unit("余额（万元）")
    10000.0
    >>> header_unit("存款（元）_活期")
    1.0
    """
    match = _HEADER_UNIT.search(header)
    if not match:
        return 1.0
    word = match.group(1) or match.group(2)
    return _UNIT_WORDS.get(word, 1.0) if word else 1.0


def parse_timestamp(
    text: ir.StringValue,
    formats: list[str] | tuple[str, ...] = (),
    allow_excel_serial: bool = False,
) -> ir.TimestampValue:
    """Parse dates and date-times written the ways Chinese bank exports write them.

    Parameters
    ----------
    text : StringValue
        Trimmed text, NULL for blanks.
    formats : list of str, default=()
        strptime formats tried first, for example ``%y%m%d`` for YYMMDD integers.
    allow_excel_serial : bool, default=False
        Also read five-digit numbers as Excel serial day numbers.

    Returns
    -------
    TimestampValue
        NULL where no form matches, the calendar day is invalid, or the year
        lies outside 1800-2200.

    Notes
    -----
    Forms tried in order: the configured formats; eight digits as YYYYMMDD
    (also with a ``.0`` suffix left by a float export); fourteen digits as
    YYYYMMDDHHMMSS; year-month-day separated by ``-`` ``/`` ``.`` or written
    as 2023年1月5日, with or without zero padding and an optional time;
    Excel serial numbers when allowed.
    """
    candidates: list[ir.TimestampValue] = [_try_strptime(text, fmt) for fmt in formats]

    compact = ibis.ifelse(text.re_search(COMPACT_DATE), text.left(8), ibis.null(dt.string))
    candidates.append(_try_strptime(compact, "%Y%m%d"))
    compact_time = ibis.ifelse(text.re_search(COMPACT_DATETIME), text, ibis.null(dt.string))
    candidates.append(_try_strptime(compact_time, "%Y%m%d%H%M%S"))

    separated = text.re_replace(SEPARATED_DATE, r"\1-\2-\3 ")  # the space keeps any time apart
    candidates.append(
        ibis.ifelse(text.re_search(SEPARATED_DATE), separated.strip().try_cast(dt.timestamp), ibis.null(dt.timestamp))
    )

    if allow_excel_serial:
        seconds = (text.try_cast(dt.float64) * 86400).round().cast(dt.int64)
        serial = ibis.timestamp("1899-12-30 00:00:00") + seconds.as_interval("s")
        candidates.append(ibis.ifelse(text.re_search(EXCEL_SERIAL), serial, ibis.null(dt.timestamp)))

    parsed = ibis.coalesce(*candidates)
    in_range = parsed.year().between(MIN_YEAR, MAX_YEAR)
    return ibis.ifelse(in_range, parsed, ibis.null(dt.timestamp))


def parse_amount(text: ir.StringValue, multiplier: float = 1.0) -> ir.FloatingValue:
    """Parse money amounts as written in Chinese reports.

    Handles thousands separators (``,`` and ``，``) between groups of three
    digits, currency signs and words (¥ ￥ $ 元 CNY RMB), negatives written as
    ``(1,234.50)``, ``-1,234.50`` or ``1,234.50-``, and one 万 or 亿 inside
    the value (``1.5万`` is 15000). Any other shape (``1,2,3``, ``--5``,
    ``5万万``) is NULL rather than a guess.

    Parameters
    ----------
    text : StringValue
        Trimmed text, NULL for blanks.
    multiplier : float, default=1.0
        Unit of the column, for example 10000 when the header says 万元.

    Returns
    -------
    FloatingValue
        The amount in yuan (times ``multiplier``), NULL where unparseable.
    """
    plain = text.re_replace(r"[\s¥￥$元]|CNY|RMB", "")
    valid = plain.re_search(AMOUNT_SHAPE)
    negative = plain.re_search(r"^[(（]") | plain.startswith("-") | plain.endswith("-")
    scale = ibis.ifelse(plain.contains("亿"), 1e8, ibis.ifelse(plain.contains("万"), 1e4, 1.0))
    digits = plain.re_replace(r"[()（）+\-万亿,，]", "")
    value = ibis.ifelse(valid, digits.try_cast(dt.float64), ibis.null(dt.float64))
    sign = ibis.ifelse(negative, -1.0, 1.0)
    return value * scale * sign * multiplier


def parse_number(text: ir.StringValue) -> ir.FloatingValue:
    """Parse a plain number, allowing thousands separators and a trailing ``%``."""
    cleaned = text.re_replace(r"[,，\s%]", "")
    valid = cleaned.re_search(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
    return ibis.ifelse(valid, cleaned.try_cast(dt.float64), ibis.null(dt.float64))


def parse_integer(text: ir.StringValue) -> ir.IntegerValue:
    """Parse an integer, allowing thousands separators and a ``.0`` suffix."""
    cleaned = text.re_replace(r"[,，\s]", "").re_replace(r"\.0+$", "")
    valid = cleaned.re_search(r"^[+-]?\d{1,18}$")
    return ibis.ifelse(valid, cleaned.try_cast(dt.int64), ibis.null(dt.int64))


def parse_boolean(text: ir.StringValue) -> ir.BooleanValue:
    """Parse yes/no words in English and Chinese, and 1/0."""
    lowered = text.lower()
    return (
        ibis.cases(
            (lowered.isin([*TRUE_WORDS, "1"]), True),
            (lowered.isin([*FALSE_WORDS, "0"]), False),
            else_=ibis.null(dt.boolean),
        )
    )


def looks_damaged_identifier(text: ir.StringValue) -> ir.BooleanValue:
    """Flag identifier values already damaged upstream by a float conversion.

    Scientific notation (``6.2E+18``) and long integers printed as floats
    (``6200000000000000018.0``) have lost digits before relmap saw them; they
    cannot be repaired, only reported.
    """
    return text.re_search(SCIENTIFIC) | text.re_search(FLOAT_FORM_OF_LONG_INTEGER)


def to_local_naive(value: ir.TimestampValue, timezone: str) -> ir.TimestampValue:
    """Convert a time-zone aware timestamp to naive wall-clock time in ``timezone``."""
    if value.type().timezone is None:
        return value
    return _to_local_time(timezone, value)


def nan_flag(value: ir.Value) -> ir.BooleanValue:
    """Return whether a float value is NaN or a text value is written as NaN (false for other types)."""
    dtype = value.type()
    if dtype.is_floating():
        return value.isnan()
    if dtype.is_string():
        return value.re_search(NAN_TEXT)
    return ibis.literal(False)


def infinity_flag(value: ir.Value) -> ir.BooleanValue:
    """Return whether a float value is +inf or -inf, or a text value is written as one (``inf``, ``-Infinity``)."""
    dtype = value.type()
    if dtype.is_floating():
        return value.isinf()
    if dtype.is_string():
        return value.re_search(INFINITY_TEXT)
    return ibis.literal(False)


def finite_or_null(value: ir.FloatingValue) -> ir.FloatingValue:
    """Return a float value with NaN, +inf and -inf replaced by NULL."""
    return (value.isnan() | value.isinf()).ifelse(ibis.null(value.type()), value)
