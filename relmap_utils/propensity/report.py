"""Tables, charts, the HTML report and the model documentation pages of stage 04.

The notebook, the dashboard page and the HTML report show the same figures,
built here from the stage's artifacts. Every text comes from the catalogs
(``propensity.po``) in the report language.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from relmap_utils import charts
from relmap_utils.features.labels import feature_label, is_labelled, value_label
from relmap_utils.i18n import get_locale, tr

# Product code -> {"zh_CN": name, "en": name}.
ProductLabels = Mapping[str, Mapping[str, str]]

METRIC_COLUMNS = ("product", "model", "sample", "rows", "takers", "rate", "auc", "gini", "ks", "capture_10",
                  "capture_20", "capture_30", "brier")


def product_labels(engagement: Any) -> dict[str, dict[str, str]]:
    """Return each product's display names from an engagement configuration.

    ``stages.propensity.params.product_labels`` comes first. A product without
    one takes, in Chinese, the raw value that the labels source recodes to
    its code (``子女教育金理财计划: education_wealth``), and in English its
    code with spaces.

    Parameters
    ----------
    engagement : relmap_utils.config.Engagement

    Returns
    -------
    dict
        Product code -> ``{"zh_CN": ..., "en": ...}``; products named nowhere are absent.
    """
    labels: dict[str, dict[str, str]] = {}
    for source in getattr(engagement, "sources", None) or []:
        if source.table != "labels":
            continue
        for column in source.column_maps().values():
            if column.name == "product" and column.values:
                for original, code in column.values.items():
                    labels.setdefault(str(code), {"zh_CN": str(original), "en": str(code).replace("_", " ")})
    stage = (getattr(engagement, "stages", None) or {}).get("propensity")
    configured = (stage.params if stage is not None else {}).get("product_labels") or {}
    for code, names in configured.items():
        if isinstance(names, Mapping):
            labels[str(code)] = {locale: str(names.get(locale) or code) for locale in ("zh_CN", "en")}
    return labels


def product_name(product: Any, locale: str | None = None, labels: ProductLabels | None = None) -> str:
    """Return a product's display name in ``locale``, or its code when no label is known."""
    chosen = locale or get_locale()
    names = (labels or {}).get(str(product)) or {}
    return str(names.get(chosen) or names.get("zh_CN") or product)


def metrics_table(metrics: pd.DataFrame, locale: str | None = None, labels: ProductLabels | None = None) -> pd.DataFrame:
    """Return the metrics per product, model and sample with translated headers and names (NaN shown as empty)."""
    if metrics is None or metrics.empty:
        return pd.DataFrame()
    shown = metrics[[column for column in METRIC_COLUMNS if column in metrics.columns]].copy()
    shown["product"] = [product_name(value, locale, labels) for value in shown["product"]]
    if "model" in shown:
        shown["model"] = [_known(f"labels.model.{value}", locale) or value for value in shown["model"]]
    if "sample" in shown:
        shown["sample"] = [_known(f"propensity.sample.{value}", locale) or value for value in shown["sample"]]
    for column in ("rate", "auc", "gini", "ks", "capture_10", "capture_20", "capture_30", "brier"):
        if column in shown:
            shown[column] = shown[column].round(4)
    return shown.rename(columns=lambda name: tr(f"propensity.column.{name}", locale=locale))


def _known(key: str, locale: str | None) -> str | None:
    text = tr(key, locale=locale)
    return None if text == key else text


def products_table(products: pd.DataFrame, locale: str | None = None, labels: ProductLabels | None = None) -> pd.DataFrame:
    """Return each product's status and, for a skipped product, the reason in the report language."""
    if products is None or products.empty:
        return pd.DataFrame()
    chosen = get_locale() if locale is None else locale
    message = "message_zh" if chosen == "zh_CN" else "message_en"
    shown = pd.DataFrame({
        tr("propensity.column.product", locale=locale): [product_name(value, locale, labels)
                                                         for value in products["product"]],
        tr("propensity.column.status", locale=locale): [tr(f"propensity.status.{value}", locale=locale)
                                                        for value in products["status"]],
        tr("propensity.column.reason", locale=locale): products.get(message, ""),
    })
    return shown


def gains_chart(gains: pd.DataFrame, sample: str = "test", model: str = "boosted",
                labels: ProductLabels | None = None) -> go.Figure:
    """Cumulative gains by decile per product, with the random-selection diagonal."""
    figure = go.Figure()
    chosen = gains[(gains["sample"] == sample) & (gains["model"] == model)] if len(gains) else gains
    for product, rows in (chosen.groupby("product") if len(chosen) else []):
        figure.add_trace(go.Scatter(x=[0.0, *rows["cumulative_share"]], y=[0.0, *rows["gain"]],
                                    mode="lines+markers", name=html.escape(product_name(product, None, labels))))
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=tr("propensity.chart.random"),
                                line={"dash": "dot", "color": "#9ca3af"}))
    return charts.style_figure(figure, tr("propensity.chart.gains", sample=tr(f"propensity.sample.{sample}")),
                               tr("propensity.chart.share_contacted"), tr("propensity.chart.share_takers"))


def calibration_chart(reliability: pd.DataFrame, sample: str = "test", labels: ProductLabels | None = None) -> go.Figure:
    """Reliability curve per product: mean calibrated probability against the observed take-up rate."""
    figure = go.Figure()
    chosen = reliability[reliability["sample"] == sample] if len(reliability) else reliability
    top = 0.0
    for product, rows in (chosen.groupby("product") if len(chosen) else []):
        figure.add_trace(go.Scatter(x=rows["predicted"], y=rows["observed"], mode="lines+markers",
                                    name=html.escape(product_name(product, None, labels))))
        top = max(top, float(rows["predicted"].max()), float(rows["observed"].max()))
    top = top or 1.0
    figure.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name=tr("propensity.chart.perfect"),
                                line={"dash": "dot", "color": "#9ca3af"}))
    return charts.style_figure(figure, tr("propensity.chart.calibration", sample=tr(f"propensity.sample.{sample}")),
                               tr("propensity.chart.predicted"), tr("propensity.chart.observed"))


def importance_chart(importance: pd.DataFrame, product: str, dictionary: dict[str, dict[str, str]] | None = None,
                     top: int = 15, labels: ProductLabels | None = None) -> go.Figure:
    """Mean absolute SHAP value of the ``top`` features of one product, features by their short names."""
    rows = importance[importance["product"] == product].head(top) if len(importance) else importance
    locale = get_locale()
    names = [html.escape(_feature_name(name, locale, dictionary)) for name in rows.get("feature", [])]
    method = rows["method"].iloc[0] if len(rows) else "-"
    return charts.bar_chart(names, list(rows.get("mean_abs_shap", [])), horizontal=True,
                            title=tr("propensity.chart.importance", product=html.escape(product_name(product, locale, labels)),
                                     method=tr(f"propensity.explainer.{method}") if len(rows) else "-"),
                            x_title=tr("propensity.chart.mean_abs_shap"))


def _feature_name(name: str, locale: str, dictionary: Mapping[str, Mapping[str, str]] | None) -> str:
    if is_labelled(name):
        return feature_label(name, locale)
    return (dictionary or {}).get(name, {}).get(locale) or name


def show_importance(outcome: dict[str, Any]) -> None:
    """Display the SHAP importance chart of every modelled product (in a notebook)."""
    importance = outcome["importance"]
    for product in importance["product"].unique() if len(importance) else []:
        charts.show(importance_chart(importance, product, outcome["inputs"].dictionary))


def show_dependence(outcome: dict[str, Any], features: int = 2) -> None:
    """Display the SHAP dependence plots of the top ``features`` features of every modelled product."""
    sample = outcome["shap_sample"]
    for product in sample["product"].unique() if len(sample) else []:
        for feature in sample.loc[sample["product"] == product, "feature"].unique()[:features]:
            charts.show(dependence_chart(sample, product, feature))


def dependence_chart(shap_sample: pd.DataFrame, product: str, feature: str,
                     labels: ProductLabels | None = None) -> go.Figure:
    """SHAP value against the feature value for one product and feature (numeric or categorical)."""
    locale = get_locale()
    rows = shap_sample[(shap_sample["product"] == product) & (shap_sample["feature"] == feature)]
    numeric = rows["numeric"].notna().mean() > 0.5 if len(rows) else False
    x = rows["numeric"] if numeric else [html.escape(value_label(feature, value, locale)) for value in rows["value"]]
    figure = go.Figure(go.Scatter(x=list(x), y=list(rows["shap"]), mode="markers", marker={"opacity": 0.5}))
    name = html.escape(feature_label(feature, locale))
    return charts.style_figure(figure, tr("propensity.chart.dependence",
                                          product=html.escape(product_name(product, locale, labels)), feature=name),
                               name, tr("propensity.chart.shap_value"))


def heatmap_chart(matrix: pd.DataFrame, labels: ProductLabels | None = None,
                  group_names: Mapping[str, str] | None = None) -> go.Figure:
    """Segment x product heat map of the mean take-up probability, products and segments by name."""
    names = group_names or {}
    trace = go.Heatmap(z=matrix.to_numpy().tolist(),
                       x=[html.escape(product_name(column, None, labels)) for column in matrix.columns],
                       y=[html.escape(str(names.get(str(index), index))) for index in matrix.index], colorscale="Blues")
    return charts.style_figure(go.Figure(trace), tr("propensity.chart.heatmap"))


def segment_product_matrix(scores: pd.DataFrame, segments: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Mean take-up probability per segment and product; segments smaller than ``min_group_size`` are left out.

    Parameters
    ----------
    scores : pandas.DataFrame
        ``customer_id``, ``product``, ``probability``.
    segments : pandas.DataFrame
        ``customer_id`` and ``segment``.
    min_group_size : int
    """
    joined = scores.merge(segments[["customer_id", "segment"]], on="customer_id", how="inner")
    sizes = joined.groupby("segment")["customer_id"].nunique()
    kept = sizes[sizes >= min_group_size].index
    joined = joined[joined["segment"].isin(kept)]
    return joined.pivot_table(index="segment", columns="product", values="probability", aggfunc="mean")


def write_model_doc(folder: Path, item: dict[str, Any], inputs: Any, settings: Any) -> Path:
    """Write the model documentation page of one product (Markdown, in Chinese and English).

    It states the development sample and its dates, the features, the test
    and out-of-time results, the explainer and the known limitations.
    """
    folder.mkdir(parents=True, exist_ok=True)
    product = item["product"]
    metrics = pd.DataFrame(item["metrics"])
    lines = [f"# {tr('propensity.doc.title', locale='zh_CN', product=product)}",
             f"# {tr('propensity.doc.title', locale='en', product=product)}", ""]
    facts = {
        "split": settings.split.method, "cutoff": item["cutoff"], "features_as_of": inputs.features_as_of,
        "train_rows": item["train"]["rows"], "train_takers": item["train"]["takers"],
        "train_dates": f"{item['train']['first']} .. {item['train']['last']}",
        "test_rows": item["test"]["rows"], "test_takers": item["test"]["takers"],
        "test_dates": f"{item['test']['first']} .. {item['test']['last']}",
        "features": len(inputs.features), "dropped": ", ".join(inputs.dropped) or "-",
        "calibration": settings.calibration, "explainer": item["explanation"]["method"],
        "additivity": f"{item['explanation']['max_additivity_error']:.2g}", "trees": item["trees"],
    }
    for locale in ("zh_CN", "en"):
        lines.append(f"## {tr('propensity.doc.sample', locale=locale)}")
        for key, value in facts.items():
            lines.append(f"- {tr(f'propensity.doc.{key}', locale=locale)}: {value if value is not None else '-'}")
        lines.append("")
    lines.append("## Results / 结果")
    lines.append(_markdown(metrics[[c for c in METRIC_COLUMNS if c in metrics.columns]].round(4)))
    lines.append("")
    lines.append("## Logistic baseline / 逻辑回归基准")
    lines.append(_markdown(item["logit"].coefficients.round(4)))
    separation = item["logit"].separation
    lines.append("")
    lines.append("## Features / 特征")
    lines.append(", ".join(inputs.features))
    lines.append("")
    for locale in ("zh_CN", "en"):
        lines.append(f"## {tr('propensity.doc.limitations', locale=locale)}")
        limits = [tr("propensity.doc.limit_observational", locale=locale),
                  tr("propensity.doc.limit_explainer", locale=locale, method=item["explanation"]["method"])]
        if settings.split.method == "random":
            limits.append(tr("propensity.doc.limit_random_split", locale=locale))
        for finding in separation:
            limits.append(tr("propensity.doc.limit_separation", locale=locale, feature=finding.feature,
                             kind=finding.kind, rule=finding.rule))
        lines.extend(f"- {text}" for text in limits)
        lines.append("")
    target = folder / f"{product}.md"
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    temporary.replace(target)
    return target


def _markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "-"
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def write_html_report(path: Path, outcome: dict[str, Any], locale: str, engagement: str, run_id: str,
                      labels: ProductLabels | None = None) -> Path:
    """Write the self-contained HTML report of stage 04 (plotly.js embedded once, no network).

    Parameters
    ----------
    path : Path
    outcome : dict
        The stage's results (see :func:`relmap_utils.propensity.stage.run_stage`).
    locale : str
        Language of the tables.
    engagement, run_id : str
        Shown under the title.
    labels : mapping, optional
        Product names (:func:`product_labels`); products without one are shown by code.

    Returns
    -------
    Path
        ``path``.
    """
    from relmap_utils.export import report_header_time, report_timezone  # late: export imports the page builders

    generated = report_header_time(report_timezone(path))
    figures = [gains_chart(outcome["gains"], labels=labels), calibration_chart(outcome["reliability"], labels=labels)]
    for product in outcome["importance"]["product"].unique() if len(outcome["importance"]) else []:
        figures.append(importance_chart(outcome["importance"], product, outcome["inputs"].dictionary, labels=labels))
    parts = [f"<h1>{html.escape(tr('propensity.report.title', locale=locale))}</h1>",
             f"<p class='meta'>{html.escape(engagement)} · {html.escape(run_id)} · "
             f"{html.escape(tr('propensity.report.generated', locale=locale, generated=generated))}</p>",
             f"<p>{html.escape(outcome['summary'].get('message_zh' if locale == 'zh_CN' else 'message_en', ''))}</p>",
             f"<h2>{html.escape(tr('propensity.report.products', locale=locale))}</h2>",
             products_table(outcome["products"], locale, labels).to_html(index=False, border=0, na_rep=""),
             f"<h2>{html.escape(tr('propensity.report.metrics', locale=locale))}</h2>",
             metrics_table(outcome["metrics"], locale, labels).to_html(index=False, border=0, na_rep="")]
    parts += [f"<div class='figure'>{charts.to_html(figure, include_plotlyjs=False)}</div>" for figure in figures]
    if outcome["summary"].get("status") == "skipped":
        parts = parts[:3]  # title, run facts and the reason: a run without labels has nothing else to show
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>04</title><style>"
            "body{font-family:'Microsoft YaHei','PingFang SC','Noto Sans CJK SC',sans-serif;margin:24px}"
            "table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #e5e7eb;padding:4px 8px}"
            f"</style>{charts.plotlyjs_script()}</head><body>" + "".join(parts) + "</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(path)
    return path
