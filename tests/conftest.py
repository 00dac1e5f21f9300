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
