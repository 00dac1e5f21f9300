"""Profiling statistics by SQL pushdown: hand-computed values on tiny tables."""

from __future__ import annotations

import datetime as dt
import math

import ibis
import pandas as pd
import pytest

from relmap_utils.profiling import profile_table
from relmap_utils.profiling import stats

TOLERANCE = 1e-9


@pytest.fixture
def backend():
    return ibis.duckdb.connect()


class _CountingConnection:
    """Wraps a DuckDB connection and counts the SQL statements Ibis sends through ``sql``."""

    def __init__(self, connection):
        self._connection = connection
        self.statements = 0

    def sql(self, *args, **kwargs):
        self.statements += 1
        return self._connection.sql(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._connection, name)


def test_numeric_summary(backend):
    # x = 1..9 and one missing value: mean 5, sample variance 60 / 8 = 7.5,
    # quartiles by linear interpolation at positions 2 and 6 of 0..8: 3 and 7.
    table = backend.create_table("t", pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, None]}))

    column = profile_table(table, "t").columns["x"]

    assert column.semantic_type == "numeric"
    assert column.count == 9
    assert column.missing == 1
    assert column.missing_share == pytest.approx(0.1)
    assert column.distinct == 9
    assert column.min == 1.0
    assert column.max == 9.0
    assert column.mean == pytest.approx(5.0, abs=TOLERANCE)
    assert column.std == pytest.approx(math.sqrt(7.5), abs=TOLERANCE)
    assert column.quantiles["p25"] == pytest.approx(3.0, abs=TOLERANCE)
    assert column.quantiles["p50"] == pytest.approx(5.0, abs=TOLERANCE)
    assert column.quantiles["p75"] == pytest.approx(7.0, abs=TOLERANCE)
    assert column.quantiles_exact is True


def test_tukey_outliers(backend):
    # y = 1..9, 100: Q1 = 3.25, Q3 = 7.75 (positions 2.25 and 6.75 of 0..9),
    # IQR 4.5, fences -3.5 and 14.5, so only 100 is an outlier.
    table = backend.create_table("t", pd.DataFrame({"y": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 100]}))

    column = profile_table(table, "t").columns["y"]

    assert column.lower_fence == pytest.approx(-3.5, abs=TOLERANCE)
    assert column.upper_fence == pytest.approx(14.5, abs=TOLERANCE)
    assert column.outliers_low == 0
    assert column.outliers_high == 1
    assert column.negatives == 0


def test_zero_iqr_gives_no_fences(backend):
    table = backend.create_table("t", pd.DataFrame({"y": [0.0] * 8 + [5.0, 7.0]}))

    column = profile_table(table, "t").columns["y"]

    assert column.lower_fence is None
    assert column.outliers is None
    assert column.zeros == 8


def test_float_histogram_bins(backend):
    # 0..100: p01 = 1 and p99 = 99 (linear interpolation at positions 1 and 99),
    # so 4 bins of width 24.5 start at 1 and end at 99; 0 lies below and 100 above.
    table = backend.create_table("t", pd.DataFrame({"x": [float(value) for value in range(101)]}))

    histogram = profile_table(table, "t", histogram_bins=4).columns["x"].histogram

    assert histogram.edges == pytest.approx([1.0, 25.5, 50.0, 74.5, 99.0])
    assert histogram.counts == [25, 24, 25, 25]
    assert histogram.below == 1
    assert histogram.above == 1


def test_integer_histogram_has_unit_bins(backend):
    values = [10, 11, 11, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]
    table = backend.create_table("t", pd.DataFrame({"days": values}))

    histogram = profile_table(table, "t", histogram_bins=20).columns["days"].histogram

    # 20 integers (10..29) fit 20 bins: one bin per value, centred on it.
    assert histogram.edges[0] == pytest.approx(9.5)
    assert histogram.edges[-1] == pytest.approx(29.5)
    assert histogram.counts[:3] == [1, 2, 3]
    assert sum(histogram.counts) == len(values)


@pytest.mark.parametrize(
    ("minimum", "maximum", "quantiles", "expected"),
    [
        (0.0, 100.0, {"p01": 1.0, "p99": 99.0}, (1.0, 99.0)),
        (0.0, 1000.0, {"p01": 1.0, "p99": 50.0}, (1.0, 50.0)),
        (0.0, 10.0, {"p01": 3.0, "p99": 3.0}, (0.0, 10.0)),
        (0.0, 10.0, None, (0.0, 10.0)),
    ],
    ids=["short-tails", "long-tails", "equal-percentiles", "no-quantiles"],
)
def test_histogram_range(minimum, maximum, quantiles, expected):
    assert stats.histogram_range(minimum, maximum, quantiles) == expected


def test_long_tail_counts_outside_range(backend):
    values = [float(v) for v in range(1, 100)] + [100000.0]
    table = backend.create_table("t", pd.DataFrame({"balance": values}))

    histogram = profile_table(table, "t").columns["balance"].histogram

    # p01 = 1.99 and p99 = 1098.01 (positions 0.99 and 98.01 of 0..99), so 1
    # lies below the bins and 100000 above.
    assert histogram.edges[0] == pytest.approx(1.99)
    assert histogram.edges[-1] == pytest.approx(1098.01)
    assert histogram.below == 1
    assert histogram.above == 1
    assert sum(histogram.counts) == 98


def test_top_values_sorted_by_rows_then_value(backend):
    table = backend.create_table("t", pd.DataFrame({"segment": ["a", "b", "b", "c", "c", "c", "d", None]}))

    column = profile_table(table, "t", top_n=3).columns["segment"]

    assert column.semantic_type == "category"
    assert column.top_values == [("c", 3), ("b", 2), ("a", 1)]
    assert column.mean is None


def test_rows_per_month_fills_gaps(backend):
    dates = pd.to_datetime(["2023-01-15", "2023-01-20", "2023-03-01", None])
    table = backend.create_table("t", pd.DataFrame({"txn_time": dates, "amount": [1.0, 2.0, 3.0, 4.0]}))

    profile = profile_table(table, "t", date_column="txn_time")

    assert profile.rows_per_month == [("2023-01", 2), ("2023-02", 0), ("2023-03", 1)]
    assert profile.empty_months == ["2023-02"]
    assert profile.date_min == dt.date(2023, 1, 15)
    assert profile.date_max == dt.date(2023, 3, 1)


def test_duplicate_and_null_keys(backend):
    table = backend.create_table("t", pd.DataFrame({"id": [1, 1, 2, 3, 3, 3, None]}, dtype="Int64"))

    profile = profile_table(table, "t", key=["id"])

    assert profile.duplicate_keys == 2
    assert profile.duplicate_key_rows == 5
    assert profile.key_null_rows == 1


def test_implausible_dates(backend):
    as_of = dt.date(2024, 6, 30)
    dates = [dt.date(1899, 12, 31), dt.date(2020, 1, 1), as_of + dt.timedelta(days=400), dt.date(2024, 7, 1)]
    table = backend.create_table("t", pd.DataFrame({"birth_date": pd.to_datetime(dates)}))

    column = profile_table(table, "t", as_of=as_of).columns["birth_date"]

    assert column.semantic_type == "date"
    assert column.implausible_dates == 2


def test_damaged_identifiers_counted(backend):
    values = ["6.2E+18", "6222021234567890123", "1.23e+17", "ABC123"]
    table = backend.create_table("t", pd.DataFrame({"card_ref": values}))
    meta = {"card_ref": {"role": "identifier", "declared": True}}

    column = profile_table(table, "t", column_meta=meta).columns["card_ref"]

    assert column.semantic_type == "identifier"
    assert column.damaged_identifiers == 2


def test_correlation_of_numeric_columns_only(backend):
    frame = pd.DataFrame(
        {
            "customer_no": range(100001, 100011),
            "a": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            "b": [2.0, 4, 6, 8, 10, 12, 14, 16, 18, 20],
            "c": [10.0, 9, 8, 7, 6, 5, 4, 3, 2, 1],
        }
    )
    table = backend.create_table("t", frame)

    profile = profile_table(table, "t")

    assert profile.correlation("a", "b") == pytest.approx(1.0, abs=TOLERANCE)
    assert profile.correlation("a", "c") == pytest.approx(-1.0, abs=TOLERANCE)
    assert all("customer_no" not in pair[:2] for pair in profile.correlations)


def test_approximate_path_matches_on_small_data(backend):
    table = backend.create_table("t", pd.DataFrame({"x": [float(v) for v in range(1, 5001)], "k": ["a", "b"] * 2500}))

    exact = profile_table(table, "t")
    approximate = profile_table(table, "t", exact_limit=0)

    assert approximate.exact is False
    assert approximate.columns["x"].distinct_exact is False
    # DuckDB's HyperLogLog errs by up to about a fifth.
    assert approximate.columns["x"].distinct == pytest.approx(5000, rel=0.25)
    # 5,000 rows are fewer than a sample's rows: the whole table is fetched,
    # so the quantiles stay exact.
    assert approximate.columns["x"].quantiles_exact is True
    assert approximate.columns["x"].quantiles == exact.columns["x"].quantiles
    assert approximate.columns["x"].mean == pytest.approx(2500.5, abs=TOLERANCE)
    # Few values in the sample: counted exactly even on the approximate path.
    assert approximate.columns["k"].distinct_exact is True
    assert approximate.columns["k"].distinct == 2


def test_large_table_quantiles_come_from_the_sample(backend, monkeypatch):
    from relmap_utils.profiling import profiler

    # 20,000 rows of 0..19,999, one in ten null; a sample of about 2,000 rows.
    values = [None if v % 10 == 0 else float(v) for v in range(20_000)]
    table = backend.create_table("t", pd.DataFrame({"x": values}))
    monkeypatch.setattr(profiler, "SAMPLE_ROWS", 2_000)

    column = profile_table(table, "t", exact_limit=1_000).columns["x"]

    assert column.quantiles_exact is False
    assert column.quantiles["p50"] == pytest.approx(10_000, rel=0.1)
    assert column.quantiles["p99"] == pytest.approx(19_800, rel=0.02)
    # Counts, mean and the histogram still cover every row.
    assert column.count == 18_000
    assert column.mean == pytest.approx(sum(v for v in values if v is not None) / 18_000, abs=1e-6)
    histogram = column.histogram
    assert sum(histogram.counts) + histogram.below + histogram.above == 18_000
    assert column.outliers == 0


def test_binned_histogram_matches_grouped_counts(backend):
    # Values on the bin edges, on the fences and infinity: DuckDB's
    # histogram(value, boundaries) must count them as the portable group-by does.
    values = [0.0, 1.0, 2.0, 2.5, 5.0, 7.5, 10.0, 10.0, 12.0, -3.0, float("inf"), None]
    table = backend.create_table("t", pd.DataFrame({"x": values, "n": [0, 1, 2, 2, 5, 7, 10, 10, 12, -3, 4, 4]}))
    specs = {
        "x": stats.BinSpec(0.0, 10.0, 4, False, (1.0, 10.0)),
        "n": stats.BinSpec(0, 10, 4, True, (-2.5, 9.5)),
    }
    layouts = {name: stats._bin_layout(spec) for name, spec in specs.items()}
    grouped = {
        name: stats._distribution(specs[name], layouts[name], *counts)
        for name, counts in stats._grouped_counts(table, specs, layouts).items()
    }

    binned = stats.distributions(table, specs, {"x": 11, "n": 12})

    assert binned == grouped
    # Bins [0, 2.5), [2.5, 5), [5, 7.5), [7.5, 10]; 12 and infinity lie above.
    assert binned["x"].histogram.counts == [3, 1, 1, 3]
    assert (binned["x"].histogram.below, binned["x"].histogram.above) == (1, 2)
    assert (binned["x"].outliers_low, binned["x"].outliers_high) == (2, 2)


def test_query_count_does_not_grow_with_width(backend):
    def statements_for(width: int) -> int:
        frame = pd.DataFrame({f"v{i}": [float(j * (i + 1)) for j in range(50)] for i in range(width)})
        frame["segment"] = ["a", "b"] * 25
        table = backend.create_table(f"t{width}", frame, overwrite=True)
        counting = _CountingConnection(backend.con)
        backend.con = counting
        try:
            profile_table(table, f"t{width}")
        finally:
            backend.con = counting._connection
        return counting.statements

    assert statements_for(3) == statements_for(30)
    assert statements_for(30) <= 8


@pytest.mark.parametrize(
    ("key", "date_column", "match"),
    [
        (["missing"], None, "missing"),
        (None, "nowhere", "nowhere"),
        (None, "amount", "amount"),
    ],
    ids=["unknown-key", "unknown-date", "date-not-a-date"],
)
def test_bad_arguments_name_the_column(backend, key, date_column, match):
    from relmap_utils.errors import StageError

    table = backend.create_table("t", pd.DataFrame({"amount": [1.0, 2.0]}))

    with pytest.raises(StageError, match=match):
        profile_table(table, "t", key=key, date_column=date_column)


def test_empty_table(backend):
    table = backend.create_table("t", pd.DataFrame({"x": pd.Series([], dtype="float64"), "s": pd.Series([], dtype="string")}))

    profile = profile_table(table, "t")

    assert profile.rows == 0
    assert profile.columns["x"].count == 0
    assert profile.columns["x"].histogram is None
    assert profile.columns["s"].top_values == []


def test_profiling_package_imports_no_report_libraries():
    import subprocess
    import sys

    code = (
        "import sys; from relmap_utils.profiling import profile_tables; "
        "print(sorted(name for name in ('plotly', 'pandas') if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert "plotly" not in result.stdout
