"""The runner through its Python API, on tiny engagements and notebooks in tmp_path."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import zoneinfo
from pathlib import Path

import pytest

from relmap_utils.config import load_engagement, parse_engagement
from relmap_utils.errors import ConfigError, PrivacyError, RunError
from relmap_utils.runner import (
    EngagementLock,
    create_run_dir,
    list_runs,
    run_engagement,
    run_sort_key,
)
from relmap_utils.stages import Stage, plan_stages
from test_runner_support import KILL_CELLS, make_engagement, make_registry, write_notebook

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def registry(tmp_path: Path) -> list[Stage]:
    return make_registry(tmp_path / "notebooks")


@pytest.fixture
def engagement(tmp_path: Path) -> Path:
    return make_engagement(tmp_path / "tiny")


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory):
    """One succeeded run of all three stages, with typed overrides for stage a."""
    root = tmp_path_factory.mktemp("full")
    registry = make_registry(root / "notebooks")
    engagement = make_engagement(root / "tiny")
    key = "k" * 64
    events = []
    overrides = {"a": {"codes": ["0101", "0203"], "limits": {"psi_warn": 0.1, "告警": 0.25}, "cutoff": None}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_PSEUDONYM_KEY", key)
        result = run_engagement(engagement, overrides=overrides, registry=registry, progress=events.append)
    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    return {"root": root, "registry": registry, "engagement": engagement, "key": key,
            "result": result, "manifest": manifest, "events": events}  # fmt: skip


# --------------------------------------------------------------------------- a whole run


def test_run_folder_layout(full_run):
    result = full_run["result"]
    run_dir = result.run_dir

    assert result.status == "succeeded"
    assert run_dir.parent == full_run["engagement"] / "runs"
    assert (run_dir / "engagement.yaml").read_bytes() == (full_run["engagement"] / "engagement.yaml").read_bytes()
    assert sorted(p.name for p in (run_dir / "executed").iterdir()) == ["00_a.ipynb", "01_b.ipynb", "02_c.ipynb"]
    final_artifact = run_dir / "artifacts" / "02_c" / "c.txt"
    assert final_artifact.read_text(encoding="utf-8") == "2023年四季度 客户分群报告"
    assert (run_dir / "reports" / "00_a.txt").is_file()
    assert (run_dir / "run.log").is_file()
    assert not (run_dir / "manifest.json.tmp").exists()


def test_parameter_types_reach_notebook(full_run):
    seen_file = full_run["result"].run_dir / "artifacts" / "00_a" / "params_seen.json"
    seen = json.loads(seen_file.read_text(encoding="utf-8"))

    assert seen["as_of"] == {"type": "str", "value": "2023-12-31"}
    assert seen["codes"] == {"type": "list", "value": ["0101", "0203"]}
    assert seen["limits"] == {"type": "dict", "value": {"psi_warn": 0.1, "告警": 0.25}}
    assert seen["cutoff"] == {"type": "NoneType", "value": None}
    assert seen["title"] == {"type": "str", "value": "2023年四季度 客户分群报告"}


def test_executed_notebook_is_readable_utf8(full_run):
    text = (full_run["result"].run_dir / "executed" / "00_a.ipynb").read_text(encoding="utf-8")

    assert "title = '2023年四季度 客户分群报告'" in text
    assert "\\u5e74" not in text


def test_manifest_top_level(full_run):
    manifest = full_run["manifest"]
    result = full_run["result"]

    assert manifest["schema_version"] == 1
    assert manifest["run_id"] == result.run_id == result.run_dir.name
    assert manifest["status"] == "succeeded"
    assert manifest["engagement"]["name"] == "tiny"
    assert manifest["engagement"]["client"] == "测试银行"
    assert manifest["config"]["stages"]["a"]["params"]["as_of"] == "2023-12-31"
    assert manifest["config_file"]["sha256"] == sha256(result.run_dir / "engagement.yaml")
    assert manifest["duration_seconds"] > 0
    assert result.manifest_sha256 == sha256(result.manifest_path)


def test_manifest_inputs_hashes(full_run):
    inputs = {item["source"]: item for item in full_run["manifest"]["inputs"]}
    data_file = full_run["engagement"] / "data" / "customers.csv"

    assert inputs["customers"]["sha256"] == sha256(data_file)
    assert inputs["customers"]["size"] == data_file.stat().st_size
    assert inputs["customers"]["path"] == "data/customers.csv"
    assert "sha256" not in inputs["staged"]
    assert inputs["staged"]["sql"] == "select 1 as account_id"


def test_manifest_environment_and_code(full_run):
    from importlib.metadata import version

    manifest = full_run["manifest"]

    assert manifest["environment"]["python"] == sys.version.split()[0]
    assert manifest["environment"]["packages"]["papermill"] == version("papermill")
    assert manifest["environment"]["packages"]["relmap"] == version("relmap")
    assert len(manifest["code"]["source_sha256"]) == 64
    if "git_commit" in manifest["code"]:
        assert len(manifest["code"]["git_commit"]) == 40
        assert manifest["code"]["git_dirty"] in (True, False)


def test_manifest_key_fingerprint_never_key(monkeypatch, full_run):
    from relmap_utils.ingest.privacy import get_key, key_fingerprint

    manifest = full_run["manifest"]
    monkeypatch.setenv("RELMAP_PSEUDONYM_KEY", full_run["key"])
    expected = key_fingerprint(get_key(load_engagement(full_run["engagement"]).privacy))

    assert manifest["pseudonym_key"] == {"env": "RELMAP_PSEUDONYM_KEY", "fingerprint": expected}
    for path in full_run["result"].run_dir.rglob("*"):
        if path.is_file():
            assert full_run["key"] not in path.read_text(encoding="utf-8", errors="replace"), path


def test_manifest_stage_entries(full_run):
    run_dir = full_run["result"].run_dir
    stages = {entry["key"]: entry for entry in full_run["manifest"]["stages"]}

    assert [entry["key"] for entry in full_run["manifest"]["stages"]] == ["a", "b", "c"]
    entry = stages["a"]
    assert entry["status"] == "succeeded"
    assert entry["params"]["run_dir"] == str(run_dir)
    assert entry["params"]["cutoff"] is None
    assert entry["duration_seconds"] > 0
    assert entry["started_at"] <= entry["ended_at"]
    assert entry["executed_notebook"]["path"] == "executed/00_a.ipynb"
    assert entry["executed_notebook"]["sha256"] == sha256(run_dir / "executed" / "00_a.ipynb")
    assert [item["path"] for item in entry["artifacts"]] == ["artifacts/00_a/params_seen.json"]
    assert entry["artifacts"][0]["sha256"] == sha256(run_dir / "artifacts" / "00_a" / "params_seen.json")
    assert [item["path"] for item in entry["reports"]] == ["reports/00_a.txt"]
    assert stages["b"]["reports"] == []
    assert entry["error"] is None


def test_run_log_and_progress(full_run):
    log = (full_run["result"].run_dir / "run.log").read_text(encoding="utf-8")
    events = [(event.kind, event.index, event.total, event.stage.key, event.status) for event in full_run["events"]]

    assert "阶段 00_a 开始（1/3）" in log
    assert "阶段 02_c 成功" in log
    assert full_run["result"].manifest_sha256 in log
    assert events == [
        ("start", 1, 3, "a", None), ("end", 1, 3, "a", "succeeded"),
        ("start", 2, 3, "b", None), ("end", 2, 3, "b", "succeeded"),
        ("start", 3, 3, "c", None), ("end", 3, 3, "c", "succeeded"),
    ]  # fmt: skip


# --------------------------------------------------------------------------- reuse with from_stage


def test_from_stage_reuses_latest_success(monkeypatch, full_run):
    first = full_run["result"]
    monkeypatch.setenv("RELMAP_PSEUDONYM_KEY", full_run["key"])

    second = run_engagement(full_run["engagement"], from_stage="b", registry=full_run["registry"])

    assert second.ok
    assert second.run_dir != first.run_dir
    reused = second.stage("a")
    assert reused["status"] == "reused"
    assert reused["reused_from"] == first.run_id
    assert reused["artifacts"] == first.stage("a")["artifacts"]
    assert sha256(second.run_dir / "executed" / "00_a.ipynb") == first.stage("a")["executed_notebook"]["sha256"]
    assert sha256(second.run_dir / "artifacts" / "00_a" / "params_seen.json") == reused["artifacts"][0]["sha256"]
    assert second.stage("b")["status"] == "succeeded"
    assert second.stage("c")["status"] == "succeeded"
    assert json.loads(second.manifest_path.read_text(encoding="utf-8"))["request"]["from_stage"] == "b"


def test_from_stage_rejects_changed_artifact(tmp_path, full_run):
    import shutil

    engagement = tmp_path / "copy"
    shutil.copytree(full_run["engagement"], engagement)
    run_dir = engagement / "runs" / full_run["result"].run_id
    (run_dir / "artifacts" / "00_a" / "params_seen.json").write_text("{}", encoding="utf-8")
    # keep only the run whose artifact was changed
    for other in (engagement / "runs").iterdir():
        if other != run_dir:
            shutil.rmtree(other)

    with pytest.raises(RunError, match="params_seen.json.*sha256"):
        run_engagement(engagement, from_stage="b", registry=full_run["registry"])

    assert [path.name for path in (engagement / "runs").iterdir()] == [run_dir.name]


def test_from_stage_rejects_other_key(monkeypatch, full_run):
    monkeypatch.setenv("RELMAP_PSEUDONYM_KEY", "another key of enough length")
    runs_before = sorted((full_run["engagement"] / "runs").iterdir())

    with pytest.raises(RunError, match="假名化密钥.*RELMAP_PSEUDONYM_KEY"):
        run_engagement(full_run["engagement"], from_stage="b", registry=full_run["registry"])

    assert sorted((full_run["engagement"] / "runs").iterdir()) == runs_before


def test_from_stage_without_success_fails(engagement, registry):
    with pytest.raises(RunError, match="没有可复用的成功运行.*a"):
        run_engagement(engagement, from_stage="b", registry=registry)

    assert not (engagement / "runs").exists()


# --------------------------------------------------------------------------- failures


def test_failing_stage_skips_downstream(engagement, registry):
    result = run_engagement(engagement, overrides={"b": {"fail": True}}, registry=registry)

    assert result.status == "failed"
    assert result.stage("a")["status"] == "succeeded"
    failed = result.stage("b")
    assert failed["status"] == "failed"
    assert failed["error"]["ename"] == "ValueError"
    assert failed["error"]["evalue"] == "planned failure"
    # cell 0 is the parameters cell, 1 the injected parameters, 2 the failing one
    assert failed["error"]["cell_index"] == 2
    assert failed["executed_notebook"]["path"] == "executed/01_b.ipynb"
    assert (result.run_dir / "executed" / "01_b.ipynb").is_file()
    assert result.stage("c")["status"] == "skipped"
    assert result.stage("c")["skipped_because"] == ["b"]
    assert str(result.run_dir / "executed" / "01_b.ipynb") in str(result.failure)
    assert "ValueError: planned failure" in str(result.failure)
    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    assert manifest["status"] == "failed"


def test_killed_kernel_fails_stage_quickly(tmp_path, engagement):
    registry = [Stage("a", "00_a", write_notebook(tmp_path / "kill.ipynb", KILL_CELLS))]

    started = time.monotonic()
    result = run_engagement(engagement, registry=registry)
    elapsed = time.monotonic() - started

    assert elapsed < 60
    assert result.status == "failed"
    entry = result.stage("a")
    assert entry["status"] == "failed"
    assert entry["error"]["kind"] == "kernel_died"
    assert entry["error"]["ename"] == "DeadKernelError"
    assert "kernel died" in str(result.failure)
    assert (result.run_dir / "executed" / "00_a.ipynb").is_file()


def test_english_engagement_reports_in_english(tmp_path, registry):
    engagement = make_engagement(tmp_path / "en", locale="en")

    result = run_engagement(engagement, stages=["a"], overrides={"a": {"title": "Q4"}}, registry=[registry[0]])

    assert result.ok
    assert "stage 00_a succeeded" in (result.run_dir / "run.log").read_text(encoding="utf-8")


def test_manifest_records_effective_locale(monkeypatch, tmp_path, registry):
    engagement = make_engagement(tmp_path / "zh")
    monkeypatch.setenv("RELMAP_LANG", "en")

    result = run_engagement(engagement, stages=["a"], overrides={"a": {"title": "Q4"}}, registry=[registry[0]])

    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    assert manifest["config"]["locale"] == "zh_CN"
    assert manifest["locale_effective"] == "en"


def test_interrupted_run_leaves_readable_manifest(engagement, registry):
    def interrupt(event):
        if event.kind == "start" and event.stage.key == "b":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_engagement(engagement, registry=registry, progress=interrupt)

    (run_dir,) = (engagement / "runs").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "failed"
    assert [entry["status"] for entry in manifest["stages"]] == ["succeeded", "skipped", "skipped"]
    assert manifest["stages"][1]["error"]["ename"] == "KeyboardInterrupt"


# --------------------------------------------------------------------------- checks before a run


def test_untagged_notebook_rejected_before_run(tmp_path, engagement):
    notebook = write_notebook(tmp_path / "untagged.ipynb", ['as_of = "2023-06-30"', "print(as_of)"], tag_first=False)

    with pytest.raises(RunError, match=r"untagged\.ipynb.*parameters.*as_of, run_dir"):
        run_engagement(engagement, overrides={"a": {"as_of": "2023-12-31"}}, registry=[Stage("a", "00_a", notebook)])

    assert not (engagement / "runs").exists()


def test_missing_key_rejected_before_run(monkeypatch, engagement, registry):
    monkeypatch.delenv("RELMAP_PSEUDONYM_KEY")

    with pytest.raises(PrivacyError, match="RELMAP_PSEUDONYM_KEY"):
        run_engagement(engagement, registry=registry)

    assert not (engagement / "runs").exists()


def test_reserved_run_dir_parameter(engagement, registry):
    with pytest.raises(ConfigError, match="run_dir"):
        run_engagement(engagement, overrides={"a": {"run_dir": "/elsewhere"}}, registry=registry)


def test_unknown_stage_in_overrides(engagement, registry):
    with pytest.raises(ConfigError, match="nope.*a, b, c"):
        run_engagement(engagement, overrides={"nope": {"x": 1}}, registry=registry)


def test_lock_rejects_second_run(engagement, registry):
    with EngagementLock(engagement, "tiny"):
        with pytest.raises(RunError, match=f"已有一个运行在进行（进程 {os.getpid()}"):
            run_engagement(engagement, registry=registry)

    assert not (engagement / "runs").exists()
    with EngagementLock(engagement, "tiny"):
        pass


def test_lock_holder_time_in_engagement_zone(engagement):
    with EngagementLock(engagement, "tiny", SHANGHAI) as lock:
        holder = json.loads(lock.path.read_text(encoding="utf-8"))

    assert holder["since"].endswith("+08:00")


def test_lock_released_when_holder_killed(engagement):
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from relmap_utils.runner import EngagementLock\n"
        "with EngagementLock(Path(sys.argv[1]), 'tiny'):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(engagement)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunError, match=str(holder.pid)):
            EngagementLock(engagement, "tiny").__enter__()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)

    with EngagementLock(engagement, "tiny"):
        pass


# --------------------------------------------------------------------------- run folders


def test_run_dir_never_reused(tmp_path):
    now = dt.datetime(2026, 12, 4, 20, 30, 0, tzinfo=SHANGHAI)
    first = create_run_dir(tmp_path, SHANGHAI, now)
    (first / "keep.txt").write_text("first", encoding="utf-8")

    second = create_run_dir(tmp_path, SHANGHAI, now)
    third = create_run_dir(tmp_path, SHANGHAI, now)

    assert first.name == "20261204-203000"
    assert second.name == "20261204-203000-01"
    assert third.name == "20261204-203000-02"
    assert (first / "keep.txt").read_text(encoding="utf-8") == "first"
    assert list(second.iterdir()) == []


def test_run_id_uses_engagement_time_zone(tmp_path):
    utc_noon = dt.datetime(2026, 12, 4, 12, 0, 0, tzinfo=dt.timezone.utc)

    assert create_run_dir(tmp_path, SHANGHAI, utc_noon).name == "20261204-200000"


def test_run_ids_sort_by_time_then_suffix():
    ids = ["20261204-203000-10", "20261204-203001", "20261204-203000", "20261204-203000-02"]

    assert sorted(ids, key=run_sort_key) == [
        "20261204-203000", "20261204-203000-02", "20261204-203000-10", "20261204-203001",
    ]  # fmt: skip


def test_list_runs_statuses(engagement):
    runs = engagement / "runs"
    for run_id, status in [("20261204-100000", "succeeded"), ("20261204-110000", "running")]:
        (runs / run_id).mkdir(parents=True)
        manifest = {"status": status, "started_at": "2026-12-04T10:00:00+08:00", "duration_seconds": 65.0,
                    "stages": [{"status": "succeeded"}, {"status": "skipped"}]}  # fmt: skip
        (runs / run_id / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (runs / "20261204-120000").mkdir()
    (runs / "20261204-120000" / "manifest.json").write_text("{broken", encoding="utf-8")

    summaries = list_runs(engagement)

    assert [s.run_id for s in summaries] == ["20261204-100000", "20261204-110000", "20261204-120000"]
    assert [s.status for s in summaries] == ["succeeded", "interrupted", "unreadable"]
    assert summaries[0].counts == {"succeeded": 1, "skipped": 1}
    assert summaries[0].duration_seconds == 65.0


def test_list_runs_running_while_locked(engagement):
    run_dir = engagement / "runs" / "20261204-100000"
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"status": "running", "stages": []}), encoding="utf-8")

    with EngagementLock(engagement, "tiny"):
        assert [s.status for s in list_runs(engagement)] == ["running"]


# --------------------------------------------------------------------------- stage selection


def _stages(*specs: tuple[str, tuple[str, ...]]) -> list[Stage]:
    return [Stage(key, f"{index:02d}_{key}", Path(f"{key}.ipynb"), deps) for index, (key, deps) in enumerate(specs)]


def _config(stages: dict | None = None):
    data = {"name": "x", "client": "c", "sources": [{"name": "s", "path": "s.csv"}], "stages": stages or {}}
    return parse_engagement(data, Path("engagement.yaml"))


CHAIN = _stages(("ingest", ()), ("profiling", ("ingest",)), ("map", ("ingest",)), ("segments", ("map",)))


@pytest.mark.parametrize(
    ("stages", "from_stage", "disabled", "run", "reuse"),
    [
        (None, None, [], ["ingest", "profiling", "map", "segments"], []),
        (None, None, ["map"], ["ingest", "profiling", "segments"], ["map"]),
        (["profiling"], None, [], ["profiling"], ["ingest"]),
        (["segments", "01_profiling"], None, [], ["profiling", "segments"], ["ingest", "map"]),
        (None, "map", [], ["map", "segments"], ["ingest", "profiling"]),
        (None, "map", ["profiling"], ["map", "segments"], ["ingest"]),
        (["map"], "map", [], ["map"], ["ingest", "profiling"]),
        (["profiling"], "profiling", [], ["profiling"], ["ingest"]),
    ],
    ids=[
        "all", "disabled-dependency-reused", "one-stage", "two-stages-by-id",
        "from", "from-disabled", "from-and-stages", "readme-rerun",
    ],  # fmt: skip
)
def test_plan_stages(stages, from_stage, disabled, run, reuse):
    config = _config({key: {"enabled": False} for key in disabled})

    plan = plan_stages(CHAIN, config, stages, from_stage)

    assert [stage.key for stage in plan.run] == run
    assert [stage.key for stage in plan.reuse] == reuse


@pytest.mark.parametrize(
    ("stages", "from_stage", "message"),
    [
        (["nope"], None, "nope.*ingest, profiling, map, segments"),
        (None, "nope", "nope"),
        (["ingest"], "map", "ingest.*--from map"),
    ],
    ids=["unknown-stage", "unknown-from", "stage-before-from"],
)
def test_plan_stages_errors(stages, from_stage, message):
    with pytest.raises(ConfigError, match=message):
        plan_stages(CHAIN, _config(), stages, from_stage)


def test_plan_stages_dependency_without_notebook():
    available = [stage for stage in CHAIN if stage.key != "ingest"]

    with pytest.raises(ConfigError, match="ingest"):
        plan_stages(available, _config(), ["profiling"])


def test_registered_notebooks_declare_run_dir():
    from relmap_utils.notebook_exec import check_parameters_cell
    from relmap_utils.stages import STAGES, available_stages

    assert [stage.key for stage in STAGES][:2] == ["ingest", "profiling"]
    for stage in available_stages():
        assert check_parameters_cell(stage.notebook_path, {"run_dir": ""}) == [], stage.key


def test_reuse_warns_when_inputs_changed(monkeypatch, caplog, engagement, registry):
    assert run_engagement(engagement, stages=["a"], registry=registry).ok
    (engagement / "data" / "customers.csv").write_text("客户号,城市\n0003,广州\n", encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="relmap_utils.runner"):
        second = run_engagement(engagement, from_stage="b", registry=registry)

    assert second.ok
    assert "输入文件与被复用的运行" in caplog.text
    assert "输入文件与被复用的运行" in (second.run_dir / "run.log").read_text(encoding="utf-8")
