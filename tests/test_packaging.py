"""pyproject.toml and environment.yml pin the same runtime dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> str:
    name, _, version = requirement.partition("==")
    return f"{re.sub(r'[-_.]+', '-', name.strip().lower())}=={version.strip()}"


def _pyproject_pins() -> list[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [_normalise(item) for item in project["dependencies"]]


def _environment_pins() -> list[str]:
    environment = yaml.safe_load((REPO_ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    return [_normalise(item) for item in pip_section if not item.startswith("-")]


def test_every_runtime_dependency_is_pinned_exactly():
    for requirement in _pyproject_pins():
        assert re.fullmatch(r"[a-z0-9-]+(\[[a-z0-9,-]+\])?==[0-9][0-9a-z.]*", requirement), requirement


def test_environment_matches_pyproject():
    assert sorted(_environment_pins()) == sorted(_pyproject_pins())


def test_environment_python_matches_requires_python():
    environment = yaml.safe_load((REPO_ROOT / "environment.yml").read_text(encoding="utf-8"))
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    python_pin = next(item for item in environment["dependencies"] if isinstance(item, str) and item.startswith("python="))
    assert python_pin == "python=3.11"
    assert project["requires-python"] == ">=3.11,<3.12"


def test_installed_versions_match_pins():
    from importlib.metadata import version

    for requirement in _pyproject_pins():
        name, _, pinned = requirement.partition("==")
        name = name.split("[")[0]
        assert version(name) == pinned, f"{name}: installed {version(name)}, pinned {pinned}"
