"""Column and table statistics: SQL pushdown through Ibis, and the statistics of a fetched sample.

Most functions build one Ibis expression and bring back only aggregates:
a single row of metrics, a few hundred histogram bins or top values, one row
per month. Metrics of many columns are batched into one aggregate query
(:func:`run_aggregate`), so a table is scanned a handful of times whatever its
width. The expressions use portable Ibis operations.

Quantiles, correlations and the distinct values that decide exact distinct
counts come instead from a seeded row sample of at most about 100,000 rows
(:func:`row_sample`, the whole table when it is that small), which
:func:`fetch_sample_columns` brings to the client and numpy and pyarrow
compute on. On large tables the distinct counts of the full scan are
approximate (HyperLogLog, see :func:`summary_metrics`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ibis.expr import datatypes as idt
from threadpoolctl import threadpool_limits

from relmap_utils.profiling.model import QUANTILES, Histogram
from relmap_utils.profiling.semantic import DAMAGED_ID_PATTERN, PII_PATTERNS

# Tukey's fences: values beyond k interquartile ranges outside the quartiles.
IQR_FACTOR = 1.5
# Dates before this day are treated as placeholders (1900-01-01, 0001-01-01).
EARLIEST_PLAUSIBLE_DATE = dt.date(1900, 1, 1)
# Dates more than this many days after the profiling date are implausible.
FUTURE_TOLERANCE_DAYS = 366


def run_aggregate(table: ir.Table, metrics: Mapping[Hashable, ir.Scalar]) -> dict[Hashable, Any]:
    """Evaluate many scalar aggregates of ``table`` in one query.

    Parameters
    ----------
    table : ibis.Table
        Table the metrics are computed over.
    metrics : mapping
        Any hashable label (for example ``("age", "mean")``) to an Ibis
        scalar aggregate expression of ``table``.

    Returns
    -------
    dict
        The same labels mapped to Python values.
    """
    if not metrics:
        return {}
    labels = list(metrics)
    aliased = {f"m{index}": metrics[label] for index, label in enumerate(labels)}
    row = table.aggregate(**aliased).to_pyarrow().to_pylist()[0]
    return {label: row[f"m{index}"] for index, label in enumerate(labels)}


def summary_metrics(
    column: ir.Column,
    *,
    exact: bool,
    as_of: dt.date,
    signs: bool = True,
) -> dict[str, ir.Scalar]:
    """Return the first-pass metrics of one column, by physical type.

    Every column gets ``count`` (non-null) and ``distinct``. Numbers, text and
    dates get ``min`` and ``max``. Numbers also get ``mean``, ``std`` (sample
    standard deviation, n - 1) and, with ``signs``, ``zeros`` and ``negatives``. Text gets
    ``mean_length`` and ``max_length``. Dates get ``implausible_dates``,
    those before 1900-01-01 or more than a year after ``as_of``. Booleans get
    ``true``.

    Quantiles (:func:`quantile_metric`) and damaged identifiers
    (:func:`damaged_identifier_metric`) are left to later passes, which
    compute them only for the columns whose semantic type shows them.

    Parameters
    ----------
    column : ibis Column
    exact : bool
        Exact distinct counts when true; otherwise ``approx_nunique``
        (HyperLogLog), whose memory does not grow with the table.
    as_of : datetime.date
        Profiling date for the plausibility check of dates.
    signs : bool, default=True
        Count zeros and negatives; false where a :func:`histogram_metrics`
        aggregate with ``sign_counts`` counts them in the same scan.

    Returns
    -------
    dict of str to ibis Scalar
    """
    dtype = column.type()
    metrics: dict[str, ir.Scalar] = {
        "count": column.count(),
        "distinct": column.nunique() if exact else column.approx_nunique(),
    }
    if dtype.is_numeric():
        values = column.cast("float64")
        metrics.update(
            min=values.min(),
            max=values.max(),
            mean=values.mean(),
            std=values.std(how="sample"),
        )
        if signs:
            metrics.update(zeros=(values == 0).sum(), negatives=(values < 0).sum())
    elif dtype.is_string():
        lengths = column.length()
        metrics.update(
            min=column.min(),
            max=column.max(),
            mean_length=lengths.mean(),
            max_length=lengths.max(),
        )
    elif dtype.is_temporal() and (dtype.is_date() or dtype.is_timestamp()):
        days = column.date() if dtype.is_timestamp() else column
        latest = as_of + dt.timedelta(days=FUTURE_TOLERANCE_DAYS)
        metrics.update(
            min=column.min(),
            max=column.max(),
            implausible_dates=((days < EARLIEST_PLAUSIBLE_DATE) | (days > latest)).sum(),
        )
    elif dtype.is_boolean():
        metrics["true"] = column.cast("int64").sum()
    return metrics


def non_finite_metrics(column: ir.FloatingColumn) -> dict[str, ir.Scalar]:
    """Return the counts of NaN values (``nan``) and of infinities of either sign (``infinite``) of a float column.

    SQL counts NaN and infinities as non-null values, and DuckDB's
    ``stddev_samp`` raises "out of range" on them, so the profiler counts
    them first and then profiles the column through :func:`finite_or_null`.
    """
    return {"nan": column.isnan().sum(), "infinite": column.isinf().sum()}


def finite_or_null(column: ir.FloatingColumn) -> ir.FloatingValue:
    """Return ``column`` with NaN and infinities replaced by null."""
    return (column.isnan() | column.isinf()).ifelse(ibis.null(column.type()), column)


def quantile_metric(column: ir.Column) -> ir.Scalar:
    """Return the exact quantiles of a numeric column at the levels of :data:`~relmap_utils.profiling.model.QUANTILES`.

    The quantiles interpolate linearly between the two nearest values, as
    :func:`sample_quantiles` does on fetched values.
    """
    values = column.cast("float64")
    return values.quantile(list(QUANTILES.values()))


def damaged_identifier_metric(column: ir.StringColumn) -> ir.Scalar:
    """Return the count of values in scientific notation, such as 6.2E+18.

    Such values are identifiers that went through a spreadsheet as numbers
    and lost their last digits.
    """
    # The substring test first lets the regex run only on candidate values.
    return ((column.contains("E+") | column.contains("e+")) & column.re_search(DAMAGED_ID_PATTERN)).sum()


def row_sample(table: ir.Table, rows: int, sample_rows: int, seed: int = 20240601) -> ir.Table:
    """Return a Bernoulli sample of about ``sample_rows`` rows, or ``table`` when it is not larger.

    Parameters
    ----------
    table : ibis.Table
    rows : int
        Rows of ``table``.
    sample_rows : int
        Expected rows of the sample. With 100,000 rows the standard error of
        a Pearson r is at most about 0.003, and a quantile's rank is off by
        at most about 0.16 percentage points (one standard error at the
        median, 0.03 at the 1st and 99th percentile).
    seed : int
        Seed of the sample. DuckDB repeats a seeded sample exactly only on
        one thread, so on several threads the last digits may vary between runs.

    Returns
    -------
    ibis.Table
    """
    if rows <= sample_rows:
        return table
    return table.sample(sample_rows / rows, method="row", seed=seed)


def fetch_sample_columns(source: ir.Table, numbers: Sequence[str], others: Sequence[str] = ()) -> pa.Table:
    """Fetch columns of ``source``, usually a :func:`row_sample`, to the client.

    ``source.select(...).to_pyarrow()`` works on every Ibis backend. The
    fetched values feed :func:`number_matrix`, :func:`sample_quantiles`,
    :func:`pairwise_correlations` and :func:`sample_distinct`.

    Parameters
    ----------
    source : ibis.Table
    numbers : sequence of str
        Columns fetched as doubles, as every summary metric casts them.
    others : sequence of str
        Columns fetched only to count their distinct values. Booleans,
        dates and timestamps arrive as they are. Text and every other type
        arrive as a hash of each value (64 bits on DuckDB, 32 on Spark), with
        nulls kept as nulls, so a value costs 8 bytes however long the text is.

    Returns
    -------
    pyarrow.Table
        One column per name, in the order ``numbers`` then ``others``.
    """
    columns: dict[str, ir.Value] = {name: source[name].cast("float64") for name in numbers}
    for name in others:
        column = source[name]
        dtype = column.type()
        if dtype.is_boolean() or dtype.is_date() or dtype.is_timestamp():
            columns[name] = column
        else:
            # DuckDB hashes a null to a value like any other, so nulls are kept apart.
            columns[name] = column.notnull().ifelse(column.hash(), ibis.null())
    if not columns:
        return pa.table({})
    return source.select(**columns).to_pyarrow()


def number_matrix(fetched: pa.Table, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return the double columns of ``fetched`` as a rows x columns array and its mask of non-null entries.

    Null entries are 0.0 in the array. NaN values stay NaN and count as
    non-null, as in SQL. Both arrays are column-major, so that every column
    is contiguous.
    """
    values = np.zeros((fetched.num_rows, len(columns)), dtype=np.float64, order="F")
    valid = np.zeros((fetched.num_rows, len(columns)), dtype=bool, order="F")
    for index, name in enumerate(columns):
        column = fetched[name]
        valid[:, index] = column.is_valid().to_numpy(zero_copy_only=False)
        values[:, index] = pc.fill_null(column, 0.0).to_numpy()
    return values, valid


def sample_distinct(fetched: pa.Table) -> dict[str, int]:
    """Return the number of distinct non-null values of every column of ``fetched``."""
    output = {}
    for name in fetched.column_names:
        column = pc.drop_null(fetched[name])
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_temporal(kind):
            # Sorting 100,000 numbers takes about 0.3 ms in numpy 2.4, where pyarrow's
            # count_distinct takes about 9 ms on distinct doubles or 64-bit hashes.
            output[name] = sorted_distinct(np.sort(column.to_numpy()))
        else:
            output[name] = int(pc.count_distinct(column).as_py())
    return output


def sorted_distinct(ordered: np.ndarray) -> int:
    """Return the number of distinct values of sorted ``ordered``, counting every NaN as one value."""
    if ordered.dtype.kind == "f":
        # np.sort puts NaN last, and NaN differs from itself.
        nan_count = int(np.count_nonzero(np.isnan(ordered)))
        return _changes(ordered[:ordered.size - nan_count]) + (1 if nan_count else 0)
    return _changes(ordered)


def _changes(ordered: np.ndarray) -> int:
    # Runs of equal values in a sorted array.
    if ordered.size == 0:
        return 0
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1


def sample_quantiles(ordered: np.ndarray, levels: Sequence[float] = tuple(QUANTILES.values())) -> list[float]:
    """Return the exact quantiles of sorted values at ``levels``, as DuckDB's ``quantile_cont`` computes them.

    The quantile at level q lies at position (n - 1) q of the sorted values.
    Between the two nearest values ``lo`` and ``hi`` it is
    ``lo * (1 - fraction) + hi * fraction``, the formula of DuckDB 1.5 for
    doubles, so the results agree to the last bit (numpy's ``linear`` method
    rounds differently).

    Parameters
    ----------
    ordered : numpy.ndarray
        One-dimensional doubles without nulls, sorted by ``np.sort``, which
        puts NaN after every number as DuckDB does, so NaN reaches only the
        top quantiles.
    levels : sequence of float, default=the levels of :data:`~relmap_utils.profiling.model.QUANTILES`

    Returns
    -------
    list of float
        One value per level; empty when ``ordered`` is empty.
    """
    count = len(ordered)
    if count == 0:
        return []
    output = []
    for level in levels:
        position = (count - 1) * level
        low, high = math.floor(position), math.ceil(position)
        if low == high:
            output.append(float(ordered[low]))
        else:
            fraction = position - low
            output.append(float(ordered[low] * (1.0 - fraction) + ordered[high] * fraction))
    return output


# A column whose pairwise variance is below this share of its pairwise sum of
# squares about the column mean counts as constant over those rows. Rounding
# leaves about 1e-16 of that sum where the variance is really zero.
_CONSTANT_SHARE = 1e-10


def pairwise_correlations(values: np.ndarray, valid: np.ndarray, chunk_rows: int = 16_384) -> np.ndarray:
    """Return the Pearson correlation of every pair of columns, each pair over the rows where both are non-null.

    This is SQL ``corr`` with pairwise deletion, computed for all pairs with
    four matrix products: pair counts, sums, sums of squares and cross
    products. Each column is first centred on its mean, so the sums stay
    small and subtracting the squared sums loses few digits even for amounts
    near 1e9. Rows are processed ``chunk_rows`` at a time to bound memory.

    Parameters
    ----------
    values : numpy.ndarray
        Rows x columns doubles, as :func:`number_matrix` returns them.
    valid : numpy.ndarray
        Booleans of the same shape, false where a value is null.
    chunk_rows : int, default=16_384

    Returns
    -------
    numpy.ndarray
        Columns x columns, symmetric. NaN where a pair has fewer than two
        rows, where either column is constant over them, or where either
        column contains NaN or an infinity.
    """
    rows = values.shape[0]
    # An infinity or NaN makes every correlation of its column undefined, so
    # such columns are left out of the sums and reported as NaN.
    finite = np.isfinite(np.where(valid, values, 0.0)).all(axis=0)
    used = valid & finite
    counts = used.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(used, values, 0.0).sum(axis=0) / counts
    lowest = np.where(used, values, np.inf).min(axis=0)
    highest = np.where(used, values, -np.inf).max(axis=0)
    # A constant column centres to exactly zero, so its variance is exactly zero.
    centre = np.where(counts == 0, 0.0, np.where(lowest == highest, lowest, means))

    width = values.shape[1]
    pairs = np.zeros((width, width))
    sums = np.zeros((width, width))
    squares = np.zeros((width, width))
    products = np.zeros((width, width))
    # Products of at most 60 columns finish in milliseconds on one thread. On a
    # busy 2-core machine OpenBLAS threads took about 4 times the CPU time.
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, rows, chunk_rows):
            mask = used[start:start + chunk_rows]
            weights = mask.astype(np.float64)
            centred = np.where(mask, values[start:start + chunk_rows] - centre, 0.0)
            # Entry [i, j] sums over the rows where both column i and column j are non-null.
            pairs += weights.T @ weights
            sums += centred.T @ weights
            squares += (centred * centred).T @ weights
            products += centred.T @ centred

    with np.errstate(divide="ignore", invalid="ignore"):
        variances = squares - sums * sums / pairs
        covariances = products - sums * sums.T / pairs
        correlations = covariances / np.sqrt(variances * variances.T)
    constant = variances <= _CONSTANT_SHARE * squares
    undefined = (pairs < 2) | constant | constant.T | ~finite[:, None] | ~finite[None, :]
    correlations[undefined] = np.nan
    return np.clip(correlations, -1.0, 1.0)


def pattern_metrics(column: ir.StringColumn) -> dict[str, ir.Scalar]:
    """Return counts of personal-data pattern matches and of values containing a space.

    The keys are the names of :data:`~relmap_utils.profiling.semantic.PII_PATTERNS`
    and ``"spaces"``.
    """
    metrics = {name: column.re_search(pattern).sum() for name, pattern in PII_PATTERNS.items()}
    metrics["spaces"] = column.contains(" ").sum()
    return metrics


def outlier_fences(quantiles: Mapping[str, float] | None) -> tuple[float, float] | None:
    """Return Tukey's fences (Q1 - 1.5 IQR, Q3 + 1.5 IQR), or ``None``.

    ``None`` when the quartiles are unknown or equal: with a zero
    interquartile range every value off the mode would count as an outlier.
    """
    if not quantiles or quantiles.get("p25") is None or quantiles.get("p75") is None:
        return None
    low, high = quantiles["p25"], quantiles["p75"]
    spread = high - low
    if not spread > 0:
        return None
    return low - IQR_FACTOR * spread, high + IQR_FACTOR * spread


def histogram_range(
    minimum: float,
    maximum: float,
    quantiles: Mapping[str, float] | None,
) -> tuple[float, float]:
    """Return the value range the histogram bins cover: the 1st to 99th percentile.

    Amounts in bank data are skewed: a few large balances would otherwise
    squeeze every other customer into one bar. The values outside are
    counted in :attr:`Histogram.below` and :attr:`Histogram.above`, and the
    report counts the values left out. Without quantiles, or when the 1st
    and 99th percentile are equal, the bins cover the full range.
    """
    if quantiles and quantiles.get("p01") is not None and quantiles.get("p99") is not None:
        low, high = max(quantiles["p01"], minimum), min(quantiles["p99"], maximum)
        if high > low:
            return low, high
    return minimum, maximum


@dataclass
class BinSpec:
    """How to bin one numeric column: range, bin count and optional outlier fences."""

    low: float
    high: float
    bins: int
    integer: bool = False
    fences: tuple[float, float] | None = None


@dataclass
class Distribution:
    """Histogram of one column and, when fences were given, its outlier counts."""

    histogram: Histogram
    outliers_low: int | None = None
    outliers_high: int | None = None


def distributions(
    table: ir.Table,
    specs: Mapping[str, BinSpec],
    counts: Mapping[str, int] | None = None,
) -> dict[str, Distribution]:
    """Count values per equal-width bin, and outliers, for several numeric columns in one query.

    On DuckDB the query is one aggregate of :func:`histogram_metrics`. Other
    backends get one union of per-column group-bys on (bin, side of the
    outlier fences). Both count every bin as ``[edge, next edge)``, the last
    as ``[edge, high]``.

    Parameters
    ----------
    table : ibis.Table
    specs : mapping of str to BinSpec
        Integer columns get bins of a whole-number width centred on the
        integers (one bin per value when the range has at most ``bins``
        values), so they may get fewer than ``bins`` bins.
    counts : mapping of str to int, optional
        Non-null values per column, from the summary pass; see
        :func:`read_histograms`.

    Returns
    -------
    dict of str to Distribution
        Columns with ``low == high`` get an empty histogram.
    """
    if binned_histograms_supported(table):
        return read_histograms(specs, run_aggregate(table, histogram_metrics(table, specs)), counts)
    layouts = {name: layout for name, spec in specs.items() if (layout := _bin_layout(spec)) is not None}
    counted = _grouped_counts(table, specs, layouts)
    return {name: _distribution(spec, layouts.get(name), *counted.get(name, ({}, {}))) for name, spec in specs.items()}


def binned_histograms_supported(table: ir.Table) -> bool:
    """Return whether :func:`histogram_metrics` works on ``table``'s backend (DuckDB)."""
    return _backend_name(table) == "duckdb"


def histogram_metrics(
    table: ir.Table,
    specs: Mapping[str, BinSpec],
    *,
    sign_counts: bool = False,
) -> dict[str, ir.Scalar]:
    """Return one DuckDB ``histogram(value, boundaries)`` aggregate per column of ``specs``.

    DuckDB counts each value under the first boundary at or above it, by
    binary search into a fixed array, which is cheaper than grouping. The
    outlier fences are two more boundaries of the same list, and with
    ``sign_counts`` so are the double just below 0 and 0 itself, from which
    :func:`sign_counts_of` reads the negative and zero values. The aggregates
    can join any other aggregate query of ``table``; :func:`read_histograms`
    turns their values into distributions. Columns whose range is empty get
    no aggregate.
    """
    metrics: dict[str, ir.Scalar] = {}
    for name, spec in specs.items():
        layout = _bin_layout(spec)
        if layout is not None:
            values = table[name].cast("float64")
            boundaries = _boundaries(spec, layout[0])
            if sign_counts:
                boundaries = sorted(set(boundaries) | {_just_below(0.0), 0.0})
            metrics[name] = _duckdb_histogram(values, _exact_doubles(boundaries))
    return metrics


def sign_counts_of(value: Iterable[tuple[float, int]] | None) -> tuple[int, int]:
    """Return ``(negatives, zeros)`` from the value of a :func:`histogram_metrics` aggregate built with ``sign_counts``.

    A negative value lies at or below the double just below 0, so it is
    counted under a boundary at or below that one. A zero (or -0.0) is
    counted under 0. NaN, counted above every boundary, is neither, as in
    SQL comparisons.
    """
    below_zero = _just_below(0.0)
    negatives = zeros = 0
    for boundary, rows in value or []:
        if boundary <= below_zero:
            negatives += int(rows)
        elif boundary <= 0.0:
            zeros += int(rows)
    return negatives, zeros


def read_histograms(
    specs: Mapping[str, BinSpec],
    values: Mapping[Any, Any],
    counts: Mapping[str, int] | None = None,
) -> dict[str, Distribution]:
    """Return the distributions of the columns of ``specs`` from the values of :func:`histogram_metrics`.

    Parameters
    ----------
    specs : mapping of str to BinSpec
        The specs the metrics were built from.
    values : mapping
        Column name to the aggregate's value, a list of (boundary, rows).
    counts : mapping of str to int, optional
        Non-null values per column. The values above the range and above
        the upper fence are this count minus those at or below, so NaN
        counts as above, as it sorts above every number. Without it they
        are counted directly and NaN is left out.

    Returns
    -------
    dict of str to Distribution
    """
    counts = counts or {}
    output: dict[str, Distribution] = {}
    for name, spec in specs.items():
        layout = _bin_layout(spec)
        if layout is None:
            output[name] = _distribution(spec, None, {}, {})
            continue
        at_or_below: dict[float, int] = {}
        running = 0
        # Keys are the boundaries in ascending order, then +inf for values above them all.
        for boundary, rows in sorted(values.get(name) or [], key=lambda pair: pair[0]):
            running += int(rows)
            at_or_below[boundary] = running
        total = counts.get(name, running)
        edges, bins = layout
        below_edge = [at_or_below.get(_just_below(edge), 0) for edge in edges[:-1]]
        up_to_high = at_or_below.get(edges[-1], 0)
        buckets = {-1: below_edge[0], bins: total - up_to_high}
        for step in range(bins):
            upper = below_edge[step + 1] if step + 1 < bins else up_to_high
            buckets[step] = upper - below_edge[step]
        sides: dict[int, int] = {}
        if spec.fences is not None:
            sides = {
                -1: at_or_below.get(_just_below(spec.fences[0]), 0),
                1: total - at_or_below.get(spec.fences[1], 0),
            }
        output[name] = _distribution(spec, layout, buckets, sides)
    return output


def _distribution(
    spec: BinSpec,
    layout: tuple[list[float], int] | None,
    buckets: Mapping[int, int],
    sides: Mapping[int, int],
) -> Distribution:
    if layout is None:
        return Distribution(Histogram(edges=[spec.low, spec.high], counts=[]))
    edges, bins = layout
    histogram = Histogram(
        edges=edges,
        counts=[buckets.get(step, 0) for step in range(bins)],
        below=buckets.get(-1, 0),
        above=buckets.get(bins, 0),
    )
    distribution = Distribution(histogram)
    if spec.fences is not None:
        distribution.outliers_low = sides.get(-1, 0)
        distribution.outliers_high = sides.get(1, 0)
    return distribution


def _bin_layout(spec: BinSpec) -> tuple[list[float], int] | None:
    # Bin edges and bin count of one column, or None when the range is empty.
    low, high, bins = spec.low, spec.high, spec.bins
    if spec.integer:
        low, high = math.floor(low), math.ceil(high)
    if spec.integer and high > low:
        # Whole-number bins centred on the integers, so no bin straddles
        # a value and every bin covers the same number of possible values.
        width = math.ceil((high - low + 1) / bins)
        bins = math.ceil((high - low + 1) / width)
        low, high = low - 0.5, low - 0.5 + bins * width
    if not high > low:
        return None
    width = (high - low) / bins
    return [low + step * width for step in range(bins)] + [high], bins


def _just_below(value: float) -> float:
    # "x < value" is "x <= the double just below value".
    return math.nextafter(value, -math.inf)


def _boundaries(spec: BinSpec, edges: Sequence[float]) -> list[float]:
    # Every bin edge is exclusive from above except the top of the range, and
    # so is the lower fence; the upper fence is inclusive.
    points = {_just_below(edge) for edge in edges[:-1]} | {edges[-1]}
    if spec.fences is not None:
        points |= {_just_below(spec.fences[0]), spec.fences[1]}
    return sorted(points)


def _backend_name(table: ir.Table) -> str | None:
    try:
        return table._find_backend(use_default=True).name
    except Exception:  # noqa: BLE001  (an unbound expression has no backend; use the portable query)
        return None


@ibis.udf.agg.builtin(name="histogram")
def _duckdb_histogram(value: float, boundaries: list[float]) -> dict[float, int]:  # type: ignore[empty-body]
    """DuckDB's ``histogram(value, boundaries)``: values per boundary, each value under the first boundary >= it."""


def _exact_doubles(values: Sequence[float]) -> ir.ArrayValue:
    # DuckDB reads a decimal literal such as 0.9999999999999999 as DECIMAL and
    # may round it to another double; text cast to DOUBLE[] is read exactly.
    return ibis.literal("[" + ", ".join(repr(float(value)) for value in values) + "]").cast("array<float64>")


def _grouped_counts(
    table: ir.Table,
    specs: Mapping[str, BinSpec],
    layouts: Mapping[str, tuple[list[float], int]],
) -> dict[str, tuple[dict[int, int], dict[int, int]]]:
    # Portable: one group-by per column on (bin, side of the fences), in one union.
    names = list(layouts)
    parts = []
    for index, name in enumerate(names):
        edges, bins = layouts[name]
        low, high = edges[0], edges[-1]
        width = (high - low) / bins
        spec = specs[name]
        values = table[name].cast("float64")
        bucket = ibis.cases(
            (values < low, -1),
            (values > high, bins),
            else_=((values - low) / width).floor().cast("int64").clip(upper=bins - 1),
        ).cast("int64")
        side = ibis.literal(0, type="int64")
        if spec.fences is not None:
            side = ibis.cases((values < spec.fences[0], -1), (values > spec.fences[1], 1), else_=0).cast("int64")
        part = (
            table.filter(values.notnull())
            .group_by(bucket=bucket, side=side)
            .aggregate(rows=ibis._.count())
            .mutate(column_index=ibis.literal(index, type="int64"))
        )
        parts.append(part)

    output: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
    if not parts:
        return output
    for row in ibis.union(*parts, distinct=False).to_pyarrow().to_pylist():
        buckets, sides = output.setdefault(names[row["column_index"]], ({}, {}))
        rows = int(row["rows"])
        buckets[row["bucket"]] = buckets.get(row["bucket"], 0) + rows
        sides[row["side"]] = sides.get(row["side"], 0) + rows
    return output


def top_values(
    table: ir.Table,
    columns: Sequence[str],
    top_n: int,
    customer_column: str | None = None,
) -> dict[str, list[tuple[str, int, int | None]]]:
    """Return the ``top_n`` most frequent non-null values of each column, as text.

    Ties are broken by the value, so the output is deterministic. One query
    (a union of per-column group-bys) fetches the values of all columns.

    Parameters
    ----------
    table : ibis.Table
    columns : sequence of str
    top_n : int
    customer_column : str, optional
        Column identifying the customer of a row (``customer_id``). When
        given, each value also gets its number of distinct customers, which
        client reports compare with ``privacy.min_group_size``.

    Returns
    -------
    dict of str to list of (value, rows, customers)
        ``customers`` is ``None`` without ``customer_column``.
    """
    parts = []
    for index, name in enumerate(columns):
        column = table[name]
        counts = {"rows": ibis._.count()}
        if customer_column is not None:
            counts["customers"] = table[customer_column].nunique()
        part = (
            table.filter(column.notnull())
            .group_by(value=column.cast("string"))
            .aggregate(**counts)
            .order_by([ibis.desc("rows"), "value"])
            .limit(top_n)
            .mutate(column_index=ibis.literal(index, type="int64"))
        )
        parts.append(part)
    output: dict[str, list[tuple[str, int, int | None]]] = {name: [] for name in columns}
    if not parts:
        return output

    result = ibis.union(*parts, distinct=False).to_pyarrow().to_pylist()
    for row in result:
        customers = int(row["customers"]) if customer_column is not None else None
        output[columns[row["column_index"]]].append((row["value"], int(row["rows"]), customers))
    for name in output:
        output[name].sort(key=lambda item: (-item[1], item[0]))
    return output


def rows_per_month(table: ir.Table, column: str) -> list[tuple[str, int]]:
    """Return ``("YYYY-MM", rows)`` for every month from the first to the last date.

    Months inside the range without rows appear with 0, so gaps in an
    extract are visible.
    """
    values = table[column]
    months = (
        table.filter(values.notnull())
        .group_by(month=values.truncate("M"))
        .aggregate(rows=ibis._.count())
        .to_pyarrow()
        .to_pylist()
    )
    counts = {_month_label(row["month"]): int(row["rows"]) for row in months}
    if not counts:
        return []
    return [(label, counts.get(label, 0)) for label in _month_range(min(counts), max(counts))]


def key_null_metric(table: ir.Table, key: Sequence[str]) -> ir.Scalar:
    """Return the count of rows where any key column is null."""
    any_null = ibis.or_(*[table[name].isnull() for name in key])
    return any_null.sum()


def duplicate_keys(table: ir.Table, key: Sequence[str]) -> dict[str, int]:
    """Count key values that occur more than once, and the rows carrying them.

    Rows with a null in any key column are left out (see :func:`key_null_metric`).

    Returns
    -------
    dict
        ``duplicate_keys``: distinct key values found on two or more rows;
        ``duplicate_key_rows``: rows carrying such a key value.
    """
    complete = ibis.and_(*[table[name].notnull() for name in key])
    groups = table.filter(complete).group_by(list(key)).aggregate(rows=ibis._.count())
    repeated = groups.rows > 1
    row = groups.aggregate(
        duplicate_keys=repeated.sum(),
        duplicate_key_rows=groups.rows.sum(where=repeated),
    ).to_pyarrow().to_pylist()[0]
    return {name: int(value or 0) for name, value in row.items()}


def is_integer_type(dtype: idt.DataType) -> bool:
    """Return whether values of ``dtype`` are whole numbers (integers, scale-0 decimals)."""
    if dtype.is_integer():
        return True
    return bool(dtype.is_decimal() and dtype.scale == 0)


def clean_number(value: Any) -> float | None:
    """Return ``value`` as a float, with NaN and infinities as ``None``."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _month_label(value: Any) -> str:
    return f"{value.year:04d}-{value.month:02d}"


def _month_range(first: str, last: str) -> Iterable[str]:
    year, month = int(first[:4]), int(first[5:])
    end = (int(last[:4]), int(last[5:]))
    while (year, month) <= end:
        yield f"{year:04d}-{month:02d}"
        month += 1
        if month > 12:
            year, month = year + 1, 1
