"""The pages registry: which dashboard notebooks exist and which a run can show.

Contract (docs/dashboards.md): the page of stage ``<stage-id>`` is the
notebook ``notebooks/reports/<stage-id>.ipynb``. Its notebook metadata holds
``relmap.page`` with the page title in both languages and a sort order::

    {"relmap": {"page": {"stage": "01_profiling", "order": 10,
                         "title": {"zh_CN": "数据剖析", "en": "Data profiling"}}}}

A run shows a stage's page when the stage succeeded (or was reused) in the
run and wrote ``artifacts/<stage-id>/summary.json``. The overview page
(``overview.ipynb``, no stage) is always shown. A later stage adds its page
by adding its notebook; no other file changes.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relmap_utils.dashboard.run import SUMMARY_FILE, DashboardRun
from relmap_utils.i18n import SUPPORTED_LOCALES, get_locale, normalize_locale
from relmap_utils.paths import NOTEBOOK_DIR

logger = logging.getLogger(__name__)

REPORTS_DIR = NOTEBOOK_DIR / "reports"
OVERVIEW_ID = "overview"
# Page ids appear in URLs, so they are restricted to plain names.
PAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Page:
    """One dashboard page.

    Attributes
    ----------
    id : str
        The notebook's file name without ``.ipynb``; for a stage page, the stage id.
    notebook : Path
    stage_id : str or None
        The stage whose artifacts the page shows; ``None`` for the overview.
    title : dict of str to str
        Title per locale (``zh_CN``, ``en``).
    order : int
        Position in the page list, lowest first.
    """

    id: str
    notebook: Path
    stage_id: str | None
    title: dict[str, str]
    order: int

    def title_in(self, locale: str | None = None) -> str:
        """Return the title in ``locale`` (default: the active locale), falling back to Chinese."""
        chosen = normalize_locale(locale) or get_locale()
        return self.title.get(chosen) or self.title.get("zh_CN") or self.id


def read_page(notebook: Path) -> Page | None:
    """Read the page description from a dashboard notebook's metadata.

    Returns ``None`` (and logs why) when the file name is not a valid page id,
    the metadata is missing, or a stage page is not named after its stage.
    """
    page_id = notebook.stem
    if not PAGE_ID.match(page_id):
        logger.warning("dashboard notebook %s is ignored: its name is not a valid page id", notebook)
        return None
    try:
        metadata = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        logger.warning("dashboard notebook %s is ignored: %s", notebook, error)
        return None
    description: Any = metadata.get("relmap", {}).get("page")
    if not isinstance(description, dict) or not isinstance(description.get("title"), dict):
        logger.warning("dashboard notebook %s is ignored: metadata relmap.page.title is missing", notebook)
        return None
    stage_id = description.get("stage")
    if page_id != OVERVIEW_ID and stage_id != page_id:
        logger.warning(
            "dashboard notebook %s is ignored: a stage page must be named after its stage (relmap.page.stage is %r)",
            notebook,
            stage_id,
        )
        return None
    title = {locale: str(description["title"].get(locale, "")) for locale in SUPPORTED_LOCALES}
    order = description.get("order", 1000)
    return Page(page_id, notebook, stage_id if page_id != OVERVIEW_ID else None, title, int(order))


def registered_pages(folder: Path = REPORTS_DIR) -> list[Page]:
    """Return every dashboard page found in ``folder``, sorted by order and id."""
    pages = [page for path in sorted(folder.glob("*.ipynb")) if (page := read_page(path)) is not None]
    return sorted(pages, key=lambda page: (page.order, page.id))


def available_pages(run: DashboardRun, folder: Path = REPORTS_DIR) -> list[Page]:
    """Return the pages ``run`` can show: the overview and each stage page whose stage wrote its summary."""
    pages = []
    for page in registered_pages(folder):
        if page.stage_id is None:
            pages.append(page)
        elif run.stage_shown(page.stage_id) and run.artifact_path(page.stage_id, SUMMARY_FILE).is_file():
            pages.append(page)
    return pages


def find_page(pages: list[Page], page_id: str) -> Page | None:
    """Return the page with ``page_id`` from ``pages``, or ``None``."""
    return next((page for page in pages if page.id == page_id), None)
