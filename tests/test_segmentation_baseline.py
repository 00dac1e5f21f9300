"""Stage 03 checks migration.baseline_run before any work, naming the run id in the error."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from relmap_utils.errors import ConfigError, StageError
from relmap_utils.segmentation.params import parse_params
from relmap_utils.segmentation.stage import check_baseline_run, run_stage

THIS_RUN = "20261205-100000"
EARLIER = "20261201-090000"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "runs" / THIS_RUN
    folder.mkdir(parents=True)
    return folder


def _params(baseline: str, enabled: bool = True):
    return parse_params({"migration": {"baseline_run": baseline, "enabled": enabled}})


def test_missing_run_named(run_dir):
    with pytest.raises(ConfigError, match=f"基准运行 {EARLIER} 不在"):
        check_baseline_run(_params(EARLIER), run_dir)


def test_run_without_segmentation(run_dir):
    (run_dir.parent / EARLIER / "artifacts").mkdir(parents=True)

    with pytest.raises(StageError, match=f"基准运行 {EARLIER} 没有客户分层阶段的结果"):
        check_baseline_run(_params(EARLIER), run_dir)


def test_this_run_rejected(run_dir):
    with pytest.raises(ConfigError, match=f"基准运行 {THIS_RUN} 就是本次运行"):
        check_baseline_run(_params(THIS_RUN), run_dir)


@pytest.mark.parametrize("value", ["../other", "..", "a/b"])
def test_path_rejected(run_dir, value):
    with pytest.raises(ConfigError, match="不是运行编号"):
        check_baseline_run(_params(value), run_dir)


def test_valid_baseline_passes(run_dir):
    folder = run_dir.parent / EARLIER / "artifacts" / "03_segmentation"
    folder.mkdir(parents=True)
    (folder / "customer_segments.parquet").write_bytes(b"")

    check_baseline_run(_params(EARLIER), run_dir)


def test_disabled_migration_not_checked(run_dir):
    check_baseline_run(_params(EARLIER, enabled=False), run_dir)
    check_baseline_run(_params(""), run_dir)


def test_stage_fails_before_reading_map(run_dir, monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")

    def connect():
        pytest.fail("the stage opened the database before checking the baseline run")

    context = types.SimpleNamespace(run_dir=run_dir, connect=connect)
    with pytest.raises(ConfigError, match=f"baseline run {EARLIER} is not in"):
        run_stage(context, migration={"baseline_run": EARLIER})
