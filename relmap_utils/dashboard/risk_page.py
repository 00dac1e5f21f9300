"""The page of stage 05 (risk indicators and early warning).

Reads ``artifacts/05_risk/``: ``summary.json`` and the Parquet tables the
stage writes (see docs/risk.md). Sections: the backtest headline and
lead-time chart, the IV ranking, the scorecard, the WoE chart of each kept
indicator, the correlation heat map, the risk-band distribution and the
warning list with reasons.

Privacy: the band distribution merges bands smaller than
``privacy.min_group_size``. The warning list is the one section that shows
single customers, because post-loan staff act on it: it shows the first 8
characters of each keyed pseudonym, never a name or number from the bank's
data. Where policy forbids even that, the page notebook calls
``warning_list(show_warning_list=False)``, which shows the count only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from relmap_utils.dashboard import render
from relmap_utils.dashboard.overview import run_facts
from relmap_utils.dashboard.pages import REPORTS_DIR
from relmap_utils.dashboard.privacy import merge_small_groups
from relmap_utils.dashboard.run import DashboardRun
from relmap_utils.dashboard.stage_page import StagePage
from relmap_utils.dashboard.widgets import FilterSpec, filtered_section
from relmap_utils.i18n import tr
from relmap_utils.risk import report

STAGE_ID = "05_risk"
WARNING_ROWS = 50


class RiskPage(StagePage):
    """Sections of ``notebooks/reports/05_risk.ipynb``; each method displays one section."""

    stage_id = STAGE_ID

    def __init__(self, run: DashboardRun, pages_folder: Path = REPORTS_DIR) -> None:
        super().__init__(run, pages_folder)
        self.indicators = self.read_table("indicators.parquet")
        self.bins = self.read_table("bins.parquet")
        self.scorecard = self.read_table("scorecard.parquet")
        self.correlation = self.read_table("correlation.parquet")
        self.warnings = self.read_table("warnings.parquet")
        self.monthly = self.read_table("backtest_monthly.parquet")
        self.lead_times = self.read_table("lead_times.parquet")
        self.units = self._units()

    def _units(self) -> dict[str, str]:
        """Return each map feature's dictionary unit, so bin edges read as amounts, shares or counts."""
        path = self.run.artifact_path("02_map", "feature_dictionary.parquet")
        if not path.is_file():
            return {}
        frame = pd.read_parquet(path, columns=["name", "unit"])
        return {str(row.name): str(row.unit) for row in frame.itertuples() if isinstance(row.unit, str) and row.unit}

    @property
    def locale(self) -> str:
        return self.run.locale

    def _none(self) -> None:
        render.display_html(render.paragraph(tr("profiling.report.none")))

    def header(self) -> None:
        """Display the page title, the run facts and the stage's headline cards."""
        english = self.locale == "en"
        cards = [
            (card["label"]["en" if english else "zh_CN"], render.format_value(card.get("value"), card.get("format", "number")))
            for card in self.summary.get("headline_metrics") or []
        ]
        markup = render.page_header(self.title, run_facts(self.run)) + render.metric_cards(cards)
        if self.summary.get("status") == "skipped":
            # No default labels: say so first; the early-warning signals below still stand on their own.
            reason = self.summary.get("message_en" if english else "message_zh") or self.summary.get("reason") or ""
            markup += render.paragraph(str(reason))
        convention = self.summary.get("woe_convention") or {}
        markup += render.paragraph(convention.get("en" if english else "zh_CN", ""))
        render.display_html(markup)

    def backtest(self) -> None:
        """Display the backtest headline, precision and recall per month, and the lead-time chart."""
        render.display_html(render.heading(tr("risk.page.backtest_heading")))
        if not self.summary.get("backtest"):
            self._none()
            return
        headline = report.backtest_table(self.summary, self.locale)
        render.display_html(render.html_table(headline, {name: name for name in headline.columns}))
        monthly = report.monthly_table(self.monthly, self.locale)
        render.display_html(render.html_table(monthly, {name: name for name in monthly.columns},
                                              numeric=list(monthly.columns[1:])))
        render.show_figure(report.lead_time_chart(self.lead_times, self.locale, self.run.min_group_size))

    def iv_ranking(self) -> None:
        """Display the IV ranking chart and the screening table."""
        render.display_html(render.heading(tr("risk.page.iv_heading")))
        if self.indicators.empty:
            self._none()
            return
        render.show_figure(report.iv_chart(self.indicators, locale=self.locale))
        table = report.indicator_table(self.indicators, self.locale)
        render.display_html(render.html_table(table, {name: name for name in table.columns}))

    def scorecard_table(self) -> None:
        """Display the scorecard points per bin."""
        render.display_html(render.heading(tr("risk.page.scorecard_heading")))
        if self.scorecard.empty:
            self._none()
            return
        settings = self.summary.get("scorecard") or {}
        render.display_html(render.paragraph(tr("risk.page.scaling", base=settings.get("base_score"),
                                                odds=settings.get("base_odds"), pdo=settings.get("pdo"))))
        table = report.scorecard_table(self.scorecard, self.locale, self.units)
        render.display_html(render.html_table(table, {name: name for name in table.columns}))

    def woe_charts(self) -> None:
        """Display the WoE chart of one kept indicator, chosen in a dropdown."""
        render.display_html(render.heading(tr("risk.page.woe_heading")))
        kept = (self.summary.get("indicators") or {}).get("kept") or []
        if not kept or self.bins.empty:
            self._none()
            return
        options = [(report.indicator_name(name, self.locale), name) for name in kept]
        spec = FilterSpec("indicator", tr("risk.header.variable"), options, include_all=False)
        filtered_section([spec], lambda filters: render.show_figure(
            report.woe_chart(self.bins, filters.get("indicator") or kept[0], self.locale, self.units)))

    def correlation_heatmap(self) -> None:
        """Display the Spearman correlation heat map of the candidates' WoE."""
        render.display_html(render.heading(tr("risk.page.correlation_heading")))
        if self.correlation.empty:
            self._none()
            return
        render.show_figure(report.correlation_chart(self.correlation, self.locale))

    def band_distribution(self) -> None:
        """Display customers per risk band at the latest map date; small bands are merged."""
        render.display_html(render.heading(tr("risk.page.bands_heading")))
        latest = (self.summary.get("risk_bands") or {}).get("latest") or {}
        frame = pd.DataFrame({"group": [tr(f"risk.band.{band}") for band in latest],
                              "customers": list(latest.values())})
        frame = frame[frame["customers"] > 0]
        grouped = merge_small_groups(frame, "group", "customers", self.run.min_group_size)
        if grouped.suppressed or grouped.frame.empty:
            render.display_html(render.note(grouped.note() or tr("profiling.report.none")))
            return
        from relmap_utils import charts

        figure = charts.bar_chart(render.safe_labels(grouped.labels()), grouped.frame["customers"].astype(int).tolist(),
                                  title=tr("risk.chart.bands"), y_title=tr("risk.header.customers"))
        charts.style_figure(figure, height=320)
        render.show_figure(figure)
        render.display_html(render.note(grouped.note()))

    def warning_list(self, show_warning_list: bool = True) -> None:
        """Display the warning list of the latest map date with the triggered signals.

        Parameters
        ----------
        show_warning_list : bool, default=True
            False shows only the number of warned customers.
        """
        render.display_html(render.heading(tr("risk.page.warnings_heading")))
        if self.warnings.empty:
            self._none()
            return
        table = report.warning_table(self.warnings, limit=WARNING_ROWS, locale=self.locale)
        count = int((self.warnings["as_of"].astype(str) == str(self.warnings["as_of"].max())).sum())
        render.display_html(render.paragraph(tr("risk.page.warned_count", count=count, shown=min(count, WARNING_ROWS))))
        if show_warning_list:
            render.display_html(render.html_table(table, {name: name for name in table.columns}))

    def _variables(self) -> list[str]:
        # Notices name screened and unscreened map features alike: the map's dictionary lists them all.
        names = list(self.indicators["variable"]) if "variable" in self.indicators else []
        path = self.run.artifact_path("02_map", "feature_dictionary.parquet")
        if path.is_file():
            names += pd.read_parquet(path, columns=["name"])["name"].tolist()
        return names + list(self.summary.get("sensitive_excluded") or [])

    def notices(self) -> None:
        """Display the stage's notices."""
        render.display_html(render.heading(tr("risk.page.notices_heading")))
        table: Any = report.notices_table(self.summary, self.locale, self._variables())
        if table.empty:
            self._none()
            return
        render.display_html(render.html_table(table, {name: name for name in table.columns}))
