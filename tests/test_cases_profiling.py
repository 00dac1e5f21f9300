"""Hard input B09: a unique integer customer number, integer codes, and two real quantities.

The profile must treat the customer number as an identifier (no mean, no
histogram, no correlation), sex and risk level as categories (risk level
ordinal), and give age and balance the usual statistics with the sample
standard deviation. The same must hold when the file arrives as Parquet with
shuffled rows and English headers, because the point is the kind of column,
not this file.
"""

from __future__ import annotations

import json
from pathlib import Path

import ibis
import pandas as pd
import pytest

from relmap_utils.profiling import profile_table

ENGLISH = {"客户号": "customer_no", "年龄": "age", "性别": "sex", "风险等级": "risk_level", "资产余额": "balance"}
# expected.json names the category types this way; the profile stores the
# type and the ordinal flag separately.
EXPECTED_TYPES = {
    "identifier": ("identifier", False),
    "categorical": ("category", False),
    "categorical (ordinal)": ("category", True),
    "numeric": ("numeric", False),
}


@pytest.fixture(scope="module")
def case(cases: Path) -> dict:
    folder = cases / "B09"
    content = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    return {"csv": folder / "customer_profile.csv", "expected": content["expected"], "tolerance": content["tolerance"]}


def _as_csv(case: dict, tmp_path: Path):
    return ibis.duckdb.connect().read_csv(case["csv"]), {name: name for name in ENGLISH}


def _as_shuffled_parquet_with_english_headers(case: dict, tmp_path: Path):
    frame = pd.read_csv(case["csv"]).sample(frac=1.0, random_state=7).rename(columns=ENGLISH)
    path = tmp_path / "customer_profile.parquet"
    frame.to_parquet(path, index=False)
    return ibis.duckdb.connect().read_parquet(path), ENGLISH


@pytest.fixture(params=[_as_csv, _as_shuffled_parquet_with_english_headers], ids=["csv", "parquet-english"])
def profiled(request, case, tmp_path):
    table, names = request.param(case, tmp_path)
    return profile_table(table, "customer_profile"), names


def test_semantic_types(profiled, case):
    profile, names = profiled
    for column, expected in case["expected"].items():
        semantic = profile.columns[names[column]].semantic
        assert (semantic.type, semantic.ordinal) == EXPECTED_TYPES[expected["semantic_type"]], column


def test_identifier_has_counts_only(profiled, case):
    profile, names = profiled
    expected = case["expected"]["客户号"]
    column = profile.columns[names["客户号"]]

    assert column.distinct == expected["distinct"]
    assert column.unique_ratio == pytest.approx(expected["unique_ratio"])
    assert column.missing == expected["missing"]
    assert column.mean is None
    assert column.std is None
    assert column.quantiles is None
    assert column.histogram is None


def test_identifier_not_in_correlations(profiled):
    profile, names = profiled
    correlated = {name for pair in profile.correlations for name in pair[:2]}

    assert names["客户号"] not in correlated
    assert correlated == {names["年龄"], names["资产余额"]}


@pytest.mark.parametrize("column", ["性别", "风险等级"])
def test_codes_are_counted_not_averaged(profiled, case, column):
    profile, names = profiled
    profiled_column = profile.columns[names[column]]

    assert dict(profiled_column.top_values) == case["expected"][column]["counts"]
    assert profiled_column.mean is None
    assert profiled_column.histogram is None


@pytest.mark.parametrize("column", ["年龄", "资产余额"])
def test_numeric_statistics(profiled, case, column):
    profile, names = profiled
    expected = case["expected"][column]
    tolerance = case["tolerance"]
    profiled_column = profile.columns[names[column]]

    assert profiled_column.count == expected["count"]
    assert profiled_column.mean == pytest.approx(expected["mean"], rel=tolerance)
    assert profiled_column.quantiles["p50"] == pytest.approx(expected["median"], rel=tolerance)
    assert profiled_column.min == pytest.approx(expected["min"], rel=tolerance)
    assert profiled_column.max == pytest.approx(expected["max"], rel=tolerance)
    assert profiled_column.std == pytest.approx(expected["std_sample"], rel=tolerance)
    assert profiled_column.histogram is not None
