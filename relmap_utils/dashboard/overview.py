"""The overview page: what ran, the key findings of each stage, and the customer base.

Key findings come from each stage's ``summary.json`` (the contract in
docs/dashboards.md): ``headline_metrics`` become cards and
``headline_findings`` a list. Stages 01 (profiling) and 02 (relationship map)
write no ``headline_metrics``, so their cards are derived from their own
summary fields.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from relmap_utils import charts
from relmap_utils.dashboard import render
from relmap_utils.dashboard.customers import CustomerBase, mean_income
from relmap_utils.dashboard.pages import REPORTS_DIR, Page, registered_pages
from relmap_utils.dashboard.run import SHOWN_STATUSES, DashboardRun, open_run
from relmap_utils.dashboard.widgets import Filters, filtered_section
from relmap_utils.features.labels import feature_label
from relmap_utils.i18n import tr
from relmap_utils.manifest import NOTHING_TO_DO, skip_reason_text

PROFILING_STAGE = "01_profiling"
MAP_STAGE = "02_map"
PROPENSITY_STAGE = "04_propensity"
METRIC_FORMATS = ("number", "amount", "percent", "score", "text")


def run_facts(run: DashboardRun) -> str:
    """Return the line under a page title: client, engagement, run id and end time."""
    from relmap_utils.export import shown_time  # late: export imports the dashboard renderer

    # The same time format as the stage reports and the export index, with the zone's offset.
    ended = shown_time(run.manifest.get("ended_at") or run.manifest.get("started_at"), run.manifest)
    return tr(
        "dashboard.run_facts",
        client=run.engagement.client,
        engagement=run.engagement.name,
        run=run.run_id,
        ended=ended,
    )


def stage_title(entry: dict[str, Any], pages: list[Page]) -> str:
    """Return the display name of a manifest stage entry: its page title, else a catalog name, else its key."""
    page = next((page for page in pages if page.stage_id == entry.get("id")), None)
    if page is not None:
        return page.title_in()
    key = f"dashboard.stage_name.{entry.get('key')}"
    text = tr(key)
    return str(entry.get("key") or entry.get("id")) if text == key else text


def stage_note(entry: dict[str, Any], locale: str) -> str:
    """Return why a stage of the manifest had nothing to do or was skipped, in ``locale``; "" otherwise."""
    if entry.get("skip_reason"):
        return skip_reason_text(entry["skip_reason"], locale)
    if entry.get("status") == "skipped" and entry.get("skipped_because"):
        return tr("dashboard.overview.skipped_because", upstream=", ".join(map(str, entry["skipped_because"])))
    return ""


def headline_metrics(stage_id: str, summary: dict[str, Any], locale: str,
                     run: DashboardRun | None = None) -> list[tuple[str, str]]:
    """Return ``(label, formatted value)`` cards of a stage summary.

    A summary's ``headline_metrics`` entries need ``label`` (text per locale)
    and ``value``, and may give ``format`` (number, amount, percent, score,
    text). Entries that break this shape are skipped. Stage 04 writes none:
    its cards come from :func:`propensity_cards`.
    """
    cards: list[tuple[str, str]] = []
    for item in summary.get("headline_metrics") or []:
        if not isinstance(item, dict) or not isinstance(item.get("label"), dict) or "value" not in item:
            continue
        label = item["label"].get(locale) or item["label"].get("zh_CN") or ""
        kind = item.get("format") if item.get("format") in METRIC_FORMATS else "number"
        cards.append((str(label), render.format_value(item["value"], kind, locale)))
    if cards:
        return cards
    if stage_id == MAP_STAGE:
        features = summary.get("features") or {}
        dates = summary.get("as_of_dates") or ["-"]
        return [
            (tr("dashboard.map.customers"), render.format_value(summary.get("customers"))),
            (tr("dashboard.map.features"), render.format_value(features.get("included"))),
            (tr("dashboard.map.as_of"), render.format_value(str(dates[-1]), "text")),
        ]
    if stage_id == PROPENSITY_STAGE:
        return propensity_cards(summary, locale, run)
    if stage_id != PROFILING_STAGE:
        return cards

    rows = summary.get("rows") or {}
    severity = summary.get("severity_counts") or {}
    problems = sum(int(severity.get(name, 0)) for name in ("critical", "high"))
    return [
        (tr("dashboard.profiling.score"), render.format_value(summary.get("quality_score"), "score")),
        (tr("dashboard.profiling.tables"), render.format_value(summary.get("tables"))),
        (tr("dashboard.profiling.rows"), render.format_value(sum(int(v) for v in rows.values()) if rows else None)),
        (tr("dashboard.profiling.serious_findings"), render.format_value(problems)),
    ]


def propensity_cards(summary: dict[str, Any], locale: str, run: DashboardRun | None = None) -> list[tuple[str, str]]:
    """Return the cards of stage 04: products modelled, each product's test AUC and campaign list size.

    The list size is the number of rows of ``campaign/<product>.csv``; it
    is left out when ``run`` is not given or the stage wrote no list.
    """
    from relmap_utils.propensity.report import product_labels, product_name

    labels = product_labels(run.engagement) if run is not None else {}
    cards = [(tr("dashboard.propensity.modelled"), render.format_value(summary.get("products_modelled"), "number", locale))]
    for product, entry in (summary.get("products") or {}).items():
        if not isinstance(entry, dict) or entry.get("status") != "modelled":
            continue
        name = product_name(product, locale, labels)
        auc = entry.get("auc_test")
        cards.append((tr("labels.card.auc_test", locale=locale, product=name),
                      f"{auc:.3f}" if isinstance(auc, (int, float)) and auc == auc else "-"))
        path = run.artifact_path(PROPENSITY_STAGE, f"campaign/{product}.csv") if run is not None else None
        if path is not None and path.is_file():
            with path.open(encoding="utf-8-sig") as handle:
                rows = max(sum(1 for _ in handle) - 1, 0)
            cards.append((tr("labels.card.campaign", locale=locale, product=name),
                          render.format_value(rows, "number", locale)))
    return cards


# A column name in a message: lower case words joined by underscores (``phone_changes_recent``).
_COLUMN_NAME = re.compile(r"(?<![A-Za-z0-9_])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![A-Za-z0-9_])")


def named_columns(text: str, locale: str, dictionary: pd.DataFrame | None = None) -> str:
    """Return ``text`` with each map column name in it replaced by its display name.

    Parameters
    ----------
    text : str
        A finding as a stage wrote it.
    locale : str
        ``zh_CN`` or ``en``.
    dictionary : pandas.DataFrame, optional
        The map's feature dictionary, for features the catalogs do not name.

    Returns
    -------
    str
        The text; names without a known label are left as they are.
    """
    return _COLUMN_NAME.sub(lambda match: feature_label(match.group(0), locale, dictionary), text or "")


def headline_findings(summary: dict[str, Any], locale: str, dictionary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the summary's headline findings as a frame with ``severity`` and ``message``.

    Column names in a message are shown by their label (:func:`named_columns`).
    """
    records = []
    for item in summary.get("headline_findings") or []:
        if not isinstance(item, dict):
            continue
        message = item.get("message_en") if locale == "en" else item.get("message_zh")
        records.append({"severity": str(item.get("severity", "info")),
                        "message": named_columns(str(message or ""), locale, dictionary)})
    return pd.DataFrame(records, columns=["severity", "message"])


class OverviewPage:
    """Sections of ``notebooks/reports/overview.ipynb``; each method displays one section."""

    def __init__(self, run: DashboardRun, pages_folder: Path = REPORTS_DIR) -> None:
        self.run = run
        self.pages = registered_pages(pages_folder)

    @classmethod
    def open(cls, run_dir: str | Path | None = None) -> "OverviewPage":
        """Open the run (see :func:`~relmap_utils.dashboard.run.open_run`)."""
        return cls(open_run(run_dir))

    def header(self) -> None:
        """Display the page title and the run facts."""
        render.display_html(render.page_header(tr("dashboard.overview.title"), run_facts(self.run)))

    def stages(self) -> None:
        """Display the stages of the run with their status, duration and, for a stage that did not run through, why."""
        rows = [
            {
                "stage": stage_title(entry, self.pages),
                "status": self._status_text(str(entry.get("status"))),
                "seconds": entry.get("duration_seconds"),
                "note": stage_note(entry, self.run.locale),
            }
            for entry in self.run.stage_entries()
        ]
        headers = {
            "stage": tr("dashboard.col.stage"),
            "status": tr("dashboard.col.status"),
            "seconds": tr("dashboard.col.seconds"),
            "note": tr("dashboard.col.note"),
        }
        markup = render.heading(tr("dashboard.overview.stages")) + render.html_table(
            pd.DataFrame(rows, columns=list(headers)),
            headers,
            numeric=["seconds"],
            formats={"seconds": lambda value: render.format_value(value, "score")},
        )
        render.display_html(markup)

    @staticmethod
    def _status_text(status: str) -> str:
        key = f"runner.status.{status}"
        text = tr(key)
        return status if text == key else text

    def _dictionary(self) -> pd.DataFrame | None:
        """Return the run's feature dictionary (02), or None when the map did not run."""
        path = self.run.artifact_path("02_map", "feature_dictionary.parquet")
        return pd.read_parquet(path) if path.is_file() else None

    def key_findings(self) -> None:
        """Display the headline metrics and findings of every stage that ran and wrote a summary."""
        locale = self.run.locale
        parts = [render.heading(tr("dashboard.overview.key_findings"))]
        shown = 0
        for entry in self.run.stage_entries():
            if entry.get("status") == NOTHING_TO_DO:
                # The stage ran but had nothing to process: its reason is the finding.
                shown += 1
                title = render.escape(stage_title(entry, self.pages))
                parts.append(f"<div class=\"relmap-page\"><h3>{title}</h3></div>")
                parts.append(render.note(stage_note(entry, locale)))
                continue
            if entry.get("status") not in SHOWN_STATUSES:
                continue
            summary = self.run.summary(str(entry.get("id")))
            if summary is None:
                continue
            shown += 1
            parts.append(f"<div class=\"relmap-page\"><h3>{render.escape(stage_title(entry, self.pages))}</h3></div>")
            cards = headline_metrics(str(entry.get("id")), summary, locale, self.run)
            if cards:
                parts.append(render.metric_cards(cards))
            findings = headline_findings(summary, locale, self._dictionary())
            if len(findings):
                parts.append(
                    render.html_table(
                        findings,
                        {"severity": tr("dashboard.col.severity"), "message": tr("dashboard.col.finding")},
                        formats={"severity": lambda value: render.severity_badge(value, locale)},
                        raw_html=["severity"],
                    )
                )
        if not shown:
            parts.append(render.paragraph(tr("dashboard.overview.no_findings")))
        render.display_html("".join(parts))

    def customer_base(self) -> None:
        """Display customer counts by region, segment and product, with filters."""
        base = CustomerBase(self.run)
        render.display_html(render.heading(tr("dashboard.overview.customer_base")))
        if not base.available:
            render.display_html(render.paragraph(tr("dashboard.overview.no_customers")))
            return
        filtered_section(base.filter_specs(), lambda filters: self._draw_customer_base(base, filters))

    def _draw_customer_base(self, base: CustomerBase, filters: Filters) -> None:
        minimum = self.run.min_group_size
        total = base.total(filters)
        if total < minimum:
            render.display_html(render.note(tr("dashboard.privacy.suppressed", min_size=minimum)))
            return
        render.display_html(render.metric_cards([(tr("dashboard.overview.customers"), render.format_value(total))]))
        for key in ("region", "segment", "product"):
            grouped = base.by_dimension(key, filters)
            if grouped is None:
                continue
            title = tr("dashboard.chart.customers_by", dimension=base.dimensions[key].label())
            if grouped.suppressed:
                render.display_html(render.paragraph(title) + render.note(grouped.note()))
                continue
            figure = charts.bar_chart(
                render.safe_labels(grouped.labels()),
                grouped.frame["customers"].astype(int).tolist(),
                title=title,
                y_title=tr("dashboard.overview.customers"),
            )
            income = mean_income(grouped)
            if income is not None:
                figure.update_traces(
                    customdata=[render.format_value(value, "amount") for value in income],
                    hovertemplate="%{x}: %{y:,}<br>" + tr("dashboard.chart.mean_income") + " %{customdata}<extra></extra>",
                )
            charts.style_figure(figure, height=360)
            render.show_figure(figure)
            render.display_html(render.note(grouped.note()))
