"""Shared fixtures: the public datasets folder, a pseudonym key, small engagements."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from relmap_utils.paths import shared_dir

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh random pseudonym key in the environment, as a bank would set it."""
    key = secrets.token_hex(32)
    monkeypatch.setenv("RELMAP_PSEUDONYM_KEY", key)
    return key


@pytest.fixture(autouse=True)
def default_language(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start in the default language, whatever the developer's shell says."""
    from relmap_utils.i18n import set_locale

    monkeypatch.delenv("RELMAP_LANG", raising=False)
    set_locale(None)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The folder with the public datasets and hard cases.

    Outside CI a missing folder skips the test; in CI (CI=true) it fails,
    because a green run that skipped every real-data test proves nothing.
    """
    folder = shared_dir()
    if not (folder / "datasets").is_dir():
        message = f"public datasets not found at {folder}; set RELMAP_SHARED_DIR"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def cases(shared: Path) -> Path:
    """Folder of the hard-input cases, each with its expected.json."""
    return shared / "cases"


def make_small_demo_engagement(folder: Path, n_customers: int = 500, n_transactions: int = 12_000) -> Path:
    """Write the demo engagement.yaml and a small generated demo bank into ``folder``; return it."""
    import shutil

    from relmap_utils.demo import generate_demo_bank
    from relmap_utils.paths import ENGAGEMENTS_DIR

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ENGAGEMENTS_DIR / "demo" / "engagement.yaml", folder / "engagement.yaml")
    generate_demo_bank(folder / "data", n_customers=n_customers, n_transactions=n_transactions)
    return folder


@pytest.fixture(scope="session")
def profiled_demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of a 500-customer demo bank through ingest and profiling, made once per test process.

    Tests must not change it: take a ``demo_run_copy`` to tamper with.
    """
    from relmap_utils.runner import run_engagement

    folder = make_small_demo_engagement(tmp_path_factory.mktemp("profiled_demo"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_PSEUDONYM_KEY", secrets.token_hex(32))
        result = run_engagement(folder, stages=["ingest", "profiling"])
    assert result.ok, result.failure and result.failure.render("en")
    return result.run_dir


@pytest.fixture
def demo_run_copy(profiled_demo_run: Path, tmp_path: Path) -> Path:
    """A copy of ``profiled_demo_run`` inside its own engagement folder, free to change."""
    import shutil

    engagement = tmp_path / "engagement"
    (engagement / "runs").mkdir(parents=True)
    shutil.copy(profiled_demo_run.parent.parent / "engagement.yaml", engagement / "engagement.yaml")
    target = engagement / "runs" / profiled_demo_run.name
    shutil.copytree(profiled_demo_run, target)
    return target


@pytest.fixture(scope="session")
def real_engagement_run(shared: Path, tmp_path_factory: pytest.TempPathFactory):
    """Return a function that runs ``engagements/<name>`` on the public datasets, once per test process.

    The run goes through the runner, as `relmap run` does, with every enabled
    stage, into a copy of the engagement under a temporary folder so that no run
    folder lands in the repository. Tests read its artifacts and must not change them.
    """
    import shutil

    from relmap_utils.paths import ENGAGEMENTS_DIR

    runs: dict[str, Path] = {}

    def run(name: str) -> Path:
        if name not in runs:
            from relmap_utils.runner import run_engagement

            folder = tmp_path_factory.mktemp(name)
            shutil.copy(ENGAGEMENTS_DIR / name / "engagement.yaml", folder / "engagement.yaml")
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("RELMAP_SHARED_DIR", str(shared))
                patch.setenv("RELMAP_PSEUDONYM_KEY", secrets.token_hex(32))
                result = run_engagement(folder)
            assert result.status == "succeeded", result.failure and result.failure.render("en")
            runs[name] = result.run_dir
        return runs[name]

    return run
