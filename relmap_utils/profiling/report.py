"""Tables and figures of the profile for the notebook, and the self-contained HTML report.

All text comes from the ``profiling.*`` catalog in the report language. The
``locale`` argument sets it; by default it is the active locale
(:func:`relmap_utils.i18n.get_locale`: ``RELMAP_LANG``, then the engagement's
``locale``, then Chinese). Figures are Plotly; the HTML report embeds
plotly.js once, in its head, so it opens without network access.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from relmap_utils import charts
from relmap_utils.i18n import get_locale, normalize_locale, tr
from relmap_utils.localtime import format_local_time
from relmap_utils.plural import counted
from relmap_utils.profiling import ticks
from relmap_utils.profiling.model import CRITICAL_CAP, WEIGHTS, ColumnProfile, Profile

SEVERITY_COLORS = {
    "critical": "#991b1b",
    "high": "#dc2626",
    "medium": "#d97706",
    "low": "#2563eb",
    "info": "#6b7280",
}
# Histogram panels per grid figure; more numeric columns are left to the column table.
MAX_HISTOGRAM_PANELS = 24
# Share of a histogram's values in its tallest bin above which the count axis is logarithmic.
DOMINANT_BIN_SHARE = 0.5
# Top values listed per column in the column tables.
TOP_VALUES_SHOWN = 5
# Columns shown in the missing-values chart, highest missing share first.
MAX_MISSING_BARS = 30


def _locale(locale: str | None) -> str:
    return normalize_locale(locale) or get_locale()


def format_number(value: Any) -> str:
    """Format a statistic for reading: thousands separators, few decimals, blank for none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        magnitude = abs(value)
        if magnitude >= 1e4 or value.is_integer():
            return f"{value:,.0f}"
        if magnitude >= 1:
            return f"{value:,.2f}"
        return f"{value:.4g}"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def severity_label(severity: str, locale: str | None = None) -> str:
    """Return the translated name of a severity."""
    return tr(f"profiling.severity.{severity}", locale=locale)


def semantic_label(column: ColumnProfile, locale: str | None = None) -> str:
    """Return the translated semantic type, marking ordinal categories."""
    if column.semantic_type == "category" and column.semantic.ordinal:
        return tr("profiling.semantic.ordinal", locale=locale)
    return tr(f"profiling.semantic.{column.semantic_type}", locale=locale)


def _header(name: str, locale: str) -> str:
    return tr(f"profiling.header.{name}", locale=locale)


def findings_table(profile: Profile, locale: str | None = None) -> pd.DataFrame:
    """Return the findings, most severe first, with translated headers and sentences."""
    locale = _locale(locale)
    rows = [
        {
            _header("severity", locale): severity_label(finding.severity, locale),
            _header("table", locale): finding.table,
            _header("column", locale): finding.column or "",
            _header("message", locale): finding.text(locale),
        }
        for finding in profile.findings
    ]
    columns = [_header(name, locale) for name in ("severity", "table", "column", "message")]
    return pd.DataFrame(rows, columns=columns)


def score_table(profile: Profile, locale: str | None = None) -> pd.DataFrame:
    """Return the quality score with its four dimensions and their weights."""
    locale = _locale(locale)
    score = profile.score
    if score is None:
        return pd.DataFrame()
    rows = [
        {
            _header("dimension", locale): tr(f"profiling.dimension.{name}", locale=locale),
            _header("value", locale): _share(getattr(score, name)),
            _header("weight", locale): f"{weight:.0%}",
        }
        for name, weight in WEIGHTS.items()
    ]
    rows.append(
        {
            _header("dimension", locale): tr("profiling.dimension.score", locale=locale),
            _header("value", locale): f"{score.score:.1f}",
            _header("weight", locale): "",
        }
    )
    return pd.DataFrame(rows)


def tables_table(profile: Profile, locale: str | None = None) -> pd.DataFrame:
    """Return one row per table: rows, columns, key checks and date range."""
    locale = _locale(locale)
    rows = []
    for table in profile.tables.values():
        date_range = ""
        if table.date_min and table.date_max:
            date_range = f"{table.date_min.isoformat()} – {table.date_max.isoformat()}"
        rows.append(
            {
                _header("table", locale): table.name,
                _header("rows", locale): format_number(table.rows),
                _header("columns", locale): table.column_count,
                _header("key", locale): ", ".join(table.key),
                _header("duplicate_keys", locale): format_number(table.duplicate_keys),
                _header("key_nulls", locale): format_number(table.key_null_rows),
                _header("date_column", locale): table.date_column or "",
                _header("date_range", locale): date_range,
                _header("empty_months", locale): len(table.empty_months),
            }
        )
    return pd.DataFrame(rows)


def columns_table(
    profile: Profile,
    table: str | None = None,
    locale: str | None = None,
    min_group_size: int | None = None,
) -> pd.DataFrame:
    """Return the main statistics of each column, of one table or of all tables.

    Parameters
    ----------
    profile : Profile
    table : str, optional
        Only this table; default all.
    locale : str, optional
        Language of headers and labels; default the active locale.
    min_group_size : int, optional
        For client reports: top values with fewer customers than this are
        merged into one "other" entry without counts (see
        :func:`top_values_text`). Default: every top value with its rows.
    """
    locale = _locale(locale)
    rows = []
    for profile_table in profile.tables.values():
        if table is not None and profile_table.name != table:
            continue
        for column in profile_table.columns.values():
            median = (column.quantiles or {}).get("p50")
            top = top_values_text(column, locale, min_group_size)
            rows.append(
                {
                    _header("table", locale): column.table,
                    _header("column", locale): column.name,
                    _header("semantic_type", locale): semantic_label(column, locale),
                    _header("missing_share", locale): _share(column.missing_share),
                    _header("nan_infinite", locale): _non_finite_text(column),
                    _header("distinct", locale): format_number(column.distinct),
                    _header("min", locale): format_number(column.min),
                    _header("max", locale): format_number(column.max),
                    _header("mean", locale): format_number(column.mean),
                    _header("std", locale): format_number(column.std),
                    _header("median", locale): format_number(median),
                    _header("outliers", locale): format_number(column.outliers),
                    _header("top_values", locale): top,
                }
            )
    return pd.DataFrame(rows)


def _non_finite_text(column: ColumnProfile) -> str:
    # "NaN values / infinite values", empty for columns without either.
    if not column.nan_values and not column.infinite_values:
        return ""
    return f"{format_number(column.nan_values or 0)} / {format_number(column.infinite_values or 0)}"


def top_values_text(column: ColumnProfile, locale: str | None = None, min_group_size: int | None = None) -> str:
    """Return the first five top values of a column as ``value (rows); ...``.

    With ``min_group_size``, a value held by fewer customers than that is not
    named: such values are merged into one "other" entry without a count, so
    that a client report never shows a group small enough to point at a
    person. Customers are counted by ``customer_id``; in a table without it
    the rows stand in for customers.

    Notes
    -----
    The rows left out (the column's filled rows minus those listed) are
    checked in rows, not customers, because the profile has no customer
    count for them. In a table with several rows per customer this check
    is weaker than the one on each listed value.
    """
    values = (column.top_values or [])[:TOP_VALUES_SHOWN]
    if min_group_size is None:
        return "; ".join(f"{value} ({rows:,})" for value, rows in values)

    sizes = (column.top_value_customers or [rows for _, rows in values])[: len(values)]
    shown = [(value, rows) for (value, rows), size in zip(values, sizes) if size >= min_group_size]
    merged = len(values) - len(shown)
    # The report also shows the column's filled rows, so the rows not listed
    # follow by subtraction; they must not form a small group either. The
    # smallest listed values join the merged entry until they do not.
    while merged and shown and 0 < column.count - sum(rows for _, rows in shown) < min_group_size:
        shown.pop()
        merged += 1

    parts = [f"{value} ({rows:,})" for value, rows in shown]
    if merged:
        parts.append(tr("profiling.report.small_groups_merged", locale=_locale(locale), count=merged))
    return "; ".join(parts)


def references_table(profile: Profile, locale: str | None = None) -> pd.DataFrame:
    """Return the referential-integrity checks, both directions, with orphan samples."""
    locale = _locale(locale)
    rows = [
        {
            _header("reference", locale): f"{check.table}.{check.column} → {check.ref_table}.{check.ref_column}",
            _header("checked", locale): format_number(check.checked_rows),
            _header("orphan_rows", locale): format_number(check.orphan_rows),
            _header("orphan_keys", locale): format_number(check.orphan_keys),
            _header("orphan_sample", locale): ", ".join(_short(key) for key in check.orphan_sample),
            _header("unreferenced", locale): f"{check.unreferenced_keys:,} / {check.parent_keys:,}",
        }
        for check in profile.references
    ]
    return pd.DataFrame(rows)


def date_ranges_table(profile: Profile, locale: str | None = None) -> pd.DataFrame:
    """Return the date-range overlap of every pair of dated tables."""
    locale = _locale(locale)
    rows = [
        {
            _header("table", locale): f"{item.table}.{item.column}",
            _header("date_range", locale): f"{item.start.isoformat()} – {item.end.isoformat()}",
            _header("other_table", locale): f"{item.other_table}.{item.other_column}",
            _header("other_range", locale): f"{item.other_start.isoformat()} – {item.other_end.isoformat()}",
            _header("overlap_days", locale): format_number(item.overlap_days),
        }
        for item in profile.date_overlaps
    ]
    return pd.DataFrame(rows)


def _short(key: str) -> str:
    # Pseudonyms are 64 hex digits; 12 are enough to look one up in the artifacts.
    return key if len(key) <= 16 else key[:12] + "…"


def missing_chart(profile: Profile, locale: str | None = None) -> go.Figure:
    """Return a bar chart of the missing share of the columns that have missing values."""
    locale = _locale(locale)
    columns = [
        column for table in profile.tables.values() for column in table.columns.values() if column.missing
    ]
    columns.sort(key=lambda column: (-column.missing_share, column.table, column.name))
    columns = columns[:MAX_MISSING_BARS]
    labels = [f"{column.table}.{column.name}" for column in columns]
    values = [column.missing_share for column in columns]
    figure = charts.bar_chart(
        labels,
        values,
        title=tr("profiling.chart.missing_title", locale=locale),
        horizontal=True,
        text=[_share(value) for value in values],
    )
    # The share is on the x axis; the column names on the y axis need no title,
    # which would only overlap them.
    figure.update_xaxes(title_text=tr("profiling.chart.missing_axis", locale=locale), tickformat=".0%", range=[0, 1])
    figure.update_layout(height=max(300, 60 + 22 * len(labels)))
    if not labels:
        figure.add_annotation(text=tr("profiling.chart.nothing_missing", locale=locale), showarrow=False,
                              x=0.5, y=0.5, xref="paper", yref="paper")
    return figure


def rows_per_month_chart(profile: Profile, locale: str | None = None) -> go.Figure:
    """Return a line chart of rows per month, one line per table with a date column."""
    locale = _locale(locale)
    figure = go.Figure()
    largest = 0
    for table in profile.tables.values():
        if not table.rows_per_month:
            continue
        months = [month for month, _ in table.rows_per_month]
        counts = [rows for _, rows in table.rows_per_month]
        largest = max(largest, *counts)
        figure.add_trace(go.Scatter(x=months, y=counts, mode="lines+markers", name=f"{table.name}.{table.date_column}"))
    charts.style_figure(
        figure,
        title=tr("profiling.chart.rows_per_month_title", locale=locale),
        x_title=tr("profiling.chart.month", locale=locale),
        y_title=tr("profiling.chart.rows", locale=locale),
    )
    figure.update_xaxes(type="category")
    if locale == "zh_CN" and largest:
        ticks.chinese_axis(figure, "y", 0, largest)
    return figure


def histogram_grid(profile: Profile, table: str | None = None, locale: str | None = None) -> go.Figure:
    """Return the histograms of the numeric columns, of one table or all, as a grid of panels.

    At most :data:`MAX_HISTOGRAM_PANELS` panels. Each covers its column's 1st
    to 99th percentile, which the figure title states; a panel's subtitle
    counts the values outside. A panel whose tallest bar holds more than
    :data:`DOMINANT_BIN_SHARE` of the values gets a log-scale count axis, so
    the other bars stay visible, and its subtitle states it. In ``zh_CN`` the
    axes are labelled with 万 and 亿.
    """
    locale = _locale(locale)
    columns = [
        column
        for profile_table in profile.tables.values()
        if table is None or profile_table.name == table
        for column in profile_table.columns.values()
        if column.histogram is not None and column.histogram.counts
    ][:MAX_HISTOGRAM_PANELS]
    title = tr("profiling.chart.histogram_title", locale=locale)
    if not columns:
        figure = charts.style_figure(go.Figure(), title)
        figure.add_annotation(text=tr("profiling.chart.no_numeric", locale=locale), showarrow=False,
                              x=0.5, y=0.5, xref="paper", yref="paper")
        return figure

    width = 3 if len(columns) > 4 else max(1, len(columns))
    height = math.ceil(len(columns) / width)
    titles = [_panel_title(column, locale) for column in columns]
    figure = make_subplots(rows=height, cols=width, subplot_titles=titles, vertical_spacing=0.5 / max(height, 1))
    for index, column in enumerate(columns):
        histogram = column.histogram
        edges = histogram.edges
        centres = [(low + high) / 2 for low, high in zip(edges[:-1], edges[1:])]
        widths = [high - low for low, high in zip(edges[:-1], edges[1:])]
        where = {"row": index // width + 1, "col": index % width + 1}
        figure.add_trace(
            go.Bar(x=centres, y=histogram.counts, width=widths, showlegend=False,
                   marker_color=charts.COLORWAY[0], name=f"{column.table}.{column.name}"),
            **where,
        )
        log = _dominated(histogram.counts)
        if log:
            figure.update_yaxes(type="log", **where)
        if locale == "zh_CN":
            ticks.chinese_axis(figure, "x", edges[0], edges[-1], **where)
            ticks.chinese_axis(figure, "y", 0, max(histogram.counts), log=log, **where)
    charts.style_figure(figure, title, height=max(320, 260 * height))
    figure.update_annotations(font_size=12)
    return figure


def _dominated(counts: list[int]) -> bool:
    """Return whether one bin has most of the values while other bins are not empty."""
    total = sum(counts)
    return total > max(counts) > DOMINANT_BIN_SHARE * total


def _panel_title(column: ColumnProfile, locale: str) -> str:
    title = f"{column.table}.{column.name}"
    histogram = column.histogram
    notes = []
    if histogram and (histogram.below or histogram.above):
        notes.append(tr("profiling.chart.outside_range", locale=locale,
                        rows=counted("profiling.count.values", histogram.below + histogram.above)))
    if histogram and histogram.counts and _dominated(histogram.counts):
        notes.append(tr("profiling.chart.log_counts", locale=locale))
    for note in notes:
        title += f"<br><sup>{html.escape(note)}</sup>"
    return title


def correlation_chart(profile: Profile, table: str, locale: str | None = None) -> go.Figure:
    """Return a heatmap of the Pearson correlations among the numeric columns of ``table``."""
    locale = _locale(locale)
    profile_table = profile.tables[table]
    names = [name for name, column in profile_table.columns.items() if column.semantic_type == "numeric"]
    matrix = [
        [1.0 if first == second else profile_table.correlation(first, second) for second in names]
        for first in names
    ]
    return charts.heatmap(matrix, names, title=tr("profiling.chart.correlation_title", locale=locale, table=table))


def top_values_chart(profile: Profile, table: str, column: str, locale: str | None = None) -> go.Figure:
    """Return a bar chart of the top values of one category or boolean column."""
    locale = _locale(locale)
    values = profile.column(table, column).top_values or []
    figure = charts.bar_chart(
        [value for value, _ in values],
        [rows for _, rows in values],
        title=tr("profiling.chart.top_values_title", locale=locale, table=table, column=column),
        y_title=tr("profiling.chart.rows", locale=locale),
    )
    if locale == "zh_CN" and values:
        ticks.chinese_axis(figure, "y", 0, max(rows for _, rows in values))
    return figure


def render_html(
    profile: Profile,
    *,
    locale: str | None = None,
    engagement: str = "",
    run_id: str = "",
    generated: dt.datetime | None = None,
    timezone: str = "Asia/Shanghai",
    min_group_size: int = 1,
) -> str:
    """Return the profiling report as one self-contained HTML document.

    plotly.js is embedded once in the document head; no element loads
    anything from the network. Personal and pseudonymized columns appear with
    counts only, because the profile contains no values for them.

    Parameters
    ----------
    profile : Profile
    locale : str, optional
        Report language; default the active locale.
    engagement, run_id : str
        Shown in the header.
    generated : datetime, optional
        Time of the report; default now.
    timezone : str, default="Asia/Shanghai"
        The engagement's time zone; the header shows ``generated`` in it,
        with the zone's name.
    min_group_size : int, default=1
        The engagement's ``privacy.min_group_size``. The report goes to the
        client, so top values with fewer customers are merged without counts
        (:func:`top_values_text`), and a note states the rule.
    """
    locale = _locale(locale)
    generated_text = format_local_time(generated or dt.datetime.now(dt.timezone.utc), timezone)
    text = lambda key, **params: html.escape(tr(key, locale=locale, **params))  # noqa: E731

    parts = [
        f"<h1>{text('profiling.report.title')}</h1>",
        f"<p class='meta'>{text('profiling.report.meta', engagement=engagement or '-', run=run_id or '-', generated=generated_text)}</p>",
        _score_section(profile, locale),
        f"<h2>{text('profiling.report.findings_heading')}</h2>",
        _findings_html(profile, locale),
        f"<h2>{text('profiling.report.tables_heading')}</h2>",
        _frame_html(tables_table(profile, locale)),
        f"<h2>{text('profiling.report.integrity_heading')}</h2>",
        f"<h3>{text('profiling.report.references_heading')}</h3>",
        _frame_html(references_table(profile, locale), empty=text("profiling.report.none")),
        f"<h3>{text('profiling.report.date_ranges_heading')}</h3>",
        _frame_html(date_ranges_table(profile, locale), empty=text("profiling.report.none")),
        f"<h2>{text('profiling.report.charts_heading')}</h2>",
        _figure_html(missing_chart(profile, locale)),
        _figure_html(rows_per_month_chart(profile, locale)),
    ]
    for name, table in profile.tables.items():
        parts.append(f"<h2>{text('profiling.report.table_heading', table=name)}</h2>")
        parts.append(_frame_html(columns_table(profile, name, locale, min_group_size)))
        if any(column.histogram and column.histogram.counts for column in table.columns.values()):
            parts.append(_figure_html(histogram_grid(profile, name, locale)))
        numeric = [column for column in table.columns.values() if column.semantic_type == "numeric"]
        if len(numeric) >= 2 and table.correlations:
            parts.append(_figure_html(correlation_chart(profile, name, locale)))
    parts.append(f"<p class='note'>{text('profiling.report.method_note')}</p>")
    parts.append(f"<p class='note'>{text('profiling.report.privacy_note')}</p>")
    parts.append(f"<p class='note'>{text('profiling.report.small_groups_note', size=min_group_size)}</p>")

    language = "zh-CN" if locale == "zh_CN" else "en"
    title = text("profiling.report.title")
    return (
        f"<!DOCTYPE html>\n<html lang='{language}'>\n<head>\n<meta charset='utf-8'>\n"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>\n<title>{title}</title>\n"
        f"<style>{_CSS}</style>\n{charts.plotlyjs_script()}\n</head>\n<body>\n<main>\n"
        + "\n".join(parts)
        + "\n</main>\n</body>\n</html>\n"
    )


def write_html_report(profile: Profile, path: str | Path, **options: Any) -> Path:
    """Write :func:`render_html` to ``path`` (temporary file, then rename) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(render_html(profile, **options), encoding="utf-8")
    temporary.replace(target)
    return target


def _score_section(profile: Profile, locale: str) -> str:
    score = profile.score
    if score is None:
        return ""
    text = lambda key, **params: html.escape(tr(key, locale=locale, **params))  # noqa: E731
    cap = f"<p class='warn'>{text('profiling.report.capped', cap=f'{CRITICAL_CAP:.0f}')}</p>" if score.capped else ""
    counts = profile.severity_counts()
    badges = " ".join(
        f"<span class='badge' style='background:{SEVERITY_COLORS[severity]}'>"
        f"{html.escape(severity_label(severity, locale))} {count}</span>"
        for severity, count in counts.items()
    )
    return (
        f"<section class='score'><h2>{text('profiling.report.score_heading')}</h2>"
        f"<div class='big'>{score.score:.1f}<small> / 100</small></div>{cap}<p>{badges}</p>"
        f"{_frame_html(score_table(profile, locale))}"
        f"<p class='note'>{text('profiling.report.score_formula', cap=f'{CRITICAL_CAP:.0f}')}</p></section>"
    )


def _findings_html(profile: Profile, locale: str) -> str:
    if not profile.findings:
        return f"<p>{html.escape(tr('profiling.report.no_findings', locale=locale))}</p>"
    headers = "".join(f"<th>{html.escape(_header(name, locale))}</th>" for name in ("severity", "table", "column", "message"))
    rows = []
    for finding in profile.findings:
        badge = (
            f"<span class='badge' style='background:{SEVERITY_COLORS[finding.severity]}'>"
            f"{html.escape(severity_label(finding.severity, locale))}</span>"
        )
        cells = [badge, html.escape(finding.table), html.escape(finding.column or ""), html.escape(finding.text(locale))]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return f"<table><thead><tr>{headers}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _frame_html(frame: pd.DataFrame, empty: str = "") -> str:
    if frame.empty:
        return f"<p>{empty}</p>" if empty else ""
    return frame.to_html(index=False, escape=True, border=0, na_rep="")


def _figure_html(figure: go.Figure) -> str:
    return f"<div class='figure'>{charts.to_html(figure, include_plotlyjs=False)}</div>"


_CSS = """
body { font-family: "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif;
       color: #1f2937; background: #f9fafb; margin: 0; }
main { max-width: 1200px; margin: 0 auto; padding: 24px; background: white; }
h1 { font-size: 26px; margin-bottom: 4px; }
h2 { font-size: 20px; border-bottom: 2px solid #1f5aa6; padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 16px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
.meta, .note { color: #6b7280; font-size: 13px; }
.warn { color: #991b1b; font-weight: bold; }
.big { font-size: 48px; font-weight: bold; color: #1f5aa6; }
.big small { font-size: 20px; color: #6b7280; }
.badge { color: white; border-radius: 4px; padding: 1px 6px; font-size: 12px; white-space: nowrap; }
.figure { margin: 12px 0 24px; }
"""
