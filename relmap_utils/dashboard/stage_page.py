"""The base class of every stage's dashboard page: its summary, title and artifact tables.

A stage page subclasses :class:`StagePage`, sets :attr:`StagePage.stage_id`
and adds one method per section of its notebook under
``notebooks/reports/<stage-id>.ipynb``. Opening the page of a stage that did
not run in the chosen run raises :class:`~relmap_utils.errors.RunError`
(``dashboard.stage_missing``), which the notebook shows as a message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pandas as pd

from relmap_utils.dashboard.pages import REPORTS_DIR, find_page, registered_pages
from relmap_utils.dashboard.run import DashboardRun, open_run
from relmap_utils.errors import RunError

PageT = TypeVar("PageT", bound="StagePage")


class StagePage:
    """Base of a stage's dashboard page.

    Parameters
    ----------
    run : DashboardRun
        The run whose artifacts the page shows.
    pages_folder : Path, default=REPORTS_DIR
        Folder of the page notebooks; the page title comes from the notebook's metadata.

    Raises
    ------
    RunError
        When the stage wrote no ``summary.json`` in this run.
    """

    stage_id: ClassVar[str] = ""

    def __init__(self, run: DashboardRun, pages_folder: Path = REPORTS_DIR) -> None:
        summary = run.summary(self.stage_id)
        if summary is None:
            raise RunError("dashboard.stage_missing", stage=self.stage_id, run=str(run.run_dir))
        self.run = run
        self.summary: dict[str, Any] = summary
        page = find_page(registered_pages(pages_folder), self.stage_id)
        self.title = page.title_in() if page else self.stage_id

    @classmethod
    def open(cls: type[PageT], run_dir: str | Path | None = None) -> PageT:
        """Open the run (see :func:`~relmap_utils.dashboard.run.open_run`) and return its page."""
        return cls(open_run(run_dir))

    def read_table(self, name: str) -> pd.DataFrame:
        """Return the stage artifact ``name`` (a Parquet file), or an empty frame when the stage wrote none."""
        path = self.run.artifact_path(self.stage_id, name)
        return pd.read_parquet(path) if path.is_file() else pd.DataFrame()
