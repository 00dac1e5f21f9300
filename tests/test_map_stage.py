"""run_stage on the tiny bank in a run folder: partitions, dictionary, coverage, report, bad input."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from relmap_utils.context import RunContext
from relmap_utils.errors import ConfigError, StageError
from relmap_utils.features import read_map, run_stage
from test_map_support import frames, write_run

PLOTLYJS_BANNER = "* plotly.js v"
REMOTE_SCRIPT = re.compile(r"<script[^>]+src=[\"']?(https?:)?//", re.IGNORECASE)
SETTINGS = {"topics": ["education", "travel"], "purchase_txn_types": ["消费"]}
DATES = [dt.date(2024, 4, 30), dt.date(2024, 5, 31), dt.date(2024, 6, 30)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("map_stage"))


@pytest.fixture(scope="module")
def result(run_dir: Path) -> dict:
    return run_stage(RunContext.open(run_dir), as_of="2024-06-30", as_of_dates=3, **SETTINGS)


def test_partitions_per_date(result, run_dir):
    folder = run_dir / "artifacts" / "02_map" / "customer_map"

    names = sorted(path.name for path in folder.iterdir())
    assert names == ["as_of=2024-04-30", "as_of=2024-05-31", "as_of=2024-06-30"]
    assert result["as_of_dates"] == DATES
    for day in DATES:
        assert (folder / f"as_of={day.isoformat()}" / "part-0.parquet").is_file()
    assert not list(folder.rglob("*.tmp"))


def test_partition_holds_every_customer_sorted(result):
    part = pd.read_parquet(result["partitions"][DATES[-1]])

    assert list(part.customer_id) == ["c1", "c2", "c3", "c4"]
    assert "as_of" not in part.columns


def test_hive_partitioning_restores_as_of(result, run_dir):
    folder = run_dir / "artifacts" / "02_map" / "customer_map"

    rows = duckdb.sql(
        f"select as_of, count(*) as customers from read_parquet('{folder}/*/*.parquet', hive_partitioning=true) "
        "group by as_of order by as_of"
    ).fetchall()

    assert rows == [(day, 4) for day in DATES]


def test_read_map(result):
    frame = read_map(result["map_folder"])
    latest = read_map(result["map_folder"], "2024-06-30")

    assert len(frame) == 12
    assert list(frame.columns[:2]) == ["customer_id", "as_of"]
    assert set(latest.as_of) == {dt.date(2024, 6, 30)}
    assert latest.set_index("customer_id").loc["c1", "frequency"] == 3


def test_read_map_without_partition(result):
    with pytest.raises(StageError, match="2023-01-31"):
        read_map(result["map_folder"], "2023-01-31")


def test_dictionary_artifact(result, run_dir):
    dictionary = pd.read_parquet(run_dir / "artifacts" / "02_map" / "feature_dictionary.parquet")
    part = pd.read_parquet(result["partitions"][DATES[-1]])

    included = list(dictionary.name[dictionary.status == "included"])
    assert list(part.columns) == ["customer_id", *included]
    # Channels and merchant categories were discovered from the data, so no placeholder remains.
    assert not dictionary.name.str.contains(r"\*").any()
    cash = dictionary.set_index("name").loc["cash_withdrawals_recent"]
    assert cash.status == "left_out"
    assert "cash_txn_types" in cash.reason_en


def test_coverage_artifact(result, run_dir):
    coverage = pd.read_parquet(run_dir / "artifacts" / "02_map" / "coverage.parquet")

    assert len(coverage) == 3 * 6
    latest = coverage[coverage.as_of == DATES[-1]].set_index("family")
    assert latest.loc["transactions", "covered"] == 2  # c1 and c2
    assert latest.loc["interests", "covered"] == 2
    assert latest.loc["holdings", "covered"] == 2
    assert latest.loc["transactions", "share"] == pytest.approx(0.5)
    assert set(latest.customers) == {4}
    first = coverage[coverage.as_of == DATES[0]].set_index("family")
    assert first.loc["transactions", "covered"] == 1  # c2 buys first in June


def test_summary(result, run_dir):
    summary = json.loads((run_dir / "artifacts" / "02_map" / "summary.json").read_text(encoding="utf-8"))

    assert summary["as_of_dates"] == [day.isoformat() for day in DATES]
    assert summary["customers"] == 4
    assert summary["features"]["included"] == result["summary"]["features"]["included"]
    assert summary["spec"]["topics"] == ["education", "travel"]
    codes = {notice["code"] for notice in summary["notices"]}
    # x9 is not a customer, and no device or account is shared in the tiny bank.
    # The data starts after the 12-month windows of the three dates begin.
    assert {"unknown_related_customers", "values_absent", "window_before_data"} <= codes
    assert all(notice["message_zh"] and notice["message_en"] for notice in summary["notices"])
    assert summary["data_ranges"]["transactions"]["first"] == "2023-07-10"


def test_customer_card(result, run_dir):
    card = json.loads((run_dir / "artifacts" / "02_map" / "customer_card.json").read_text(encoding="utf-8"))

    assert card["customer_id"] == "c1"
    assert card["as_of"] == "2024-06-30"
    profile = {item["name"]: item["value"] for item in card["families"]["profile"]}
    assert profile["age_years"] == 33
    targets = {edge["target"] for edge in card["edges"] if edge["source"] == "c1"}
    assert targets == {"P1", "ADDR1", "ADDR2", "c2", "x9"}
    # c2 shares the phone P1 and appears on the outer ring.
    assert {"source": "c2", "target": "P1", "relation_type": "phone"} in card["edges"]


def test_card_for_chosen_customer(run_dir, tmp_path):
    run = write_run(tmp_path)

    chosen = run_stage(RunContext.open(run), as_of="2024-06-30", card_customer="c4", **SETTINGS)

    assert chosen["card"]["customer_id"] == "c4"
    assert chosen["card"]["edges"] == []


def test_card_for_unknown_customer(tmp_path):
    run = write_run(tmp_path)

    with pytest.raises(StageError, match="c9"):
        run_stage(RunContext.open(run), as_of="2024-06-30", card_customer="c9")


def test_html_report_offline_and_chinese(result):
    page = Path(result["report"]).read_text(encoding="utf-8")

    assert page.count(PLOTLYJS_BANNER) == 1
    assert REMOTE_SCRIPT.search(page) is None
    assert "<html lang='zh-CN'>" in page
    assert "客户关系地图报告" in page
    assert "特征族覆盖情况" in page
    assert "未纳入的特征及原因" in page
    assert "客户卡片" in page


def test_html_report_in_english(tmp_path):
    run = write_run(tmp_path, locale="en")

    english = run_stage(RunContext.open(run), as_of="2024-06-30")

    page = Path(english["report"]).read_text(encoding="utf-8")
    assert "<html lang='en'>" in page
    assert "Customer relationship map report" in page
    assert "Features left out and why" in page


def test_default_as_of_is_latest_month_end(tmp_path):
    run = write_run(tmp_path)

    latest = run_stage(RunContext.open(run))

    # The latest date of the tiny bank is c3's guarantee starting on 2024-09-01.
    assert latest["as_of_dates"] == [dt.date(2024, 8, 31)]


def test_rerun_removes_other_dates(tmp_path):
    run = write_run(tmp_path)
    run_stage(RunContext.open(run), as_of="2024-06-30", as_of_dates=2)

    run_stage(RunContext.open(run), as_of_dates=["2024-03-31"])

    folder = run / "artifacts" / "02_map" / "customer_map"
    assert [path.name for path in folder.iterdir()] == ["as_of=2024-03-31"]


def test_customers_only(tmp_path):
    run = write_run(tmp_path, {"customers": frames()["customers"]})

    only = run_stage(RunContext.open(run))

    # Without other dated tables the opening dates set the range: latest 2024-08-01.
    assert only["as_of_dates"] == [dt.date(2024, 7, 31)]
    coverage = only["coverage"].set_index("family")
    assert coverage.loc["profile", "status"] == "included"
    assert coverage.loc["transactions", "status"] == "left_out"


# ------------------------------------------------------------------ bad input


def test_duplicate_customers_rejected(tmp_path):
    tables = frames()
    tables["customers"] = pd.concat([tables["customers"], tables["customers"].iloc[[1]]], ignore_index=True)
    run = write_run(tmp_path, tables)

    with pytest.raises(StageError, match=r"customer_id.*c2|c2.*customer_id"):
        run_stage(RunContext.open(run), as_of="2024-06-30")


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"as_of": "2023-06-30"}, r"transactions.*txn_time.*2023-07-10"),
        ({"as_of": "2024-10-31"}, r"relations.*start_date.*2024-09-01"),
        ({"as_of_dates": ["2024-06-30", "2020-12-31"]}, "2020-12-31"),
    ],
    ids=["before-data", "after-data", "one-date-before"],
)
def test_as_of_outside_data(run_dir, params, match):
    with pytest.raises(StageError, match=match):
        run_stage(RunContext.open(run_dir), **params)


def test_as_of_in_last_data_month_accepted(tmp_path):
    run = write_run(tmp_path)

    # The data ends on 2024-09-01; its month-end still belongs to the data.
    assert run_stage(RunContext.open(run), as_of="2024-09-30")["as_of_dates"] == [dt.date(2024, 9, 30)]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"as_of": "30.06.2024"}, "as_of"),
        ({"as_of_dates": 0}, "as_of_dates"),
        ({"as_of_dates": "2024-06-30"}, "as_of_dates"),
        ({"windows": {"recent": 3, "long": 24}}, "long"),
        ({"windows": [3, 12]}, "windows"),
        ({"windows": {"history": 0}}, "history_months"),
        ({"card_customer": 7}, "card_customer"),
        ({"purchase_types": ["消费"]}, "purchase_types"),
    ],
    ids=["bad-date", "zero-dates", "text-dates", "unknown-window", "window-list", "zero-window", "card-number",
         "unknown-setting"],
)
def test_bad_parameters(run_dir, params, match):
    with pytest.raises(ConfigError, match=match):
        run_stage(RunContext.open(run_dir), **params)


def test_run_without_tables(tmp_path):
    run = write_run(tmp_path, {})

    with pytest.raises(StageError, match="00_ingest"):
        run_stage(RunContext.open(run))


def test_run_without_customers(tmp_path):
    tables = {name: frame for name, frame in frames().items() if name != "customers"}
    run = write_run(tmp_path, tables)

    with pytest.raises(StageError, match="customers"):
        run_stage(RunContext.open(run))


def test_orphan_rows_reported(tmp_path):
    tables = frames()
    tables["events"].loc[0, "customer_id"] = "ghost"
    run = write_run(tmp_path, tables)

    outcome = run_stage(RunContext.open(run), as_of="2024-06-30")

    notices = {notice["code"]: notice for notice in outcome["summary"]["notices"]}
    assert "表 events 有 1 行的 customer_id 不在客户表中" in notices["orphan_rows"]["message_zh"]
    assert len(read_map(outcome["map_folder"])) == 4


# ------------------------------------------------------------------ notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_map.ipynb"


def test_notebook_is_committed_clean():
    import nbformat

    from relmap_utils.notebook_exec import declared_parameters

    notebook = nbformat.read(NOTEBOOK, as_version=4)

    assert declared_parameters(notebook) == ["run_dir", "as_of", "as_of_dates", "windows", "spec", "card_customer"]
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.get("outputs") and cell.get("execution_count") is None for cell in code)


def test_stage_registered():
    from relmap_utils.stages import find_stage, registered_stages

    stage = find_stage(registered_stages(), "map")

    assert stage.id == "02_map"
    assert stage.depends_on == ("ingest",)
    assert stage.notebook_path == NOTEBOOK
