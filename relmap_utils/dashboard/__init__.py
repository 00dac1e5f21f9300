"""Client dashboards: pages that show a finished run's artifacts in Voilà.

The notebooks under ``notebooks/reports/`` only call into this package. A page
opens the run (:func:`open_run`), reads what the stages wrote under
``artifacts/<stage-id>/`` and displays escaped HTML, Plotly charts and
ipywidgets filters. Nothing here recomputes a model. Modules:

- :mod:`~relmap_utils.dashboard.run`: the run folder, its manifest and artifacts;
- :mod:`~relmap_utils.dashboard.pages`: the pages registry (which notebooks a run shows);
- :mod:`~relmap_utils.dashboard.privacy`: HTML escaping and small-group merging;
- :mod:`~relmap_utils.dashboard.render`: headings, cards, tables, charts;
- :mod:`~relmap_utils.dashboard.widgets`: filters;
- :mod:`~relmap_utils.dashboard.customers`, :mod:`~relmap_utils.dashboard.overview`,
  :mod:`~relmap_utils.dashboard.profiling_page`: the sections of each page;
- :mod:`~relmap_utils.dashboard.server`: the Voilà application behind ``relmap serve``.

docs/dashboards.md describes the contract a stage follows to add its page.
"""

from relmap_utils.dashboard.pages import Page, available_pages, registered_pages
from relmap_utils.dashboard.privacy import GroupedCounts, escape, merge_small_groups
from relmap_utils.dashboard.run import RUN_DIR_ENV, DashboardRun, open_run

__all__ = [
    "RUN_DIR_ENV",
    "DashboardRun",
    "GroupedCounts",
    "Page",
    "available_pages",
    "escape",
    "merge_small_groups",
    "open_run",
    "registered_pages",
]
