"""relmap serve on bad input: it stops with a message and exit code 2, before any server starts."""

from __future__ import annotations

import os
import shutil
import signal
import socket

import pytest
from typer.testing import CliRunner

from relmap_utils.cli import build_app
from relmap_utils.dashboard.run import RUN_DIR_ENV
from relmap_utils.paths import ENGAGEMENTS_DIR
from tests.test_dashboard import write_run


@pytest.fixture
def engagement(tmp_path):
    folder = tmp_path / "acme"
    folder.mkdir()
    shutil.copy(ENGAGEMENTS_DIR / "demo" / "engagement.yaml", folder / "engagement.yaml")
    return folder


def invoke(*args: str):
    return CliRunner().invoke(build_app(), ["serve", *args])


def test_serve_without_successful_run(engagement):
    result = invoke(str(engagement))
    assert result.exit_code == 2
    assert "还没有成功的运行" in result.output
    assert "relmap run" in result.output
    assert not (engagement / "logs").exists()


def test_serve_without_successful_run_in_english(engagement, monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")
    write_run(engagement, "20260101-090000", status="failed")
    result = invoke(str(engagement))
    assert result.exit_code == 2
    assert "has no succeeded run" in result.output


def test_serve_rejects_run_path(engagement):
    write_run(engagement, "20260101-090000")
    result = invoke(str(engagement), "--run", "../../other")
    assert result.exit_code == 2
    assert "../../other" in result.output


def test_serve_rejects_short_token(engagement, monkeypatch):
    write_run(engagement, "20260101-090000")
    monkeypatch.setenv("RELMAP_SERVE_TOKEN", "short")
    result = invoke(str(engagement))
    assert result.exit_code == 2
    assert "RELMAP_SERVE_TOKEN" in result.output


def test_serve_reports_port_in_use(engagement, monkeypatch):
    write_run(engagement, "20260101-090000")
    monkeypatch.setenv("RELMAP_SERVE_TOKEN", "t" * 24)
    # serve() prepares the environment of its kernels and a SIGTERM handler
    # in this process; both are put back after the test.
    for variable in (RUN_DIR_ENV, "JUPYTER_PATH"):
        monkeypatch.setenv(variable, os.environ.get(variable, ""))
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(str(engagement), "--port", str(port), "--pool-size", "0")
    assert result.exit_code == 2, result.output
    assert str(port) in result.output
    assert "--port" in result.output
