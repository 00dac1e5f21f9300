"""Find personal data in free text, notebooks, Parquet tables and Excel workbooks.

The scanner looks for the kinds of value that ingest pseudonymizes: resident
ID numbers with a valid check character, mainland mobile numbers, Luhn-valid
card numbers and e-mail addresses. Unlike ingest, which tests whole cells, it
also finds them inside sentences, HTML and JSON. Candidates come from
free-text patterns, and each candidate is confirmed with ingest's whole-value
patterns (:mod:`relmap_utils.ingest.privacy`) after spaces and dashes are
removed. So ``138 1234 5678`` inside a sentence counts exactly when the cell
``13812345678`` would stop an ingest.

A digit run counts only when it is a token of its own. It is skipped when a
letter, digit, underscore or point comes right before it, or a letter, digit,
underscore or decimal part right after it, because it is then part of a hex
pseudonym, a float (minified JavaScript writes ``.0270313613864123``) or an
identifier.

Values that occur in the plotly.js bundle that relmap embeds in its HTML and
notebooks (an author's e-mail address in a licence comment) are never
reported: see :func:`bundled_library_allowlist`.

Matches never leave this module as values, only as :func:`mask_value` forms
such as ``110105********002X``.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from relmap_utils.i18n import Msg
from relmap_utils.ingest.privacy import _ID_CHECK, _ID_WEIGHTS, CARD, EMAIL, MOBILE, RESIDENT_ID

logger = logging.getLogger(__name__)

KINDS = ("resident_id", "mobile", "card", "email")

_BEFORE = r"(?<![0-9A-Za-z_.])"
_AFTER = r"(?![0-9A-Za-z_])(?!\.[0-9])"
_NUMBER_CANDIDATE = re.compile(
    _BEFORE
    + r"(?:"
    + r"(?:\+?86[- ]?)?1[3-9][0-9][- ][0-9]{4}[- ][0-9]{4}"  # mobile written 3-4-4
    + r"|[0-9]{6}[- ][0-9]{8}[- ][0-9]{3}[0-9Xx]"  # resident ID written 6-8-4
    + r"|[0-9]{4}(?:[- ][0-9]{4}){3}(?:[- ]?[0-9]{1,3})?"  # card written in groups of four
    + r"|(?:\+?86[- ]?)?[0-9]{11,19}[Xx]?"  # one run of digits
    + r")"
    + _AFTER
)
_EMAIL_CANDIDATE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?![A-Za-z0-9-])"
)
_SEPARATORS = re.compile(r"[- ]")

# RE2 (DuckDB) has no look-behind, so the SQL pre-filter consumes the
# character before a candidate instead. It keeps every row that the Python
# patterns above could match, and a few more.
SQL_PREFILTER = (
    r"(^|[^0-9A-Za-z_])(\+?86[- ]?)?[0-9]{11}"
    r"|(^|[^0-9A-Za-z_])[0-9]{3,6}[- ][0-9]{4}"
    r"|[A-Za-z0-9]@[A-Za-z0-9-]+\."
)

# Parquet types whose values can hold personal data as text. Floating-point
# columns are left out: an ID or card number stored as a float has already
# lost digits, and ingest reports such columns as damaged identifiers.
_TEXT_TYPE_PREFIXES = ("string", "large_string", "string_view", "dictionary", "list", "large_list", "struct", "map")
_WIDE_INTEGERS = ("int64", "uint64")


@dataclass(frozen=True)
class PersonalMatch:
    """One value in a text that looks like personal data.

    Attributes
    ----------
    kind : {"resident_id", "mobile", "card", "email"}
    masked : str
        The value with its middle replaced by ``*`` (see :func:`mask_value`).
    start, end : int
        Character offsets of the value in the scanned text.
    """

    kind: str
    masked: str
    start: int
    end: int


@dataclass
class PersonalDataHit:
    """Matches of one kind in one place of one file, counted, with the first location.

    Attributes
    ----------
    file : str
        Path of the file, relative to the scanned run folder.
    kind : str
        One of :data:`KINDS`.
    place : Msg
        The part of the file, for example a notebook cell or a Parquet column.
    where : Msg
        Location of the first match inside ``place`` (line, row, cell).
    masked : str
        Masked form of the first match.
    count : int
        Number of matches of this kind in ``place``.
    """

    file: str
    kind: str
    place: Msg
    where: Msg
    masked: str
    count: int = 1


@dataclass
class _HitCollector:
    """Group matches by (place, kind), keeping the first location of each group."""

    file: str
    hits: dict[tuple[str, str], PersonalDataHit] = field(default_factory=dict)

    def add(self, place_id: str, place: Msg, match: PersonalMatch, where: Msg) -> None:
        key = (place_id, match.kind)
        if key in self.hits:
            self.hits[key].count += 1
        else:
            self.hits[key] = PersonalDataHit(self.file, match.kind, place, where, match.masked)

    def result(self) -> list[PersonalDataHit]:
        return list(self.hits.values())


# --------------------------------------------------------------------------- values


def resident_id_check_ok(value: str) -> bool:
    """Return whether an 18-character resident ID number has a valid ISO 7064 MOD 11-2 check character.

    Examples
    --------
    >>> resident_id_check_ok("11010519491231002X")
    True
    >>> resident_id_check_ok("110105194912310021")
    False
    """
    if not re.fullmatch(RESIDENT_ID, value, flags=re.ASCII):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == value[17].upper()


def luhn_ok(digits: str) -> bool:
    """Return whether a string of digits passes the Luhn check used by card numbers.

    Examples
    --------
    >>> luhn_ok("4111111111111111")
    True
    """
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def classify_value(value: str) -> str | None:
    """Return the kind of personal data a whole value is, or None.

    Spaces and dashes between digits are ignored. The tests are those of
    ingest: a resident ID number needs a valid check character, a card number
    must pass the Luhn check, and an 18-character value that is both counts
    as a resident ID number.
    """
    text = value.strip()
    if "@" in text:
        return "email" if re.fullmatch(EMAIL, text, flags=re.ASCII) else None
    compact = _SEPARATORS.sub("", text)
    if len(compact) == 18 and resident_id_check_ok(compact):
        return "resident_id"
    if re.fullmatch(MOBILE, compact, flags=re.ASCII):
        return "mobile"
    if re.fullmatch(CARD, compact, flags=re.ASCII) and luhn_ok(compact):
        return "card"
    return None


def mask_value(kind: str, value: str) -> str:
    """Return a form of ``value`` that shows its shape but not the person.

    ID and card numbers keep their first six and last four characters, mobile
    numbers their first three and last four, e-mail addresses the first
    character of the name and the domain.

    Examples
    --------
    >>> mask_value("resident_id", "11010519491231002X")
    '110105********002X'
    >>> mask_value("mobile", "+86 138-1234-5678")
    '138****5678'
    >>> mask_value("email", "zhang.san@example.com")
    'z***@example.com'
    """
    if kind == "email":
        name, _, domain = value.strip().partition("@")
        return f"{name[:1]}***@{domain}"
    compact = _SEPARATORS.sub("", value.strip())
    if kind == "mobile":
        compact = re.sub(r"^\+?86(?=1[3-9][0-9]{9}$)", "", compact)
    head = 3 if kind == "mobile" else 6
    tail = 4
    if len(compact) <= head + tail:
        return "*" * len(compact)
    return compact[:head] + "*" * (len(compact) - head - tail) + compact[-tail:]


def normalize_allowlist(values: Iterable[str]) -> frozenset[str]:
    """Return the allowlist in the forms matches are compared in: trimmed, lower-case, without separators."""
    forms: set[str] = set()
    for value in values:
        text = str(value).strip().lower()
        if text:
            forms.add(text)
            forms.add(_SEPARATORS.sub("", text))
    return frozenset(forms)


def _allowed(value: str, allowlist: frozenset[str]) -> bool:
    text = value.strip().lower()
    return text in allowlist or _SEPARATORS.sub("", text) in allowlist


def find_personal_data(text: str, allowlist: frozenset[str] = frozenset()) -> list[PersonalMatch]:
    """Find the values in ``text`` that look like personal data.

    Parameters
    ----------
    text : str
        Any text: a sentence, a log line, HTML, JSON.
    allowlist : frozenset of str, optional
        Known false positives from :func:`normalize_allowlist`; a match equal
        to an entry (ignoring case, spaces and dashes) is skipped. Values of
        :func:`bundled_library_allowlist` are always skipped.

    Returns
    -------
    list of PersonalMatch
        In order of position; values are masked.
    """
    skipped = bundled_library_allowlist()
    matches = []
    for kind, value, start, end in _raw_matches(text):
        if _allowed(value, allowlist) or _allowed(value, skipped):
            continue
        matches.append(PersonalMatch(kind, mask_value(kind, value), start, end))
    return matches


def _raw_matches(text: str) -> list[tuple[str, str, int, int]]:
    """Return ``(kind, value, start, end)`` for each match; the values stay inside this module."""
    found: list[tuple[str, str, int, int]] = []
    if not text:
        return found
    candidates: list[re.Match[str]] = []
    if any(char.isdigit() for char in text):
        candidates.extend(_NUMBER_CANDIDATE.finditer(text))
    if "@" in text:
        candidates.extend(_EMAIL_CANDIDATE.finditer(text))
    for candidate in candidates:
        kind = classify_value(candidate.group(0))
        if kind is not None:
            found.append((kind, candidate.group(0), candidate.start(), candidate.end()))
    found.sort(key=lambda item: item[2])
    return found


@lru_cache(maxsize=1)
def bundled_library_allowlist() -> frozenset[str]:
    """Return the values that look like personal data inside the plotly.js bundle relmap embeds.

    Every chart page carries plotly.js, whose licence comments include an
    author's e-mail address. Such values come from the installed plotly
    package, not from the client's data, so they are never reported.
    """
    from plotly.offline import get_plotlyjs

    return normalize_allowlist(value for _, value, _, _ in _raw_matches(get_plotlyjs()))


def mask_personal(text: str) -> str:
    """Replace every value in ``text`` that looks like personal data by its masked form.

    Examples
    --------
    >>> mask_personal("phone 13812345678")
    'phone 138****5678'
    """
    matches = find_personal_data(text)
    for match in reversed(matches):
        text = text[: match.start] + match.masked + text[match.end :]
    return text


def _line_and_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


# --------------------------------------------------------------------------- files


def scan_text_file(path: Path, name: str, allowlist: frozenset[str]) -> list[PersonalDataHit]:
    """Scan a UTF-8 text file line by line (HTML, JSON, YAML, logs).

    Undecodable bytes are replaced, so a file in another encoding is still
    scanned for ASCII-written numbers and addresses.
    """
    collector = _HitCollector(name)
    place = Msg("audit.place.file")
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            for match in find_personal_data(line, allowlist):
                collector.add("", place, match, Msg("audit.where.line", line=number, column=match.start + 1))
    return collector.result()


def notebook_texts(notebook: dict[str, Any]) -> Iterator[tuple[int, str, Msg, str]]:
    """Yield ``(cell number, place id, place, text)`` for every source and text output of a notebook.

    Cells are numbered from 1 in file order. Outputs are stream text, error
    messages and tracebacks, and every textual MIME entry of rich outputs;
    JSON entries (Plotly figures, widget states) are scanned as JSON text.
    Binary images (base64) are skipped.
    """
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        source = _joined(cell.get("source", ""))
        if source:
            yield number, f"{number}:source", Msg("audit.place.cell_source", cell=number), source
        for position, output in enumerate(cell.get("outputs", []) or [], start=1):
            for label, text in _output_texts(output):
                place = Msg("audit.place.cell_output", cell=number, output=position, part=label)
                yield number, f"{number}:{position}:{label}", place, text


def _output_texts(output: dict[str, Any]) -> Iterator[tuple[str, str]]:
    kind = output.get("output_type")
    if kind == "stream":
        yield output.get("name", "stream"), _joined(output.get("text", ""))
    elif kind == "error":
        yield "error", "\n".join([str(output.get("ename", "")), str(output.get("evalue", ""))])
        yield "traceback", "\n".join(str(line) for line in output.get("traceback", []) or [])
    for mime, value in (output.get("data") or {}).items():
        if mime.startswith("image/") and mime != "image/svg+xml":
            continue
        if isinstance(value, (dict, list)):
            yield mime, json.dumps(value, ensure_ascii=False)
        else:
            yield mime, _joined(value)
    metadata = output.get("metadata")
    if metadata:
        yield "metadata", json.dumps(metadata, ensure_ascii=False)


def _joined(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(item) for item in value)
    return "" if value is None else str(value)


def scan_notebook(notebook: dict[str, Any], name: str, allowlist: frozenset[str]) -> list[PersonalDataHit]:
    """Scan every cell source and text output of a notebook (a parsed ``.ipynb`` mapping)."""
    collector = _HitCollector(name)
    for _, place_id, place, text in notebook_texts(notebook):
        for match in find_personal_data(text, allowlist):
            line, column = _line_and_column(text, match.start)
            collector.add(place_id, place, match, Msg("audit.where.line", line=line, column=column))
    return collector.result()


def _scannable_columns(schema: Any) -> list[str]:
    names = []
    for column in schema:
        type_name = str(column.type)
        if type_name.startswith(_TEXT_TYPE_PREFIXES) or type_name in _WIDE_INTEGERS:
            names.append(column.name)
    return names


def scan_parquet(
    path: Path, name: str, allowlist: frozenset[str], backend: Any, batch_rows: int = 10_000
) -> list[PersonalDataHit]:
    """Scan the text and 64-bit integer columns of a Parquet file, streaming, through DuckDB.

    DuckDB keeps only the rows a column's pre-filter (:data:`SQL_PREFILTER`)
    matches, and those reach Python in Arrow batches of ``batch_rows``, so
    a large table is never loaded whole. Rows are numbered from 1 in file
    order. Nested columns (lists, structs) are scanned in DuckDB's text form.

    Parameters
    ----------
    path : Path
        The Parquet file.
    name : str
        Its path as reported in findings.
    allowlist : frozenset of str
        From :func:`normalize_allowlist`.
    backend : ibis DuckDB backend
        From :func:`relmap_utils.engine.connect`.
    batch_rows : int, default=10000
        Rows per Arrow batch.
    """
    import pyarrow.parquet as pq

    collector = _HitCollector(name)
    columns = _scannable_columns(pq.read_schema(path))
    if not columns:
        return []
    table = backend.read_parquet(path, file_row_number=True)
    for column in columns:
        text = table[column].cast("string")
        candidates = table.filter(text.re_search(SQL_PREFILTER)).select(
            row=table.file_row_number + 1, value=text
        )
        place = Msg("audit.place.column", column=column)
        with warnings.catch_warnings():
            # ibis 12.0.0 streams with a DuckDB method that DuckDB 1.5 deprecated; it still works.
            warnings.filterwarnings("ignore", r"fetch_record_batch\(\) is deprecated", DeprecationWarning)
            for batch in candidates.to_pyarrow_batches(chunk_size=batch_rows):
                rows, values = batch.column("row").to_pylist(), batch.column("value").to_pylist()
                for row, value in zip(rows, values):
                    for match in find_personal_data(value or "", allowlist):
                        collector.add(column, place, match, Msg("audit.where.row", row=row))
    return collector.result()


def scan_xlsx(path: Path, name: str, allowlist: frozenset[str]) -> list[PersonalDataHit]:
    """Scan every text and integer cell of an .xlsx workbook, sheet by sheet, in openpyxl's streaming mode."""
    import openpyxl

    collector = _HitCollector(name)
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        for sheet in workbook.worksheets:
            place = Msg("audit.place.sheet", sheet=sheet.title)
            for row in sheet.iter_rows():
                for cell in row:
                    value = cell.value
                    if isinstance(value, bool) or not isinstance(value, (str, int)):
                        continue
                    for match in find_personal_data(str(value), allowlist):
                        collector.add(sheet.title, place, match, Msg("audit.where.cell", cell=cell.coordinate))
    finally:
        workbook.close()
    return collector.result()
