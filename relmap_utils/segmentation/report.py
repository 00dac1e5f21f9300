"""Tables and charts of stage 03 for its notebook and its HTML report.

Every chart shows groups; a group smaller than ``privacy.min_group_size``
is merged into "其他 / Other" (relmap_utils.dashboard.privacy), so no
figure reveals a handful of customers.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from relmap_utils.artifacts import write_text
from relmap_utils import charts
from relmap_utils.dashboard.privacy import merge_small_groups
from relmap_utils.i18n import format_amount, get_locale, normalize_locale, tr
from relmap_utils.segmentation.params import amount_to_yuan
from relmap_utils.segmentation.profiles import feature_label
from relmap_utils.segmentation.rfm import CELLS, NO_PURCHASE



def _locale(locale: str | None) -> str:
    return normalize_locale(locale) or get_locale()


def group_label(groups: pd.DataFrame, kind: str, group: Any, locale: str) -> str:
    """Return the display name of a group in ``locale``, or its code."""
    row = groups[(groups["kind"] == kind) & (groups["group"].astype(str) == str(group))]
    if row.empty:
        return str(group)
    name = row.iloc[0]["name_en" if locale == "en" else "name_zh"]
    return str(name) if isinstance(name, str) and name else str(group)


def tier_descriptions(tiers: Mapping[str, Any] | None, locale: str | None = None,
                      dictionary: pd.DataFrame | None = None) -> dict[str, str]:
    """Return each tier's rule as a sentence (``资产 ≥ 600万元``), keyed by tier code.

    Parameters
    ----------
    tiers : mapping or None
        ``stages.segmentation.params.tiers`` as written in engagement.yaml.
    locale : str, optional
    dictionary : pandas.DataFrame, optional
        The map's feature dictionary; features with unit ``yuan`` are
        amounts, written with the tiers' ``amount_unit``. Default: the
        dictionary of the default map settings.
    """
    locale = _locale(locale)
    tiers = tiers or {}
    unit = str(tiers.get("amount_unit") or "元")
    if dictionary is None or dictionary.empty:
        from relmap_utils.features.dictionary import feature_dictionary

        dictionary = feature_dictionary()
    amounts = set(dictionary.loc[dictionary["unit"].isin(["yuan", "yuan_per_month"]), "name"])
    found = {}
    for rule in tiers.get("rules") or []:
        if not isinstance(rule, Mapping) or not rule.get("code"):
            continue
        when = rule.get("when") or {}
        clauses = [clause for clause in ([when] if isinstance(when, Mapping) else when) if clause]
        if rule.get("otherwise") or not clauses:
            found[str(rule["code"])] = tr("labels.rule.otherwise", locale=locale)
            continue
        joiner = f" {tr('labels.rule.and', locale=locale)} "
        texts = [joiner.join(_condition_texts(clause, locale, unit, amounts)) for clause in clauses]
        found[str(rule["code"])] = f"；{tr('labels.rule.or', locale=locale)} ".join(texts) if locale == "zh_CN" \
            else f"; {tr('labels.rule.or', locale=locale)} ".join(texts)
    return found


def _condition_texts(clause: Mapping[str, Any], locale: str, unit: str, amounts: set[str]) -> list[str]:
    texts = []
    for column, test in clause.items():
        feature = feature_label(str(column), locale)
        test = test if isinstance(test, Mapping) else {"equals": test}

        def shown(value: Any) -> str:
            if column not in amounts:
                return f"{value:g}" if isinstance(value, float) else str(value)
            amount = format_amount(amount_to_yuan(value, unit), locale)
            return tr("labels.unit.yuan", locale=locale, value=re.sub(r"\.00(?=[万亿])", "", amount))

        for key in ("min", "max"):
            if test.get(key) is not None:
                texts.append(tr(f"labels.rule.{key}", locale=locale, feature=feature, value=shown(test[key])))
        if test.get("equals") is not None:
            texts.append(tr("labels.rule.equals", locale=locale, feature=feature, value=shown(test["equals"])))
        if test.get("in") is not None:
            values = "、".join(map(str, test["in"])) if locale == "zh_CN" else ", ".join(map(str, test["in"]))
            texts.append(tr("labels.rule.in", locale=locale, feature=feature, values=values))
        if test.get("missing") is not None:
            key = "labels.rule.missing" if test["missing"] else "labels.rule.present"
            texts.append(tr(key, locale=locale, feature=feature))
    return texts


def rfm_descriptions(locale: str | None = None) -> dict[str, str]:
    """Return what each RFM cell means (``近期有消费、消费频繁、消费金额高``), keyed by cell code."""
    locale = _locale(locale)
    separator = "、" if locale == "zh_CN" else ", "
    found = {NO_PURCHASE: tr("labels.rfm.no_purchase", locale=locale)}
    for (recent, frequent, spends), code in CELLS.items():
        parts = [tr(f"labels.rfm.{letter}_{'high' if high else 'low'}", locale=locale)
                 for letter, high in (("r", recent), ("f", frequent), ("m", spends))]
        found[code] = separator.join(parts)
    return found


def with_descriptions(groups: pd.DataFrame, tiers: Mapping[str, Any] | None = None,
                      dictionary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return ``groups`` with empty tier and RFM-cell descriptions filled in both languages.

    Tiers are described by their rule (:func:`tier_descriptions`), RFM cells
    by their scores (:func:`rfm_descriptions`). Descriptions the stage or
    the consultant wrote are kept.
    """
    if groups.empty:
        return groups
    groups = groups.copy()
    for locale, column in (("zh_CN", "description_zh"), ("en", "description_en")):
        filled = {"tier": tier_descriptions(tiers, locale, dictionary), "rfm_cell": rfm_descriptions(locale)}
        current = groups[column] if column in groups.columns else pd.Series("", index=groups.index)
        groups[column] = [
            text if isinstance(text, str) and text.strip() else filled.get(kind, {}).get(str(group), text or "")
            for kind, group, text in zip(groups["kind"], groups["group"], current)
        ]
    return groups


def groups_table(groups: pd.DataFrame, kind: str, min_group_size: int = 1, locale: str | None = None,
                 codes: bool = True) -> pd.DataFrame:
    """Return the groups of one kind with size, shares, description and action; small groups merged.

    Groups are named in ``locale``; the group code comes last, in a column
    titled for the risk and IT teams, and ``codes=False`` leaves it out.
    """
    locale = _locale(locale)
    frame = groups[groups["kind"] == kind]
    if frame.empty:
        return pd.DataFrame()
    merged = merge_small_groups(frame, "group", "customers", min_group_size)
    shown = set(merged.frame["group"])
    frame = frame[frame["group"].isin(shown)]
    suffix = "en" if locale == "en" else "zh"
    table = pd.DataFrame({
        tr("segmentation.report.col.name", locale=locale): frame[f"name_{suffix}"],
        tr("segmentation.report.col.customers", locale=locale): frame["customers"].astype(int),
        tr("segmentation.report.col.share", locale=locale): (frame["share"].astype(float) * 100).round(1),
        tr("segmentation.report.col.aum_share", locale=locale):
            (pd.to_numeric(frame["aum_share"], errors="coerce") * 100).round(1),
        tr("segmentation.report.col.description", locale=locale): frame[f"description_{suffix}"],
        tr("segmentation.report.col.action", locale=locale): frame[f"action_{suffix}"],
        # Last, and titled for whom: the risk and IT teams match groups by code.
        tr("segmentation.report.col.group", locale=locale): frame["group"].astype(str),
    })
    if not codes:
        table = table.drop(columns=tr("segmentation.report.col.group", locale=locale))
    return table.reset_index(drop=True)


def sizes_chart(groups: pd.DataFrame, kind: str, min_group_size: int = 1, locale: str | None = None) -> go.Figure:
    """Return a bar chart of the customers per group of ``kind``, small groups merged."""
    locale = _locale(locale)
    frame = groups[groups["kind"] == kind]
    merged = merge_small_groups(frame, "group", "customers", min_group_size) if not frame.empty else None
    title = tr(f"segmentation.report.sizes_{kind}", locale=locale)
    if merged is None or merged.suppressed:
        return _empty(title, tr("dashboard.privacy.suppressed", locale=locale, min_size=min_group_size))
    labels = [tr("dashboard.privacy.other_group", locale=locale) if key not in set(frame["group"])
              else group_label(groups, kind, key, locale) for key in merged.frame["group"]]
    figure = charts.bar_chart([html.escape(label) for label in labels], merged.frame["customers"].astype(int).tolist(),
                              title=title, y_title=tr("segmentation.report.col.customers", locale=locale))
    return charts.style_figure(figure, height=360)


def profile_heatmap(groups: pd.DataFrame, contrasts: pd.DataFrame, kind: str, min_group_size: int = 1,
                    locale: str | None = None, dictionary: pd.DataFrame | None = None) -> go.Figure:
    """Return a heat map of the contrasts (group mean vs population, in population std) per group and feature."""
    locale = _locale(locale)
    title = tr("segmentation.report.heatmap", locale=locale)
    if groups.empty or contrasts.empty:
        return _empty(title, tr("segmentation.report.none", locale=locale))
    sizes = groups[(groups["kind"] == kind) & (groups["customers"] >= min_group_size)]
    frame = contrasts[(contrasts["kind"] == kind) & contrasts["group"].isin(set(sizes["group"]))]
    if frame.empty:
        return _empty(title, tr("segmentation.report.none", locale=locale))
    pivot = frame.pivot_table(index="group", columns="feature", values="contrast", aggfunc="first")
    pivot = pivot.reindex([group for group in sizes["group"] if group in pivot.index])
    x = [html.escape(feature_label(name, locale, dictionary)) for name in pivot.columns]
    y = [html.escape(group_label(groups, kind, group, locale)) for group in pivot.index]
    values = pivot.clip(-2, 2).round(2)
    trace = go.Heatmap(z=values.to_numpy().tolist(), x=x, y=y, zmin=-2, zmax=2, colorscale="RdBu", reversescale=True,
                       colorbar={"title": "σ"})
    figure = charts.style_figure(go.Figure(trace), title, height=max(320, 60 + 40 * len(y)))
    # A group without a value (e.g. channel shares of customers without transactions) is said so, not left blank.
    missing = tr("segmentation.report.no_data", locale=locale)
    for row, group_text in enumerate(y):
        for column, feature_text in enumerate(x):
            if pd.isna(values.iat[row, column]):
                figure.add_annotation(x=feature_text, y=group_text, text=missing, showarrow=False,
                                      font={"color": "#6b7280", "size": 11})
    figure.update_yaxes(autorange="reversed")
    return figure


def k_chart(k_selection: pd.DataFrame, locale: str | None = None) -> go.Figure:
    """Return the k-selection curve (silhouette or BIC against k)."""
    locale = _locale(locale)
    title = tr("segmentation.report.k_curve", locale=locale)
    if k_selection is None or k_selection.empty:
        return _empty(title, tr("segmentation.report.none", locale=locale))
    criterion = str(k_selection["criterion"].iloc[0])
    figure = charts.line_chart(k_selection["k"].tolist(), k_selection["score"].tolist(), title=title, x_title="k",
                               y_title=tr(f"segmentation.report.criterion.{criterion}", locale=locale))
    chosen = k_selection[k_selection["chosen"]]
    figure.add_trace(go.Scatter(x=chosen["k"], y=chosen["score"], mode="markers", marker={"size": 14},
                                name=tr("segmentation.report.chosen", locale=locale)))
    return figure


def sankey(transitions: pd.DataFrame, groups: pd.DataFrame, kind: str = "tier", min_group_size: int = 1,
           locale: str | None = None) -> go.Figure:
    """Return a Sankey diagram of the moves between two states; flows under the minimum size are left out."""
    locale = _locale(locale)
    title = tr(f"segmentation.report.sankey_{kind}", locale=locale)
    frame = transitions[(transitions["kind"] == kind)] if not transitions.empty else transitions
    hidden = frame[frame["customers"] < min_group_size] if not frame.empty else frame
    frame = frame[frame["customers"] >= min_group_size] if not frame.empty else frame
    if frame.empty:
        return _empty(title, tr("segmentation.report.none", locale=locale))
    sources = list(dict.fromkeys(frame["from_group"].astype(str)))
    targets = list(dict.fromkeys(frame["to_group"].astype(str)))
    labels = [html.escape(group_label(groups, kind, name, locale)) for name in sources + targets]
    trace = go.Sankey(
        node={"label": labels, "pad": 12},
        link={"source": [sources.index(str(name)) for name in frame["from_group"]],
              "target": [len(sources) + targets.index(str(name)) for name in frame["to_group"]],
              "value": frame["customers"].astype(int).tolist()},
    )
    figure = charts.style_figure(go.Figure(trace), title, height=460)
    if len(hidden):
        figure.add_annotation(text=tr("segmentation.report.flows_hidden", locale=locale, flows=len(hidden),
                                      min_size=min_group_size), showarrow=False, x=0, y=-0.08, xref="paper",
                              yref="paper", xanchor="left")
    return figure


def notices_table(summary: Mapping[str, Any], locale: str | None = None) -> pd.DataFrame:
    """Return the stage's notices in ``locale``."""
    locale = _locale(locale)
    field = "message_en" if locale == "en" else "message_zh"
    return pd.DataFrame({tr("segmentation.report.col.severity", locale=locale): [n["severity"] for n in summary["notices"]],
                         tr("segmentation.report.col.message", locale=locale): [n[field] for n in summary["notices"]]})


def _empty(title: str, message: str) -> go.Figure:
    figure = charts.style_figure(go.Figure(), title, height=200)
    figure.add_annotation(text=html.escape(message), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure


def render_html(*, result: Mapping[str, Any], locale: str | None = None, engagement: str = "", run_id: str = "",
                min_group_size: int = 1, timezone: str | None = None, generated: dt.datetime | None = None) -> str:
    """Return the segmentation report as one self-contained HTML document (plotly.js embedded once).

    The header shows ``generated`` (default now) in ``timezone`` (the engagement's) with its UTC offset.
    """
    from relmap_utils.export import report_header_time  # late: export imports the page builders

    locale = _locale(locale)
    summary = result["summary"]
    groups = with_descriptions(result["groups"], (summary.get("params") or {}).get("tiers"))
    text = lambda key, **params: html.escape(tr(key, locale=locale, **params))  # noqa: E731
    generated_text = report_header_time(timezone, generated)
    parts = [f"<h1>{text('segmentation.report.title')}</h1>",
             f"<p class='meta'>{text('segmentation.report.meta', engagement=engagement or '-', run=run_id or '-', as_of=summary['as_of'], generated=generated_text)}</p>"]
    for kind in ("tier", "rfm_cell", "segment"):
        if groups.empty or not (groups["kind"] == kind).any():
            continue
        parts += [f"<h2>{text(f'segmentation.report.heading_{kind}')}</h2>",
                  _figure(sizes_chart(groups, kind, min_group_size, locale)),
                  _frame(groups_table(groups, kind, min_group_size, locale))]
        if kind != "rfm_cell":
            parts.append(_figure(profile_heatmap(groups, result["profiles"], kind, min_group_size, locale)))
    if not result["k_selection"].empty:
        parts.append(_figure(k_chart(result["k_selection"], locale)))
    if not result["transitions"].empty:
        parts.append(f"<h2>{text('segmentation.report.heading_migration')}</h2>")
        for kind in ("tier", "segment"):
            parts.append(_figure(sankey(result["transitions"], groups, kind, min_group_size, locale)))
    parts += [f"<h2>{text('segmentation.report.heading_notices')}</h2>", _frame(notices_table(summary, locale)),
              f"<p class='note'>{text('segmentation.report.privacy_note', size=min_group_size)}</p>"]
    language = "zh-CN" if locale == "zh_CN" else "en"
    return (f"<!DOCTYPE html>\n<html lang='{language}'>\n<head>\n<meta charset='utf-8'>\n"
            f"<title>{text('segmentation.report.title')}</title>\n<style>{_CSS}</style>\n{charts.plotlyjs_script()}\n"
            "</head>\n<body>\n<main>\n" + "\n".join(parts) + "\n</main>\n</body>\n</html>\n")


def write_html_report(path: str | Path, **options: Any) -> Path:
    """Write :func:`render_html` to ``path`` (temporary file, then rename) and return the path.

    The header time is in the time zone of the run ``path`` belongs to, unless ``timezone`` is given.
    """
    from relmap_utils.export import report_timezone

    options.setdefault("timezone", report_timezone(path))
    return write_text(render_html(**options), Path(path))


def _frame(frame: pd.DataFrame) -> str:
    return "" if frame.empty else frame.to_html(index=False, escape=True, border=0, na_rep="")


def _figure(figure: go.Figure) -> str:
    return f"<div class='figure'>{charts.to_html(figure, include_plotlyjs=False)}</div>"


_CSS = """
body { font-family: "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", sans-serif; color: #1f2937;
       background: #f9fafb; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; background: white; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 4px 8px; text-align: left; vertical-align: top; }
.meta, .note { color: #6b7280; font-size: 13px; }
"""
