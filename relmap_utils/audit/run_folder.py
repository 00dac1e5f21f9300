"""Open a run folder for auditing, with clear messages when the folder is not a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from relmap_utils.config import CONFIG_FILE
from relmap_utils.errors import RunError
from relmap_utils.manifest import MANIFEST_FILE

_REQUIRED_FIELDS = ("run_id", "stages")


def open_run(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """Return a run folder's absolute path and its parsed manifest, reading nothing else.

    Raises
    ------
    RunError
        When ``path`` does not exist or is not a folder, when it is an
        engagement folder instead of one of its runs, when manifest.json is
        missing, and when manifest.json is not valid JSON or not a relmap
        manifest. Each message names what to pass instead.
    """
    folder = Path(path).expanduser()
    if not folder.exists():
        raise RunError("audit.run_not_found", path=str(folder))
    if not folder.is_dir():
        raise RunError("audit.run_not_folder", path=str(folder))
    folder = folder.resolve()

    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        if (folder / CONFIG_FILE).is_file() and (folder / "runs").is_dir():
            raise RunError("audit.engagement_not_run", path=str(folder), latest=_latest_run(folder / "runs"))
        raise RunError("audit.no_manifest", path=str(folder), file=MANIFEST_FILE)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise RunError("audit.manifest_unreadable", file=str(manifest_path)) from None
    if not isinstance(manifest, dict) or any(name not in manifest for name in _REQUIRED_FIELDS):
        raise RunError("audit.manifest_not_relmap", file=str(manifest_path), fields=", ".join(_REQUIRED_FIELDS))
    return folder, manifest


def _latest_run(runs: Path) -> str:
    from relmap_utils.runner import run_dirs

    found = run_dirs(runs.parent)
    return str(found[-1]) if found else str(runs / "<run-id>")


def stage_records(stage: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the file records (path, size, sha256) that a manifest stage entry lists."""
    records = [stage.get("executed_notebook"), *(stage.get("artifacts") or []), *(stage.get("reports") or [])]
    return [record for record in records if isinstance(record, dict) and record.get("path")]


def export_records(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the file records of every export listed in the manifest, oldest export first."""
    return [record for entry in manifest.get("exports") or [] for record in entry.get("files") or []]
