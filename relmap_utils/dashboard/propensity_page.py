"""The page of stage 04 (propensity): gains, calibration, SHAP summary, segment x product, customer lookup.

Reads ``artifacts/04_propensity/``: ``summary.json``, ``products.parquet``,
``metrics.parquet``, ``gains.parquet``, ``reliability.parquet``,
``importance.parquet``, and through Ibis (DuckDB) the customer-level
``scores.parquet`` and ``reasons.parquet``. The segment x product heat map
appears when stage 03 ran in the same run (``customer_segments.parquet``);
segments smaller than ``privacy.min_group_size`` are left out of it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from relmap_utils.dashboard import render
from relmap_utils.dashboard.overview import run_facts
from relmap_utils.dashboard.pages import REPORTS_DIR
from relmap_utils.dashboard.run import DashboardRun
from relmap_utils.dashboard.stage_page import StagePage
from relmap_utils.dashboard.widgets import FilterSpec, filtered_section
from relmap_utils.i18n import tr
from relmap_utils.propensity import report

STAGE_ID = "04_propensity"
SEGMENT_STAGE = "03_segmentation"
PSEUDONYM = re.compile(r"^[0-9a-f]{8,64}$")


class PropensityPage(StagePage):
    """Sections of ``notebooks/reports/04_propensity.ipynb``; each method displays one section."""

    stage_id = STAGE_ID

    def __init__(self, run: DashboardRun, pages_folder: Path = REPORTS_DIR) -> None:
        super().__init__(run, pages_folder)
        self.products = self.read_table("products.parquet")
        self.metrics = self.read_table("metrics.parquet")
        self.gains = self.read_table("gains.parquet")
        self.reliability = self.read_table("reliability.parquet")
        self.importance = self.read_table("importance.parquet")
        self.modelled = [name for name, entry in (self.summary.get("products") or {}).items()
                         if entry.get("status") == "modelled"]
        self.labels = report.product_labels(run.engagement)
        # A stage that had nothing to do (no take-up labels) wrote only its reason.
        self.skipped = self.summary.get("status") == "skipped"

    def skip_reason(self) -> str:
        """Return why the stage had nothing to do, in the page language ("" when it ran)."""
        if not self.skipped:
            return ""
        field, other = ("message_en", "message_zh") if self.run.locale == "en" else ("message_zh", "message_en")
        return str(self.summary.get(field) or self.summary.get(other) or self.summary.get("reason") or "")

    def product_name(self, product: str) -> str:
        """Return the product's display name in the page language."""
        return report.product_name(product, self.run.locale, self.labels)

    def header(self) -> None:
        """Display the page title, the run facts and the stage's headline cards (only the reason when it had nothing to do)."""
        if self.skipped:
            render.display_html(render.page_header(self.title, run_facts(self.run))
                                + render.paragraph(self.skip_reason()))
            return
        cards = [
            (tr("dashboard.propensity.modelled"), render.format_value(self.summary.get("products_modelled"))),
            (tr("dashboard.propensity.skipped"), render.format_value(self.summary.get("products_skipped"))),
            (tr("dashboard.propensity.scored"), render.format_value(self.summary.get("customers_scored"))),
            (tr("dashboard.propensity.split"), render.format_value(
                tr(f"dashboard.propensity.split_{self.summary.get('split', 'time')}"), "text")),
        ]
        render.display_html(render.page_header(self.title, run_facts(self.run)) + render.metric_cards(cards))

    def product_status(self) -> None:
        """Display each product's status and test results, and why a product was skipped."""
        if self.skipped:
            return
        render.display_html(render.heading(tr("propensity.report.products")))
        if not self.products.empty:
            shown = report.products_table(self.products, self.run.locale, self.labels)
            render.display_html(render.html_table(shown, {name: name for name in shown.columns}))
        test = self.metrics[(self.metrics["sample"] == "test")] if not self.metrics.empty else self.metrics
        if not test.empty:
            shown = report.metrics_table(test, self.run.locale, self.labels)
            render.display_html(render.html_table(shown, {name: name for name in shown.columns}))

    def _product_spec(self) -> FilterSpec:
        return FilterSpec("product", tr("propensity.column.product"),
                          [(self.product_name(name), name) for name in self.modelled], include_all=False)

    def gains_chart(self) -> None:
        """Display the cumulative gains of every product on the test sample."""
        if self.skipped:
            return
        render.display_html(render.heading(tr("dashboard.propensity.gains_heading")))
        if self.gains.empty:
            render.display_html(render.paragraph(tr("profiling.report.none")))
            return
        render.show_figure(report.gains_chart(self.gains, labels=self.labels))

    def calibration_chart(self) -> None:
        """Display the reliability curves and the Brier scores on the test sample."""
        if self.skipped:
            return
        render.display_html(render.heading(tr("dashboard.propensity.calibration_heading")))
        if self.reliability.empty:
            render.display_html(render.paragraph(tr("profiling.report.none")))
            return
        render.show_figure(report.calibration_chart(self.reliability, labels=self.labels))

    def shap_summary(self) -> None:
        """Display the SHAP importance of one product at a time, with the explainer used."""
        if self.skipped:
            return
        render.display_html(render.heading(tr("dashboard.propensity.shap_heading")))
        if self.importance.empty or not self.modelled:
            render.display_html(render.paragraph(tr("profiling.report.none")))
            return
        texts = self._feature_texts()
        sample = self.read_table("shap_sample.parquet")

        def draw(filters: dict[str, str | None]) -> None:
            product = filters.get("product") or self.modelled[0]
            render.show_figure(report.importance_chart(self.importance, product, texts, labels=self.labels))
            own = sample[sample["product"] == product] if not sample.empty else sample
            if not own.empty:
                render.show_figure(report.dependence_chart(sample, product, str(own["feature"].iloc[0]),
                                                           labels=self.labels))

        filtered_section([self._product_spec()], draw)

    def _feature_texts(self) -> dict[str, dict[str, str]]:
        path = self.run.artifact_path("02_map", "feature_dictionary.parquet")
        if not path.is_file():
            return {}
        frame = pd.read_parquet(path, columns=["name", "description_zh", "description_en"])
        return {row.name: {"zh_CN": row.description_zh, "en": row.description_en} for row in frame.itertuples()}

    def segment_matrix(self) -> pd.DataFrame:
        """Return mean take-up probability per segment and product (empty without stage 03 in the run).

        Segments with fewer customers than ``privacy.min_group_size`` are left out.
        """
        segments = self.run.table(SEGMENT_STAGE, "customer_segments.parquet")
        scores = self.run.table(STAGE_ID, "scores.parquet")
        if segments is None or scores is None:
            return pd.DataFrame()
        if "as_of" in segments.columns:
            latest = segments.as_of.max().to_pandas()
            segments = segments.filter(segments.as_of == latest)
        # Clusters when clustering ran, else tiers, else RFM cells: each alone is a result of stage 03.
        column = next((name for name in ("segment", "tier", "rfm_cell")
                       if name in segments.columns and int(segments[name].count().to_pandas()) > 0), None)
        if column is None:
            return pd.DataFrame()
        segments = segments.filter(segments[column].notnull())
        joined = scores.join(segments.select("customer_id", group=segments[column]), "customer_id")
        grouped = joined.group_by(["group", "product"]).aggregate(
            probability=joined.probability.mean(), customers=joined.customer_id.nunique()).to_pandas()
        grouped = grouped[grouped["customers"] >= self.run.min_group_size]
        return grouped.pivot_table(index="group", columns="product", values="probability")

    def segment_heatmap(self) -> None:
        """Display the segment x product heat map, when stage 03 ran in this run."""
        if self.skipped:
            return
        render.display_html(render.heading(tr("propensity.chart.heatmap")))
        matrix = self.segment_matrix()
        if matrix.empty:
            # Stage 03 may have results whose groups are all below the privacy minimum.
            ran = self.run.table(SEGMENT_STAGE, "customer_segments.parquet") is not None
            key = "dashboard.propensity.segments_too_small" if ran else "dashboard.propensity.no_segments"
            render.display_html(render.paragraph(tr(key, size=self.run.min_group_size)))
            return
        render.show_figure(report.heatmap_chart(matrix, self.labels, self._segment_names()))

    def _segment_names(self) -> dict[str, str]:
        path = self.run.artifact_path(SEGMENT_STAGE, "groups.parquet")
        if not path.is_file():
            return {}
        groups = pd.read_parquet(path, columns=["kind", "group", "name_zh", "name_en"])
        field = "name_en" if self.run.locale == "en" else "name_zh"
        return {str(row.group): str(getattr(row, field) or row.group) for row in groups.itertuples()
                if row.kind in ("segment", "tier", "rfm_cell")}

    def customer(self, pseudonym: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Return one customer's scores per product and reason codes (empty frames when not found).

        Raises
        ------
        ValueError
            When ``pseudonym`` is not a pseudonym (hex digits).
        """
        if not PSEUDONYM.match(pseudonym):
            raise ValueError("not a pseudonym")
        scores = self.run.table(STAGE_ID, "scores.parquet")
        reasons = self.run.table(STAGE_ID, "reasons.parquet")
        found = scores.filter(scores.customer_id == pseudonym).to_pandas() if scores is not None else pd.DataFrame()
        why = reasons.filter(reasons.customer_id == pseudonym).to_pandas() \
            if reasons is not None and "customer_id" in reasons.columns else pd.DataFrame()
        return found, why

    def show_customer(self, pseudonym: str) -> None:
        """Display :meth:`customer` in the page language."""
        if not pseudonym:
            return
        try:
            scores, reasons = self.customer(pseudonym)
        except ValueError:
            render.display_html(render.note(tr("dashboard.propensity.lookup_invalid")))
            return
        if scores.empty:
            render.display_html(render.note(tr("dashboard.propensity.lookup_not_found")))
            return
        suffix = "en" if self.run.locale == "en" else "zh"
        if not reasons.empty:
            scores = scores.merge(reasons[["product", *[f"reason_{rank}_{suffix}" for rank in (1, 2, 3)]]],
                                  on="product", how="left")
        scores["probability"] = scores["probability"].round(4)
        scores["product"] = [self.product_name(value) for value in scores["product"]]
        if "excluded" in scores:
            scores["excluded"] = [self._exclusion_text(value) for value in scores["excluded"]]
        headers = {name: tr(f"propensity.column.{name}") for name in ("product", "probability", "decile")}
        headers["excluded"] = tr("dashboard.propensity.excluded")
        headers.update({f"reason_{rank}_{suffix}": tr(f"propensity.column.reason_{rank}_zh")
                        for rank in (1, 2, 3) if f"reason_{rank}_{suffix}" in scores.columns})
        render.display_html(render.html_table(scores, headers, numeric=("probability", "decile")))

    @staticmethod
    def _exclusion_text(code: Any) -> str:
        # Empty means eligible; other codes are relmap_utils.propensity.nbp.EXCLUSION_REASONS.
        if not isinstance(code, str) or not code:
            return ""
        key = f"labels.excluded.{code}"
        text = tr(key)
        return code if text == key else text

    def lookup(self) -> None:
        """Display a box for one customer's pseudonym and their scores with reasons; outside Voilà, a hint."""
        if self.skipped:
            return
        render.display_html(render.heading(tr("dashboard.propensity.lookup_heading")))
        if not render.running_in_voila():
            render.display_html(render.paragraph(tr("dashboard.propensity.lookup_hint")))
            return
        import ipywidgets as widgets
        from IPython.display import display

        box = widgets.Text(description=tr("dashboard.propensity.lookup_prompt"),
                           style={"description_width": "initial"}, layout=widgets.Layout(width="60%"))
        output = widgets.Output()

        def show(change: Any) -> None:
            output.clear_output(wait=True)
            with output:
                self.show_customer(str(change["new"]).strip().lower())

        box.observe(show, names="value")
        display(widgets.VBox([box, output]))
