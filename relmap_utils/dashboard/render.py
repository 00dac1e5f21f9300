"""HTML pieces of the dashboards: headings, metric cards, tables, notes and charts.

Every function here escapes the values it receives (see
:func:`relmap_utils.dashboard.privacy.escape`); callers pass plain text and
numbers, never HTML. Only the fixed markup of this module is trusted.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from relmap_utils import charts
from relmap_utils.dashboard.privacy import escape
from relmap_utils.i18n import format_amount, tr

# Environment variable that Voilà sets in the kernels it starts (Voilà 0.5).
VOILA_VARIABLE = "VOILA_BASE_URL"
SEVERITY_COLORS = {
    "critical": "#991b1b",
    "high": "#dc2626",
    "medium": "#d97706",
    "low": "#2563eb",
    "info": "#6b7280",
}

STYLE = """
<style>
.relmap-page { font-family: "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif;
  color: #1f2937; }
.relmap-page h1 { font-size: 1.6em; margin: 0.2em 0; }
.relmap-page h2 { font-size: 1.25em; margin: 1em 0 0.4em; border-bottom: 1px solid #e5e7eb; padding-bottom: 0.2em; }
.relmap-meta { color: #6b7280; font-size: 0.9em; }
.relmap-cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0; }
.relmap-card { border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px 14px; min-width: 120px; background: #f9fafb; }
.relmap-card .label { color: #6b7280; font-size: 0.85em; }
.relmap-card .value { font-size: 1.4em; font-weight: 600; }
/* !important: JupyterLab's output styles right-align table cells. */
.relmap-page table.relmap-table { border-collapse: collapse; font-size: 0.9em; margin: 6px 0; }
.relmap-page table.relmap-table th, .relmap-page table.relmap-table td { border: 1px solid #e5e7eb;
  padding: 4px 8px; text-align: left !important; vertical-align: top; }
.relmap-page table.relmap-table th { background: #f3f4f6; }
.relmap-page table.relmap-table td.num { text-align: right !important; font-variant-numeric: tabular-nums; }
.relmap-note { color: #92400e; background: #fffbeb; border-left: 3px solid #d97706; padding: 4px 10px;
  margin: 6px 0; font-size: 0.9em; }
.relmap-severity { display: inline-block; color: white; border-radius: 3px; padding: 0 6px; font-size: 0.85em; }
</style>
"""


def running_in_voila() -> bool:
    """Return True inside a kernel started by Voilà."""
    return bool(os.environ.get(VOILA_VARIABLE))


def display_html(markup: str) -> None:
    """Display trusted markup built by this module."""
    from IPython.display import HTML, display

    display(HTML(markup))


def page_header(title: str, meta: str) -> str:
    """Return the page's style block, its title (``<h1>``) and a line of run facts."""
    return f'{STYLE}<div class="relmap-page"><h1>{escape(title)}</h1><div class="relmap-meta">{escape(meta)}</div></div>'


def heading(text: str) -> str:
    """Return a section heading (``<h2>``)."""
    return f'<div class="relmap-page"><h2>{escape(text)}</h2></div>'


def paragraph(text: str) -> str:
    """Return a paragraph of plain text."""
    return f'<div class="relmap-page"><p>{escape(text)}</p></div>'


def note(text: str | None) -> str:
    """Return a highlighted note (for example a privacy note); empty for ``None``."""
    if not text:
        return ""
    return f'<div class="relmap-page relmap-note">{escape(text)}</div>'


def metric_cards(items: Sequence[tuple[str, str]]) -> str:
    """Return a row of cards, one per ``(label, formatted value)``."""
    cards = "".join(
        f'<div class="relmap-card"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div></div>'
        for label, value in items
    )
    return f'<div class="relmap-page relmap-cards">{cards}</div>'


def severity_badge(severity: str, locale: str | None = None) -> str:
    """Return the translated severity as a coloured badge."""
    color = SEVERITY_COLORS.get(severity, "#6b7280")
    label = tr(f"profiling.severity.{severity}", locale=locale)
    return f'<span class="relmap-severity" style="background:{color}">{escape(label)}</span>'


def format_value(value: Any, kind: str = "number", locale: str | None = None) -> str:
    """Format a number for a card or table cell.

    ``kind`` is ``number`` (thousands separators), ``amount`` (万/亿 in
    Chinese), ``percent`` (a share between 0 and 1), ``score`` (one decimal)
    or ``text``. Missing values become ``-``.
    """
    if value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if kind == "text" or isinstance(value, str):
        return str(value)
    if kind == "amount":
        return format_amount(float(value), locale=locale)
    if kind == "percent":
        return f"{float(value):.1%}"
    if kind == "score":
        return f"{float(value):.1f}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{float(value):,.2f}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def column_format(values: pd.Series, header: str = "") -> Callable[[Any], str] | None:
    """Return one formatter for every number of a table column, so a column never mixes ``1`` and ``44.50``.

    Whole numbers stay integers with thousands separators. A column with any
    fraction shows every value with the same decimals: one in a percentage
    column (header with ``%``), two otherwise (ratios). A column with text
    gets None, so each of its cells is formatted alone.

    Parameters
    ----------
    values : pandas.Series
    header : str
        The column's header text.

    Returns
    -------
    callable or None
    """
    present = [value for value in values.tolist() if value is not None and value is not pd.NA
               and not (isinstance(value, float) and math.isnan(value))]
    if not present or not all(_is_number(value) for value in present):
        return None
    if all(float(value).is_integer() for value in present if math.isfinite(float(value))):
        return lambda value: format_value(value)
    pattern = "{:,.1f}" if "%" in str(header) else "{:,.2f}"

    def shown(value: Any) -> str:
        if not _is_number(value) or not math.isfinite(float(value)):
            return format_value(value)
        return pattern.format(float(value))

    return shown


def html_table(
    frame: pd.DataFrame,
    headers: Mapping[str, str],
    *,
    numeric: Sequence[str] = (),
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    raw_html: Sequence[str] = (),
) -> str:
    """Return ``frame`` as an HTML table with escaped cells.

    Parameters
    ----------
    frame : pandas.DataFrame
        Small (already aggregated) data.
    headers : mapping of str to str
        Column to header text, in display order; other columns are left out.
    numeric : sequence of str
        Columns aligned right.
    formats : mapping of str to callable, optional
        Column to a function that turns a value into text (escaped afterwards).
    raw_html : sequence of str
        Columns whose formatter returns markup built by this module (such as
        :func:`severity_badge`); their cells are not escaped again.
    """
    formats = {**{column: formatter for column, label in headers.items()
                  if column in frame.columns and (formatter := column_format(frame[column], label)) is not None},
               **(formats or {})}
    head = "".join(f"<th>{escape(label)}</th>" for label in headers.values())
    rows = []
    for record in frame.to_dict("records"):
        cells = []
        for column in headers:
            value = record.get(column)
            text = formats[column](value) if column in formats else format_value(value, "text" if isinstance(value, str) else "number")
            cell = text if column in raw_html else escape(text)
            css = ' class="num"' if column in numeric else ""
            cells.append(f"<td{css}>{cell}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="relmap-page"><table class="relmap-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def safe_labels(values: Sequence[Any]) -> list[str]:
    """Return category labels for a Plotly chart, escaped.

    plotly.js interprets a few HTML-like tags in text (``<b>``, ``<a href>``)
    and decodes entities, so escaped text is shown literally and no tag in the
    data reaches the SVG.
    """
    return [escape(value) for value in values]


# Route of plotly.js on the dashboard server (relmap_utils.dashboard.server),
# relative to Voilà's base URL. The file is the plotly.min.js of the plotly package.
PLOTLY_ROUTE = "relmap/static/plotly.min.js"
# Draws one figure once plotly.js is loaded; the first figure of a page loads
# it. Placeholders are filled with str.replace, so the braces stay JavaScript.
_FIGURE_SCRIPT = """(function () {
  var target = document.getElementById("__ID__");
  var spec = __SPEC__;
  function draw() {
    window.Plotly.newPlot(target, spec.data, spec.layout, {displaylogo: false, responsive: true});
  }
  if (window.Plotly) { draw(); return; }
  var queue = window.relmapPlotlyQueue = window.relmapPlotlyQueue || [];
  queue.push(draw);
  if (queue.length === 1) {
    var script = document.createElement("script");
    script.src = "__URL__";
    script.onload = function () { queue.splice(0).forEach(function (job) { job(); }); };
    document.head.appendChild(script);
  }
})();"""


def figure_html(figure: go.Figure, base_url: str = "/") -> str:
    """Return a ``<div>`` and a script that draws ``figure`` with the server's plotly.js.

    The figure's JSON sits inside a ``<script>`` element, so every ``</`` in
    it is written as ``<\\/``: a data value containing ``</script>`` cannot end
    the element early.
    """
    spec = figure.to_json().replace("</", "<\\/")
    element_id = f"relmap-plot-{uuid.uuid4().hex}"
    height = int(figure.layout.height or 450)
    script = (
        _FIGURE_SCRIPT.replace("__ID__", element_id)
        .replace("__URL__", base_url.rstrip("/") + "/" + PLOTLY_ROUTE)
        .replace("__SPEC__", spec)
    )
    return f'<div id="{element_id}" class="relmap-plot" style="height:{height}px; width:100%;"></div><script>{script}</script>'


def show_figure(figure: go.Figure) -> None:
    """Display a Plotly figure so that it renders without network access.

    Inside Voilà the output is a small script that loads plotly.js once per
    page from the dashboard server (:data:`PLOTLY_ROUTE`), which the browser
    caches. Elsewhere (an exported or executed notebook)
    :func:`relmap_utils.charts.show` embeds plotly.js in the HTML output,
    once per kernel.
    """
    if running_in_voila():
        display_html(figure_html(figure, os.environ.get(VOILA_VARIABLE, "/")))
        return
    charts.show(figure)
