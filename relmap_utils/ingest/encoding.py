"""Text encodings of source files: detection and streamed transcoding to UTF-8.

DuckDB's CSV reader accepts only UTF-8 unless its ``encodings`` extension is
installed, and installing it would need a download. So every text source is
checked here and, when it is not UTF-8, transcoded into a temporary UTF-8 file
in chunks with an incremental decoder. Memory use stays at about two chunks
whatever the file size, and no row ever becomes a Python object.

Detection order:

1. a byte-order mark (UTF-8, UTF-16 LE/BE);
2. UTF-16 without a mark, recognised by NUL bytes in every other position;
3. UTF-8, checked over the whole file, because GB18030 decodes almost any
   byte string and would silently garble UTF-8 text;
4. GBK, reported as ``gbk`` when the whole file decodes as GBK;
5. GB18030 otherwise (a superset of GBK with four-byte sequences).
"""

from __future__ import annotations

import codecs
import gzip
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from relmap_utils.errors import SourceError

logger = logging.getLogger(__name__)

CHUNK_BYTES = 4 * 1024 * 1024
SAMPLE_BYTES = 256 * 1024
GZIP_MAGIC = b"\x1f\x8b"

# Delimiters for reading a whole line as one field (runs of spaces, fixed
# width): the first of these control characters that the file does not contain.
LINE_DELIMITERS = ("\x1f", "\x1e", "\x1d", "\x1c", "\x01")

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class PreparedText:
    """A UTF-8 view of a text source, ready for DuckDB.

    Attributes
    ----------
    path : Path
        File DuckDB reads: the source itself when it already was UTF-8,
        otherwise a temporary transcoded copy.
    encoding : str
        Encoding of the source as detected or configured (``utf-8``,
        ``utf-8-sig``, ``utf-16``, ``gbk``, ``gb18030``, ...).
    transcoded : bool
        Whether ``path`` is a temporary copy.
    line_delimiter : str or None
        A character absent from the file, usable as a delimiter that keeps
        each line in one field; ``None`` when all candidates occur.
    """

    path: Path
    encoding: str
    transcoded: bool
    line_delimiter: str | None


def is_gzip(path: Path) -> bool:
    """Return whether ``path`` starts with the gzip magic bytes."""
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_bytes(path: Path) -> BinaryIO:
    """Open ``path`` for binary reading, decompressing gzip transparently."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def read_sample(path: Path, size: int = SAMPLE_BYTES) -> bytes:
    """Return the first ``size`` bytes of the (decompressed) file."""
    with open_bytes(path) as handle:
        return handle.read(size)


def normalize_encoding(name: str) -> str:
    """Return the codec name Python uses for ``name`` (``cp936`` -> ``gbk``).

    Raises
    ------
    LookupError
        When Python has no codec of that name.
    """
    canonical = codecs.lookup(name).name
    return {"utf_8": "utf-8", "utf-8": "utf-8"}.get(canonical, canonical.replace("_", "-"))


def _utf16_without_bom(sample: bytes) -> str | None:
    probe = sample[:4096]
    if len(probe) < 8:
        return None
    even_nuls = probe[0::2].count(0)
    odd_nuls = probe[1::2].count(0)
    half = len(probe) / 2
    # Text in UTF-16 has a NUL high byte for every ASCII character; real
    # single-byte text almost never contains NUL at all.
    if odd_nuls > 0.3 * half and even_nuls < 0.05 * half:
        return "utf-16-le"
    if even_nuls > 0.3 * half and odd_nuls < 0.05 * half:
        return "utf-16-be"
    return None


def sniff_encoding(sample: bytes) -> str:
    """Guess the encoding from the first bytes of a file.

    The guess is final only for byte-order marks and UTF-16. A ``utf-8``
    guess must still be confirmed over the whole file, which
    :func:`prepare_utf8` does; ``gbk`` may become ``gb18030`` there too.

    Parameters
    ----------
    sample : bytes
        The start of the file.

    Returns
    -------
    str
        One of ``utf-8-sig``, ``utf-16``, ``utf-16-le``, ``utf-16-be``,
        ``utf-8``, ``gbk``, ``gb18030``.
    """
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        codecs.getincrementaldecoder("gbk")().decode(sample, final=False)
        return "gbk"
    except UnicodeDecodeError:
        return "gb18030"


class _DecodeFailure(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _scan(path: Path, encoding: str, output: BinaryIO | None) -> set[str]:
    """Decode the whole file, optionally writing UTF-8 to ``output``.

    Returns the line delimiter candidates found in the text. Raises
    _DecodeFailure with the 1-based line of the first undecodable byte.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    present: set[str] = set()
    lines_before = 0
    with open_bytes(path) as source:
        while True:
            chunk = source.read(CHUNK_BYTES)
            final = not chunk
            try:
                text = decoder.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                raise _DecodeFailure(lines_before + chunk[: exc.start].count(b"\n") + 1) from None
            lines_before += chunk.count(b"\n")
            for candidate in LINE_DELIMITERS:
                if candidate not in present and candidate in text:
                    present.add(candidate)
            if output is not None and text:
                output.write(text.encode("utf-8"))
            if final:
                return present


def _line_delimiter(present: set[str]) -> str | None:
    return next((candidate for candidate in LINE_DELIMITERS if candidate not in present), None)


@contextmanager
def prepare_utf8(path: Path, encoding: str = "auto", temp_dir: Path | None = None) -> Iterator[PreparedText]:
    """Yield a UTF-8 version of a text file, transcoding it if needed.

    Parameters
    ----------
    path : Path
        Source file, optionally gzip-compressed.
    encoding : str, default="auto"
        ``auto`` to detect, or a codec name from the engagement file.
    temp_dir : Path, optional
        Folder for the transcoded copy; a fresh system temporary folder when
        omitted. The copy is deleted when the context exits.

    Yields
    ------
    PreparedText

    Raises
    ------
    SourceError
        When the encoding is unknown or the bytes do not decode, naming the
        file, the encoding and the first line that fails.
    """
    if encoding.lower() == "auto":
        guess = sniff_encoding(read_sample(path))
        candidates = [guess]
        if guess == "utf-8":
            candidates += ["gbk", "gb18030"]
        elif guess == "gbk":
            candidates.append("gb18030")
    else:
        try:
            candidates = [normalize_encoding(encoding)]
        except LookupError:
            raise SourceError("ingest.encoding_unknown", file=str(path), encoding=encoding) from None

    failure_line = 0
    for candidate in candidates:
        # DuckDB reads UTF-8 and skips a UTF-8 byte-order mark itself, so
        # those files are only checked, never copied.
        if candidate in ("utf-8", "utf-8-sig"):
            try:
                present = _scan(path, candidate, None)
            except _DecodeFailure as exc:
                failure_line = exc.line
                continue
            yield PreparedText(path, candidate, False, _line_delimiter(present))
            return

        folder = Path(tempfile.mkdtemp(prefix="relmap-ingest-", dir=temp_dir))
        target = folder / (path.name.removesuffix(".gz") + ".utf8")
        try:
            try:
                with target.open("wb") as output:
                    present = _scan(path, candidate, output)
            except _DecodeFailure as exc:
                failure_line = exc.line
                continue
            logger.info("transcoded %s from %s to UTF-8", path.name, candidate)
            yield PreparedText(target, candidate, True, _line_delimiter(present))
            return
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    raise SourceError(
        "ingest.encoding_failed",
        file=str(path),
        encodings=", ".join(candidates),
        line=failure_line,
    )
