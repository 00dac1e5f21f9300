"""The run context a stage notebook opens: config snapshot, folders, engine.

A stage notebook receives ``run_dir`` as a parameter and calls
``RunContext.open(run_dir)``. Stages exchange data only through files in the
run folder, never through kernel state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from relmap_utils.config import Engagement, parse_engagement
from relmap_utils.errors import RunError
from relmap_utils.i18n import set_locale

SNAPSHOT_FILE = "engagement.yaml"
INGEST_STAGE = "00_ingest"


@dataclass
class RunContext:
    """Paths and configuration of one run, as seen from inside a stage."""

    run_dir: Path
    engagement: Engagement
    engagement_dir: Path

    @classmethod
    def open(cls, run_dir: str | Path, engagement_dir: str | Path | None = None) -> "RunContext":
        """Open a run folder created by the runner and set the report language."""
        folder = Path(run_dir).resolve()
        snapshot = folder / SNAPSHOT_FILE
        if not snapshot.is_file():
            raise RunError("run.not_a_run", path=str(folder), file=SNAPSHOT_FILE)
        engagement = parse_engagement(yaml.safe_load(snapshot.read_text(encoding="utf-8")), snapshot)
        # runs/<run-id>/ sits inside the engagement folder unless told otherwise
        base = Path(engagement_dir).resolve() if engagement_dir else folder.parent.parent
        set_locale(engagement.locale)
        return cls(folder, engagement, base)

    def artifacts(self, stage: str) -> Path:
        """Return (and create) the artifact folder of ``stage``."""
        path = self.run_dir / "artifacts" / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def tables_dir(self) -> Path:
        """Folder of the canonical Parquet tables written by ingest."""
        return self.run_dir / "artifacts" / INGEST_STAGE / "tables"

    @property
    def reports_dir(self) -> Path:
        path = self.run_dir / "reports"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def connect(self) -> Any:
        """Return a fresh Ibis backend for this engagement's engine."""
        from relmap_utils.engine import connect

        return connect(self.engagement.engine, timezone=self.engagement.timezone)

    def canonical_tables(self, backend: Any) -> dict[str, Any]:
        """Register every canonical table present in the run as an Ibis table."""
        tables = {}
        for path in sorted(self.tables_dir.glob("*.parquet")):
            tables[path.stem] = backend.read_parquet(path, table_name=path.stem)
        return tables
