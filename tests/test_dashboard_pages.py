"""Dashboard pages on small hand-made artifacts: key findings, the map page, privacy of groups."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from relmap_utils.dashboard import render
from relmap_utils.dashboard.map_page import MapPage
from relmap_utils.dashboard.overview import OverviewPage, headline_metrics
from relmap_utils.dashboard.run import open_run
from tests.test_dashboard import PAYLOAD, engagement, write_run  # noqa: F401  (engagement is a fixture)

AS_OF = "2024-06-30"


@pytest.fixture
def shown(monkeypatch) -> dict:
    """Collect what the pages display instead of sending it to a notebook."""
    collected: dict = {"html": [], "figures": []}
    monkeypatch.setattr(render, "display_html", collected["html"].append)
    monkeypatch.setattr(render, "show_figure", collected["figures"].append)
    return collected


def write_map(run_dir: Path) -> None:
    """Write a 02_map artifact folder: 25 customers in a city, 12 in the payload city, 3 in a small one."""
    folder = run_dir / "artifacts" / "02_map"
    cities = ["上海"] * 25 + [PAYLOAD] * 12 + ["拉萨"] * 3
    stages = ["mid_family"] * 18 + ["young_single"] * 11 + ["retirement"] * 4 + ["pre_retirement"] * 7
    frame = pd.DataFrame(
        {
            "customer_id": [f"p{i:03d}" for i in range(40)],
            "city": cities,
            "city_tier": ["一线"] * 40,
            "life_stage": stages,
            "aum": [1000.0] * 40,
            "deposit_accounts": [1] * 40,
            "wealth_accounts": [1] * 5 + [0] * 35,
        }
    )
    partition = folder / "customer_map" / f"as_of={AS_OF}"
    partition.mkdir(parents=True)
    frame.to_parquet(partition / "part-0.parquet", index=False)
    pd.DataFrame(
        {"as_of": [AS_OF], "family": ["profile"], "status": ["included"], "customers": [40], "covered": [40],
         "share": [1.0], "features_included": [3], "features_left_out": [0]}
    ).to_parquet(folder / "coverage.parquet", index=False)  # fmt: skip
    pd.DataFrame(
        {"name": ["life_stage", "city"], "family": ["profile", "profile"],
         "description_zh": ["人生阶段：细分说明", "城市"], "description_en": ["Life stage: detail", "City"],
         "unit": ["category", "category"], "formula": ["", ""], "source_tables": ["customers", "customers"],
         "status": ["included", "included"], "reason_zh": [None, None], "reason_en": [None, None],
         "no_data_value": [None, None]}
    ).to_parquet(folder / "feature_dictionary.parquet", index=False)  # fmt: skip


@pytest.fixture
def map_run(engagement) -> Path:  # noqa: F811
    summary = {"stage": "02_map", "as_of_dates": [AS_OF], "customers": 40, "features": {"included": 3}}
    run_dir = write_run(engagement, "20260101-090000", stages={"02_map": summary})
    write_map(run_dir)
    return run_dir


def test_map_header_shows_summary_cards(map_run, shown):
    MapPage(open_run(map_run)).header()
    markup = "".join(shown["html"])
    assert "客户关系地图" in markup
    assert AS_OF in markup
    assert ">40<" in markup


def test_map_mix_merges_small_groups(map_run, shown):
    MapPage(open_run(map_run)).customer_mix()
    figure = shown["figures"][0]
    # Life stages by name, in life order; the merged group stays last.
    assert list(figure.data[0].x) == ["青年单身", "中年成家", "其他"]
    assert list(figure.data[0].y) == [11, 18, 11]
    notes = "".join(shown["html"])
    assert "合并为“其他”" in notes


def test_map_filter_values_are_large_groups_only(map_run):
    page = MapPage(open_run(map_run))
    specs = {spec.key: spec for spec in page._filter_specs()}
    assert [value for _, value in specs["region"].options] == ["上海", PAYLOAD]
    assert specs["region"].label == "城市"
    assert [value for _, value in specs["product"].options] == ["deposit", "wealth"]


def test_map_filter_below_minimum_is_suppressed(map_run, shown):
    page = MapPage(open_run(map_run))
    page._draw_mix({"region": None, "segment": None, "product": "wealth"})
    assert shown["figures"] == []
    assert "不予显示" in "".join(shown["html"])


def test_map_dictionary_escapes_text(map_run, shown):
    MapPage(open_run(map_run)).feature_dictionary()
    markup = "".join(shown["html"])
    assert "人生阶段：细分说明" in markup
    assert "<img" not in markup


def test_overview_uses_headline_contract(engagement, shown):  # noqa: F811
    summary = {
        "stage": "03_segments",
        "headline_metrics": [
            {"label": {"zh_CN": "客群数", "en": "Segments"}, "value": 6, "format": "number"},
            {"label": {"zh_CN": PAYLOAD, "en": "x"}, "value": 0.25, "format": "percent"},
            {"label": "not a mapping", "value": 1},
        ],
        "headline_findings": [{"severity": "high", "message_zh": PAYLOAD, "message_en": "x"}],
    }
    run = open_run(write_run(engagement, "20260101-090000", stages={"03_segments": summary}))
    OverviewPage(run).key_findings()
    markup = "".join(shown["html"])
    assert "客群数" in markup
    assert "25.0%" in markup
    assert "<img" not in markup
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup


def test_profiling_cards_come_from_summary_fields():
    summary = {"quality_score": 82.66, "tables": 3, "rows": {"a": 10, "b": 5}, "severity_counts": {"high": 2}}
    cards = dict(headline_metrics("01_profiling", summary, "zh_CN"))
    assert cards["质量评分"] == "82.7"
    assert cards["总行数"] == "15"
    assert cards["严重及高风险问题"] == "2"


def test_non_object_summary_ignored(engagement):  # noqa: F811
    run_dir = write_run(engagement, "20260101-090000")
    (run_dir / "artifacts" / "01_profiling" / "summary.json").write_text(json.dumps([1, 2]), encoding="utf-8")
    assert open_run(run_dir).summary("01_profiling") is None
