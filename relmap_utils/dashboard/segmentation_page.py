"""The page of stage 03 (segmentation): tiers, RFM cells, segments, migration and one customer's history.

Reads ``artifacts/03_segmentation/``: ``summary.json``, ``groups.parquet``,
``profiles.parquet``, ``transitions.parquet`` and, for the lookup only,
``customer_segments.parquet`` through Ibis (DuckDB), filtered to one
pseudonym, so the customer table never reaches Python. Groups and
migration flows smaller than ``privacy.min_group_size`` are merged or
hidden (docs/dashboards.md).

The lookup shows one customer's tier, RFM cell and segment per map date
when the viewer types that customer's full pseudonym: the page never lists
customers, so it reveals nothing to a viewer who does not already hold the
pseudonym.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from relmap_utils.dashboard import render
from relmap_utils.dashboard.overview import run_facts
from relmap_utils.dashboard.pages import REPORTS_DIR, find_page, registered_pages
from relmap_utils.dashboard.run import DashboardRun, open_run
from relmap_utils.dashboard.widgets import FilterSpec, filtered_section
from relmap_utils.errors import RunError
from relmap_utils.i18n import tr
from relmap_utils.segmentation import report

STAGE_ID = "03_segmentation"
KINDS = ("tier", "rfm_cell", "segment")
PSEUDONYM = re.compile(r"^[0-9a-f]{16,64}$")


class SegmentationPage:
    """Sections of ``notebooks/reports/03_segmentation.ipynb``; each method displays one section."""

    def __init__(self, run: DashboardRun, pages_folder: Path = REPORTS_DIR) -> None:
        summary = run.summary(STAGE_ID)
        if summary is None:
            raise RunError("dashboard.stage_missing", stage=STAGE_ID, run=str(run.run_dir))
        self.run = run
        self.summary = summary
        page = find_page(registered_pages(pages_folder), STAGE_ID)
        self.title = page.title_in() if page else STAGE_ID
        params = self.summary.get("params") or {}
        if not isinstance(params.get("tiers"), dict):
            stage = run.engagement.stages.get("segmentation")
            params = stage.params if stage is not None else {}
        map_dictionary = run.artifact_path("02_map", "feature_dictionary.parquet")
        dictionary = pd.read_parquet(map_dictionary) if map_dictionary.is_file() else None
        self.groups = report.with_descriptions(self._read("groups.parquet"), params.get("tiers"), dictionary)
        self.profiles = self._read("profiles.parquet")
        self.transitions = self._read("transitions.parquet")
        self.kinds = [kind for kind in KINDS if not self.groups.empty and (self.groups["kind"] == kind).any()]

    @classmethod
    def open(cls, run_dir: str | Path | None = None) -> "SegmentationPage":
        """Open the run (see :func:`~relmap_utils.dashboard.run.open_run`)."""
        return cls(open_run(run_dir))

    def _read(self, name: str) -> pd.DataFrame:
        path = self.run.artifact_path(STAGE_ID, name)
        return pd.read_parquet(path) if path.is_file() else pd.DataFrame()

    def header(self) -> None:
        """Display the page title, the run facts and the stage's headline cards."""
        locale = self.run.locale
        cards = [
            (self._named(item["label"].get(locale) or item["label"].get("zh_CN", "")),
             render.format_value(item["value"], item["format"]))
            for item in self.summary.get("headline_metrics", [])
        ]
        cards.append((tr("segmentation.report.col.as_of"), render.format_value(self.summary.get("as_of"), "text")))
        render.display_html(render.page_header(self.title, run_facts(self.run)) + render.metric_cards(cards))

    def _named(self, text: str) -> str:
        # Headline labels written by the stage name the top tier by its code ("最高层级 private 的资产占比").
        if self.groups.empty:
            return text
        for code in self.groups.loc[self.groups["kind"] == "tier", "group"].astype(str):
            name = report.group_label(self.groups, "tier", code, self.run.locale)
            text = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(code)}(?![A-Za-z0-9_])", name, text)
        return text

    def _kind_spec(self, kinds: list[str]) -> FilterSpec:
        options = [(tr(f"segmentation.report.heading_{kind}"), kind) for kind in kinds]
        return FilterSpec("kind", tr("labels.grouping"), options, include_all=False)

    def sizes(self) -> None:
        """Display the size, shares, names and actions of every group, one kind at a time."""
        render.display_html(render.heading(tr("segmentation.report.title")))
        if not self.kinds:
            render.display_html(render.paragraph(tr("segmentation.report.none")))
            return
        filtered_section([self._kind_spec(self.kinds)], lambda filters: self._draw_sizes(filters.get("kind")
                                                                                        or self.kinds[0]))

    def _draw_sizes(self, kind: str) -> None:
        minimum = self.run.min_group_size
        render.show_figure(report.sizes_chart(self.groups, kind, minimum, self.run.locale))
        table = report.groups_table(self.groups, kind, minimum, self.run.locale, codes=False)
        if table.empty:
            render.display_html(render.note(tr("dashboard.privacy.suppressed", min_size=minimum)))
            return
        render.display_html(render.html_table(table, {column: column for column in table.columns}))

    def heatmap(self) -> None:
        """Display the profile heat map of tiers or segments."""
        kinds = [kind for kind in ("segment", "tier") if kind in self.kinds]
        render.display_html(render.heading(tr("segmentation.report.heatmap")))
        if not kinds or self.profiles.empty:
            render.display_html(render.paragraph(tr("segmentation.report.none")))
            return
        filtered_section([self._kind_spec(kinds)], lambda filters: render.show_figure(report.profile_heatmap(
            self.groups, self.profiles, filters.get("kind") or kinds[0], self.run.min_group_size, self.run.locale)))

    def migration(self) -> None:
        """Display the Sankey diagram of moves between the two compared states."""
        render.display_html(render.heading(tr("segmentation.report.heading_migration")))
        info = self.summary.get("migration") or {}
        if self.transitions.empty or not info.get("enabled"):
            render.display_html(render.paragraph(tr("segmentation.report.none")))
            return
        render.display_html(render.paragraph(f"{info.get('baseline_run') or info.get('from')} → {info.get('to')}"))
        kinds = [kind for kind in KINDS if (self.transitions["kind"] == kind).any()]
        filtered_section([self._kind_spec(kinds)], lambda filters: render.show_figure(report.sankey(
            self.transitions, self.groups, filters.get("kind") or kinds[0], self.run.min_group_size, self.run.locale)))

    def lookup(self) -> None:
        """Display a box for one customer's pseudonym and their history; outside Voilà, a hint."""
        render.display_html(render.heading(tr("segmentation.report.heading_lookup")))
        if not render.running_in_voila():
            render.display_html(render.paragraph(tr("segmentation.report.lookup_hint")))
            return
        import ipywidgets as widgets
        from IPython.display import display

        box = widgets.Text(description=tr("segmentation.report.lookup_prompt"), style={"description_width": "initial"},
                           layout=widgets.Layout(width="60%"))
        output = widgets.Output()

        def show(change: Any) -> None:
            output.clear_output(wait=True)
            with output:
                self.show_history(str(change["new"]).strip().lower())

        box.observe(show, names="value")
        display(widgets.VBox([box, output]))

    def history(self, pseudonym: str) -> pd.DataFrame:
        """Return one customer's tier, RFM cell and segment per map date (empty when not found).

        Raises
        ------
        ValueError
            When ``pseudonym`` does not look like a pseudonym (hex digits).
        """
        if not PSEUDONYM.match(pseudonym):
            raise ValueError("not a pseudonym")
        table = self.run.table(STAGE_ID, "customer_segments.parquet")
        if table is None:
            return pd.DataFrame()
        columns = [name for name in ("as_of", *KINDS) if name in table.columns]
        return table.filter(table.customer_id == pseudonym).select(*columns).order_by("as_of").to_pandas()

    def show_history(self, pseudonym: str) -> None:
        """Display :meth:`history` with group names in the page language."""
        if not pseudonym:
            return
        try:
            frame = self.history(pseudonym)
        except ValueError:
            render.display_html(render.note(tr("segmentation.report.lookup_invalid")))
            return
        if frame.empty:
            render.display_html(render.note(tr("segmentation.report.lookup_not_found")))
            return
        for kind in KINDS:
            if kind in frame.columns:
                frame[kind] = [report.group_label(self.groups, kind, value, self.run.locale) if value is not None
                               else "-" for value in frame[kind]]
        frame["as_of"] = frame["as_of"].astype(str)
        headers = {"as_of": tr("segmentation.report.col.as_of")}
        headers.update({kind: tr(f"segmentation.report.col.{kind}") for kind in KINDS if kind in frame.columns})
        render.display_html(render.html_table(frame, headers))
