"""The page of stage 02 (relationship map): coverage, customer mix and the feature dictionary.

Reads ``artifacts/02_map/``: ``summary.json``, ``coverage.parquet``,
``feature_dictionary.parquet`` and the customer-level map of the latest map
date (``customer_map/as_of=<date>/part-0.parquet``). The map has one row per
customer, so it is queried through Ibis (DuckDB): filters and group counts run
in the database and only one row per group reaches Python. Groups smaller
than ``privacy.min_group_size`` are merged, and no single customer is shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from relmap_utils import charts
from relmap_utils.dashboard import render
from relmap_utils.dashboard.customers import Dimension
from relmap_utils.dashboard.overview import run_facts
from relmap_utils.dashboard.pages import REPORTS_DIR
from relmap_utils.dashboard.privacy import OTHER_GROUP, merge_small_groups, visible_values
from relmap_utils.dashboard.run import DashboardRun
from relmap_utils.dashboard.stage_page import StagePage
from relmap_utils.dashboard.widgets import Filters, FilterSpec, filtered_section
from relmap_utils.features.labels import feature_label, value_label, value_sort_key
from relmap_utils.i18n import tr

STAGE_ID = "02_map"
PRODUCT_FAMILIES = ("deposit", "wealth", "loan", "card", "insurance")
# Filter key -> candidate columns of the map, first present wins (as on the overview).
DIMENSIONS = {"region": ("region", "city"), "segment": ("segment", "city_tier")}
# Columns whose customer counts the page charts, when the map has them.
MIX_COLUMNS = ("life_stage", "age_band")


class MapPage(StagePage):
    """Sections of ``notebooks/reports/02_map.ipynb``; each method displays one section."""

    stage_id = STAGE_ID

    def __init__(self, run: DashboardRun, pages_folder: Path = REPORTS_DIR) -> None:
        super().__init__(run, pages_folder)
        self.coverage = self.read_table("coverage.parquet")
        self.dictionary = self.read_table("feature_dictionary.parquet")
        dates = self.summary.get("as_of_dates") or []
        self.as_of = str(dates[-1]) if dates else None
        self.customers = self._latest_map()

    def _latest_map(self) -> Any | None:
        if self.as_of is None:
            return None
        return self.run.table(STAGE_ID, f"customer_map/as_of={self.as_of}/part-0.parquet")

    def header(self) -> None:
        """Display the page title, the run facts and the map's headline cards."""
        features = self.summary.get("features") or {}
        cards = [
            (tr("dashboard.map.customers"), render.format_value(self.summary.get("customers"))),
            (tr("dashboard.map.features"), render.format_value(features.get("included"))),
            (tr("dashboard.map.as_of"), render.format_value(self.as_of or "-", "text")),
        ]
        render.display_html(render.page_header(self.title, run_facts(self.run)) + render.metric_cards(cards))

    def coverage_chart(self) -> None:
        """Display the share of customers each feature family covers at the latest map date."""
        render.display_html(render.heading(tr("dashboard.map.coverage_heading")))
        if self.coverage.empty:
            render.display_html(render.paragraph(tr("profiling.report.none")))
            return
        latest = self.coverage[self.coverage["as_of"].astype(str) == str(self.as_of)]
        labels = [self.family_label(name) for name in latest["family"]]
        figure = charts.bar_chart(
            render.safe_labels(labels),
            (latest["share"].astype(float) * 100).round(1).tolist(),
            title=tr("dashboard.map.coverage_chart", as_of=render.escape(self.as_of)),
            y_title="%",
        )
        charts.style_figure(figure, height=340)
        render.show_figure(figure)

    @staticmethod
    def family_label(family: str) -> str:
        """Return the display name of a feature family, or the family key when the catalog has none."""
        key = f"dashboard.map.family.{family}"
        text = tr(key)
        return family if text == key else text

    def _dimension_columns(self) -> dict[str, str]:
        columns = set(self.customers.columns) if self.customers is not None else set()
        found = {}
        for key, candidates in DIMENSIONS.items():
            column = next((name for name in candidates if name in columns), None)
            if column is not None:
                found[key] = column
        return found

    def _filter_specs(self) -> list[FilterSpec]:
        table = self.customers
        specs = []
        for key, column in self._dimension_columns().items():
            present = table.filter(table[column].notnull())
            grouped = present.group_by(column).aggregate(n=present.count())
            frame = grouped.order_by([grouped.n.desc(), column]).to_pandas()
            values = visible_values(zip(frame[column], frame["n"].astype(int)), self.run.min_group_size)
            if values:
                label = Dimension(key, "customers", column).label()
                specs.append(FilterSpec(key, label, [(str(v), str(v)) for v in values]))
        held = [family for family in PRODUCT_FAMILIES if f"{family}_accounts" in table.columns]
        if held:
            options = [(tr(f"dashboard.product.{family}"), family) for family in held]
            specs.append(FilterSpec("product", tr("dashboard.dimension.product"), options))
        return specs

    def _filtered(self, filters: Filters) -> Any:
        table = self.customers
        columns = self._dimension_columns()
        for key, value in filters.items():
            if value is None:
                continue
            if key == "product":
                table = table.filter(table[f"{value}_accounts"] > 0)
            elif key in columns:
                table = table.filter(table[columns[key]] == value)
        return table

    def customer_mix(self) -> None:
        """Display customers by life stage and age band, and mean assets per group, with filters."""
        render.display_html(render.heading(tr("dashboard.map.mix_heading")))
        if self.customers is None:
            render.display_html(render.paragraph(tr("profiling.report.none")))
            return
        filtered_section(self._filter_specs(), self._draw_mix)

    def _draw_mix(self, filters: Filters) -> None:
        table = self._filtered(filters)
        minimum = self.run.min_group_size
        total = int(table.count().to_pandas())
        if total < minimum:
            render.display_html(render.note(tr("dashboard.privacy.suppressed", min_size=minimum)))
            return
        render.display_html(render.metric_cards([(tr("dashboard.overview.customers"), render.format_value(total))]))
        for column in (name for name in MIX_COLUMNS if name in table.columns):
            present = table.filter(table[column].notnull())
            metrics: dict[str, Any] = {"customers": present.count()}
            if "aum" in present.columns:
                metrics["aum_sum"] = present.aum.sum()
                metrics["aum_count"] = present.aum.count()
            frame = present.group_by(column).aggregate(**metrics).to_pandas()
            additive = [name for name in ("aum_sum", "aum_count") if name in frame.columns]
            grouped = merge_small_groups(
                frame.rename(columns={column: "group"}), "group", "customers", minimum, additive_columns=additive
            )
            title = tr("dashboard.chart.customers_by", dimension=self._column_label(column))
            if grouped.suppressed:
                render.display_html(render.paragraph(title) + render.note(grouped.note()))
                continue
            grouped.frame = self._in_natural_order(grouped.frame, column)
            labels = [label if key == OTHER_GROUP else value_label(column, key, self.run.locale)
                      for key, label in zip(grouped.frame["group"], grouped.labels())]
            figure = charts.bar_chart(
                render.safe_labels(labels),
                grouped.frame["customers"].astype(int).tolist(),
                title=title,
                y_title=tr("dashboard.overview.customers"),
            )
            if "aum_sum" in grouped.frame.columns:
                counts = grouped.frame["aum_count"].astype(float).where(grouped.frame["aum_count"] > 0)
                mean_aum = grouped.frame["aum_sum"].astype(float) / counts
                figure.update_traces(
                    customdata=[render.format_value(value, "amount") for value in mean_aum],
                    hovertemplate="%{x}: %{y:,}<br>" + tr("dashboard.map.mean_aum") + " %{customdata}<extra></extra>",
                )
            charts.style_figure(figure, height=340)
            render.show_figure(figure)
            render.display_html(render.note(grouped.note()))

    @staticmethod
    def _in_natural_order(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        # Age bands read youngest first and life stages in life order; the merged group stays last.
        keys = [(key == OTHER_GROUP, value_sort_key(column, key)) for key in frame["group"]]
        order = sorted(range(len(frame)), key=lambda position: keys[position])
        return frame.iloc[order].reset_index(drop=True)

    @staticmethod
    def _unit_name(unit: str) -> str:
        key = f"labels.unit_name.{unit}"
        text = tr(key)
        return unit if text == key else text

    def _column_label(self, column: str) -> str:
        label = feature_label(column, self.run.locale)
        if label != column:
            return label
        row = self.dictionary[self.dictionary["name"] == column] if not self.dictionary.empty else pd.DataFrame()
        if row.empty:
            return column
        field = "description_en" if self.run.locale == "en" else "description_zh"
        text = str(row.iloc[0][field] or column)
        # Dictionary descriptions can be long sentences; the chart title needs the short head.
        for separator in ("（", "：", " (", ": "):
            text = text.split(separator)[0]
        return text

    def feature_dictionary(self) -> None:
        """Display the features of the map, one family at a time."""
        render.display_html(render.heading(tr("dashboard.map.dictionary_heading")))
        if self.dictionary.empty:
            render.display_html(render.paragraph(tr("profiling.report.none")))
            return
        families = list(dict.fromkeys(self.dictionary["family"].astype(str)))
        spec = FilterSpec(
            "family", tr("dashboard.map.family"), [(self.family_label(f), f) for f in families], include_all=False
        )
        filtered_section([spec], lambda filters: self._draw_dictionary(filters.get("family") or families[0]))

    def _draw_dictionary(self, family: str) -> None:
        english = self.run.locale == "en"
        frame = self.dictionary[self.dictionary["family"] == family]
        frame = frame.assign(
            label=[feature_label(name, self.run.locale) for name in frame["name"]],
            unit_text=[self._unit_name(unit) for unit in frame["unit"]],
            description=frame["description_en" if english else "description_zh"],
            status_text=[tr(f"dashboard.map.status.{value}") for value in frame["status"]],
            reason=frame["reason_en" if english else "reason_zh"].fillna(""),
        )
        headers = {
            "label": tr("dashboard.map.col.feature"),
            "name": tr("labels.column_name"),
            "description": tr("dashboard.map.col.description"),
            "unit_text": tr("dashboard.map.col.unit"),
            "status_text": tr("dashboard.col.status"),
            "reason": tr("dashboard.map.col.reason"),
        }
        render.display_html(render.html_table(frame, headers))
