"""Charts of the profiling report: axis titles, percentile clipping, log counts, 万/亿 ticks."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest

from relmap_utils.profiling import profile_tables, report
from relmap_utils.profiling.ticks import chinese_number, log_ticks, nice_ticks


@pytest.fixture(scope="module")
def profile():
    # Balances of 950 ordinary customers around 8,000 and 50 wealthy ones around 9 million.
    rng = np.random.default_rng(20240601)
    balances = np.concatenate([rng.lognormal(9, 1, 950), rng.lognormal(16, 1, 50)])
    frame = pd.DataFrame(
        {
            "account_id": [f"a{index:04d}" for index in range(1000)],
            "balance": balances,
            "product_code": [None if index % 4 == 0 else "P1" for index in range(1000)],
        }
    )
    backend = ibis.duckdb.connect()
    return profile_tables({"balances": backend.create_table("balances", frame)})


def test_missing_chart_titles_share_axis(profile):
    figure = report.missing_chart(profile, "zh_CN")

    assert figure.layout.xaxis.title.text == "缺失率"
    assert not figure.layout.yaxis.title.text
    assert list(figure.data[0].y) == ["balances.product_code"]


def test_histogram_clips_and_says_so(profile):
    figure = report.histogram_grid(profile, locale="zh_CN")

    histogram = profile.column("balances", "balance").histogram
    assert histogram.below == 10
    assert histogram.above == 10
    assert "第 1–99 百分位" in figure.layout.title.text
    assert "20 个值在第 1–99 百分位之外，未画出" in figure.layout.annotations[0].text


def test_histogram_of_skewed_amounts_uses_log_counts(profile):
    figure = report.histogram_grid(profile, locale="en")

    assert figure.layout.yaxis.type == "log"
    assert "counts on a log scale" in figure.layout.annotations[0].text


def test_chinese_histogram_ticks_use_wan(profile):
    figure = report.histogram_grid(profile, locale="zh_CN")

    labels = list(figure.layout.xaxis.ticktext)
    assert labels and all(label.endswith("万") for label in labels if label != "0")
    assert not any(label.endswith("M") or label.endswith("k") for label in labels)
    assert list(figure.layout.yaxis.ticktext) == ["1", "10", "100", "1000"]


def test_english_histogram_keeps_plotly_ticks(profile):
    figure = report.histogram_grid(profile, locale="en")

    assert figure.layout.xaxis.ticktext is None


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (950, "950"), (12000, "1.2万"), (3500000, "350万"), (120000000, "1.2亿"), (-50000, "-5万"), (0.25, "0.25")],
)
def test_chinese_number(value, text):
    assert chinese_number(value) == text


def test_nice_ticks_round_steps():
    assert nice_ticks(0, 10) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(1200, 9800) == [2000, 4000, 6000, 8000]
    assert nice_ticks(5, 5) == [5]


def test_log_ticks_reach_the_top():
    assert log_ticks(950) == [1, 10, 100, 1000]
    assert log_ticks(0) == [1]
