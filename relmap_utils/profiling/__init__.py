"""Stage 01, data profiling: what is in the client's tables and what is wrong with it.

Statistics are computed by SQL pushdown through Ibis (DuckDB by default), so
only aggregates leave the database. Modules:

- :mod:`~relmap_utils.profiling.stats`: the aggregate queries;
- :mod:`~relmap_utils.profiling.semantic`: semantic types (declared or inferred);
- :mod:`~relmap_utils.profiling.integrity`: referential integrity and date overlaps;
- :mod:`~relmap_utils.profiling.findings`: ranked findings and the quality score;
- :mod:`~relmap_utils.profiling.report`: notebook tables, figures, HTML report;
- :mod:`~relmap_utils.profiling.stage`: :func:`run_stage` and its artifacts.

Examples
--------
>>> import ibis
>>> from relmap_utils.profiling import profile_table
>>> table = ibis.memtable({"客户号": [100001, 100002, 100003], "年龄": [23, 35, 41]})
>>> profile = profile_table(table, "customers_raw")
>>> profile.columns["客户号"].semantic_type
'identifier'
>>> round(profile.columns["年龄"].mean, 2)
33.0
"""

from relmap_utils.profiling.model import (
    SEMANTIC_TYPES,
    SEVERITIES,
    ColumnProfile,
    DateOverlap,
    Finding,
    Histogram,
    Profile,
    QualityScore,
    ReferenceCheck,
    SemanticType,
    TableProfile,
)
from relmap_utils.profiling.profiler import profile_table, profile_tables

__all__ = [
    "SEMANTIC_TYPES",
    "SEVERITIES",
    "STAGE_ID",
    "ColumnProfile",
    "DateOverlap",
    "Finding",
    "Histogram",
    "Profile",
    "QualityScore",
    "ReferenceCheck",
    "SemanticType",
    "TableProfile",
    "profile_table",
    "profile_tables",
    "run_stage",
]


def __getattr__(name: str) -> object:
    # The stage (pandas, Plotly, the run folder) is imported on first use, so
    # profiling a table outside a run does not pay for the report's imports.
    if name in ("STAGE_ID", "run_stage"):
        from relmap_utils.profiling import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
