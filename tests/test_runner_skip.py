"""A stage that had nothing to do: its own status in the manifest, run.log, progress, `relmap runs` and the overview."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relmap_utils.cli import main
from relmap_utils.dashboard.overview import stage_note
from relmap_utils.runner import list_runs, run_engagement
from relmap_utils.stages import Stage
from test_runner_support import make_engagement, write_notebook

SKIP_CELLS = [
    """
    run_dir = ""
    nothing = True
    """,
    """
    import json
    from pathlib import Path

    folder = Path(run_dir) / "artifacts" / "01_b"
    folder.mkdir(parents=True, exist_ok=True)
    summary = {"stage": "01_b", "status": "skipped" if nothing else "done", "reason": "test.no_labels",
               "message_zh": "没有标签，无需建模。", "message_en": "No labels, so nothing to model."}
    (folder / "summary.json").write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    """,
]

DOWNSTREAM_CELLS = [
    'run_dir = ""',
    """
    from pathlib import Path

    folder = Path(run_dir) / "artifacts" / "02_c"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c.txt").write_text("ran", encoding="utf-8")
    """,
]


@pytest.fixture(scope="module")
def skip_run(tmp_path_factory: pytest.TempPathFactory):
    """One run of a stage that reports nothing to do, and a stage that depends on it."""
    root = tmp_path_factory.mktemp("skip")
    registry = [
        Stage("b", "01_b", write_notebook(root / "nb" / "01_b.ipynb", SKIP_CELLS)),
        Stage("c", "02_c", write_notebook(root / "nb" / "02_c.ipynb", DOWNSTREAM_CELLS), ("b",)),
    ]
    engagement = make_engagement(root / "tiny")
    events = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_PSEUDONYM_KEY", "k" * 64)
        result = run_engagement(engagement, registry=registry, progress=events.append)
    return {"engagement": engagement, "registry": registry, "result": result, "events": events}


def test_skip_has_own_status(skip_run):
    result = skip_run["result"]

    assert result.status == "succeeded"
    entry = result.stage("b")
    assert entry["status"] == "nothing_to_do"
    assert entry["skip_reason"] == {"key": "test.no_labels", "message_zh": "没有标签，无需建模。",
                                    "message_en": "No labels, so nothing to model."}
    assert entry["artifacts"][0]["path"] == "artifacts/01_b/summary.json"


def test_skip_does_not_block_downstream(skip_run):
    entry = skip_run["result"].stage("c")

    assert entry["status"] == "succeeded"
    assert "skip_reason" not in entry
    assert (skip_run["result"].run_dir / "artifacts" / "02_c" / "c.txt").read_text(encoding="utf-8") == "ran"


def test_skip_in_manifest_file(skip_run):
    manifest = json.loads(skip_run["result"].manifest_path.read_text(encoding="utf-8"))

    assert [stage["status"] for stage in manifest["stages"]] == ["nothing_to_do", "succeeded"]
    assert manifest["status"] == "succeeded"


def test_skip_in_progress_and_log(skip_run):
    ends = [event for event in skip_run["events"] if event.kind == "end"]

    assert [event.status for event in ends] == ["nothing_to_do", "succeeded"]
    assert ends[0].reason == "没有标签，无需建模。"
    assert ends[1].reason is None
    log = (skip_run["result"].run_dir / "run.log").read_text(encoding="utf-8")
    assert "阶段 01_b 无可处理" in log
    assert "没有标签，无需建模。" in log


def test_skip_in_runs_listing(skip_run, capsys):
    summary = list_runs(skip_run["engagement"])[-1]

    assert summary.counts == {"nothing_to_do": 1, "succeeded": 1}
    assert summary.nothing_to_do == ["01_b"]
    with pytest.raises(SystemExit) as exit_info:
        main(["runs", str(skip_run["engagement"])])
    assert exit_info.value.code in (0, None)
    line = capsys.readouterr().out.splitlines()[-1]
    assert "成功 1, 无可处理 1（01_b 无可处理）" in line


def test_skip_reason_kept_when_reused(skip_run, monkeypatch):
    monkeypatch.setenv("RELMAP_PSEUDONYM_KEY", "k" * 64)

    second = run_engagement(skip_run["engagement"], from_stage="c", registry=skip_run["registry"])

    entry = second.stage("b")
    assert entry["status"] == "reused"
    assert entry["skip_reason"]["key"] == "test.no_labels"
    assert list_runs(skip_run["engagement"])[-1].nothing_to_do == ["01_b"]


def test_summary_without_skip_is_success(tmp_path, monkeypatch):
    registry = [Stage("b", "01_b", write_notebook(tmp_path / "nb" / "01_b.ipynb", SKIP_CELLS))]
    engagement = make_engagement(tmp_path / "tiny")

    result = run_engagement(engagement, registry=registry, overrides={"b": {"nothing": False}})

    assert result.stage("b")["status"] == "succeeded"
    assert "skip_reason" not in result.stage("b")


def test_cli_run_prints_reason(skip_run, capsys, monkeypatch):
    from relmap_utils import cli
    from relmap_utils.runner import StageEvent

    cli._print_progress(StageEvent("end", 1, 2, skip_run["registry"][0], "nothing_to_do", 1.0, "没有标签。"))

    lines = capsys.readouterr().out.splitlines()
    assert lines == ["[1/2] 01_b 无可处理（1.0 秒）", "    原因：没有标签。"]


@pytest.mark.parametrize(
    ("entry", "locale", "expected"),
    [
        ({"status": "nothing_to_do", "skip_reason": {"key": "k", "message_zh": "无标签", "message_en": "no labels"}},
         "zh_CN", "无标签"),
        ({"status": "nothing_to_do", "skip_reason": {"key": "k", "message_zh": "无标签", "message_en": "no labels"}},
         "en", "no labels"),
        ({"status": "skipped", "skipped_because": ["map"]}, "zh_CN", "依赖的阶段 map 没有成功"),
        ({"status": "succeeded"}, "zh_CN", ""),
    ],
)
def test_overview_stage_note(entry, locale, expected):
    assert stage_note(entry, locale) == expected


def test_overview_shows_reason(tmp_path, monkeypatch):
    import shutil

    from relmap_utils.dashboard import render
    from relmap_utils.dashboard.overview import OverviewPage
    from relmap_utils.dashboard.run import open_run
    from relmap_utils.paths import ENGAGEMENTS_DIR

    shown: list[str] = []
    monkeypatch.setattr(render, "display_html", shown.append)
    engagement = tmp_path / "acme"
    run_dir = engagement / "runs" / "20260101-090000"
    (run_dir / "artifacts" / "04_propensity").mkdir(parents=True)
    shutil.copy(ENGAGEMENTS_DIR / "demo" / "engagement.yaml", engagement / "engagement.yaml")
    shutil.copy(ENGAGEMENTS_DIR / "demo" / "engagement.yaml", run_dir / "engagement.yaml")
    reason = {"key": "propensity.no_labels", "message_zh": "没有标签表，无需建模。", "message_en": "No labels."}
    entry = {"key": "propensity", "id": "04_propensity", "status": "nothing_to_do", "duration_seconds": 2.0,
             "skip_reason": reason}
    (run_dir / "manifest.json").write_text(json.dumps({"run_id": run_dir.name, "status": "succeeded",
                                                       "stages": [entry]}), encoding="utf-8")
    page = OverviewPage(open_run(run_dir))

    page.stages()
    page.key_findings()

    markup = "".join(shown)
    assert "无可处理" in markup
    assert markup.count("没有标签表，无需建模。") == 2
    assert "说明" in markup
