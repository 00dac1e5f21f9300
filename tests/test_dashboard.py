"""Dashboards: small-group merging, escaping, the pages registry, run and token choice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from relmap_utils.dashboard import render
from relmap_utils.dashboard.pages import REPORTS_DIR, available_pages, read_page, registered_pages
from relmap_utils.dashboard.privacy import OTHER_GROUP, escape, merge_small_groups
from relmap_utils.dashboard.run import RUN_DIR_ENV, open_run
from relmap_utils.dashboard.server import AccessGate, path_is_clean, token_id
from relmap_utils.errors import ConfigError, RunError
from relmap_utils.paths import ENGAGEMENTS_DIR
from relmap_utils.serve import MIN_TOKEN_LENGTH, choose_run, read_tokens

PAYLOAD = "<img src=x onerror=alert(1)>"


def counts(**groups: int) -> pd.DataFrame:
    return pd.DataFrame({"group": list(groups), "n": list(groups.values())})


# --------------------------------------------------------------------------- privacy


def test_merge_keeps_large_groups():
    merged = merge_small_groups(counts(a=40, b=25, c=12), "group", "n", 10)
    assert merged.frame["n"].tolist() == [40, 25, 12]
    assert merged.merged == []
    assert merged.note() is None


def test_merge_folds_small_groups_into_other():
    merged = merge_small_groups(counts(a=40, b=25, c=4, d=7), "group", "n", 10)
    assert merged.frame["group"].tolist() == ["a", "b", OTHER_GROUP]
    assert merged.frame["n"].tolist() == [40, 25, 11]
    assert merged.merged == ["c", "d"]
    assert merged.labels(locale="zh_CN") == ["a", "b", "其他"]
    assert "10" in merged.note(locale="zh_CN")


def test_merge_grows_a_small_other_group():
    # c alone (3) is below 10, and the total minus a and b would reveal it,
    # so the smallest shown group joins it: b + c = 28.
    merged = merge_small_groups(counts(a=40, b=25, c=3), "group", "n", 10)
    assert merged.frame["n"].tolist() == [40, 28]
    assert merged.merged == ["b", "c"]


def test_merge_with_one_large_group_merges_all():
    merged = merge_small_groups(counts(a=40, c=3), "group", "n", 10)
    assert merged.frame["n"].tolist() == [43]
    assert merged.labels(locale="en") == ["Other"]


def test_merge_suppresses_small_total():
    merged = merge_small_groups(counts(a=4, b=5), "group", "n", 10)
    assert merged.suppressed
    assert merged.frame.empty
    assert "10" in merged.note(locale="en")


def test_merge_adds_rest_to_other():
    merged = merge_small_groups(counts(a=40, b=25), "group", "n", 10, rest=12)
    assert merged.frame["n"].tolist() == [40, 25, 12]
    assert merged.frame["group"].iloc[-1] == OTHER_GROUP


def test_merge_sums_additive_columns():
    frame = pd.DataFrame({"group": ["a", "b", "c"], "n": [40, 6, 5], "income": [400.0, 60.0, 50.0]})
    merged = merge_small_groups(frame, "group", "n", 10, additive_columns=["income"])
    assert merged.frame["income"].tolist() == [400.0, 110.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_size": 0}, "min_size must be at least 1"),
        ({"min_size": 10, "additive_columns": ["missing"]}, "not found"),
        ({"min_size": 10, "rest": 3, "additive_columns": ["n"]}, "rest cannot be combined"),
    ],
    ids=["zero-minimum", "unknown-column", "rest-with-sums"],
)
def test_merge_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        merge_small_groups(counts(a=40), "group", "n", **kwargs)


def test_escape_turns_markup_into_text():
    assert escape(PAYLOAD) == "&lt;img src=x onerror=alert(1)&gt;"
    assert escape('"quoted"') == "&quot;quoted&quot;"
    assert escape(None) == ""
    assert escape(float("nan")) == ""


def test_html_table_escapes_every_cell_and_header():
    frame = pd.DataFrame({"city": [PAYLOAD], "n": [12]})
    markup = render.html_table(frame, {"city": "<b>城市</b>", "n": "客户数"}, numeric=["n"])
    assert "<img" not in markup
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup
    assert "&lt;b&gt;城市&lt;/b&gt;" in markup
    assert '<td class="num">12</td>' in markup


def test_cards_and_headings_escape_text():
    markup = render.metric_cards([(PAYLOAD, PAYLOAD)]) + render.heading(PAYLOAD) + render.note(PAYLOAD)
    assert "<img" not in markup


def test_figure_html_cannot_close_its_script():
    from relmap_utils import charts

    figure = charts.bar_chart(["</script><script>alert(1)</script>"], [12], title="t")
    markup = render.figure_html(figure)
    assert markup.count("</script>") == 1
    assert "/relmap/static/plotly.min.js" in markup


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [(97.66, "score", "97.7"), (0.9414, "percent", "94.1%"), (123456, "number", "123,456"),
     (123456789, "amount", "1.23亿"), (None, "number", "-"), (float("nan"), "percent", "-")],
)  # fmt: skip
def test_format_value(value, kind, expected):
    assert render.format_value(value, kind, "zh_CN") == expected


# --------------------------------------------------------------------------- pages


def test_registered_pages_have_both_titles():
    pages = registered_pages()
    assert [page.id for page in pages][:2] == ["overview", "01_profiling"]
    for page in pages:
        assert page.title["zh_CN"] and page.title["en"], page.id
    assert pages[1].stage_id == "01_profiling"


def test_page_notebooks_carry_no_outputs():
    for path in REPORTS_DIR.glob("*.ipynb"):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        assert all(not cell.get("outputs") for cell in notebook["cells"]), path.name
        assert all(cell["cell_type"] == "code" for cell in notebook["cells"]), path.name
        tags = notebook["cells"][0]["metadata"].get("tags", [])
        assert tags == ["parameters"], path.name


def test_stage_page_must_be_named_after_its_stage(tmp_path):
    notebook = json.loads((REPORTS_DIR / "01_profiling.ipynb").read_text(encoding="utf-8"))
    target = tmp_path / "02_map.ipynb"
    target.write_text(json.dumps(notebook), encoding="utf-8")
    assert read_page(target) is None
    (tmp_path / "bad name.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    assert read_page(tmp_path / "bad name.ipynb") is None


# --------------------------------------------------------------------------- runs


def write_run(engagement_dir: Path, run_id: str, status: str = "succeeded", stages: dict | None = None) -> Path:
    """Write a minimal run folder: snapshot, manifest and the stages' summaries."""
    run_dir = engagement_dir / "runs" / run_id
    (run_dir / "artifacts").mkdir(parents=True)
    shutil.copy(engagement_dir / "engagement.yaml", run_dir / "engagement.yaml")
    stages = stages if stages is not None else {"01_profiling": {"stage": "01_profiling", "quality_score": 90.0}}
    entries = []
    for stage_id, summary in stages.items():
        folder = run_dir / "artifacts" / stage_id
        folder.mkdir()
        (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
        entries.append({"key": stage_id.split("_", 1)[1], "id": stage_id, "status": "succeeded"})
    manifest = {"run_id": run_id, "status": status, "stages": entries}
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return run_dir


@pytest.fixture
def engagement(tmp_path: Path) -> Path:
    folder = tmp_path / "acme"
    folder.mkdir()
    shutil.copy(ENGAGEMENTS_DIR / "demo" / "engagement.yaml", folder / "engagement.yaml")
    return folder


def test_choose_run_takes_latest_succeeded(engagement):
    write_run(engagement, "20260101-090000")
    write_run(engagement, "20260102-090000")
    write_run(engagement, "20260103-090000", status="failed")
    assert choose_run(engagement).name == "20260102-090000"
    assert choose_run(engagement, "20260101-090000").name == "20260101-090000"


def test_choose_run_without_success_says_what_to_do(engagement):
    write_run(engagement, "20260103-090000", status="failed")
    with pytest.raises(RunError, match="relmap run"):
        choose_run(engagement)


@pytest.mark.parametrize("run", ["../other", "/etc", "..", "20260101-090000/../x", "a\\b"])
def test_choose_run_rejects_paths(engagement, run):
    with pytest.raises(RunError, match="relmap runs"):
        choose_run(engagement, run)


def test_choose_run_rejects_failed_run(engagement):
    write_run(engagement, "20260103-090000", status="failed")
    with pytest.raises(RunError, match="failed"):
        choose_run(engagement, "20260103-090000")


def test_available_pages_follow_stage_summaries(engagement):
    with_profiling = open_run(write_run(engagement, "20260101-090000"))
    assert [page.id for page in available_pages(with_profiling)] == ["overview", "01_profiling"]
    without = open_run(write_run(engagement, "20260102-090000", stages={}))
    assert [page.id for page in available_pages(without)] == ["overview"]


def test_open_run_reads_environment(engagement, monkeypatch):
    run_dir = write_run(engagement, "20260101-090000")
    monkeypatch.setenv(RUN_DIR_ENV, str(run_dir))
    run = open_run()
    assert run.run_id == "20260101-090000"
    assert run.min_group_size == 10
    assert run.summary("01_profiling")["quality_score"] == 90.0
    assert run.summary("02_map") is None
    with pytest.raises(ValueError, match="outside"):
        run.artifact_path("01_profiling", "../../manifest.json")


def test_open_run_without_folder_names_the_variable(monkeypatch):
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    with pytest.raises(RunError, match=RUN_DIR_ENV):
        open_run()


# --------------------------------------------------------------------------- access


def test_read_tokens_generates_one():
    tokens, generated = read_tokens({})
    assert generated
    assert len(tokens) == 1 and len(tokens[0]) >= MIN_TOKEN_LENGTH


def test_read_tokens_accepts_several():
    tokens, generated = read_tokens({"RELMAP_SERVE_TOKEN": "a" * 20 + ", " + "b" * 20})
    assert tokens == ["a" * 20, "b" * 20]
    assert not generated


def test_read_tokens_rejects_short_token():
    with pytest.raises(ConfigError, match=str(MIN_TOKEN_LENGTH)):
        read_tokens({"RELMAP_SERVE_TOKEN": "secret"})


def test_token_id_hides_token():
    ident = token_id("t" * 32)
    assert len(ident) == 12
    assert "t" * 12 not in ident
    gate = AccessGate(["t" * 32], b"k" * 32, "session")
    assert gate.check_token("t" * 32) == ident
    assert gate.check_token("t" * 31) is None


@pytest.mark.parametrize(
    "path",
    ["/../etc/passwd", "/voila/static/../../x", "/%2e%2e/x", "/voila/%252e%252e/x", "/a\\b", "//etc/passwd",
     "/pages/./overview", "/x%00y", "/voila/files/..%2f..%2fengagement.yaml"],
)  # fmt: skip
def test_path_is_clean_rejects_traversal(path):
    assert not path_is_clean(path)


@pytest.mark.parametrize("path", ["/", "/pages/overview", "/voila/static/voila.js", "/api/kernels/abc-1/channels"])
def test_path_is_clean_accepts_routes(path):
    assert path_is_clean(path)
