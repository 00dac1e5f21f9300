"""Run and lock folders that cannot be written give messages, not tracebacks."""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from pathlib import Path

import pytest

from relmap_utils.errors import RunError
from relmap_utils.runner import EngagementLock, create_run_dir

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 12, 4, 20, 30, 0, tzinfo=SHANGHAI)


def test_runs_file_instead_of_folder(tmp_path):
    (tmp_path / "runs").write_text("not a folder", encoding="utf-8")

    with pytest.raises(RunError, match=r"runs 是一个文件，不是文件夹.*改名或移走") as caught:
        create_run_dir(tmp_path, SHANGHAI, NOW)

    assert "is a file, not a folder" in caught.value.render("en")


def test_runs_folder_read_only(tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    real_mkdir = Path.mkdir

    def reject_mkdir(self, *args, **kwargs):
        if self.parent.name == "runs":
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", reject_mkdir)

    with pytest.raises(RunError, match=r"无法在 .*runs 中创建运行目录（Permission denied）。请确认该文件夹可写"):
        create_run_dir(tmp_path, SHANGHAI, NOW)


def test_lock_in_read_only_folder(tmp_path, monkeypatch):
    def reject_open(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "open", reject_open)

    with pytest.raises(RunError, match=r"无法创建锁文件 .*\.relmap\.lock（Permission denied）"):
        with EngagementLock(tmp_path, "t"):
            pass
