"""engagements/demo through the runner: stage 03 and its dashboard page on a small demo bank.

A copy of the engagement runs ingest, the map (three month-ends) and the
segmentation notebook as `relmap run` does; the page notebook is then
executed by Papermill on the run. The clusters must recover the demo's
planted segments (adjusted Rand index at least 0.7), every customer must be
in exactly one tier at every date, and no personal data may leave the stage.
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from relmap_utils.ingest.privacy import pseudonymize_value
from relmap_utils.paths import ENGAGEMENTS_DIR, NOTEBOOK_DIR

from tests.conftest import make_small_demo_engagement

pytestmark = pytest.mark.slow

CUSTOMERS = 2000
TRANSACTIONS = 60_000
MAP_DATES = 3
STAGE = "03_segmentation"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """Return the engagement folder, the run folder and the run's pseudonym key."""
    from relmap_utils.runner import run_engagement

    folder = tmp_path_factory.mktemp("demo_segmentation")
    make_small_demo_engagement(folder, n_customers=CUSTOMERS, n_transactions=TRANSACTIONS)
    key = secrets.token_hex(32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_PSEUDONYM_KEY", key)
        result = run_engagement(folder, stages=["ingest", "map", "segmentation"],
                                overrides={"map": {"as_of_dates": MAP_DATES}, "segmentation": {"clusters": {
                                    **_demo_params()["clusters"], "bootstrap": 2}}})
    assert result.status == "succeeded", result.failure and result.failure.render("en")
    return folder, result.run_dir, key


def _demo_params() -> dict:
    import yaml

    config = yaml.safe_load((ENGAGEMENTS_DIR / "demo" / "engagement.yaml").read_text(encoding="utf-8"))
    return config["stages"]["segmentation"]["params"]


@pytest.fixture(scope="module")
def segments(demo_run) -> pd.DataFrame:
    _, run_dir, _ = demo_run
    return pd.read_parquet(run_dir / "artifacts" / STAGE / "customer_segments.parquet")


def test_stage_recorded_in_manifest(demo_run):
    _, run_dir, _ = demo_run
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))

    stage = next(entry for entry in manifest["stages"] if entry["key"] == "segmentation")
    assert stage["status"] == "succeeded"
    paths = {item["path"] for item in stage["artifacts"]}
    assert f"artifacts/{STAGE}/customer_segments.parquet" in paths
    assert f"artifacts/{STAGE}/summary.json" in paths
    assert {item["path"] for item in stage["reports"]} == {f"reports/{STAGE}.html"}


def test_planted_segments_recovered(demo_run, segments):
    folder, _, key = demo_run
    truth = pd.read_parquet(folder / "data" / "planted_truth.parquet")
    truth.index = [pseudonymize_value(number, key.encode()) for number in truth.customer_no]
    latest = segments[segments.as_of == segments.as_of.max()].set_index("customer_id")

    joined = latest.join(truth[["segment"]].rename(columns={"segment": "planted"}))
    assert joined["planted"].notna().all()
    assert adjusted_rand_score(joined["planted"], joined["segment"]) >= 0.7


def test_every_customer_in_one_tier_each_date(segments):
    counts = segments.groupby("as_of").customer_id.agg(["count", "nunique"])

    assert len(counts) == MAP_DATES
    assert (counts["count"] == CUSTOMERS).all()
    assert (counts["nunique"] == CUSTOMERS).all()
    assert segments["tier"].notna().all()
    assert set(segments["tier"]) <= {"private", "wealth", "affluent", "mass"}
    assert set(segments["tier_rule"]) <= {1, 2, 3, 4}


def test_summary_reports_sample_and_stability(demo_run):
    _, run_dir, _ = demo_run
    summary = json.loads((run_dir / "artifacts" / STAGE / "summary.json").read_text(encoding="utf-8"))

    clusters = summary["clusters"]
    assert clusters["sample_size"] == CUSTOMERS
    assert 5 <= clusters["k"] <= 8
    assert clusters["stability"]["rounds"] == 2
    assert summary["migration"]["enabled"] is True
    assert {item["format"] for item in summary["headline_metrics"]} <= {"number", "percent", "amount", "score", "text"}


def test_no_personal_data_leaves_the_stage(demo_run):
    folder, run_dir, _ = demo_run
    raw = pd.read_csv(folder / "data" / "customers.csv", encoding="gbk", dtype=str)
    values = set(raw["客户号"]) | set(raw["姓名"]) | set(raw["证件号码"]) | set(raw["手机号"]) | set(raw["联系地址"])

    texts = [nbformat.writes(nbformat.read(run_dir / "executed" / f"{STAGE}.ipynb", as_version=4)),
             (run_dir / "reports" / f"{STAGE}.html").read_text(encoding="utf-8")]
    stage_folder = run_dir / "artifacts" / STAGE
    texts += [path.read_text(encoding="utf-8") for path in stage_folder.glob("*.json")]
    texts += [pd.read_parquet(path).to_csv() for path in stage_folder.glob("*.parquet")]
    everything = "\n".join(texts)

    assert sorted(value for value in values if value in everything) == []


def test_page_notebook_runs(demo_run, tmp_path):
    import papermill

    _, run_dir, _ = demo_run
    output = tmp_path / "page.ipynb"
    papermill.execute_notebook(str(NOTEBOOK_DIR / "reports" / f"{STAGE}.ipynb"), str(output),
                               parameters={"run_dir": str(run_dir)}, kernel_name="python3", progress_bar=False)
    executed = nbformat.read(output, as_version=4)

    outputs = [item for cell in executed.cells if cell.cell_type == "code" for item in cell.get("outputs", [])]
    assert [item for item in outputs if item["output_type"] == "error"] == []
    html = "\n".join(item["data"].get("text/html", "") for item in outputs if "data" in item)
    assert "客户分层与分群" in html
    assert "私行客户" in html or "财富客户" in html


def test_page_history_of_one_customer(demo_run, segments):
    from relmap_utils.dashboard.run import open_run
    from relmap_utils.dashboard.segmentation_page import SegmentationPage

    _, run_dir, _ = demo_run
    page = SegmentationPage(open_run(run_dir))
    customer = segments.customer_id.iloc[0]

    history = page.history(customer)
    assert len(history) == MAP_DATES
    assert list(history.columns) == ["as_of", "tier", "rfm_cell", "segment"]
    assert page.history("0" * 24).empty
    with pytest.raises(ValueError, match="pseudonym"):
        page.history("<script>")


def test_export_writes_segmentation_workbook(demo_run, tmp_path):
    import openpyxl

    from relmap_utils.export import export_run

    _, run_dir, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    result = export_run(copy)

    names = {path.name for path in result.files}
    assert {f"{STAGE}.html", f"{STAGE}.xlsx"} <= names
    workbook = openpyxl.load_workbook(result.folder / f"{STAGE}.xlsx", read_only=True)
    assert {"分层与分群", "迁移", "画像对比"} <= set(workbook.sheetnames)
