"""Check an engagement's sources without running ingest (``relmap validate``).

First only the start of each file is read: enough to detect the encoding and
the separator, find the header and check the mapping. Then the sources that
passed are read as ingest reads them and scanned for undeclared personal
data with the same rules as ingest, so that a file which would stop
``relmap run`` already fails validation. Files up to :data:`FULL_SCAN_BYTES`
are scanned whole. Of larger delimited, fixed-width and Parquet files only
the first rows are scanned, and the message names those files. Nothing is
written to the engagement folder.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import tempfile
import zipfile
from pathlib import Path

from relmap_utils import schema
from relmap_utils.config import Engagement, Source
from relmap_utils.errors import PrivacyError, RelmapError, SourceError
from relmap_utils.i18n import Msg
from relmap_utils.ingest import privacy, warehouse
from relmap_utils.ingest.encoding import normalize_encoding, open_bytes, read_sample, sniff_encoding
from relmap_utils.ingest.layout import HEAD_ROWS, Merge, detect_layout
from relmap_utils.ingest.readers import SEPARATOR_NAMES, SPACES, sniff_separator
from relmap_utils.ingest.source import ReadResult, check_file_kind, check_query, read_source
from relmap_utils.ingest.stage import check_required, check_targets, group_by_table, scan_tables
from relmap_utils.plural import counted

logger = logging.getLogger(__name__)

SAMPLE_BYTES = 1024 * 1024
# The personal-data scan reads files up to this size whole.
FULL_SCAN_BYTES = 16 * 1024 * 1024
# Of a larger text file the scan reads this many bytes (after decompression)
# from the start, cut at the end of a line. Of a larger Parquet file it reads this many rows.
SCAN_SAMPLE_BYTES = 4 * 1024 * 1024
SCAN_SAMPLE_ROWS = 100_000


def _decode_sample(path: Path, encoding: str) -> tuple[str, str]:
    sample = read_sample(path, SAMPLE_BYTES)
    chosen = sniff_encoding(sample) if encoding.lower() == "auto" else normalize_encoding(encoding)
    try:
        text = codecs.getincrementaldecoder(chosen)().decode(sample, final=len(sample) < SAMPLE_BYTES)
    except UnicodeDecodeError as exc:
        line = sample[: exc.start].count(b"\n") + 1
        raise SourceError("ingest.encoding_failed", file=str(path), encodings=chosen, line=line) from None
    return text, chosen


def _text_grid(source: Source, path: Path) -> tuple[list[tuple[int, list[str | None]]], int, list[str] | None]:
    text, _ = _decode_sample(path, source.encoding)
    lines = text.splitlines()
    if source.fixed_width:
        rows = []
        for number, line in enumerate(lines[:HEAD_ROWS], start=1):
            cells = [line[item.start - 1 : item.start - 1 + item.width].strip() or None for item in source.fixed_width]
            rows.append((number, cells))
        return rows, len(source.fixed_width), [item.name for item in source.fixed_width]

    separator = SEPARATOR_NAMES.get(source.separator, source.separator)
    separator = "\t" if separator == "tab" else separator
    if source.separator == "auto":
        separator, _ = sniff_separator(text)
    if separator == SPACES:
        records = [line.split() for line in lines[:HEAD_ROWS]]
    else:
        try:
            records = list(csv.reader(io.StringIO("\n".join(lines[:HEAD_ROWS])), delimiter=separator, quotechar='"'))
        except csv.Error:
            # A field over the csv module's limit: a file without line breaks or an unclosed quote.
            raise SourceError("ingest.field_too_long", source=source.name, file=str(path), limit=csv.field_size_limit()) from None
    width = max((len(record) for record in records), default=1)
    rows = [(number, [cell if cell.strip() else None for cell in record]) for number, record in enumerate(records, start=1)]
    return rows, width, None


def _excel_grid(source: Source, path: Path) -> tuple[list[tuple[int, list[str | None]]], int, list[Merge]]:
    from relmap_utils.ingest.readers import _cell_text, _pick_sheet, _xlsx_merges

    rows: list[tuple[int, list[str | None]]] = []
    if path.suffix.lower() == ".xls":
        import xlrd

        book = xlrd.open_workbook(str(path), formatting_info=True, on_demand=True)
        try:
            sheet = book.sheet_by_name(_pick_sheet(book.sheet_names(), source.sheet, path, source.name))
            for index in range(min(sheet.nrows, HEAD_ROWS)):
                rows.append((index + 1, [_cell_text(cell.value) if cell.value != "" else None for cell in sheet.row(index)]))
            merges = [Merge(rlo + 1, clo + 1, rhi, chi) for rlo, rhi, clo, chi in sheet.merged_cells]
        finally:
            book.release_resources()
    else:
        import openpyxl

        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            worksheet = workbook[_pick_sheet(workbook.sheetnames, source.sheet, path, source.name)]
            for number, row in enumerate(worksheet.iter_rows(values_only=True, max_row=HEAD_ROWS), start=1):
                rows.append((number, [_cell_text(value) for value in row]))
            merges = _xlsx_merges(path, worksheet)
        finally:
            workbook.close()
    width = max((len(cells) for _, cells in rows), default=1)
    return [(number, cells + [None] * (width - len(cells))) for number, cells in rows], width, merges


def source_headers(source: Source, engagement_dir: Path) -> list[str]:
    """Return the column names a file source will have, from the start of the file.

    Raises
    ------
    SourceError
        When the file is missing or cannot be opened or decoded.
    """
    path = source.resolved_path(engagement_dir)
    if not path.is_file():
        raise SourceError("ingest.file_missing", source=source.name, file=str(path))
    fmt = source.resolved_format(engagement_dir)
    check_file_kind(source, path, fmt)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (OSError, ValueError) as exc:
            raise SourceError("ingest.parquet_unreadable", source=source.name, file=str(path), detail=type(exc).__name__) from None
    if fmt == "excel":
        try:
            head, width, merges = _excel_grid(source, path)
        except SourceError:
            raise
        except Exception as exc:  # openpyxl and xlrd raise many error classes for damaged files
            raise SourceError("ingest.excel_unreadable", source=source.name, file=str(path), detail=type(exc).__name__) from None
        names = None
    else:
        head, width, names = _text_grid(source, path)
        merges = []
    head = [(number, cells) for number, cells in head if number > source.skip_rows]
    return detect_layout(head, width, source.header_rows, merges, names).names


def _query_sources(source: Source, known: set[str]) -> tuple[list[str], list[str] | None]:
    import sqlglot
    from sqlglot import exp

    try:
        parsed = sqlglot.parse_one(source.sql or "", read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise SourceError("ingest.query_failed", source=source.name, detail=str(exc).splitlines()[0], sources=", ".join(sorted(known))) from None
    ctes = {cte.alias_or_name for cte in parsed.find_all(exp.CTE)}
    unknown = sorted({table.name for table in parsed.find_all(exp.Table)} - known - ctes)
    selects = parsed.named_selects if isinstance(parsed, exp.Query) else []
    columns = None if not selects or "*" in selects else list(selects)
    return unknown, columns


def validate_sources(engagement: Engagement, engagement_dir: Path) -> list[RelmapError]:
    """Check every source of an engagement without running ingest.

    Checks that each file exists and opens, and that its encoding and
    separator can be detected from its start. Checks that every mapped
    column is present and each canonical table gets its required columns.
    Checks that query sources name only known sources, and that the
    pseudonym key is set. Then scans the sources that passed for undeclared
    personal data (:func:`scan_sources`).

    Parameters
    ----------
    engagement : Engagement
        The validated engagement.yaml.
    engagement_dir : Path
        Folder of the engagement; relative source paths start there.

    Returns
    -------
    list of RelmapError
        One error per problem found; empty when all is well.
    """
    problems: list[RelmapError] = []
    try:
        privacy.get_key(engagement.privacy)
    except PrivacyError as exc:
        problems.append(exc)

    known = {source.name for source in engagement.sources}
    on_spark = {source.name for source in warehouse.spark_sources(engagement)}
    failed: set[str] = set()
    for source in engagement.sources:
        count = len(problems)
        if source.name in on_spark:
            _check_warehouse_source(source, known - on_spark, problems)
        else:
            _check_source(source, engagement_dir, known, problems)
        if len(problems) > count:
            failed.add(source.name)
    if on_spark:
        # Validation starts no Spark session, so warehouse queries, their columns and their
        # personal data are checked when ingest runs them.
        logger.info("warehouse sources checked at run time only: %s", ", ".join(sorted(on_spark)))
    problems.extend(scan_sources(engagement, engagement_dir, failed | on_spark))
    return problems


def _check_warehouse_source(source: Source, file_sources: set[str], problems: list[RelmapError]) -> None:
    """Check a Spark query source without Spark: its table, that it is one query, and what it names."""
    if source.table is not None and source.table not in schema.TABLES:
        problems.append(
            SourceError("ingest.table_unknown", source=source.name, table=source.table, tables=", ".join(sorted(schema.TABLES)))
        )
        return
    try:
        names = warehouse.query_tables(source)
        warehouse.check_file_sources(source, names, file_sources)
        check_targets(source)
    except SourceError as exc:
        problems.append(exc)


def _check_source(source: Source, engagement_dir: Path, known: set[str], problems: list[RelmapError]) -> None:
    """Check one source's table, file or query and its mapping; append what is wrong to ``problems``."""
    if source.table is not None and source.table not in schema.TABLES:
        problems.append(
            SourceError("ingest.table_unknown", source=source.name, table=source.table, tables=", ".join(sorted(schema.TABLES)))
        )
        return
    try:
        if source.sql is not None:
            check_query(source)
            unknown, columns = _query_sources(source, known - {source.name})
            if unknown:
                problems.append(
                    SourceError("ingest.query_unknown_source", source=source.name, names=", ".join(unknown), sources=", ".join(sorted(known)))
                )
                return
            if columns is None:
                return
            headers = columns
        else:
            headers = source_headers(source, engagement_dir)

        privacy.check_mapped_headers(source.name, source.columns, headers)
        targets = {mapping.name for mapping in source.columns.values()}
        targets |= {header for header in headers if header not in source.columns}
        targets |= set(source.constants)
        check_targets(source)
        check_required(source, targets)
    except (SourceError, LookupError, zipfile.BadZipFile) as exc:
        if isinstance(exc, SourceError):
            problems.append(exc)
        else:
            problems.append(SourceError("ingest.encoding_unknown", file=source.path or source.name, encoding=source.encoding))


def scan_sources(engagement: Engagement, engagement_dir: Path, skip: set[str] = frozenset()) -> list[RelmapError]:
    """Scan the sources for undeclared personal data, as ``relmap run`` would.

    Each source is read with :func:`~relmap_utils.ingest.source.read_source`
    and each canonical table is scanned with
    :func:`~relmap_utils.ingest.stage.scan_tables`, the same code as ingest.
    A canonical table is left out when one of its sources, or a source a query
    reads, is in ``skip`` (it failed an earlier check).

    Parameters
    ----------
    engagement : Engagement
    engagement_dir : Path
    skip : set of str, optional
        Names of sources not to read.

    Returns
    -------
    list of RelmapError
        At most one :class:`PrivacyError`, whose text is ingest's followed by
        the scope of the scan (every row, or the first rows of the large
        files named), and any :class:`SourceError` met while reading.

    Notes
    -----
    Excel files are always read whole, because a workbook cannot be cut
    without rewriting it; a very large workbook makes validation slow.
    """
    from relmap_utils.config import Engine
    from relmap_utils.engine import connect

    skipped = set(skip)
    ordered = [source for source in engagement.sources if source.sql is None]
    ordered += [source for source in engagement.sources if source.sql is not None]
    # A DuckDB backend even where the engagement runs on Spark: these are small local reads.
    engine = engagement.engine if engagement.engine.backend == "duckdb" else Engine()
    backend = connect(engine)
    results: list[tuple[Source, ReadResult]] = []
    sampled: list[Msg] = []
    problems: list[RelmapError] = []
    try:
        with tempfile.TemporaryDirectory(prefix="relmap-validate-") as scratch:
            staging = {}
            for source in ordered:
                if source.name in skipped or (source.sql is not None and _reads_any(source, skipped)):
                    skipped.add(source.name)
                    continue
                try:
                    readable, size = _scan_copy(source, engagement_dir, Path(scratch))
                    result = read_source(
                        readable, engagement_dir, backend, staging, timezone=engagement.timezone, temp_dir=Path(scratch)
                    )
                except SourceError as exc:
                    problems.append(exc)
                    skipped.add(source.name)
                    continue
                if size is not None:
                    sampled.append(
                        Msg("ingest.validate.sampled_source", source=source.name, rows=counted("ingest.count.rows", result.info.get("rows", 0)), size=size)
                    )
                staging[source.name] = result.table
                results.append((source, result))

            by_table = {
                name: parts
                for name, parts in group_by_table(results).items()
                if not _table_skipped(engagement, name, skipped)
            }
            _, found = scan_tables(engagement, by_table)
    finally:
        backend.disconnect()

    if found:
        scope = Msg("ingest.validate.scope_sample", sources=sampled) if sampled else Msg("ingest.validate.scope_whole")
        problems.insert(0, PrivacyError("ingest.validate.personal_data", message=Msg("ingest.personal_data_found", problems=found), scope=scope))
    return problems


def _reads_any(source: Source, names: set[str]) -> bool:
    """Return whether a query source's SQL names any of ``names``."""
    import sqlglot
    from sqlglot import exp

    try:
        parsed = sqlglot.parse_one(source.sql or "", read="duckdb")
    except sqlglot.errors.ParseError:
        return True
    return any(table.name in names for table in parsed.find_all(exp.Table))


def _table_skipped(engagement: Engagement, table_name: str, skipped: set[str]) -> bool:
    return any(source.table == table_name and source.name in skipped for source in engagement.sources)


def _scan_copy(source: Source, engagement_dir: Path, scratch: Path) -> tuple[Source, str | None]:
    """Return the source to scan: itself, or a copy of the start of a large file.

    Returns
    -------
    (Source, str or None)
        The source to read, and the original file's size in MB (as text) when
        only the start of the file is read.
    """
    if source.sql is not None:
        return source, None
    path = source.resolved_path(engagement_dir)
    fmt = source.resolved_format(engagement_dir)
    if not path.is_file() or path.stat().st_size <= FULL_SCAN_BYTES or fmt == "excel":
        return source, None

    size = f"{path.stat().st_size / 1024 / 1024:,.1f}"
    target = scratch / f"scan-{source.name}"
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        first = next(pq.ParquetFile(path).iter_batches(batch_size=SCAN_SAMPLE_ROWS), None)
        if first is None:
            return source, None
        copy = target.with_suffix(".parquet")
        pq.write_table(pa.Table.from_batches([first]), copy)
        return source.model_copy(update={"path": str(copy), "format": "parquet"}), size

    with open_bytes(path) as handle:
        head = handle.read(SCAN_SAMPLE_BYTES)
    encoding = sniff_encoding(head) if source.encoding.lower() == "auto" else normalize_encoding(source.encoding)
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError:
        # Let read_source report the encoding error on the whole file.
        return source, None
    copy = target.with_suffix(".txt")
    copy.write_text(_complete_lines(text), encoding="utf-8")
    return source.model_copy(update={"path": str(copy), "format": fmt, "encoding": "utf-8"}), size


def _complete_lines(text: str) -> str:
    """Cut ``text`` after its last line break that is outside a quoted CSV field.

    A quoted field may span lines, and outside a field an even number of
    double quotes has been seen, because a quote inside a field is doubled.
    """
    end = text.rfind("\n")
    while end > 0 and text.count('"', 0, end) % 2:
        end = text.rfind("\n", 0, end)
    return text[: end + 1] if end > 0 else text
