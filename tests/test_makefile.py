"""The set-up commands stay quiet: one line per step, pip's output in a log file."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def planned_demo(tmp_path) -> list[str]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    completed = subprocess.run(
        ["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True,
    )
    return completed.stdout.splitlines()


def test_pip_output_goes_to_log(planned_demo, tmp_path):
    log = str(tmp_path / "venv" / "install.log")

    pip_lines = [line for line in planned_demo if "-m pip install" in line]

    assert len(pip_lines) == 2
    assert all(f"> {log}" in line or f">> {log}" in line for line in pip_lines)
    assert all("2>&1" in line for line in pip_lines)


def test_each_step_announced(planned_demo):
    steps = [line for line in planned_demo if line.startswith("echo ")]

    assert [step.split('"')[1].split(" ")[0] for step in steps[:3]] == ["[1/3]", "[2/3]", "[3/3]"]
    assert any("relmap demo" in step for step in steps)


def test_license_is_not_a_toml_table():
    # setuptools 77 and newer warn about `license = { text = ... }` in every build phase.
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    assert not isinstance(project.get("license"), dict)
