"""manifest.json: the audit record of one run, and the hashes that go into it.

The runner rewrites the manifest after every stage, atomically (temporary
file, then rename), so a crash leaves the last complete version behind. The
fields are described in docs/runs.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from relmap_utils.config import Engagement
from relmap_utils.errors import RunError
from relmap_utils.paths import PACKAGE_DIR, REPO_ROOT

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
SUMMARY_FILE = "summary.json"
# A stage that ran without error but found nothing to process: for example
# stage 04 propensity in an engagement without take-up labels. Its
# manifest entry has a ``skip_reason``; downstream stages still run.
NOTHING_TO_DO = "nothing_to_do"
# What a stage writes as ``status`` in its summary.json to report that it
# had nothing to do, together with ``reason`` (a catalog key) and the
# message in ``message_zh`` and ``message_en``.
SUMMARY_SKIPPED = "skipped"
# Stage statuses of a complete stage, whose artifacts later stages and runs may use.
COMPLETED_STATUSES = ("succeeded", "reused", NOTHING_TO_DO)
DISTRIBUTION = "relmap"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe_files(root: Path, folder: Path) -> list[dict[str, Any]]:
    """List every file under ``folder`` with its path relative to ``root``, size and sha256.

    Returns an empty list when ``folder`` does not exist.
    """
    if not folder.is_dir():
        return []
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        files.append({"path": relative, "size": path.stat().st_size, "sha256": sha256_file(path)})
    return files


def describe_inputs(engagement: Engagement, engagement_dir: Path) -> list[dict[str, Any]]:
    """Describe each source: its file with size and sha256, or its query.

    A source given as a folder (a partitioned Parquet data set, say) lists
    every file in it. Query sources read other sources and have no file.
    """
    inputs: list[dict[str, Any]] = []
    for source in engagement.sources:
        entry: dict[str, Any] = {"source": source.name, "table": source.table}
        if source.path is None:
            entry["sql"] = source.sql
            inputs.append(entry)
            continue
        resolved = source.resolved_path(engagement_dir)
        entry["path"] = source.path
        entry["resolved_path"] = str(resolved)
        if resolved.is_file():
            entry["size"] = resolved.stat().st_size
            entry["sha256"] = sha256_file(resolved)
        elif resolved.is_dir():
            entry["files"] = describe_files(resolved, resolved)
        else:
            entry["missing"] = True
        inputs.append(entry)
    return inputs


def pseudonym_key_record(engagement: Engagement) -> dict[str, Any]:
    """Return the name of the key variable and the key's fingerprint, never the key.

    Raises
    ------
    PrivacyError
        When the variable is unset or empty (raised by ``get_key``).
    """
    # Imported here because ingest imports the engine stack, which `relmap
    # --help` does not need.
    from relmap_utils.ingest.privacy import get_key, key_fingerprint

    return {"env": engagement.privacy.key_env, "fingerprint": key_fingerprint(get_key(engagement.privacy))}


def _requirement_names() -> list[str]:
    try:
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    names = []
    for requirement in requirements:
        if "extra ==" in requirement:
            continue
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        if match:
            names.append(match.group(0))
    return sorted(set(names), key=str.lower)


def package_versions() -> dict[str, str | None]:
    """Return the installed version of relmap and of each of its runtime dependencies."""
    versions: dict[str, str | None] = {}
    for name in [DISTRIBUTION, *_requirement_names()]:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment_record() -> dict[str, Any]:
    """Return the Python version, platform and package versions of this process."""
    return {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "packages": package_versions(),
    }


def source_tree_sha256(folder: Path = PACKAGE_DIR) -> str:
    """Hash the relmap_utils source tree: every file's relative path and content, in path order.

    Compiled caches (``__pycache__``, ``*.pyc``) are left out, so the hash
    changes only when the code or its message catalogs change.
    """
    digest = hashlib.sha256()
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        digest.update(sha256_file(path).encode("ascii") + b"\n")
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout if completed.returncode == 0 else None


def code_record() -> dict[str, Any]:
    """Return the code version: git commit and dirty flag in a checkout, else the package version."""
    from relmap_utils import __version__

    record: dict[str, Any] = {"relmap_version": __version__, "source_sha256": source_tree_sha256()}
    commit = _git("rev-parse", "HEAD") if (REPO_ROOT / ".git").exists() else None
    if commit:
        status = _git("status", "--porcelain", "--untracked-files=no")
        record["git_commit"] = commit.strip()
        record["git_dirty"] = None if status is None else bool(status.strip())
    return record


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically and return its path."""
    target = run_dir / MANIFEST_FILE
    temporary = run_dir / (MANIFEST_FILE + ".tmp")
    text = json.dumps(manifest, ensure_ascii=False, indent=2, default=_json_default) + "\n"
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return target


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """Read a run's manifest.

    Raises
    ------
    RunError
        When the manifest is missing or is not valid JSON.
    """
    path = run_dir / MANIFEST_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError("runner.manifest_missing", run=str(run_dir)) from None
    except (ValueError, UnicodeDecodeError):
        raise RunError("runner.manifest_unreadable", file=str(path)) from None


def stage_skip_reason(run_dir: Path, stage_id: str) -> dict[str, Any] | None:
    """Return why a stage had nothing to do, from its ``artifacts/<stage>/summary.json``.

    Returns
    -------
    dict or None
        ``key`` (catalog key), ``message_zh`` and ``message_en`` when the
        summary has ``"status": "skipped"``; None when it does not, or when
        the stage wrote no readable summary.
    """
    path = run_dir / "artifacts" / stage_id / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(summary, dict) or summary.get("status") != SUMMARY_SKIPPED:
        return None
    reason = {
        "key": summary.get("reason"),
        "message_zh": summary.get("message_zh"),
        "message_en": summary.get("message_en"),
    }
    return {name: None if value is None else str(value) for name, value in reason.items()}


def skip_reason_text(reason: dict[str, Any] | None, locale: str) -> str:
    """Return a ``skip_reason`` of a manifest entry in ``locale`` ("zh_CN" or "en"), or "" without one."""
    if not reason:
        return ""
    preferred = ("message_en", "message_zh") if locale == "en" else ("message_zh", "message_en")
    return next((str(reason[name]) for name in preferred if reason.get(name)), str(reason.get("key") or ""))


def stage_counts(stages: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Count the stages of a manifest by status."""
    counts: dict[str, int] = {}
    for stage in stages:
        status = str(stage.get("status", "unknown"))
        counts[status] = counts.get(status, 0) + 1
    return counts
