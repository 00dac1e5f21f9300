"""Ingest: source files to canonical Parquet tables.

Public API
----------
read_source
    Read, clean and type one configured source (before privacy treatments).
run_ingest
    The ingest stage: every source of a run into ``tables/<table>.parquet``
    with ``columns.json`` and ``ingest_report.json``.
validate_sources
    Check sources without running: files, encodings, separators, mappings.
ReadResult
    What :func:`read_source` returns.

Pseudonyms and the personal-data scan live in
:mod:`relmap_utils.ingest.privacy`. Query sources of a ``pyspark``
engagement that name warehouse tables are read on Spark by
:mod:`relmap_utils.ingest.warehouse`.
"""

from relmap_utils.ingest.source import ReadResult, read_source
from relmap_utils.ingest.stage import run_ingest
from relmap_utils.ingest.validate import validate_sources

__all__ = ["ReadResult", "read_source", "run_ingest", "validate_sources"]
