"""Statistics of the fetched sample, checked against DuckDB's own aggregates on the same rows."""

from __future__ import annotations

import math

import ibis
import numpy as np
import pandas as pd
import pytest

from relmap_utils.profiling import profile_table, profiler, stats
from relmap_utils.profiling.model import QUANTILES

TOLERANCE = 1e-9


@pytest.fixture
def backend():
    return ibis.duckdb.connect()


@pytest.fixture
def awkward(backend):
    """400 rows with nulls, a constant column, 1e9 amounts, a boolean and a tinyint.

    ``sparse`` shares one row with ``amount`` and ``flat_where_amount`` is
    constant wherever ``amount`` is present, so DuckDB returns no
    correlation for those pairs.
    """
    rng = np.random.default_rng(7)
    rows = 400
    amount = 1e9 + rng.normal(0, 2e6, rows)
    amount[rng.random(rows) < 0.1] = np.nan
    income = amount * 3e-4 + rng.normal(0, 500, rows)
    income[rng.random(rows) < 0.2] = np.nan
    share = rng.random(rows)
    flag = share + rng.normal(0, 0.3, rows) > 0.5
    target = (rng.random(rows) < 0.3).astype(np.int8)
    sparse = np.full(rows, np.nan)
    sparse[np.isnan(amount)] = rng.normal(size=int(np.isnan(amount).sum()))
    sparse[np.flatnonzero(~np.isnan(amount))[0]] = 1.0
    flat_where_amount = np.where(np.isnan(amount), rng.normal(size=rows), 5.0)
    frame = pd.DataFrame(
        {
            "amount": amount,
            "income": income,
            "share": share,
            "constant": np.full(rows, 0.1),
            "flag": flag,
            "target": pd.array(target, dtype="Int8"),
            "sparse": sparse,
            "flat_where_amount": flat_where_amount,
        }
    )
    return backend.create_table("awkward", frame)


def _duckdb_correlation(backend, table_name: str, first: str, second: str) -> float | None:
    sql = f'SELECT corr(CAST("{first}" AS DOUBLE), CAST("{second}" AS DOUBLE)) FROM "{table_name}"'
    return stats.clean_number(backend.con.sql(sql).fetchone()[0])


def test_correlations_match_duckdb(backend, awkward):
    columns = awkward.columns
    values, valid = stats.number_matrix(stats.fetch_sample_columns(awkward, columns), columns)

    matrix = stats.pairwise_correlations(values, valid)

    defined = 0
    for first in range(len(columns)):
        for second in range(first + 1, len(columns)):
            expected = _duckdb_correlation(backend, "awkward", columns[first], columns[second])
            actual = stats.clean_number(matrix[first, second])
            pair = (columns[first], columns[second])
            if expected is None:
                assert actual is None, pair
            else:
                defined += 1
                assert actual == pytest.approx(expected, abs=TOLERANCE), pair
    # 8 columns make 28 pairs. Undefined are the 7 of "constant" and 4 more:
    # "sparse" and "flat_where_amount" each with amount and with income, which
    # is present only where amount is.
    assert defined == 28 - 7 - 4


def test_correlation_of_amounts_near_1e9(backend):
    # A hand-checkable pair: y = 2 x exactly, on values near 1e9 with small spread.
    x = [1e9 + step for step in range(10)]
    table = backend.create_table("t", pd.DataFrame({"x": x, "y": [2 * value for value in x]}))
    values, valid = stats.number_matrix(stats.fetch_sample_columns(table, ["x", "y"]), ["x", "y"])

    assert stats.pairwise_correlations(values, valid)[0, 1] == pytest.approx(1.0, abs=TOLERANCE)


def test_correlation_chunks_change_nothing(awkward):
    columns = awkward.columns
    values, valid = stats.number_matrix(stats.fetch_sample_columns(awkward, columns), columns)

    whole = stats.pairwise_correlations(values, valid, chunk_rows=1_000)
    chunked = stats.pairwise_correlations(values, valid, chunk_rows=7)

    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-12)


def test_non_finite_values_leave_their_column_out():
    # Without the infinity: x = 1..4 and z = 1, 3, 2, 4 give r = 4 / 5.
    values = np.array([[1.0, 2.0, 1.0], [2.0, math.inf, 3.0], [3.0, 1.0, 2.0], [4.0, 5.0, 4.0]])
    valid = np.ones_like(values, dtype=bool)

    matrix = stats.pairwise_correlations(values, valid)

    assert math.isnan(matrix[0, 1])
    assert math.isnan(matrix[1, 2])
    assert matrix[0, 2] == pytest.approx(0.8, abs=TOLERANCE)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100, 1001])
def test_quantiles_equal_duckdb_quantile_cont(backend, size):
    rng = np.random.default_rng(size)
    # Repeated integers and skewed amounts: ties and uneven gaps.
    values = np.concatenate([rng.integers(0, 5, size // 2).astype(float), rng.lognormal(8, 2, size - size // 2)])
    table = backend.create_table("t", pd.DataFrame({"x": values}), overwrite=True)
    levels = list(QUANTILES.values())
    expected = backend.con.sql(f"SELECT quantile_cont(x, {levels}) FROM t").fetchone()[0]

    actual = stats.sample_quantiles(np.sort(values))

    assert actual == expected


def test_quantiles_sort_nan_last_as_duckdb(backend):
    backend.con.sql("CREATE TABLE n AS SELECT unnest([1.0, 2.0, 3.0, 'NaN'::DOUBLE, 4.0]) AS x")
    expected = backend.con.sql("SELECT quantile_cont(x, [0.25, 0.5, 0.9]) FROM n").fetchone()[0]

    actual = stats.sample_quantiles(np.sort(np.array([1.0, 2.0, 3.0, math.nan, 4.0])), [0.25, 0.5, 0.9])

    assert actual[:2] == expected[:2]
    assert math.isnan(expected[2])
    assert math.isnan(actual[2])


def test_quantiles_of_no_values():
    assert stats.sample_quantiles(np.array([])) == []


def test_sample_distinct_matches_count_distinct(backend):
    frame = pd.DataFrame(
        {
            "code": ["a", "b", None, "a", "c", "b", None, "d"],
            "amount": [1.5, 1.5, None, 2.0, -0.0, 0.0, 3.0, 2.0],
            "opened": pd.to_datetime(["2024-01-01", "2024-01-01", None, "2024-02-01", "2024-03-01", None, None, None]),
            "active": [True, False, True, None, True, True, False, True],
        }
    )
    table = backend.create_table("t", frame)
    expected = backend.con.sql(
        "SELECT count(DISTINCT code), count(DISTINCT amount), count(DISTINCT opened), count(DISTINCT active) FROM t"
    ).fetchone()

    fetched = stats.fetch_sample_columns(table, ["amount"], ["code", "opened", "active"])
    counts = stats.sample_distinct(fetched)

    assert [counts[name] for name in ("code", "amount", "opened", "active")] == list(expected)


def test_sorted_distinct_counts_nan_once():
    assert stats.sorted_distinct(np.sort(np.array([2.0, math.nan, 1.0, math.nan, 2.0]))) == 3
    assert stats.sorted_distinct(np.array([], dtype=float)) == 0
    assert stats.sorted_distinct(np.array([3, 3, 4])) == 2


def test_text_is_fetched_as_hashes_with_nulls_kept(backend):
    table = backend.create_table("t", pd.DataFrame({"name": ["甲" * 500, None, "乙"], "x": [1.0, 2.0, None]}))

    fetched = stats.fetch_sample_columns(table, ["x"], ["name"])

    assert fetched.column_names == ["x", "name"]
    assert fetched["name"].type.bit_width == 64
    assert fetched["name"].null_count == 1
    assert fetched["x"].to_pylist() == [1.0, 2.0, None]


def test_exact_table_above_sample_size_keeps_exact_quantiles(backend, monkeypatch):
    # exact_limit raised above SAMPLE_ROWS: quantiles come from the database over
    # every row, correlations from the sample.
    rng = np.random.default_rng(3)
    x = rng.lognormal(5, 1, 3_000)
    table = backend.create_table("t", pd.DataFrame({"x": x, "y": x * 2 + rng.normal(0, 1, 3_000)}))
    monkeypatch.setattr(profiler, "SAMPLE_ROWS", 500)
    levels = list(QUANTILES.values())
    expected = backend.con.sql(f"SELECT quantile_cont(x, {levels}) FROM t").fetchone()[0]

    profile = profile_table(table, "t", exact_limit=10_000)

    column = profile.columns["x"]
    assert column.quantiles_exact is True
    assert list(column.quantiles.values()) == pytest.approx(expected, abs=TOLERANCE)
    assert profile.correlation("x", "y") == pytest.approx(1.0, abs=0.01)


def test_wide_table_fetches_in_groups(backend, monkeypatch):
    # Three columns per fetch: the correlated columns still come from one fetch.
    monkeypatch.setattr(profiler, "SAMPLE_FETCH_COLUMNS", 3)
    monkeypatch.setattr(profiler, "MAX_CORRELATION_COLUMNS", 3)
    frame = pd.DataFrame({f"v{index}": [float(step * (index + 1)) for step in range(40)] for index in range(5)})
    frame["segment"] = ["a", "b", "c", "d"] * 10
    table = backend.create_table("t", frame)

    profile = profile_table(table, "t", exact_limit=0)

    assert {(first, second) for first, second, _ in profile.correlations} == {("v0", "v1"), ("v0", "v2"), ("v1", "v2")}
    assert profile.columns["v4"].quantiles["p50"] == pytest.approx(19.5 * 5, abs=TOLERANCE)
    assert profile.columns["segment"].distinct == 4
    assert profile.columns["segment"].distinct_exact is True


def test_nan_values_leave_their_correlations_out(backend):
    # DuckDB's corr raises "out of range" on NaN; the sample pass drops the pair instead.
    backend.con.sql(
        "CREATE TABLE n AS SELECT range::DOUBLE AS x, CASE WHEN range = 3 THEN 'NaN'::DOUBLE ELSE range * 2.0 END AS y, "
        "range * -1.0 AS z FROM range(50)"
    )

    _, correlations, _ = profiler._sample_pass(backend.table("n"), ["x", "y", "z"], 50, True)

    assert [(first, second) for first, second, _ in correlations] == [("x", "z")]
    assert correlations[0][2] == pytest.approx(-1.0, abs=TOLERANCE)


def test_histogram_counts_zeros_and_negatives(backend):
    # The smallest negative double and -0.0 sit on either side of the boundary below 0.
    values = [-3.5, -5e-324, -0.0, 0.0, 0.0, 2.0, 5.0, 7.0, 9.0, 11.0, None]
    table = backend.create_table("t", pd.DataFrame({"x": values}))

    column = profile_table(table, "t").columns["x"]

    assert column.histogram is not None
    assert column.negatives == 2
    assert column.zeros == 3


def test_sign_counts_from_histogram_match_sql(backend):
    rng = np.random.default_rng(5)
    x = np.round(rng.normal(0, 3, 500))
    table = backend.create_table("t", pd.DataFrame({"x": x}))
    spec = stats.BinSpec(-5.0, 5.0, 10)

    value = stats.run_aggregate(table, stats.histogram_metrics(table, {"x": spec}, sign_counts=True))["x"]

    assert stats.sign_counts_of(value) == (int((x < 0).sum()), int((x == 0).sum()))
