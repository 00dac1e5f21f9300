"""The run a dashboard shows: its manifest, configuration and stage artifacts.

A dashboard notebook never recomputes a model. It opens the run folder that
``relmap serve`` (or an export) names and reads what the stages wrote under
``artifacts/<stage-id>/``. The run folder comes from the notebook's
``run_dir`` parameter, or else from the environment variable
:data:`RUN_DIR_ENV`, which ``relmap serve`` sets for its kernels.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from relmap_utils.context import RunContext
from relmap_utils.errors import RunError
from relmap_utils.i18n import get_locale
from relmap_utils.manifest import COMPLETED_STATUSES, MANIFEST_FILE, read_manifest

logger = logging.getLogger(__name__)

RUN_DIR_ENV = "RELMAP_DASHBOARD_RUN"
SUMMARY_FILE = "summary.json"
# Stage statuses whose artifacts a dashboard shows.
SHOWN_STATUSES = COMPLETED_STATUSES


@dataclass
class DashboardRun:
    """A finished run opened for reading by a dashboard.

    Attributes
    ----------
    context : RunContext
        The run folder and its engagement configuration snapshot.
    manifest : dict
        The run's manifest.json.
    """

    context: RunContext
    manifest: dict[str, Any]
    _summaries: dict[str, dict[str, Any] | None] = field(default_factory=dict, repr=False)

    @property
    def run_dir(self) -> Path:
        return self.context.run_dir

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def engagement(self) -> Any:
        return self.context.engagement

    @property
    def locale(self) -> str:
        """Page language: ``RELMAP_LANG``, else the engagement's ``locale`` (zh_CN by default)."""
        return get_locale()

    @property
    def min_group_size(self) -> int:
        return int(self.engagement.privacy.min_group_size)

    def stage_entries(self) -> list[dict[str, Any]]:
        """Return the manifest's stage entries, in run order."""
        return list(self.manifest.get("stages", []))

    def stage_shown(self, stage_id: str) -> bool:
        """Return True when ``stage_id`` succeeded (or was reused) in this run."""
        return any(
            entry.get("id") == stage_id and entry.get("status") in SHOWN_STATUSES for entry in self.stage_entries()
        )

    def artifact_path(self, stage_id: str, name: str) -> Path:
        """Return the path of artifact ``name`` of stage ``stage_id``.

        Raises
        ------
        ValueError
            When ``stage_id`` or ``name`` would leave the stage's artifact folder.
        """
        folder = (self.run_dir / "artifacts" / stage_id).resolve()
        path = (folder / name).resolve()
        if folder.parent != (self.run_dir / "artifacts").resolve() or not path.is_relative_to(folder):
            raise ValueError(f"artifact {stage_id}/{name} is outside the run's artifacts folder")
        return path

    def summary(self, stage_id: str) -> dict[str, Any] | None:
        """Return the stage's ``summary.json``, or ``None`` when the stage did not write one.

        A summary that is not a JSON object is logged and treated as absent,
        so one broken stage does not take the whole overview down.
        """
        if stage_id not in self._summaries:
            self._summaries[stage_id] = self._read_summary(stage_id)
        return self._summaries[stage_id]

    def _read_summary(self, stage_id: str) -> dict[str, Any] | None:
        if not self.stage_shown(stage_id):
            return None
        path = self.artifact_path(stage_id, SUMMARY_FILE)
        if not path.is_file():
            return None
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            logger.error("cannot read %s: %s", path, error)
            return None
        if not isinstance(content, dict):
            logger.error("%s is not a JSON object; the stage's key findings are left out", path)
            return None
        return content

    @cached_property
    def backend(self) -> Any:
        """Ibis backend (DuckDB unless the engagement names another engine) for artifact queries."""
        return self.context.connect()

    def table(self, stage_id: str, name: str) -> Any | None:
        """Return the Parquet artifact ``name`` (``tables/customers.parquet``) as an Ibis table, or ``None``.

        The file is read lazily, so filters and aggregates run in the
        database and only their results reach Python.
        """
        path = self.artifact_path(stage_id, name)
        if not path.is_file():
            return None
        table_name = "_".join(["a", stage_id, *Path(name).with_suffix("").parts])
        return self.backend.read_parquet(path, table_name=table_name)


def open_run(run_dir: str | Path | None = None) -> DashboardRun:
    """Open the run a dashboard shows and set the page language.

    Parameters
    ----------
    run_dir : str or Path, optional
        The run folder. When empty, the environment variable
        ``RELMAP_DASHBOARD_RUN`` (set by ``relmap serve``) names it.

    Returns
    -------
    DashboardRun

    Raises
    ------
    RunError
        When no run folder is given, or the folder has no engagement.yaml
        snapshot or no manifest.json.
    """
    chosen = str(run_dir or "") or os.environ.get(RUN_DIR_ENV, "")
    if not chosen:
        raise RunError("dashboard.no_run", variable=RUN_DIR_ENV)
    context = RunContext.open(chosen)
    if not (context.run_dir / MANIFEST_FILE).is_file():
        raise RunError("runner.manifest_missing", run=str(context.run_dir))
    return DashboardRun(context, read_manifest(context.run_dir))
