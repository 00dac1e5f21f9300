"""The profile as flat tables: the Parquet artifacts of stage 01.

Each function turns part of a :class:`~relmap_utils.profiling.model.Profile`
into a small pandas DataFrame (one row per column, table, check or finding).
Nested values (top values, histogram, pattern counts) are JSON text, so the
files read the same in any Parquet reader.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pandas as pd

from relmap_utils.profiling.model import QUANTILES, ColumnProfile, Profile


def value_text(value: Any) -> str | None:
    """Return a minimum or maximum as text: ISO dates, up to 10 significant digits."""
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return format(value, ".10g")
    return str(value)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def column_record(column: ColumnProfile) -> dict[str, Any]:
    """Return one row of columns.parquet."""
    quantiles = column.quantiles or {}
    histogram = column.histogram
    record: dict[str, Any] = {
        "table": column.table,
        "column": column.name,
        "physical_type": column.physical_type,
        "semantic_type": column.semantic_type,
        "ordinal": column.semantic.ordinal,
        "type_source": column.semantic.source,
        "type_reason": column.semantic.reason,
        "pseudonymized": column.pseudonymized,
        "rows": column.rows,
        "count": column.count,
        "missing": column.missing,
        "missing_share": column.missing_share,
        "distinct": column.distinct,
        "distinct_exact": column.distinct_exact,
        "unique_ratio": column.unique_ratio,
        "min": value_text(column.min),
        "max": value_text(column.max),
        "mean": column.mean,
        "std": column.std,
    }
    for label in QUANTILES:
        record[label] = quantiles.get(label)
    record.update(
        quantiles_exact=column.quantiles_exact if column.quantiles else None,
        zeros=column.zeros,
        negatives=column.negatives,
        nan_values=column.nan_values,
        infinite_values=column.infinite_values,
        lower_fence=column.lower_fence,
        upper_fence=column.upper_fence,
        outliers_low=column.outliers_low,
        outliers_high=column.outliers_high,
        mean_length=column.mean_length,
        max_length=column.max_length,
        damaged_identifiers=column.damaged_identifiers,
        implausible_dates=column.implausible_dates,
        pattern_matches=_json(column.pattern_matches or None),
        top_values=_json([[value, rows] for value, rows in column.top_values] if column.top_values is not None else None),
        top_value_customers=_json(column.top_value_customers),
        histogram=_json(
            {"edges": histogram.edges, "counts": histogram.counts, "below": histogram.below, "above": histogram.above}
            if histogram
            else None
        ),
    )
    return record


def columns_frame(profile: Profile) -> pd.DataFrame:
    """Return per-column statistics of every table (columns.parquet)."""
    records = [column_record(column) for table in profile.tables.values() for column in table.columns.values()]
    frame = pd.DataFrame.from_records(records)
    # Nullable integer columns keep their type when some rows are None.
    for name in ("distinct", "zeros", "negatives", "outliers_low", "outliers_high", "max_length",
                 "damaged_identifiers", "implausible_dates", "nan_values", "infinite_values"):
        if name in frame:
            frame[name] = frame[name].astype("Int64")
    return frame


def tables_frame(profile: Profile) -> pd.DataFrame:
    """Return one row per table (tables.parquet)."""
    records = []
    for table in profile.tables.values():
        records.append(
            {
                "table": table.name,
                "rows": table.rows,
                "columns": table.column_count,
                "key": ", ".join(table.key) or None,
                "duplicate_keys": table.duplicate_keys,
                "duplicate_key_rows": table.duplicate_key_rows,
                "key_null_rows": table.key_null_rows,
                "date_column": table.date_column,
                "date_min": value_text(table.date_min),
                "date_max": value_text(table.date_max),
                "months": len(table.rows_per_month),
                "empty_months": len(table.empty_months),
                "rows_per_month": _json(table.rows_per_month or None),
                "missing_required": ", ".join(table.missing_required) or None,
                "exact": table.exact,
                "seconds": round(table.seconds, 3),
            }
        )
    frame = pd.DataFrame.from_records(records)
    for name in ("duplicate_keys", "duplicate_key_rows", "key_null_rows"):
        if name in frame:
            frame[name] = frame[name].astype("Int64")
    return frame


def integrity_frame(profile: Profile) -> pd.DataFrame:
    """Return the cross-table checks (integrity.parquet).

    ``check`` is ``reference`` (both directions of a schema reference),
    ``unique_key`` (duplicate and null keys of a table) or ``date_overlap``.
    """
    records: list[dict[str, Any]] = []
    for check in profile.references:
        records.append(
            {
                "check": "reference",
                "table": check.table,
                "column": check.column,
                "other_table": check.ref_table,
                "other_column": check.ref_column,
                "checked": check.checked_rows,
                "failures": check.orphan_rows,
                "failure_share": check.orphan_share,
                "failed_keys": check.orphan_keys,
                "sample": _json(check.orphan_sample),
                "null_rows": check.null_rows,
                "other_keys": check.parent_keys,
                "other_unmatched": check.unreferenced_keys,
            }
        )
    for table in profile.tables.values():
        if not table.key:
            continue
        failures = (table.duplicate_key_rows or 0) + (table.key_null_rows or 0)
        records.append(
            {
                "check": "unique_key",
                "table": table.name,
                "column": ", ".join(table.key),
                "checked": table.rows,
                "failures": failures,
                "failure_share": failures / table.rows if table.rows else 0.0,
                "failed_keys": table.duplicate_keys,
                "null_rows": table.key_null_rows,
            }
        )
    for overlap in profile.date_overlaps:
        records.append(
            {
                "check": "date_overlap",
                "table": overlap.table,
                "column": overlap.column,
                "other_table": overlap.other_table,
                "other_column": overlap.other_column,
                "start": overlap.start.isoformat(),
                "end": overlap.end.isoformat(),
                "other_start": overlap.other_start.isoformat(),
                "other_end": overlap.other_end.isoformat(),
                "overlap_days": overlap.overlap_days,
                "related": overlap.related,
            }
        )
    columns = [
        "check", "table", "column", "other_table", "other_column", "checked", "failures", "failure_share",
        "failed_keys", "sample", "null_rows", "other_keys", "other_unmatched", "start", "end", "other_start",
        "other_end", "overlap_days", "related",
    ]
    frame = pd.DataFrame.from_records(records, columns=columns)
    for name in ("checked", "failures", "failed_keys", "null_rows", "other_keys", "other_unmatched", "overlap_days"):
        frame[name] = frame[name].astype("Int64")
    frame["related"] = frame["related"].astype("boolean")
    frame["failure_share"] = frame["failure_share"].astype("float64")
    return frame


def findings_frame(profile: Profile) -> pd.DataFrame:
    """Return the findings, most severe first, in both languages (findings.parquet)."""
    records = [
        {
            "severity": finding.severity,
            "table": finding.table,
            "column": finding.column,
            "code": finding.code,
            "message_zh": finding.text("zh_CN"),
            "message_en": finding.text("en"),
        }
        for finding in profile.findings
    ]
    return pd.DataFrame.from_records(
        records, columns=["severity", "table", "column", "code", "message_zh", "message_en"]
    ).astype({"column": "string"})


def correlations_frame(profile: Profile) -> pd.DataFrame:
    """Return the Pearson correlations of numeric columns, one row per pair (correlations.parquet)."""
    records = [
        {"table": table.name, "column": first, "other_column": second, "pearson": value}
        for table in profile.tables.values()
        for first, second, value in table.correlations
    ]
    return pd.DataFrame.from_records(records, columns=["table", "column", "other_column", "pearson"])
