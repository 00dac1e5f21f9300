"""relmap serve's kernels: which pages are preheated, trusted page notebooks, and freeing a closed page's kernel."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.sign import NotebookNotary

from relmap_utils.dashboard.pages import Page
from relmap_utils.dashboard.server import AccessGate, PageViewLog, ServerOptions, sign_pages, voila_config
from relmap_utils.errors import ConfigError
from relmap_utils.serve import preheat_pages


def page(tmp_path: Path, page_id: str) -> Page:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    path = tmp_path / f"{page_id}.ipynb"
    nbformat.write(notebook, path)
    return Page(page_id, path, None if page_id == "overview" else page_id, {"zh_CN": page_id}, 0)


def options(tmp_path: Path, **kwargs) -> ServerOptions:
    pages = [page(tmp_path, "overview"), page(tmp_path, "01_profiling"), page(tmp_path, "02_map")]
    gate = AccessGate(["t" * 16], b"k" * 32, "cookie")
    log = PageViewLog(tmp_path / "serve.log", "run")
    return ServerOptions(tmp_path, pages, gate, log, "heading", **kwargs)


def test_default_preheats_overview_only(tmp_path):
    config = voila_config(options(tmp_path))
    assert config.VoilaConfiguration.preheat_kernel is True
    assert config.VoilaKernelManager.kernel_pools_config == {
        "default": {"pool_size": 0},
        "overview.ipynb": {"pool_size": 1},
    }


def test_preheat_every_page(tmp_path):
    config = voila_config(options(tmp_path, pool_size=2, preheat=()))
    assert config.VoilaKernelManager.kernel_pools_config == {"default": {"pool_size": 2}}


def test_pool_size_zero_starts_kernels_on_request(tmp_path):
    config = voila_config(options(tmp_path, pool_size=0))
    assert config.VoilaConfiguration.preheat_kernel is False
    assert "kernel_pools_config" not in config.VoilaKernelManager


def test_kernel_channels_loopback_encrypted(tmp_path):
    config = voila_config(options(tmp_path))
    assert config.KernelManager.ip == "127.0.0.1"
    assert config.KernelManager.transport_encryption == "auto"


def test_preheat_pages():
    assert preheat_pages("overview", ["overview", "01_profiling"]) == ("overview",)
    assert preheat_pages(" overview, 01_profiling ", ["overview", "01_profiling"]) == ("overview", "01_profiling")
    assert preheat_pages("all", ["overview"]) == ()


@pytest.mark.parametrize("value", ["02_map", "", "overview,all"])
def test_preheat_unknown_page_refused(value, monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")
    with pytest.raises(ConfigError, match="overview, 01_profiling"):
        preheat_pages(value, ["overview", "01_profiling"])


def test_sign_pages_trusts_only_the_pages(tmp_path):
    notary = NotebookNotary(secret=b"s" * 32, db_file=":memory:")
    pages = [page(tmp_path, "overview")]
    other = page(tmp_path / "..", "stranger")
    sign_pages(notary, pages)
    assert notary.check_signature(nbformat.read(pages[0].notebook, as_version=4))
    assert not notary.check_signature(nbformat.read(other.notebook, as_version=4))


# --------------------------------------------------------------------------- running server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from relmap_utils.runner import run_engagement

    from tests.conftest import make_small_demo_engagement

    folder = tmp_path_factory.mktemp("engagements") / "demo"
    folder.mkdir()
    make_small_demo_engagement(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_PSEUDONYM_KEY", secrets.token_hex(32))
        result = run_engagement(folder, stages=["ingest", "profiling"])
    assert result.status == "succeeded", result.failure and result.failure.render("en")
    return folder


@pytest.mark.slow
def test_closed_page_frees_kernel(demo_run, tmp_path):
    """Open the overview in headless Chromium, leave it, and watch its kernel stop."""
    psutil = pytest.importorskip("psutil")
    playwright = pytest.importorskip("playwright.sync_api")
    from tests.test_browser_dashboards import CHROMIUM, CHROMIUM_FLAGS, RENDERED

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    token, port = secrets.token_urlsafe(24), _free_port()
    env = {**os.environ, "RELMAP_SERVE_TOKEN": token}
    env.pop("RELMAP_LANG", None)
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "relmap_utils.cli", "serve", str(demo_run), "--port", str(port)]
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=tmp_path)

    def kernels() -> int:
        count = 0
        for child in psutil.Process(process.pid).children(recursive=True):
            try:
                count += "ipykernel" in " ".join(child.cmdline())
            except psutil.Error:  # a stopped kernel not yet reaped
                pass
        return count

    def wait_for(predicate, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.2)
        return False

    try:
        assert wait_for(lambda: "pages/overview" in stdout.read_text() or process.poll() is not None, 120)
        assert process.poll() is None, stderr.read_text()
        # The default: one pre-started kernel, for the overview only.
        assert wait_for(lambda: "filled with 1 kernel" in stderr.read_text(), 60), stderr.read_text()
        assert kernels() == 1
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            try:
                view = browser.new_page()
                view.set_default_timeout(120_000)
                view.goto(f"http://127.0.0.1:{port}/pages/overview?token={token}", wait_until="commit")
                assert wait_for(lambda: view.evaluate(RENDERED, 3), 120)
                # The kernel in use plus the refilled pool.
                assert wait_for(lambda: kernels() == 2, 60)
                # Leaving the page sends Voilà's shutdown beacon.
                view.goto("about:blank")
                assert wait_for(lambda: kernels() == 1, 30), stderr.read_text()
            finally:
                browser.close()
        log = stderr.read_text()
        assert "Kernel shutdown" in log
        assert "_xsrf" not in log
        assert " 403 " not in log
        assert "is not trusted" not in log
        assert "without encryption" not in log
        assert log.count("listen on 127.0.0.1 only") == 1
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
