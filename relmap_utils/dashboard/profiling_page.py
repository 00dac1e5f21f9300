"""The page of stage 01 (data profiling): score, findings, table sizes, missing values, top values.

Reads ``artifacts/01_profiling/`` (summary.json and the Parquet tables that
the stage writes; see docs/profiling.md). The files hold aggregates only, so
they are read whole.

Privacy: category value counts (top values) are groups of rows sharing a
value, so values held by fewer rows than ``privacy.min_group_size`` are merged
into "other". Counts of defects (missing cells, orphan keys, duplicate keys)
describe data quality, not a group of customers sharing an attribute, and are
shown as computed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from relmap_utils import charts
from relmap_utils.dashboard import render
from relmap_utils.dashboard.overview import run_facts
from relmap_utils.dashboard.pages import REPORTS_DIR
from relmap_utils.dashboard.privacy import merge_small_groups
from relmap_utils.dashboard.run import DashboardRun
from relmap_utils.dashboard.stage_page import StagePage
from relmap_utils.dashboard.widgets import Filters, FilterSpec, filtered_section
from relmap_utils.i18n import tr

STAGE_ID = "01_profiling"
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


class ProfilingPage(StagePage):
    """Sections of ``notebooks/reports/01_profiling.ipynb``; each method displays one section."""

    stage_id = STAGE_ID

    def __init__(self, run: DashboardRun, pages_folder: Path = REPORTS_DIR) -> None:
        super().__init__(run, pages_folder)
        self.findings = self.read_table("findings.parquet")
        self.tables = self.read_table("tables.parquet")
        self.columns = self.read_table("columns.parquet")

    def header(self) -> None:
        """Display the page title, the run facts and the quality score cards."""
        dimensions = self.summary.get("dimensions") or {}
        cards = [(tr("dashboard.profiling.score"), render.format_value(self.summary.get("quality_score"), "score"))]
        for name in ("completeness", "uniqueness", "integrity", "validity"):
            cards.append((tr(f"dashboard.profiling.dimension.{name}"), render.format_value(dimensions.get(name), "percent")))
        markup = render.page_header(self.title, run_facts(self.run)) + render.metric_cards(cards)
        markup += render.paragraph(tr("profiling.report.score_formula", cap=50))
        render.display_html(markup)

    def table_sizes(self) -> None:
        """Display rows per table as a bar chart."""
        render.display_html(render.heading(tr("profiling.report.tables_heading")))
        if self.tables.empty:
            render.display_html(render.paragraph(tr("profiling.report.none")))
            return
        ordered = self.tables.sort_values("rows", ascending=False)
        figure = charts.bar_chart(
            render.safe_labels(ordered["table"]),
            ordered["rows"].astype(int).tolist(),
            title=tr("dashboard.chart.rows_per_table"),
            x_title=tr("profiling.header.rows"),
            horizontal=True,
        )
        charts.style_figure(figure, height=max(260, 40 * len(ordered) + 100))
        render.show_figure(figure)

    def findings_list(self) -> None:
        """Display the findings, filtered by severity and table."""
        render.display_html(render.heading(tr("profiling.report.findings_heading")))
        if self.findings.empty:
            render.display_html(render.paragraph(tr("profiling.report.no_findings")))
            return
        severities = [name for name in SEVERITY_ORDER if name in set(self.findings["severity"])]
        tables = sorted(set(self.findings["table"].dropna().astype(str)))
        specs = [
            FilterSpec("severity", tr("dashboard.col.severity"), [(tr(f"profiling.severity.{s}"), s) for s in severities]),
            FilterSpec("table", tr("dashboard.col.table"), [(name, name) for name in tables]),
        ]
        filtered_section(specs, self._draw_findings)

    def _draw_findings(self, filters: Filters) -> None:
        frame = self.findings
        if filters.get("severity"):
            frame = frame[frame["severity"] == filters["severity"]]
        if filters.get("table"):
            frame = frame[frame["table"] == filters["table"]]
        locale = self.run.locale
        frame = frame.assign(message=frame["message_en"] if locale == "en" else frame["message_zh"])
        headers = {
            "severity": tr("dashboard.col.severity"),
            "table": tr("dashboard.col.table"),
            "column": tr("dashboard.col.column"),
            "message": tr("dashboard.col.finding"),
        }
        render.display_html(
            render.html_table(
                frame,
                headers,
                formats={
                    "severity": lambda value: render.severity_badge(value, locale),
                    "column": lambda value: "" if value is None or value is pd.NA else str(value),
                },
                raw_html=["severity"],
            )
        )

    def missing_values(self) -> None:
        """Display the share of missing values per column, for one table at a time."""
        render.display_html(render.heading(tr("dashboard.profiling.missing_heading")))
        if self.columns.empty:
            render.display_html(render.paragraph(tr("profiling.report.none")))
            return
        tables = list(dict.fromkeys(self.columns["table"].astype(str)))
        spec = FilterSpec("table", tr("dashboard.col.table"), [(name, name) for name in tables], include_all=False)
        filtered_section([spec], lambda filters: self._draw_missing(filters.get("table") or tables[0]))

    def _draw_missing(self, table: str) -> None:
        frame = self.columns[self.columns["table"] == table].sort_values("missing_share", ascending=False)
        figure = charts.bar_chart(
            render.safe_labels(frame["column"]),
            (frame["missing_share"].astype(float) * 100).round(2).tolist(),
            title=tr("dashboard.chart.missing_share", table=render.escape(table)),
            y_title="%",
        )
        charts.style_figure(figure, height=340)
        render.show_figure(figure)

    def top_values(self) -> None:
        """Display the most frequent values of category columns, small groups merged."""
        render.display_html(render.heading(tr("dashboard.profiling.top_values_heading")))
        candidates = self._top_value_columns()
        if not candidates:
            render.display_html(render.paragraph(tr("profiling.report.none")))
            return
        options = [(f"{table}.{column}", f"{table}.{column}") for table, column in candidates]
        spec = FilterSpec("column", tr("dashboard.col.column"), options, include_all=False)
        filtered_section([spec], lambda filters: self._draw_top_values(filters.get("column") or options[0][1]))

    def _top_value_columns(self) -> list[tuple[str, str]]:
        if self.columns.empty or "top_values" not in self.columns.columns:
            return []
        present = self.columns[self.columns["top_values"].notna() & (self.columns["top_values"] != "[]")]
        return list(zip(present["table"].astype(str), present["column"].astype(str)))

    def _draw_top_values(self, qualified: str) -> None:
        table, _, column = qualified.partition(".")
        row = self.columns[(self.columns["table"] == table) & (self.columns["column"] == column)].iloc[0]
        pairs: list[Any] = json.loads(row["top_values"])
        frame = pd.DataFrame(pairs, columns=["group", "rows"])
        listed = int(frame["rows"].sum())
        rest = max(int(row["count"]) - listed, 0)
        grouped = merge_small_groups(frame, "group", "rows", self.run.min_group_size, rest=rest)
        title = tr("profiling.chart.top_values_title", table=render.escape(table), column=render.escape(column))
        if grouped.suppressed:
            render.display_html(render.paragraph(title) + render.note(grouped.note()))
            return
        figure = charts.bar_chart(
            render.safe_labels(grouped.labels()), grouped.frame["rows"].astype(int).tolist(), title=title,
            x_title=tr("profiling.header.rows"), horizontal=True,
        )
        charts.style_figure(figure, height=max(260, 32 * len(grouped.frame) + 100))
        render.show_figure(figure)
        render.display_html(render.note(grouped.note()))
