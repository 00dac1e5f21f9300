"""Profile one table or all tables of a run: the passes over the data, in order.

A table is read in a fixed number of queries whatever its width, except
that more than 64 sampled columns take one more query per 64:

1. one query that fetches a seeded sample of about 100,000 rows (the whole
   table when it is smaller) to the client. It brings every column stored
   as numbers, and every column of a table that is not exact. numpy and
   pyarrow compute the quantiles, the Pearson correlations and the sample's
   distinct values per column from it;
2. one aggregate with the summary metrics of every column (counts, distinct,
   minimum, maximum, mean, standard deviation, lengths) and, on DuckDB, the
   histogram bins, outlier counts, zeros and negatives of the numeric
   columns, whose bins and fences the quantiles of pass 1 fix;
3. one aggregate with personal-data pattern counts, only for undeclared text
   columns with many distinct values (often none);
4. one query with the top values of all category and boolean columns, one
   with rows per month, one counting duplicate keys, and one counting
   damaged identifiers in text identifier columns (often none). Histograms
   not counted in pass 2 (other backends, or equal 1st and 99th percentile)
   take one more query.

Semantic types are decided after pass 3, because they select the
statistics a column gets; passes 1 and 2 compute quantiles and histograms
for every column stored as numbers, and only the numeric ones keep them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import ibis.expr.types as ir
import numpy as np

from relmap_utils import schema as canonical_schema
from relmap_utils.errors import StageError
from relmap_utils.profiling import integrity, stats
from relmap_utils.profiling.findings import collect_findings, quality_score
from relmap_utils.profiling.model import QUANTILES, ColumnProfile, Profile, SemanticType, TableProfile
from relmap_utils.profiling.semantic import decide_type, declared_type, needs_pattern_scan

logger = logging.getLogger(__name__)

# Tables up to this many rows get exact distinct counts and quantiles. Larger
# tables get HyperLogLog distinct counts, whose memory stays fixed where exact
# counts keep every value in memory at once, and quantiles of a sample.
EXACT_LIMIT = 100_000
# On larger tables a column whose sample shows at most this many distinct
# values still gets an exact distinct count: its hash table stays small, and
# counting a few hundred values exactly is cheaper than HyperLogLog.
SAMPLE_DISTINCT_LIMIT = 1000
# Correlations are computed for at most this many numeric columns (n (n - 1) / 2 pairs).
MAX_CORRELATION_COLUMNS = 60
# Quantiles, correlations and the sample's distinct values come from a seeded
# random sample of about this many rows, fetched to the client. Smaller tables
# are their own sample. Exact tables larger than this (exact_limit raised)
# get their quantiles from the database instead.
SAMPLE_ROWS = 100_000
# Sample columns fetched per query. 64 columns of 100,000 rows are about 51 MB
# of doubles and hashes; wider tables take one more query per 64 columns.
# At least MAX_CORRELATION_COLUMNS, so that the correlated columns come from one fetch.
SAMPLE_FETCH_COLUMNS = 64

# Column that identifies a row's customer; top values count their customers by it.
CUSTOMER_COLUMN = "customer_id"
# Semantic types whose values are shown as top values.
_TOP_VALUE_TYPES = ("category", "boolean")
# Semantic types whose minimum and maximum may be shown.
_RANGE_TYPES = ("category", "numeric", "date")


def profile_table(
    table: ir.Table,
    name: str,
    column_meta: Mapping[str, Mapping[str, Any]] | None = None,
    key: Sequence[str] | None = None,
    date_column: str | None = None,
    *,
    top_n: int = 10,
    histogram_bins: int = 20,
    exact_limit: int = EXACT_LIMIT,
    as_of: dt.date | None = None,
    schema: ModuleType = canonical_schema,
) -> TableProfile:
    """Profile one table by SQL pushdown.

    Parameters
    ----------
    table : ibis.Table
        The table to profile; only aggregates are fetched from it.
    name : str
        Table name. For a canonical table (see :mod:`relmap_utils.schema`) the
        schema supplies column types, key and date column.
    column_meta : mapping, optional
        Ingest's ``columns.json`` entry of this table: column name to
        ``{"type", "role", "declared", "pseudonymized", ...}``. A declared
        role fixes the semantic type; undeclared columns are inferred.
    key : sequence of str, optional
        Columns that should identify a row; default the schema key when all its
        columns are present, else no key check.
    date_column : str, optional
        Column for rows per month; default the schema's date column, else
        the first column of semantic type date.
    top_n : int, default=10
        Top values reported per category or boolean column.
    histogram_bins : int, default=20
        Bins per numeric histogram.
    exact_limit : int, default=100_000
        Tables with more rows get approximate distinct counts (HyperLogLog)
        and, when they also have more than 100,000 rows, quantiles of a
        sample of about 100,000 rows.
    as_of : datetime.date, optional
        Profiling date for the plausibility check of dates; default today.
    schema : module, default=relmap_utils.schema
        Module with the canonical ``TABLES``.

    Returns
    -------
    TableProfile

    Raises
    ------
    StageError
        When ``key`` or ``date_column`` names a column the table lacks, or
        ``date_column`` is not a date.

    Notes
    -----
    Float columns may hold NaN and infinities, which SQL counts as values.
    They are counted (``nan_values``, ``infinite_values``) and then treated
    as missing, so no mean, standard deviation, quantile, histogram or
    correlation includes them.

    The table is queried five to eight times, plus once when it has float columns. A Parquet file or a database
    table is cheap to read again, but a view over a CSV file (``read_csv``) is
    parsed again by every query, so large CSV extracts should be converted
    to Parquet first, as ingest does.
    """
    started = time.perf_counter()
    column_meta = column_meta or {}
    table_schema = table.schema()
    schema_table = schema.TABLES.get(name)
    key = _resolve_key(name, table_schema, key, schema_table)
    _check_date_column(name, table_schema, date_column)
    as_of = as_of or dt.date.today()

    rows = int(table.count().to_pyarrow().as_py())
    exact = rows <= exact_limit
    logger.info("profiling table %s: %d rows, %d columns", name, rows, len(table_schema))
    non_finite = _non_finite_pass(table)
    if non_finite:
        # Every later pass sees NaN and infinities as nulls, so they stay out
        # of the means, quantiles, histograms and correlations, and DuckDB's
        # standard deviation does not fail on them.
        table = table.mutate(**{column: stats.finite_or_null(table[column]) for column in non_finite})
        logger.warning(
            "table %s has NaN or infinite values in %d columns; profiled as missing", name, len(non_finite)
        )

    # Quantiles come first, from a sample of large tables, so that the bins
    # and fences of the histograms are known when the full scan starts.
    numbers = [column for column, dtype in table_schema.items() if dtype.is_numeric()]
    quantiles, pairs, sample_distinct = _sample_pass(table, numbers, rows, exact)
    exact_distinct = {
        column for column in table_schema.names
        if exact or (sample_distinct.get(column) is not None and sample_distinct[column] <= SAMPLE_DISTINCT_LIMIT)
    }
    specs = {
        column: _bin_spec(table_schema[column], None, None, quantiles.get(column), histogram_bins)
        for column in numbers
        if _quantile_range(quantiles.get(column)) is not None
    }
    summaries, key_null_rows, binned = _summary_pass(table, key, exact_distinct, as_of, specs)
    _pattern_pass(table, summaries, column_meta, schema_table)
    semantics = {
        column: decide_type(
            column,
            dtype,
            summaries[column],
            column_meta.get(column),
            schema_table.column(column) if schema_table else None,
        )
        for column, dtype in table_schema.items()
    }
    # A table of at most SAMPLE_ROWS rows is its own sample, so its quantiles are exact.
    quantiles_exact = exact or rows <= SAMPLE_ROWS
    columns = {
        column: _column_profile(name, column, dtype, rows, quantiles_exact, column in exact_distinct,
                                summaries[column], semantics[column], column_meta.get(column))
        for column, dtype in table_schema.items()
    }
    for column, (nan_values, infinite_values) in non_finite.items():
        columns[column].nan_values = nan_values
        columns[column].infinite_values = infinite_values
    numeric = [column for column, profile in columns.items() if profile.semantic_type == "numeric"]
    for column in numeric:
        columns[column].quantiles = quantiles.get(column)
    correlations = [(first, second, value) for first, second, value in pairs if {first, second} <= set(numeric)]

    _distribution_pass(table, columns, numeric, histogram_bins, specs, binned)
    _damaged_identifier_pass(table, columns)
    # Pseudonyms are never listed, even where a declared role makes the column a category.
    top_columns = [
        column for column, profile in columns.items()
        if profile.semantic_type in _TOP_VALUE_TYPES and not profile.pseudonymized
    ]
    customer_column = CUSTOMER_COLUMN if CUSTOMER_COLUMN in table_schema else None
    for column, values in stats.top_values(table, top_columns, top_n, customer_column).items():
        columns[column].top_values = [(value, rows) for value, rows, _ in values]
        if customer_column is not None:
            columns[column].top_value_customers = [customers for _, _, customers in values]

    required = list(schema_table.required) if schema_table else []
    profile = TableProfile(
        name=name,
        rows=rows,
        columns=columns,
        key=key,
        key_null_rows=key_null_rows,
        correlations=correlations,
        required_columns=[c for c in required if c in table_schema],
        missing_required=[c for c in required if c not in table_schema],
        exact=exact,
    )
    if key:
        counts = stats.duplicate_keys(table, key)
        profile.duplicate_keys = counts["duplicate_keys"]
        profile.duplicate_key_rows = counts["duplicate_key_rows"]
    _date_pass(table, profile, date_column, schema_table)

    profile.seconds = time.perf_counter() - started
    logger.info("profiled table %s in %.1f s", name, profile.seconds)
    return profile


def profile_tables(
    tables: Mapping[str, ir.Table],
    column_meta: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    schema: ModuleType = canonical_schema,
    *,
    top_n: int = 10,
    histogram_bins: int = 20,
    exact_limit: int = EXACT_LIMIT,
    as_of: dt.date | None = None,
    max_orphan_samples: int = 5,
) -> Profile:
    """Profile every table, check integrity across tables, rank findings and score quality.

    Parameters
    ----------
    tables : mapping of str to ibis.Table
        Table name to table, usually the canonical tables of a run.
    column_meta : mapping, optional
        Ingest's ``columns.json``: table name to column name to metadata.
    schema : module, default=relmap_utils.schema
        Module with the canonical ``TABLES`` (keys, date columns, references).
    top_n, histogram_bins, exact_limit, as_of
        Passed to :func:`profile_table`.
    max_orphan_samples : int, default=5
        Orphan keys listed per reference (pseudonyms after ingest).

    Returns
    -------
    Profile
        With ``findings`` sorted by severity and ``score`` set.
    """
    column_meta = column_meta or {}
    profiles = {
        name: profile_table(
            table,
            name,
            column_meta.get(name),
            top_n=top_n,
            histogram_bins=histogram_bins,
            exact_limit=exact_limit,
            as_of=as_of,
            schema=schema,
        )
        for name, table in tables.items()
    }
    profile = Profile(tables=profiles)
    profile.references = integrity.check_references(tables, profiles, schema, max_samples=max_orphan_samples)
    profile.date_overlaps = integrity.date_overlaps(profiles, schema)
    profile.findings = collect_findings(profile)
    profile.score = quality_score(profile)
    return profile


def _resolve_key(
    name: str,
    table_schema: Any,
    key: Sequence[str] | None,
    schema_table: Any,
) -> tuple[str, ...]:
    if key is None:
        if schema_table is not None and schema_table.key and all(c in table_schema for c in schema_table.key):
            return tuple(schema_table.key)
        return ()
    missing = [column for column in key if column not in table_schema]
    if missing:
        raise StageError(
            "profiling.unknown_key_column",
            table=name,
            columns=", ".join(missing),
            available=", ".join(table_schema.names),
        )
    return tuple(key)


def _check_date_column(name: str, table_schema: Any, date_column: str | None) -> None:
    if date_column is None:
        return
    if date_column not in table_schema:
        raise StageError(
            "profiling.unknown_date_column",
            table=name,
            column=date_column,
            available=", ".join(table_schema.names),
        )
    dtype = table_schema[date_column]
    if not (dtype.is_date() or dtype.is_timestamp()):
        raise StageError("profiling.date_column_not_date", table=name, column=date_column, type=str(dtype))


def _non_finite_pass(table: ir.Table) -> dict[str, tuple[int, int]]:
    # (NaN values, infinite values) of every float column that has any; one
    # aggregate, and no query when the table has no float column.
    metrics: dict[tuple[str, str], ir.Scalar] = {}
    for column, dtype in table.schema().items():
        if dtype.is_floating():
            for stat, expression in stats.non_finite_metrics(table[column]).items():
                metrics[(column, stat)] = expression
    counts: dict[str, dict[str, int]] = {}
    for (column, stat), value in stats.run_aggregate(table, metrics).items():
        counts.setdefault(column, {})[stat] = int(value or 0)
    return {
        column: (values["nan"], values["infinite"])
        for column, values in counts.items()
        if values["nan"] or values["infinite"]
    }


def _summary_pass(
    table: ir.Table,
    key: tuple[str, ...],
    exact_distinct: set[str],
    as_of: dt.date,
    specs: Mapping[str, stats.BinSpec],
) -> tuple[dict[str, dict[str, Any]], int | None, dict[str, Any] | None]:
    # The summary metrics of every column and, on DuckDB, the histograms of
    # ``specs`` in the same scan; the third value is None where they are not.
    # A histogram also counts its column's zeros and negatives, which costs
    # two boundaries instead of two more aggregates.
    histograms: dict[str, ir.Scalar] = {}
    binned: dict[str, Any] | None = None
    if specs and stats.binned_histograms_supported(table):
        binned = {}
        histograms = stats.histogram_metrics(table, specs, sign_counts=True)
    metrics: dict[tuple[str, str], ir.Scalar] = {}
    for column in table.columns:
        expressions = stats.summary_metrics(
            table[column], exact=column in exact_distinct, as_of=as_of, signs=column not in histograms
        )
        for stat, expression in expressions.items():
            metrics[(column, stat)] = expression
    if key:
        metrics[("", "key_nulls")] = stats.key_null_metric(table, key)
    for column, expression in histograms.items():
        metrics[(column, "histogram")] = expression

    values = stats.run_aggregate(table, metrics)
    summaries: dict[str, dict[str, Any]] = {column: {} for column in table.columns}
    key_null_rows = None
    for (column, stat), value in values.items():
        if stat == "key_nulls":
            key_null_rows = int(value or 0)
        elif stat == "histogram" and binned is not None:
            binned[column] = value
            summaries[column]["negatives"], summaries[column]["zeros"] = stats.sign_counts_of(value)
        else:
            summaries[column][stat] = value
    return summaries, key_null_rows, binned


def _pattern_pass(
    table: ir.Table,
    summaries: dict[str, dict[str, Any]],
    column_meta: Mapping[str, Mapping[str, Any]],
    schema_table: Any,
) -> None:
    metrics: dict[tuple[str, str], ir.Scalar] = {}
    for column, dtype in table.schema().items():
        schema_column = schema_table.column(column) if schema_table else None
        if declared_type(column, column_meta.get(column), schema_column) is not None:
            continue
        if needs_pattern_scan(dtype, summaries[column]):
            for stat, expression in stats.pattern_metrics(table[column]).items():
                metrics[(column, stat)] = expression
    for (column, stat), value in stats.run_aggregate(table, metrics).items():
        count = int(value or 0)
        if stat == "spaces":
            summaries[column]["spaces"] = count
        else:
            summaries[column].setdefault("pattern_matches", {})[stat] = count


def _column_profile(
    table: str,
    column: str,
    dtype: Any,
    rows: int,
    quantiles_exact: bool,
    distinct_exact: bool,
    summary: Mapping[str, Any],
    semantic: SemanticType,
    meta: Mapping[str, Any] | None,
) -> ColumnProfile:
    kind = semantic.type
    profile = ColumnProfile(
        table=table,
        name=column,
        physical_type=str(dtype),
        semantic=semantic,
        rows=rows,
        count=int(summary.get("count") or 0),
        distinct=int(summary.get("distinct") or 0),
        distinct_exact=distinct_exact,
        pseudonymized=bool((meta or {}).get("pseudonymized")),
        quantiles_exact=quantiles_exact,
        pattern_matches=dict(summary.get("pattern_matches") or {}),
    )
    # A text category's minimum and maximum are only its first and last label
    # in code-point order, which means nothing and names values.
    text_category = kind == "category" and not dtype.is_numeric()
    if kind in _RANGE_TYPES and not profile.pseudonymized and not text_category:
        profile.min, profile.max = summary.get("min"), summary.get("max")
    if kind not in ("personal", "text"):
        profile.mean_length = stats.clean_number(summary.get("mean_length"))
        profile.max_length = summary.get("max_length")
    if kind == "date" and summary.get("implausible_dates") is not None:
        # Absent when a declared date column is not stored as a date (a year_only
        # treatment leaves an integer year), so no date check ran.
        profile.implausible_dates = int(summary["implausible_dates"])
    if kind == "numeric":
        profile.mean = stats.clean_number(summary.get("mean"))
        profile.std = stats.clean_number(summary.get("std"))
        profile.zeros = int(summary.get("zeros") or 0)
        profile.negatives = int(summary.get("negatives") or 0)
    return profile


def _quantile_range(quantiles: Mapping[str, float | None] | None) -> tuple[float, float] | None:
    # The 1st to 99th percentile when they differ. The minimum and maximum
    # cannot narrow it: every quantile lies between them.
    if not quantiles or quantiles.get("p01") is None or quantiles.get("p99") is None:
        return None
    low, high = quantiles["p01"], quantiles["p99"]
    return (low, high) if high > low else None


def _bin_spec(
    dtype: Any,
    minimum: float | None,
    maximum: float | None,
    quantiles: Mapping[str, float] | None,
    bins: int,
) -> stats.BinSpec:
    known = _quantile_range(quantiles)
    if known is not None:
        low, high = known
    else:
        low, high = stats.histogram_range(minimum, maximum, quantiles)
    return stats.BinSpec(low, high, bins, stats.is_integer_type(dtype), stats.outlier_fences(quantiles))


def _distribution_pass(
    table: ir.Table,
    columns: dict[str, ColumnProfile],
    numeric: list[str],
    bins: int,
    specs: Mapping[str, stats.BinSpec],
    binned: Mapping[str, Any] | None,
) -> None:
    # Histograms counted in the summary scan are read; the others (no
    # quantiles, equal 1st and 99th percentile, or a backend other than
    # DuckDB) are counted by one more query over their full range.
    done: dict[str, stats.Distribution] = {}
    if binned is not None:
        counts = {column: columns[column].count for column in specs}
        done = stats.read_histograms({c: s for c, s in specs.items() if c in numeric}, binned, counts)
    remaining = {}
    dtypes = table.schema()
    for column in numeric:
        profile = columns[column]
        minimum, maximum = stats.clean_number(profile.min), stats.clean_number(profile.max)
        if minimum is None or maximum is None:
            continue
        spec = specs.get(column) or _bin_spec(dtypes[column], minimum, maximum, profile.quantiles, bins)
        profile.lower_fence, profile.upper_fence = spec.fences or (None, None)
        if column not in done:
            remaining[column] = spec
    counts = {column: columns[column].count for column in remaining}
    done.update(stats.distributions(table, remaining, counts) if remaining else {})
    for column, distribution in done.items():
        profile = columns[column]
        profile.histogram = distribution.histogram
        profile.outliers_low = distribution.outliers_low
        profile.outliers_high = distribution.outliers_high


def _sample_pass(
    table: ir.Table,
    numbers: list[str],
    rows: int,
    exact: bool,
) -> tuple[dict[str, dict[str, float | None] | None], list[tuple[str, str, float]], dict[str, int]]:
    """Return the quantiles of the numeric columns, their correlations and the distinct values of the sample.

    A seeded sample of about :data:`SAMPLE_ROWS` rows, or the whole table
    when it is not larger, is fetched to the client once, and numpy and
    pyarrow compute on it. Quantiles are the exact linear-interpolation
    quantiles of the fetched rows, so they are exact for a table of at most
    ``SAMPLE_ROWS`` rows. An exact table larger than that (``exact_limit``
    raised) gets exact quantiles from the database instead. Correlations are
    Pearson's r with pairwise deletion of nulls, as SQL ``corr`` computes
    them. The columns are all those stored as numbers, because the semantic
    types are not known yet; the caller keeps the results of the numeric ones.

    On tables that are not exact, the sample's distinct values per column
    are the third value, so that columns with few values can get exact
    distinct counts in the full scan; otherwise it is empty.
    """
    if len(numbers) > MAX_CORRELATION_COLUMNS:
        logger.warning(
            "table has %d numeric columns; correlations cover the first %d only",
            len(numbers),
            MAX_CORRELATION_COLUMNS,
        )
    correlated = numbers[:MAX_CORRELATION_COLUMNS]
    sample = stats.row_sample(table, rows, SAMPLE_ROWS)
    quantiles: dict[str, dict[str, float | None] | None] = {}
    quantiles_from_sample = not exact or sample is table
    sample_numbers = numbers if quantiles_from_sample else correlated
    if not quantiles_from_sample:
        metrics = {column: stats.quantile_metric(table[column]) for column in numbers}
        quantiles = {column: _quantile_levels(value) for column, value in stats.run_aggregate(table, metrics).items()}
    number_set = set(numbers)
    others = [] if exact else [column for column in table.columns if column not in number_set]

    # The correlated columns come first, so that one fetch brings all of them from the same rows.
    fetch_order = list(sample_numbers) + others
    correlations: list[tuple[str, str, float]] = []
    distinct: dict[str, int] = {}
    for start in range(0, len(fetch_order), SAMPLE_FETCH_COLUMNS):
        group = fetch_order[start:start + SAMPLE_FETCH_COLUMNS]
        group_numbers = [column for column in group if column in number_set]
        fetched = stats.fetch_sample_columns(sample, group_numbers, [c for c in group if c not in number_set])
        values, valid = stats.number_matrix(fetched, group_numbers)
        for index, column in enumerate(group_numbers):
            ordered = np.sort(values[valid[:, index], index])
            if quantiles_from_sample:
                quantiles[column] = _quantile_levels(stats.sample_quantiles(ordered))
            if not exact:
                distinct[column] = stats.sorted_distinct(ordered)
        if not exact:
            distinct.update(stats.sample_distinct(fetched.drop_columns(group_numbers)))
        if start == 0 and len(correlated) > 1:
            width = len(correlated)
            matrix = stats.pairwise_correlations(values[:, :width], valid[:, :width])
            for first in range(width):
                for second in range(first + 1, width):
                    number = stats.clean_number(matrix[first, second])
                    if number is not None:
                        correlations.append((correlated[first], correlated[second], number))
    return quantiles, correlations, distinct


def _quantile_levels(values: Sequence[float] | None) -> dict[str, float | None] | None:
    # The quantiles of one column by level name; None for a column without values.
    if not values:
        return None
    return {name: stats.clean_number(value) for name, value in zip(QUANTILES, values, strict=True)}


def _damaged_identifier_pass(table: ir.Table, columns: dict[str, ColumnProfile]) -> None:
    dtypes = table.schema()
    metrics = {
        column: stats.damaged_identifier_metric(table[column])
        for column, profile in columns.items()
        if profile.semantic_type == "identifier" and dtypes[column].is_string()
    }
    for column, value in stats.run_aggregate(table, metrics).items():
        columns[column].damaged_identifiers = int(value or 0)


def _date_pass(table: ir.Table, profile: TableProfile, date_column: str | None, schema_table: Any) -> None:
    if date_column is None and schema_table is not None and schema_table.date_column in profile.columns:
        date_column = schema_table.date_column
    if date_column is None:
        date_column = next((c for c, p in profile.columns.items() if p.semantic_type == "date"), None)
    if date_column is None:
        return
    dtype = table.schema()[date_column]
    if not (dtype.is_date() or dtype.is_timestamp()):
        logger.warning("date column %s.%s has type %s; rows per month skipped", profile.name, date_column, dtype)
        return

    column = profile.columns[date_column]
    profile.date_column = date_column
    profile.date_min = _as_date(column.min)
    profile.date_max = _as_date(column.max)
    profile.rows_per_month = stats.rows_per_month(table, date_column)


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    return value
