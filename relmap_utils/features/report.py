"""Tables and figures of the map for the notebook, the customer card, and the HTML report.

All text comes from the ``features.*`` catalog in the report language (the
``locale`` argument, by default the active locale). Figures are Plotly; the
HTML report embeds plotly.js once, in its head, so it opens offline.
Histogram bins and categories with fewer customers than the engagement's
``privacy.min_group_size`` are suppressed in the report.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from relmap_utils.artifacts import write_text
from relmap_utils import charts
from relmap_utils.errors import StageError
from relmap_utils.features import relations
from relmap_utils.features.base import FAMILIES, BuildContext
from relmap_utils.features.dictionary import INCLUDED
from relmap_utils.features.spec import MapSpec
from relmap_utils.features.windows import Windows
from relmap_utils.i18n import get_locale, normalize_locale, tr
from relmap_utils.profiling.report import format_number

# Features shown in the distribution and correlation charts, when included.
KEY_FEATURES = (
    "age_years", "tenure_months", "income",
    "aum", "liabilities", "product_families_held",
    "txn_count", "outflow_monthly_avg", "days_since_last_purchase", "frequency", "monetary_value",
    "salary_monthly_amount",
    "outflow_change", "new_devices_recent", "late_instalments_recent",
    "event_count", "topics_browsed",
    "degree", "related_customers", "counterparties",
)
KEY_CATEGORIES = ("age_band", "life_stage", "city_tier")
HISTOGRAM_BINS = 20
# Most relations drawn on the customer card's graph.
MAX_CARD_EDGES = 40
NODE_COLORS = {"customer": charts.COLORWAY[0], "center": charts.COLORWAY[3]}


def _locale(locale: str | None) -> str:
    return normalize_locale(locale) or get_locale()


def _text(key: str, locale: str, **params: Any) -> str:
    return tr(key, locale=locale, **params)


def family_label(family: str, locale: str | None = None) -> str:
    """Return the translated name of a feature family."""
    return tr(f"features.family.{family}", locale=_locale(locale))


# ---------------------------------------------------------------- tables


def coverage_table(coverage: pd.DataFrame, locale: str | None = None) -> pd.DataFrame:
    """Return covered customers per family (rows) and map date (columns), as ``count (share)``."""
    locale = _locale(locale)
    rows = []
    for family in FAMILIES:
        of_family = coverage[coverage.family == family]
        row = {_text("features.header.family", locale): family_label(family, locale)}
        for item in of_family.itertuples():
            if item.status != INCLUDED:
                cell = _text("features.report.left_out", locale)
            else:
                cell = f"{item.covered:,} ({item.share:.1%})"
            row[str(item.as_of)] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def dictionary_table(dictionary: pd.DataFrame, locale: str | None = None, status: str | None = None) -> pd.DataFrame:
    """Return the feature dictionary with translated headers, of one status or all."""
    locale = _locale(locale)
    suffix = "zh" if locale == "zh_CN" else "en"
    frame = dictionary if status is None else dictionary[dictionary.status == status]
    header = lambda name: _text(f"features.header.{name}", locale)  # noqa: E731
    return pd.DataFrame(
        {
            header("feature"): frame.name,
            header("family"): [family_label(family, locale) for family in frame.family],
            header("description"): frame[f"description_{suffix}"],
            header("unit"): [_text(f"features.unit.{unit}", locale) for unit in frame.unit],
            header("sources"): frame.source_tables,
            header("no_data_value"): frame.no_data_value,
            header("status"): [_text(f"features.status.{value}", locale) for value in frame.status],
            header("reason"): frame[f"reason_{suffix}"],
        }
    )


def notices_table(summary: Mapping[str, Any], locale: str | None = None) -> pd.DataFrame:
    """Return the stage's notices (documented consequences of the input) in ``locale``."""
    locale = _locale(locale)
    key = "message_zh" if locale == "zh_CN" else "message_en"
    return pd.DataFrame({_text("features.header.notice", locale): [item[key] for item in summary["notices"]]})


def card_table(card: Mapping[str, Any], locale: str | None = None) -> pd.DataFrame:
    """Return the customer card's features, family by family, with their values."""
    locale = _locale(locale)
    key = "description_zh" if locale == "zh_CN" else "description_en"
    header = lambda name: _text(f"features.header.{name}", locale)  # noqa: E731
    rows = []
    for family in FAMILIES:
        for item in card["families"].get(family, []):
            rows.append(
                {
                    header("family"): family_label(family, locale),
                    header("feature"): item["name"],
                    header("description"): item[key],
                    header("value"): _card_value(item["value"], item["unit"], locale),
                }
            )
    return pd.DataFrame(rows)


def _card_value(value: Any, unit: str, locale: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return tr("core.yes" if value else "core.no", locale=locale)
    if unit == "share" and isinstance(value, float):
        return f"{value:.1%}"
    return format_number(value)


# ---------------------------------------------------------------- figures


def coverage_chart(coverage: pd.DataFrame, locale: str | None = None) -> go.Figure:
    """Return the share of customers each family covers: bars for one date, lines for several."""
    locale = _locale(locale)
    title = _text("features.chart.coverage_title", locale)
    frame = coverage[coverage.status == INCLUDED]
    dates = sorted(frame.as_of.unique())
    if len(dates) <= 1:
        figure = charts.bar_chart(
            [family_label(family, locale) for family in frame.family],
            list(frame.share),
            title=title,
            y_title=_text("features.chart.share_axis", locale),
            text=[f"{share:.1%}" for share in frame.share],
        )
    else:
        figure = go.Figure()
        for family in FAMILIES:
            of_family = frame[frame.family == family]
            if len(of_family):
                figure.add_trace(go.Scatter(x=[str(day) for day in of_family.as_of], y=list(of_family.share),
                                            mode="lines+markers", name=family_label(family, locale)))
        charts.style_figure(figure, title, _text("features.chart.as_of_axis", locale),
                            _text("features.chart.share_axis", locale))
        figure.update_xaxes(type="category")
    figure.update_yaxes(tickformat=".0%", range=[0, 1.05])
    return figure


def distribution_chart(
    latest: pd.DataFrame, dictionary: pd.DataFrame, locale: str | None = None, min_group_size: int = 1
) -> go.Figure:
    """Return histograms of the key numeric features of one map date.

    Bins with fewer than ``min_group_size`` customers are shown empty, and
    the panel title gives how many customers they contain together.
    """
    locale = _locale(locale)
    names = [name for name in KEY_FEATURES if name in latest.columns]
    title = _text("features.chart.distribution_title", locale)
    if not names:
        return _empty_figure(title, _text("features.chart.no_features", locale))
    width = 3
    height = math.ceil(len(names) / width)
    titles = []
    traces = []
    for name in names:
        values = pd.to_numeric(latest[name], errors="coerce").astype("float64")
        values = values[np.isfinite(values)]
        counts, edges = _histogram(values)
        hidden = int(sum(count for count in counts if 0 < count < min_group_size))
        counts = [count if count >= min_group_size else 0 for count in counts]
        label = name if not hidden else f"{name}<br><sup>{html.escape(_text('features.chart.suppressed', locale, customers=hidden))}</sup>"
        titles.append(label)
        centres = [(low + high) / 2 for low, high in zip(edges[:-1], edges[1:])]
        widths = [high - low for low, high in zip(edges[:-1], edges[1:])]
        traces.append(go.Bar(x=centres, y=counts, width=widths, showlegend=False, name=name,
                             marker_color=charts.COLORWAY[0]))
    figure = make_subplots(rows=height, cols=width, subplot_titles=titles, vertical_spacing=0.45 / max(height, 1))
    for index, trace in enumerate(traces):
        figure.add_trace(trace, row=index // width + 1, col=index % width + 1)
    charts.style_figure(figure, title, height=max(320, 240 * height))
    figure.update_annotations(font_size=12)
    return figure


def _histogram(values: pd.Series) -> tuple[list[int], list[float]]:
    if values.empty:
        return [], [0.0, 1.0]
    low, high = float(values.min()), float(values.max())
    # Long tails (amounts) are cut at the 1st and 99th percentiles so the bulk stays readable.
    if len(values) >= 100:
        low, high = float(values.quantile(0.01)), float(values.quantile(0.99))
    if high <= low:
        high = low + 1.0
    counts, edges = np.histogram(values.clip(low, high), bins=HISTOGRAM_BINS, range=(low, high))
    return [int(count) for count in counts], [float(edge) for edge in edges]


def category_chart(
    latest: pd.DataFrame, name: str, locale: str | None = None, min_group_size: int = 1
) -> go.Figure:
    """Return customers per value of a category feature; small values are pooled as suppressed."""
    locale = _locale(locale)
    counts = latest[name].fillna(_text("features.chart.missing", locale)).astype(str).value_counts()
    small = counts[counts < min_group_size]
    counts = counts[counts >= min_group_size]
    if len(small):
        counts[_text("features.chart.small_groups", locale, size=min_group_size)] = int(small.sum())
    return charts.bar_chart(
        list(counts.index), list(counts.values),
        title=_text("features.chart.category_title", locale, feature=name),
        y_title=_text("features.chart.customers_axis", locale),
    )


def correlation_chart(latest: pd.DataFrame, dictionary: pd.DataFrame, locale: str | None = None) -> go.Figure:
    """Return the Spearman correlations among the key features, ordered by family."""
    locale = _locale(locale)
    families = dict(zip(dictionary.name, dictionary.family))
    names = [name for name in KEY_FEATURES if name in latest.columns]
    names.sort(key=lambda name: FAMILIES.index(families.get(name, "profile")))
    title = _text("features.chart.correlation_title", locale)
    numeric = latest[names].apply(pd.to_numeric, errors="coerce").astype("float64")
    numeric = numeric.loc[:, numeric.nunique() > 1]
    if numeric.shape[1] < 2:
        return _empty_figure(title, _text("features.chart.no_features", locale))
    matrix = numeric.corr(method="spearman")
    labels = [f"{family_label(families.get(name, 'profile'), locale)} · {name}" for name in matrix.columns]
    values = [[None if pd.isna(cell) else float(cell) for cell in row] for row in matrix.values]
    figure = charts.heatmap(values, labels, title=title)
    figure.update_layout(height=max(420, 28 * len(labels) + 160))
    return figure


def relation_graph(card: Mapping[str, Any], locale: str | None = None) -> go.Figure:
    """Return the customer card's relations as a network drawing.

    The customer sits in the centre, directly related entities and customers
    on the inner ring, and customers sharing one of those entities on the
    outer ring next to it. Labels are the first 8 characters of pseudonyms.
    """
    locale = _locale(locale)
    title = _text("features.chart.graph_title", locale, customer=_short(card["customer_id"]))
    nodes, edges = card["nodes"], card["edges"]
    if not edges:
        return _empty_figure(title, _text("features.chart.no_relations", locale))
    positions = _layout(nodes, edges)
    x_lines, y_lines = [], []
    for edge in edges:
        (x0, y0), (x1, y1) = positions[edge["source"]], positions[edge["target"]]
        x_lines += [x0, x1, None]
        y_lines += [y0, y1, None]
    figure = go.Figure(go.Scatter(x=x_lines, y=y_lines, mode="lines", line={"color": "#9ca3af", "width": 1},
                                  hoverinfo="skip", showlegend=False))
    kinds = sorted({node["kind"] for node in nodes})
    for index, kind in enumerate(kinds):
        members = [node for node in nodes if node["kind"] == kind]
        figure.add_trace(
            go.Scatter(
                x=[positions[node["id"]][0] for node in members],
                y=[positions[node["id"]][1] for node in members],
                mode="markers+text",
                text=[node["label"] for node in members],
                textposition="top center",
                hovertext=[f"{node['kind']}: {node['label']}" for node in members],
                hoverinfo="text",
                marker={"size": 22 if kind == "center" else 14,
                        "color": NODE_COLORS.get(kind, charts.COLORWAY[(index + 1) % len(charts.COLORWAY)])},
                name=_text("features.chart.this_customer", locale) if kind == "center" else kind,
            )
        )
    charts.style_figure(figure, title, height=520)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x")
    return figure


def _layout(nodes: Sequence[Mapping[str, Any]], edges: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    center = next(node["id"] for node in nodes if node["kind"] == "center")
    inner = [node["id"] for node in nodes if node["ring"] == 1]
    positions = {center: (0.0, 0.0)}
    angles = {}
    for index, node in enumerate(inner):
        angle = 2 * math.pi * index / max(len(inner), 1)
        angles[node] = angle
        positions[node] = (math.cos(angle), math.sin(angle))
    outer = [node["id"] for node in nodes if node["ring"] == 2]
    anchor = {edge["source"]: edge["target"] for edge in edges if edge["source"] in outer}
    spread: dict[str, int] = {}
    for node in outer:
        base = angles.get(anchor.get(node, ""), 0.0)
        offset = spread.get(anchor.get(node, ""), 0)
        spread[anchor.get(node, "")] = offset + 1
        angle = base + 0.25 * (offset - 1) if offset else base
        positions[node] = (2 * math.cos(angle), 2 * math.sin(angle))
    return positions


def _empty_figure(title: str, message: str) -> go.Figure:
    figure = charts.style_figure(go.Figure(), title)
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return figure


def _short(pseudonym: str) -> str:
    return pseudonym[:8]


# ---------------------------------------------------------------- customer card


def customer_card(
    backend: Any,
    tables: Mapping[str, Any],
    partition: str | Path,
    dictionary: pd.DataFrame,
    spec: MapSpec,
    as_of: dt.date,
    customer: str | None = None,
) -> dict[str, Any]:
    """Return one customer's 360° profile at ``as_of`` and the graph of their relations.

    Parameters
    ----------
    backend : Ibis backend
    tables : mapping of str to ibis Table
        The canonical tables.
    partition : str or Path
        The map partition of ``as_of``.
    dictionary : pandas.DataFrame
        The feature dictionary.
    spec : MapSpec
    as_of : date
    customer : str, optional
        The customer's pseudonym. By default the card shows the customer
        covered by the most families, then with the most related customers,
        then the highest degree. Ties go to the smallest pseudonym.

    Returns
    -------
    dict
        ``customer_id``, ``as_of``, ``families`` (family to a list of
        features with ``name``, ``description_zh``, ``description_en``,
        ``unit`` and ``value``), ``nodes`` and ``edges`` of the relation graph.

    Raises
    ------
    StageError
        When ``customer`` is not in the map.
    """
    frame = backend.read_parquet(partition)
    if customer is None:
        customer = _pick_customer(frame)
    row = frame.filter(frame.customer_id == customer).execute()
    if row.empty:
        raise StageError("features.card_customer_unknown", customer=customer, as_of=as_of.isoformat())
    record = row.iloc[0]
    families: dict[str, list[dict[str, Any]]] = {}
    for item in dictionary[dictionary.status == INCLUDED].itertuples():
        families.setdefault(item.family, []).append(
            {
                "name": item.name,
                "description_zh": item.description_zh,
                "description_en": item.description_en,
                "unit": item.unit,
                "value": _plain(record[item.name]),
            }
        )
    nodes, edges = _relation_graph(tables, spec, as_of, customer)
    return {"customer_id": customer, "as_of": as_of.isoformat(), "families": families, "nodes": nodes,
            "edges": edges}


def _pick_customer(frame: Any) -> str:
    flags = [f"{family}_covered" for family in FAMILIES if f"{family}_covered" in frame.columns]
    keys = []
    # A constant sort key would compile to ORDER BY 0, which DuckDB reads as a column position.
    if flags:
        covered = frame[flags[0]].ifelse(1, 0)
        for flag in flags[1:]:
            covered = covered + frame[flag].ifelse(1, 0)
        keys.append(ibis.desc(covered))
    for name in ("related_customers", "degree"):
        if name in frame.columns:
            keys.append(ibis.desc(frame[name]))
    keys.append(frame.customer_id)
    return str(frame.order_by(keys).limit(1).customer_id.execute().iloc[0])


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (dt.date, pd.Timestamp)):
        return str(value)
    return value


def _relation_graph(
    tables: Mapping[str, Any], spec: MapSpec, as_of: dt.date, customer: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes = [{"id": customer, "label": _short(customer), "kind": "center", "ring": 0}]
    if "relations" not in tables or not {"customer_id", "related_id", "relation_type"} <= set(tables["relations"].columns):
        return nodes, []
    ctx = BuildContext(tables, spec, Windows(as_of, spec.months_needed))
    counted = relations.counted_relations(ctx)

    typed = "related_type" in counted.columns
    columns = ["customer_id", "related_id", "relation_type"] + (["related_type"] if typed else [])
    own = counted.filter((counted.customer_id == customer) | (counted.related_id == customer)).select(*columns)
    own = own.order_by(["relation_type", "related_id", "customer_id"]).limit(MAX_CARD_EDGES).execute()

    edges: list[dict[str, Any]] = []
    seen = {customer}
    entities: list[str] = []
    for item in own.itertuples():
        other = item.related_id if item.customer_id == customer else item.customer_id
        kind = (item.related_type if typed and item.customer_id == customer else "customer") or item.relation_type
        if other not in seen:
            nodes.append({"id": other, "label": _short(other), "kind": str(kind), "ring": 1})
            seen.add(other)
            if typed and kind in spec.shared_types:
                entities.append(other)
        edges.append({"source": customer, "target": other, "relation_type": str(item.relation_type)})

    if entities:
        sharing = counted.filter(counted.related_id.isin(entities) & (counted.customer_id != customer))
        sharing = sharing.select("customer_id", "related_id", "relation_type").order_by(["related_id", "customer_id"])
        sharing = sharing.limit(max(MAX_CARD_EDGES - len(edges), 0)).execute()
        for item in sharing.itertuples():
            if item.customer_id not in seen:
                nodes.append({"id": item.customer_id, "label": _short(item.customer_id), "kind": "customer",
                              "ring": 2})
                seen.add(item.customer_id)
            edges.append({"source": item.customer_id, "target": item.related_id,
                          "relation_type": str(item.relation_type)})
    return nodes, edges


# ---------------------------------------------------------------- HTML report


def render_html(
    *,
    summary: Mapping[str, Any],
    dictionary: pd.DataFrame,
    coverage: pd.DataFrame,
    latest: pd.DataFrame,
    card: Mapping[str, Any],
    locale: str | None = None,
    engagement: str = "",
    run_id: str = "",
    min_group_size: int = 1,
    generated: dt.datetime | None = None,
    timezone: str | None = None,
) -> str:
    """Return the map report as one self-contained HTML document.

    The report shows the coverage of each family, the notices, the features
    left out with their reasons, distributions and correlations of key
    features at the latest date, the customer card with its relation graph,
    and the feature dictionary. plotly.js is embedded once in the head.
    """
    locale = _locale(locale)
    from relmap_utils.export import report_header_time  # late: export imports the page builders

    generated_text = report_header_time(timezone, generated)
    text = lambda key, **params: html.escape(_text(key, locale, **params))  # noqa: E731
    dates = summary["as_of_dates"]
    features = summary["features"]
    parts = [
        f"<h1>{text('features.report.title')}</h1>",
        f"<p class='meta'>{text('features.report.meta', engagement=engagement or '-', run=run_id or '-', generated=generated_text)}</p>",
        "<p>" + text("features.report.overview", customers=f"{summary['customers']:,}", dates=len(dates),
                     first=dates[0], last=dates[-1], included=features["included"],
                     left_out=features["left_out"]) + "</p>",
        f"<h2>{text('features.report.coverage_heading')}</h2>",
        f"<p class='note'>{text('features.report.coverage_note')}</p>",
        _frame_html(coverage_table(coverage, locale)),
        _figure_html(coverage_chart(coverage, locale)),
        f"<h2>{text('features.report.notices_heading')}</h2>",
        _frame_html(notices_table(summary, locale), empty=text("features.report.none")),
        f"<h2>{text('features.report.left_out_heading')}</h2>",
        _frame_html(dictionary_table(dictionary, locale, status="left_out"), empty=text("features.report.none")),
        f"<h2>{text('features.report.distributions_heading', as_of=dates[-1])}</h2>",
        _figure_html(distribution_chart(latest, dictionary, locale, min_group_size)),
    ]
    for name in KEY_CATEGORIES:
        if name in latest.columns:
            parts.append(_figure_html(category_chart(latest, name, locale, min_group_size)))
    parts += [
        f"<h2>{text('features.report.correlations_heading')}</h2>",
        _figure_html(correlation_chart(latest, dictionary, locale)),
        f"<h2>{text('features.report.card_heading', customer=_short(card['customer_id']), as_of=card['as_of'])}</h2>",
        f"<p class='note'>{text('features.report.card_note')}</p>",
        _figure_html(relation_graph(card, locale)),
        _frame_html(card_table(card, locale)),
        f"<h2>{text('features.report.dictionary_heading')}</h2>",
        _frame_html(dictionary_table(dictionary, locale, status=INCLUDED)),
        f"<p class='note'>{text('features.report.method_note')}</p>",
        f"<p class='note'>{text('features.report.privacy_note', size=min_group_size)}</p>",
    ]
    language = "zh-CN" if locale == "zh_CN" else "en"
    title = text("features.report.title")
    return (
        f"<!DOCTYPE html>\n<html lang='{language}'>\n<head>\n<meta charset='utf-8'>\n"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>\n<title>{title}</title>\n"
        f"<style>{_CSS}</style>\n{charts.plotlyjs_script()}\n</head>\n<body>\n<main>\n"
        + "\n".join(parts)
        + "\n</main>\n</body>\n</html>\n"
    )


def write_html_report(path: str | Path, **options: Any) -> Path:
    """Write :func:`render_html` to ``path`` (temporary file, then rename) and return the path.

    The header time is in the time zone of the run ``path`` belongs to, unless ``timezone`` is given.
    """
    from relmap_utils.export import report_timezone

    options.setdefault("timezone", report_timezone(path))
    return write_text(render_html(**options), Path(path))


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
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
.meta, .note { color: #6b7280; font-size: 13px; }
.figure { margin: 12px 0 24px; }
"""
