"""HTML pages that ``relmap export`` builds from a stage's artifacts when the stage wrote no report.

Most stages write a self-contained ``reports/<stage>.html`` themselves, and
the export copies it. Stage 05 (risk indicators and early warning) shows its
results only in the dashboard page, so the export builds the same sections
here from ``artifacts/05_risk/``, with the tables and charts of
:mod:`relmap_utils.risk.report`: plotly.js embedded once, no script or file
loaded from the network, every value escaped.

A builder receives a ``read_table(name)`` function that returns an artifact
Parquet file as a DataFrame after the export has checked the file against
the manifest (an empty DataFrame when the stage did not write it), and the
stage's summary.json content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from relmap_utils import charts
from relmap_utils.dashboard import render
from relmap_utils.dashboard.privacy import merge_small_groups
from relmap_utils.i18n import get_locale, tr

TableReader = Callable[[str], pd.DataFrame]
PageBuilder = Callable[[TableReader, Mapping[str, Any], "PageContext"], str]

RISK_STAGE = "05_risk"
# The artifacts the risk page reads; the export checks each against the manifest.
RISK_TABLES = ("indicators.parquet", "scorecard.parquet", "correlation.parquet", "warnings.parquet",
               "backtest_monthly.parquet", "lead_times.parquet")
WARNING_ROWS = 50

_CSS = """
body{margin:2rem auto;max-width:1100px;line-height:1.5}
.figure{margin:1rem 0}
"""


class PageContext:
    """Header facts of a built page: the title, the run facts line and the minimum group size for charts."""

    def __init__(self, title: str, facts: str, min_group_size: int) -> None:
        self.title = title
        self.facts = facts
        self.min_group_size = max(1, int(min_group_size))


def build_page(stage_id: str, read_table: TableReader, summary: Mapping[str, Any] | None,
               context: PageContext) -> str | None:
    """Return the HTML page of ``stage_id`` built from its artifacts, or None when no builder exists for it."""
    builder = PAGE_BUILDERS.get(stage_id)
    if builder is None:
        return None
    return builder(read_table, summary or {}, context)


def page_tables(stage_id: str) -> tuple[str, ...]:
    """Return the artifact files the builder of ``stage_id`` reads (empty without a builder)."""
    return PAGE_TABLES.get(stage_id, ())


def _document(context: PageContext, body: list[str]) -> str:
    language = "zh-CN" if get_locale() == "zh_CN" else "en"
    return (
        f"<!DOCTYPE html>\n<html lang='{language}'>\n<head>\n<meta charset='utf-8'>\n"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{render.escape(context.title)}</title>\n<style>{_CSS}</style>\n{render.STYLE}\n"
        f"{charts.plotlyjs_script()}\n</head>\n<body>\n<div class='relmap-page'>\n"
        + "\n".join(body)
        + "\n</div>\n</body>\n</html>\n"
    )


def _figure(figure: Any) -> str:
    return f"<div class='figure'>{charts.to_html(figure, include_plotlyjs=False)}</div>"


def _table(frame: pd.DataFrame, numeric: list[str] | None = None) -> str:
    return render.html_table(frame, {name: str(name) for name in frame.columns}, numeric=numeric or [])


def _none() -> str:
    return render.paragraph(tr("profiling.report.none"))


def risk_page(read_table: TableReader, summary: Mapping[str, Any], context: PageContext) -> str:
    """Return the stage 05 page: the sections of the risk dashboard page, as one static HTML file."""
    from relmap_utils.risk import report

    locale = get_locale()
    english = locale == "en"
    body = [render.page_header(context.title, context.facts)]
    cards = [
        (card["label"]["en" if english else "zh_CN"], render.format_value(card.get("value"), card.get("format", "number")))
        for card in summary.get("headline_metrics") or []
        if isinstance(card, dict) and isinstance(card.get("label"), dict)
    ]
    body.append(render.metric_cards(cards))
    convention = summary.get("woe_convention") or {}
    if isinstance(convention, dict):
        body.append(render.paragraph(convention.get("en" if english else "zh_CN", "")))

    body.append(render.heading(tr("risk.page.backtest_heading")))
    if summary.get("backtest"):
        body.append(_table(report.backtest_table(summary, locale)))
        monthly = report.monthly_table(read_table("backtest_monthly.parquet"), locale)
        body.append(_table(monthly, list(monthly.columns[1:])))
        body.append(_figure(report.lead_time_chart(read_table("lead_times.parquet"), locale, context.min_group_size)))
    else:
        body.append(_none())

    indicators = read_table("indicators.parquet")
    body.append(render.heading(tr("risk.page.iv_heading")))
    if indicators.empty:
        body.append(_none())
    else:
        body.append(_figure(report.iv_chart(indicators, locale=locale)))
        body.append(_table(report.indicator_table(indicators, locale)))

    scorecard = read_table("scorecard.parquet")
    body.append(render.heading(tr("risk.page.scorecard_heading")))
    if scorecard.empty:
        body.append(_none())
    else:
        settings = summary.get("scorecard") or {}
        body.append(render.paragraph(tr("risk.page.scaling", base=settings.get("base_score"),
                                        odds=settings.get("base_odds"), pdo=settings.get("pdo"))))
        body.append(_table(report.scorecard_table(scorecard, locale)))

    correlation = read_table("correlation.parquet")
    body.append(render.heading(tr("risk.page.correlation_heading")))
    body.append(_none() if correlation.empty else _figure(report.correlation_chart(correlation, locale)))

    body.extend(_risk_bands(summary, context.min_group_size))

    warnings = read_table("warnings.parquet")
    body.append(render.heading(tr("risk.page.warnings_heading")))
    if warnings.empty:
        body.append(_none())
    else:
        latest = str(warnings["as_of"].max())
        count = int((warnings["as_of"].astype(str) == latest).sum())
        body.append(render.paragraph(tr("risk.page.warned_count", count=count, shown=min(count, WARNING_ROWS))))
        body.append(_table(report.warning_table(warnings, limit=WARNING_ROWS, locale=locale)))

    notices = report.notices_table(summary, locale)
    body.append(render.heading(tr("risk.page.notices_heading")))
    body.append(_none() if notices.empty else _table(notices))
    return _document(context, body)


def _risk_bands(summary: Mapping[str, Any], min_group_size: int) -> list[str]:
    """Return the band distribution section; bands smaller than ``min_group_size`` are merged."""
    parts = [render.heading(tr("risk.page.bands_heading"))]
    latest = (summary.get("risk_bands") or {}).get("latest") or {}
    frame = pd.DataFrame({"group": [tr(f"risk.band.{band}") for band in latest],
                          "customers": [int(value or 0) for value in latest.values()]})
    frame = frame[frame["customers"] > 0]
    grouped = merge_small_groups(frame, "group", "customers", min_group_size)
    if grouped.suppressed or grouped.frame.empty:
        parts.append(render.note(grouped.note() or tr("profiling.report.none")))
        return parts
    figure = charts.bar_chart(render.safe_labels(grouped.labels()), grouped.frame["customers"].astype(int).tolist(),
                              title=tr("risk.chart.bands"), y_title=tr("risk.header.customers"))
    charts.style_figure(figure, height=320)
    parts.append(_figure(figure))
    parts.append(render.note(grouped.note()))
    return parts


PAGE_BUILDERS: dict[str, PageBuilder] = {RISK_STAGE: risk_page}
PAGE_TABLES: dict[str, tuple[str, ...]] = {RISK_STAGE: RISK_TABLES}
