"""relmap export on a small demo run of every stage: a page and a workbook per stage, localized titles and times."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import shutil
from pathlib import Path

import openpyxl
import pytest

from conftest import make_small_demo_engagement
from relmap_utils.export import export_run, shown_time

pytestmark = pytest.mark.slow

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
MOMENT = dt.datetime(2026, 12, 5, 10, 30, 0, tzinfo=SHANGHAI)
STAGES = ("01_profiling", "02_map", "03_segmentation", "04_propensity", "05_risk")
TITLES = {"01_profiling": "数据质量画像", "02_map": "客户关系地图", "03_segmentation": "客户分层与分群",
          "04_propensity": "购买倾向与下一最佳产品", "05_risk": "风险指标与预警"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run of every stage on 500 demo customers, then a run where stage 04 finds no take-up labels."""
    from relmap_utils.runner import run_engagement

    folder = make_small_demo_engagement(tmp_path_factory.mktemp("export_all"), n_customers=500, n_transactions=12_000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_PSEUDONYM_KEY", secrets.token_hex(32))
        full = run_engagement(folder, overrides={"map": {"as_of_dates": 8}})
        assert full.status == "succeeded", full.failure and full.failure.render("en")
        # Runs stage 04 alone on the first run's map, for a product the labels do not have.
        unlabelled = run_engagement(folder, stages=["propensity"],
                                    overrides={"propensity": {"products": ["no_such_product"]}})
    assert unlabelled.status == "succeeded", unlabelled.failure and unlabelled.failure.render("en")
    return {"engagement": folder, "full": full.run_dir, "unlabelled": unlabelled.run_dir}


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "engagement" / "runs" / run_dir.name
    shutil.copytree(run_dir, target)
    shutil.copy(run_dir / "engagement.yaml", tmp_path / "engagement" / "engagement.yaml")
    return target


def test_every_stage_gives_page_and_workbook(demo, tmp_path):
    run_dir = _copy(demo["full"], tmp_path)

    result = export_run(run_dir, now=MOMENT)

    names = [path.name for path in result.files]
    expected = ["index.html"] + [f"{stage}.{suffix}" for stage in STAGES for suffix in ("html", "xlsx")]
    assert names == expected
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    listed = [Path(record["path"]).name for record in manifest["exports"][-1]["files"]]
    assert listed == expected


def test_risk_page_is_built_offline(demo, tmp_path):
    run_dir = _copy(demo["full"], tmp_path)

    result = export_run(run_dir, now=MOMENT)

    page = (result.folder / "05_risk.html").read_text(encoding="utf-8")
    assert "<h1>风险指标与预警</h1>" in page
    assert "预警回测" in page
    assert "2026-12-05 10:30:00 (UTC+08:00)" in page
    assert page.count("<script type=\"text/javascript\">") == 1
    assert not re.search(r"<script[^>]+src=", page)


def test_map_workbook_has_chinese_sheets(demo, tmp_path):
    run_dir = _copy(demo["full"], tmp_path)

    result = export_run(run_dir, now=MOMENT)

    workbook = openpyxl.load_workbook(result.folder / "02_map.xlsx", read_only=True)
    assert workbook.sheetnames[1:] == ["特征字典", "特征族覆盖"]
    header = next(workbook["特征字典"].iter_rows(max_row=1, values_only=True))
    assert header[:3] == ("特征", "特征族", "说明（中文）")
    statuses = {row[7] for row in workbook["特征字典"].iter_rows(min_row=2, values_only=True)}
    assert statuses <= {"已纳入", "未纳入"}


def test_index_titles_and_local_times(demo, tmp_path):
    run_dir = _copy(demo["full"], tmp_path)

    index = (export_run(run_dir, now=MOMENT).folder / "index.html").read_text(encoding="utf-8")

    for stage, title in TITLES.items():
        assert f"<h2>{title} <span class='note'>{stage}</span></h2>" in index
    started = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))["started_at"]
    assert started.endswith("+08:00")
    assert f"开始于 {started[:10]} {started[11:19]} (UTC+08:00)" in index
    assert "导出于 2026-12-05 10:30:00 (UTC+08:00)" in index


def test_stage_with_nothing_to_do_is_exported(demo, tmp_path):
    run_dir = _copy(demo["unlabelled"], tmp_path)
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    entry = next(stage for stage in manifest["stages"] if stage["id"] == "04_propensity")
    assert entry["status"] == "nothing_to_do"
    assert entry["skip_reason"]["key"] == "propensity.products_not_found"

    result = export_run(run_dir, now=MOMENT)

    assert "04_propensity.html" in [path.name for path in result.files]
    index = (result.folder / "index.html").read_text(encoding="utf-8")
    assert "无可处理" in index
    assert entry["skip_reason"]["message_zh"] in index
    assert json.loads((run_dir / "artifacts" / "04_propensity" / "summary.json").read_text(encoding="utf-8"))


def test_summaries_are_strict_json(demo):
    for run in ("full", "unlabelled"):
        for path in (demo[run] / "artifacts").glob("*/summary.json"):
            text = path.read_text(encoding="utf-8")
            json.loads(text, parse_constant=lambda word: pytest.fail(f"{path}: {word}"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2026-12-05T02:30:00+00:00", "2026-12-05 10:30:00 (UTC+08:00)"),
     ("2026-12-05T10:30:00", "2026-12-05 10:30:00 (UTC+08:00)"),
     (None, "-"), ("unknown", "unknown")],
)
def test_shown_time(value, expected):
    assert shown_time(value, {"timezone": "Asia/Shanghai"}) == expected
