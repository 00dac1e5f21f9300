"""Pseudonyms and the personal-data scan.

Pseudonym method
----------------
A pseudonym is HMAC-SHA256 (RFC 2104) of the normalised value under the
engagement's key, written as the first :data:`PSEUDONYM_LENGTH` lowercase
hex digits. Normalising means trimming surrounding whitespace (including the
ideographic space U+3000) and upper-casing the trailing ``x`` of an 18-digit
resident ID number, so ``11010519491231002x`` and ``11010519491231002X ``
give the same pseudonym and the same person joins across tables.

Ingest computes pseudonyms in SQL, not in a Python UDF: DuckDB's ``sha256``
builds the HMAC from the inner and outer padded keys, which are bound as
parameters of a prepared statement into a one-row temporary table. The key
therefore never appears in SQL text (which Ibis and DuckDB may log or show in
errors), no value becomes a Python object, and the work runs in parallel in
the engine. :func:`pseudonymize_value` computes the same function in Python
for single values, for example to look up one customer inside the bank.

The key is read only from the environment variable named by
``privacy.key_env``; only :func:`key_fingerprint` of it is ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from relmap_utils.config import Privacy
from relmap_utils.errors import PrivacyError, SourceError
from relmap_utils.i18n import Msg, tr

logger = logging.getLogger(__name__)

PSEUDONYM_LENGTH = 24  # hex digits, 96 bits: no collision expected below ~10^13 distinct values
MIN_KEY_LENGTH = 16
KEY_TABLE = "__relmap_pseudonym_key"
_BLOCK = 64  # SHA-256 block size in bytes
_WHITESPACE = "\t\n\f\r \u3000"

# Value patterns, anchored so that only a whole cell counts as a match.
RESIDENT_ID = r"^\d{17}[\dXx]$"
MOBILE = r"^(\+?86[- ]?)?1[3-9]\d{9}$"
CARD = r"^\d{16,19}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
# The same kinds found inside free text ("联系电话13812340001"): a candidate
# must not touch other digits or Latin letters, so codes such as
# TX2023010500012345 are not read as cards. Group 2 is checked for its check digit.
EMBEDDED_RESIDENT_ID = r"(^|[^0-9A-Za-z])([0-9]{17}[0-9Xx])([^0-9A-Za-z]|$)"
EMBEDDED_MOBILE = r"(^|[^0-9A-Za-z+])(\+?86[- ]?)?1[3-9][0-9]{9}([^0-9A-Za-z]|$)"
EMBEDDED_CARD = r"(^|[^0-9A-Za-z])([0-9]{16,19})([^0-9A-Za-z]|$)"
EMBEDDED_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# Long runs of digits under a card, ID, phone or account header are personal
# even when no check digit fits (a 20-digit card number, a damaged ID number).
LONG_DIGITS = r"^[0-9]{16,}$"
# Value kinds from the most to the least specific; a value counts as the first that matches.
VALUE_KINDS = ("resident_id", "mobile", "card", "email")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

NAME_HEADER = re.compile(
    r"姓名|联系人|户名|持卡人|开户名|客户名称|客户全称|^(名称|名字|称呼)$"
    r"|(?i:^((customer|client|contact|full|first|last|holder|account_holder)_?)?name$|surname)"
)
ADDRESS_HEADER = re.compile(r"地址|住址|住所|(?i:(^|_)(address|addr|street)($|_))")
# People named by their part in an account or a payment: 开户人, 持卡人, 收款人 ...
PERSON_HEADER = re.compile(r"(开户|持卡|户主|收款|付款|经办|申请|借款|担保|联系|法定代表)人$|^法人$|(?i:^(payee|payer|holder)$)")
# Headers of card, ID, phone and account numbers.
NUMBER_HEADER = re.compile(
    r"卡号|银行卡|证件|身份证|手机|电话|联系方式|账号|帐号"
    r"|(?i:(^|_)(card|card_?no|card_?number|phone|mobile|tel|telephone|id_?no|id_?number|id_?card"
    r"|account_?no|account_?number|acct_?no)($|_))"
)


def get_key(privacy: Privacy) -> bytes:
    """Read the pseudonym key from the environment variable named in the config.

    Parameters
    ----------
    privacy : Privacy
        The engagement's privacy section; ``key_env`` names the variable.

    Returns
    -------
    bytes
        The key as UTF-8 bytes, surrounding whitespace removed.

    Raises
    ------
    PrivacyError
        When the variable is unset, empty or shorter than 16 characters.
    """
    raw = os.environ.get(privacy.key_env, "").strip()
    if not raw:
        raise PrivacyError("ingest.key_missing", variable=privacy.key_env)
    if len(raw) < MIN_KEY_LENGTH:
        raise PrivacyError("ingest.key_short", variable=privacy.key_env, minimum=MIN_KEY_LENGTH)
    return raw.encode("utf-8")


def key_fingerprint(key: bytes) -> str:
    """Return a short fingerprint that distinguishes keys without revealing them.

    Examples
    --------
    >>> len(key_fingerprint(b"0123456789abcdef0123"))
    16
    """
    return hmac.new(key, b"relmap key fingerprint", hashlib.sha256).hexdigest()[:16]


def normalize_value(value: str) -> str:
    """Normalise a value before hashing (trim; upper-case the X of an ID number)."""
    text = value.strip(_WHITESPACE)
    if len(text) == 18 and text[:17].isascii() and text[:17].isdigit() and text[17] == "x":
        text = text[:17] + "X"
    return text


def pseudonymize_value(value: str, key: bytes | str) -> str:
    """Return the pseudonym ingest writes for ``value``.

    Parameters
    ----------
    value : str
        The original value, as text.
    key : bytes or str
        Key from :func:`get_key`, or the same key as text (encoded as UTF-8
        after trimming, as :func:`get_key` does).

    Returns
    -------
    str
        :data:`PSEUDONYM_LENGTH` lowercase hex digits.
    """
    if isinstance(key, str):
        key = key.strip().encode("utf-8")
    normalized = normalize_value(str(value)).encode("utf-8")
    return hmac.new(key, normalized, hashlib.sha256).hexdigest()[:PSEUDONYM_LENGTH]


def _pads(key: bytes) -> tuple[bytes, bytes]:
    block = hashlib.sha256(key).digest() if len(key) > _BLOCK else key
    block = block.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


@ibis.udf.scalar.builtin(name="sha256")
def _sha256(value: dt.binary) -> str:
    """DuckDB's sha256 over bytes, as lowercase hex."""


@ibis.udf.scalar.builtin(name="unhex")
def _unhex(value: str) -> dt.binary:
    """DuckDB's unhex: hex text to bytes."""


@ibis.udf.scalar.builtin(name="encode")
def _utf8_bytes(value: str) -> dt.binary:
    """DuckDB's encode: text to its UTF-8 bytes."""


@ibis.udf.scalar.builtin(name="concat")
def _concat_bytes(left: dt.binary, right: dt.binary) -> dt.binary:
    """DuckDB's concat over two byte strings."""


def install_key(backend: Any, key: bytes) -> ir.Table:
    """Store the HMAC pads in a one-row temporary table of the backend.

    The pads are bound as prepared-statement parameters, so the key never
    appears in SQL text. Call :func:`remove_key` when done.
    """
    inner, outer = _pads(key)
    backend.con.execute(
        f'CREATE OR REPLACE TEMP TABLE "{KEY_TABLE}" AS SELECT $1::BLOB AS inner_pad, $2::BLOB AS outer_pad',
        [inner, outer],
    )
    return backend.table(KEY_TABLE)


def remove_key(backend: Any) -> None:
    """Drop the key table created by :func:`install_key`."""
    backend.con.execute(f'DROP TABLE IF EXISTS "{KEY_TABLE}"')


def normalized_text(column: ir.Value) -> ir.StringValue:
    """Return the SQL form of :func:`normalize_value` for a column of any type."""
    if column.type().is_floating():
        # 123.0 from a float column hashes like the integer 123
        column = ibis.ifelse(column == column.round(), column.cast(dt.int64).cast(dt.string), column.cast(dt.string))
    text = column.cast(dt.string)
    trimmed = text.re_replace(r"^[\t\n\f\r \x{3000}]+|[\t\n\f\r \x{3000}]+$", "")
    return trimmed.re_replace(r"^([0-9]{17})x$", r"\1X")


def pseudonymize_expr(column: ir.Value, key_table: ir.Table) -> ir.StringValue:
    """Return the pseudonym of each value of ``column``, computed in SQL.

    Parameters
    ----------
    column : Value
        Column to pseudonymize (text or numbers); NULL stays NULL.
    key_table : Table
        Table returned by :func:`install_key`.
    """
    message = _utf8_bytes(normalized_text(column))
    inner = _sha256(_concat_bytes(key_table.inner_pad.as_scalar(), message))
    outer = _sha256(_concat_bytes(key_table.outer_pad.as_scalar(), _unhex(inner)))
    return outer.left(PSEUDONYM_LENGTH)


def resident_id_valid(text: ir.StringValue) -> ir.BooleanValue:
    """Return whether an 18-character value has a valid ISO 7064 MOD 11-2 check character."""
    digits = [text.substr(index, 1).try_cast(dt.int64) * weight for index, weight in enumerate(_ID_WEIGHTS)]
    total = sum(digits[1:], digits[0])
    expected = ibis.literal(_ID_CHECK).substr((total % 11).cast(dt.int64), 1)
    # CASE evaluates the checksum only for rows of the right shape.
    return ibis.ifelse(text.re_search(RESIDENT_ID), text.right(1).upper() == expected, False)


def luhn_valid(text: ir.StringValue) -> ir.BooleanValue:
    """Return whether a 16-19 digit value passes the Luhn check of card numbers."""
    length = text.length()
    terms = []
    for position in range(1, 20):  # from the right, 1-based
        digit = ibis.ifelse(
            length >= position, text.substr(length - position, 1).try_cast(dt.int64), ibis.literal(0, dt.int64)
        )
        if position % 2 == 0:
            doubled = digit * 2
            digit = ibis.ifelse(doubled > 9, doubled - 9, doubled)
        terms.append(digit)
    total = sum(terms[1:], terms[0])
    return ibis.ifelse(text.re_search(CARD), total % 10 == 0, False)


def header_kind(header: str) -> str | None:
    """Return the kind of personal data a header names, else ``None``.

    Parameters
    ----------
    header : str
        A column name or source header.

    Returns
    -------
    str or None
        ``number`` for card, ID, phone and account numbers (checked first, so
        经办人手机 is a number), ``name`` or ``address``.
    """
    if NUMBER_HEADER.search(header):
        return "number"
    if NAME_HEADER.search(header) or PERSON_HEADER.search(header):
        return "name"
    if ADDRESS_HEADER.search(header):
        return "address"
    return None


def embedded_checks(text: ir.StringValue) -> dict[str, ir.BooleanValue]:
    """Return, per value kind, whether a cell holds that kind anywhere in its text.

    The first candidate of each kind in a cell is taken and its check
    character (resident ID) or Luhn sum (card) verified, so a whole-cell
    value and one inside free text count alike.
    """
    # NOTE: only the first candidate of each kind per cell is checked, so a cell whose
    # first 18-digit run fails the check and whose second passes is not counted.
    resident = text.re_extract(EMBEDDED_RESIDENT_ID, 2)
    card = text.re_extract(EMBEDDED_CARD, 2)
    return {
        "resident_id": resident_id_valid(resident.fill_null("")),
        "mobile": text.re_search(EMBEDDED_MOBILE),
        "card": luhn_valid(card.fill_null("")),
        "email": text.re_search(EMBEDDED_EMAIL),
    }


def scan_personal_data(
    table: ir.Table,
    columns: Sequence[str] | None = None,
    *,
    allowlist: Iterable[str] = (),
    headers: dict[str, str] | None = None,
) -> dict[str, dict[str, int]]:
    """Count values that look like personal data, column by column, in SQL.

    Parameters
    ----------
    table : Table
        Table to scan; text and integer columns are checked.
    columns : sequence of str, optional
        Columns to check (default: all).
    allowlist : iterable of str, default=()
        Values never counted, for example a bank's public hotline.
    headers : dict, optional
        Original source header of each column, also checked for name and
        address words (a column's own name always is).

    Returns
    -------
    dict
        ``{column: {kind: count}}`` for columns with at least one match.
        Kinds: ``resident_id`` (valid check character), ``mobile``,
        ``card`` (Luhn-valid), ``email`` -- whole cells or inside free text
        such as ``联系电话13812340001`` --, ``name`` or ``address`` when the
        header says so (the count is then the number of non-empty cells),
        and ``number`` for runs of 16 or more digits that pass no check under
        a card, ID, phone or account header.
        A value counts for one value kind only, the first of
        :data:`VALUE_KINDS` it matches. Values themselves are never returned.
    """
    backends, _ = table._find_backends()
    if any(getattr(backend, "name", None) == "pyspark" for backend in backends):
        # Spark's optimizer and code generator stall on the check-digit expressions below.
        from relmap_utils.ingest import warehouse

        return warehouse.scan_personal_data(table, columns, allowlist=allowlist, headers=headers)
    headers = headers or {}
    allowed = [value for value in allowlist]
    aggregates: dict[str, ir.Scalar] = {}
    header_kinds: dict[str, str] = {}
    for name in columns if columns is not None else table.columns:
        dtype = table[name].type()
        if not (dtype.is_string() or dtype.is_integer()):
            continue
        text = table[name].cast(dt.string).strip()
        if allowed:
            text = ibis.ifelse(text.isin(allowed), ibis.null(dt.string), text)
        kind = header_kind(name) or header_kind(headers.get(name, ""))
        checks = embedded_checks(text)
        if kind == "number":
            header_kinds[name] = kind
            # Counted apart from the checked kinds: only runs of digits no check fits.
            long_digits = text.re_search(LONG_DIGITS).fill_null(False)
            for check in VALUE_KINDS:
                long_digits = long_digits & ~checks[check].fill_null(False)
            aggregates[f"{name}\x00{kind}"] = long_digits.cast(dt.int64).sum().fill_null(0)
        elif kind and dtype.is_string():
            header_kinds[name] = kind
            aggregates[f"{name}\x00{kind}"] = text.nullif("").count()
        # A value counts as one kind only, the first that matches in VALUE_KINDS:
        # an 18-digit ID number that happens to pass the Luhn check is not also a card.
        matched_before: ir.BooleanValue | None = None
        for check in VALUE_KINDS:
            condition = checks[check].fill_null(False)
            counted = condition if matched_before is None else condition & ~matched_before
            matched_before = condition if matched_before is None else matched_before | condition
            aggregates[f"{name}\x00{check}"] = counted.cast(dt.int64).sum().fill_null(0)
    if not aggregates:
        return {}

    row = table.aggregate(**{f"m{index}": expr for index, expr in enumerate(aggregates.values())}).to_pyarrow()
    values = row.to_pylist()[0]
    found: dict[str, dict[str, int]] = {}
    for index, key in enumerate(aggregates):
        column, _, kind = key.partition("\x00")
        count = int(values[f"m{index}"] or 0)
        if count:
            found.setdefault(column, {})[kind] = count
    return found


def _id_check_ok(candidate: str) -> bool:
    total = sum(int(digit) * weight for digit, weight in zip(candidate[:17], _ID_WEIGHTS))
    return candidate[17].upper() == _ID_CHECK[total % 11]


def _luhn_ok(candidate: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(candidate)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def text_looks_personal(text: str) -> bool:
    """Return whether one text holds personal data by the value checks of the scan.

    The Python twin of :func:`embedded_checks`, for single texts such as the
    header cells of a file, which may be a first row of data: a mobile
    number, a resident ID number with a valid check character, a Luhn-valid
    card number or an e-mail address anywhere in the text, or a run of 16 or
    more digits.

    Parameters
    ----------
    text : str

    Returns
    -------
    bool
    """
    text = str(text)
    if re.search(EMBEDDED_MOBILE, text) or re.search(EMBEDDED_EMAIL, text):
        return True
    if re.search(r"[0-9]{16,}", text):
        return True
    return any(_id_check_ok(m.group(2)) for m in re.finditer(EMBEDDED_RESIDENT_ID, text)) or any(
        _luhn_ok(m.group(2)) for m in re.finditer(EMBEDDED_CARD, text)
    )


def _looks_like_data(header: str) -> bool:
    """Return whether a header cell looks like a value rather than a column name."""
    header = str(header)
    return (
        text_looks_personal(header)
        or re.search(r"\d{4,}", header) is not None
        or re.fullmatch(r"[-+.,\d]+", header) is not None
        or len(header) > 30
        or re.search(r"[:/].*[:/]", header) is not None
    )


class MaskedHeaders(Msg):
    """A file's column names for a message, those that look like personal data masked.

    Renders as comma-separated names in the message's own language; a name
    that :func:`text_looks_personal` flags becomes ``<列 3：疑似个人信息>``
    (1-based position), and ``-`` stands for no names at all.

    Parameters
    ----------
    headers : sequence of str
        Column names as read from the file.
    """

    def __init__(self, headers: Sequence[str]) -> None:
        super().__init__("ingest.header_masked")
        self.headers = [str(header) for header in headers]

    def render(self, locale: str | None = None) -> str:
        names = [
            tr("ingest.header_masked", locale=locale, position=position) if text_looks_personal(header) else header
            for position, header in enumerate(self.headers, start=1)
        ]
        return ", ".join(names) or "-"

    def __str__(self) -> str:
        return self.render()


def check_mapped_headers(source_name: str, mapped: Iterable[str], headers: Sequence[str]) -> None:
    """Raise when the mapping names columns the file's header row lacks.

    Parameters
    ----------
    source_name : str
        The source's name, for the message.
    mapped : iterable of str
        Source column names of the mapping.
    headers : sequence of str
        Column names read from the file.

    Raises
    ------
    SourceError
        ``ingest.no_header_row`` when none of the mapped columns is present
        and a header cell looks like data (the first row is most likely
        data, so no header text is shown), else
        ``ingest.columns_missing`` with the file's names masked by
        :class:`MaskedHeaders`.
    """
    mapped = list(mapped)
    missing = sorted(set(mapped) - set(headers))
    if not missing:
        return
    if len(missing) == len(set(mapped)) and any(_looks_like_data(header) for header in headers):
        raise SourceError("ingest.no_header_row", source=source_name, columns=", ".join(missing))
    raise SourceError(
        "ingest.columns_missing", source=source_name, columns=", ".join(missing), available=MaskedHeaders(headers)
    )
