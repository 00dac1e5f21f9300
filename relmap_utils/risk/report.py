"""Tables and charts of stage 05, shared by the stage notebook and the dashboard page.

Every function takes the stage's artifact tables (pandas) and returns a
labelled DataFrame or a Plotly figure in the requested language. Customer
pseudonyms are shortened to their first 8 characters, as in the map report,
and the band distribution pools bands smaller than the engagement's minimum
group size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from relmap_utils import charts
from relmap_utils.dashboard.privacy import OTHER_GROUP, escape, merge_small_groups
from relmap_utils.features.labels import feature_label, value_label
from relmap_utils.i18n import get_locale, normalize_locale, tr

BANDS = ("low", "medium", "high", "very_high")
PSEUDONYM_PREFIX = 8


def _locale(locale: str | None) -> str:
    return normalize_locale(locale) or get_locale()


def _header(name: str, locale: str) -> str:
    if name == "column":
        return tr("labels.column_name", locale=locale)
    return tr(f"risk.header.{name}", locale=locale)


def indicator_name(variable: str, locale: str | None = None) -> str:
    """Return the display name of an indicator (a map feature): its short label, else its column name."""
    return feature_label(str(variable), _locale(locale))


_INTERVAL = re.compile(r"^\[\s*([^,\s]+)\s*,\s*([^)\s]+)\s*\)$")


def bin_label(variable: str, label: str, kind: str, locale: str | None = None, unit: str | None = None) -> str:
    """Return a bin as a client reads it: category codes by name (``{young_single}`` as ``青年单身``), missing in words.

    A numeric interval ``[0.0778112,0.181327)`` reads ``0.078 至 0.18``, ``[-inf,0.0778)``
    reads ``低于 0.078`` and ``[0.18,+inf)`` reads ``0.18 及以上``. Edges are formatted
    by the feature's dictionary ``unit`` when given. Without one, they get the
    fewest significant digits (at least two) that keep the two edges apart.
    """
    locale = _locale(locale)
    if kind == "missing":
        return tr("risk.bin.missing", locale=locale)
    text = str(label)
    interval = _INTERVAL.match(text) if kind == "interval" else None
    if interval:
        return _interval_text(variable, interval.group(1), interval.group(2), locale, unit)
    if kind == "categories" and text.startswith("{") and text.endswith("}"):
        separator = "、" if locale == "zh_CN" else ", "
        return separator.join(value_label(variable, value, locale) for value in text[1:-1].split(","))
    return text


def _translated(prefix: str, value: Any, locale: str) -> Any:
    if not isinstance(value, str):
        return value
    key = f"{prefix}.{value}"
    text = tr(key, locale=locale)
    return value if text == key else text


def _rename(frame: pd.DataFrame, columns: list[str], locale: str) -> pd.DataFrame:
    present = [name for name in columns if name in frame.columns]
    return frame[present].rename(columns={name: _header(name, locale) for name in present})


def _edge_texts(variable: str, lower: float, upper: float, locale: str, unit: str | None) -> tuple[str, str]:
    from relmap_utils.features.labels import format_value

    if unit:
        return format_value(variable, lower, unit, locale), format_value(variable, upper, unit, locale)
    finite = [value for value in (lower, upper) if abs(value) != float("inf")]
    for digits in range(2, 8):
        texts = [_short_number(value, digits) for value in finite]
        if len(set(texts)) == len(texts):
            break
    shown = iter(texts)
    return tuple(next(shown) if abs(value) != float("inf") else "" for value in (lower, upper))  # type: ignore[return-value]


def _short_number(value: float, digits: int) -> str:
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{float(f'{value:.{digits}g}'):,}".rstrip("0").rstrip(".") if abs(value) >= 1 else f"{value:.{digits}g}"


def _interval_text(variable: str, lower_text: str, upper_text: str, locale: str, unit: str | None) -> str:
    try:
        lower, upper = float(lower_text), float(upper_text)
    except ValueError:
        return f"[{lower_text},{upper_text})"
    low, high = _edge_texts(variable, lower, upper, locale, unit)
    if lower == float("-inf") and upper == float("inf"):
        return tr("risk.bin.all", locale=locale)
    if lower == float("-inf"):
        return tr("risk.bin.below", locale=locale, upper=high)
    if upper == float("inf"):
        return tr("risk.bin.from", locale=locale, lower=low)
    return tr("risk.bin.between", locale=locale, lower=low, upper=high)


def backtest_table(summary: Mapping[str, Any], locale: str | None = None) -> pd.DataFrame:
    """Return the backtest headline (share warned ahead, lead time, false alarms) as a two-column table."""
    locale = _locale(locale)
    backtest = summary.get("backtest") or {}
    names = ("defaulters", "warned_in_advance", "warned_in_advance_share", "warned_lead", "warned_lead_share",
             "median_lead_months", "non_defaulters", "false_alarms", "false_alarm_rate")
    rows = [{_header("metric", locale): tr(f"risk.backtest.{name}", locale=locale,
                                            months=backtest.get("lead_months_target", "")),
             _header("value", locale): _format(backtest.get(name), name.endswith(("share", "rate")))}
            for name in names if name in backtest]
    return pd.DataFrame(rows)


def _format(value: Any, percent: bool) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return f"{value:,}"


def monthly_table(monthly: pd.DataFrame, locale: str | None = None) -> pd.DataFrame:
    """Return precision and recall per map date, of the warnings and of the top k."""
    columns = ["as_of", "customers", "warned", "defaults_in_horizon", "horizon_complete", "warned_precision",
               "warned_recall", "k", "precision_at_k", "recall_at_k"]
    if monthly.empty:
        return pd.DataFrame()
    locale = _locale(locale)
    shown = monthly.round(3).assign(as_of=monthly["as_of"].astype(str))
    if "horizon_complete" in shown.columns:
        # A yes/no column reads in words, not as 1/0.
        shown["horizon_complete"] = [tr("core.yes" if bool(value) else "core.no", locale=locale)
                                     if pd.notna(value) else "-" for value in shown["horizon_complete"]]
    return _rename(shown, columns, locale)


def indicator_table(indicators: pd.DataFrame, locale: str | None = None) -> pd.DataFrame:
    """Return the screening table: metrics, status and reason per indicator."""
    locale = _locale(locale)
    if indicators.empty:
        return pd.DataFrame()
    frame = indicators.copy()
    variables = frame["variable"].astype(str).tolist()
    frame["reason_text"] = [named_in_text(text, variables, locale) if isinstance(text, str) else text
                            for text in frame["reason_zh" if locale == "zh_CN" else "reason_en"]]
    frame["band_text"] = [tr(f"risk.band.iv.{value}", locale=locale) if isinstance(value, str) else "-"
                          for value in frame["iv_band"]]
    frame["status_text"] = [tr(f"risk.status.{value}", locale=locale) for value in frame["status"]]
    frame = _named_variables(frame, locale)
    if "trend" in frame:
        frame["trend"] = [_translated("labels.trend", value, locale) for value in frame["trend"]]
    if "uni_basis" in frame:
        frame["uni_basis"] = [_translated("labels.basis", value, locale) for value in frame["uni_basis"]]
    columns = ["variable", "column", "iv", "band_text", "ks", "auc", "n_bins", "trend", "vif", "uni_basis", "uni_odds_ratio",
               "multi_odds_ratio", "multi_p_value", "status_text", "reason_text"]
    return _rename(frame.round(4), columns, locale)


def _named_variables(frame: pd.DataFrame, locale: str) -> pd.DataFrame:
    # The display name for the reader, and the column name for mapping the indicator back to the data.
    return frame.assign(column=frame["variable"], variable=[indicator_name(name, locale) for name in frame["variable"]])


def scorecard_table(scorecard: pd.DataFrame, locale: str | None = None,
                    units: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Return the scorecard: points per bin of each kept indicator, indicators and categories by name."""
    locale = _locale(locale)
    columns = ["variable", "column", "bin", "count", "bad_rate", "woe", "coef", "points"]
    if scorecard.empty:
        return pd.DataFrame()
    frame = scorecard.round(4)
    if "kind" in frame:
        frame["bin"] = [bin_label(variable, label, kind, locale, (units or {}).get(variable))
                        for variable, label, kind in zip(frame["variable"], frame["bin"], frame["kind"])]
    return _rename(_named_variables(frame, locale), columns, locale)


def warning_table(warnings: pd.DataFrame, as_of: Any | None = None, limit: int = 50,
                  locale: str | None = None) -> pd.DataFrame:
    """Return the warning list of one map date (default the latest), riskiest first, with reasons."""
    locale = _locale(locale)
    if warnings.empty:
        return pd.DataFrame()
    day = as_of if as_of is not None else warnings["as_of"].max()
    frame = warnings[warnings["as_of"].astype(str) == str(day)].head(limit).copy()
    frame["customer"] = frame["customer_id"].astype(str).str[:PSEUDONYM_PREFIX]
    frame["as_of"] = frame["as_of"].astype(str)
    frame["reasons"] = frame["reasons_zh" if locale == "zh_CN" else "reasons_en"]
    frame["band_text"] = [tr(f"risk.band.{value}", locale=locale) for value in frame["risk_band"]]
    columns = ["customer", "as_of", "risk_pd", "band_text", "n_signals", "reasons"]
    return _rename(frame.round(4), columns, locale)


def iv_chart(indicators: pd.DataFrame, top: int = 20, locale: str | None = None) -> go.Figure:
    """Return a horizontal bar chart of the highest IVs, kept indicators marked."""
    locale = _locale(locale)
    if indicators.empty:
        return charts.bar_chart([], [], title=tr("risk.chart.iv", locale=locale))
    frame = indicators.dropna(subset=["iv"]).sort_values("iv", ascending=False).head(top)
    names = [escape(indicator_name(name, locale)) for name in frame["variable"]]
    figure = charts.bar_chart(names, frame["iv"].round(4).tolist(), horizontal=True,
                              title=tr("risk.chart.iv", locale=locale), x_title="IV")
    colours = ["#c0392b" if status == "kept" else "#95a5a6" for status in frame["status"]]
    figure.update_traces(marker_color=colours)
    charts.style_figure(figure, height=max(320, 22 * len(frame) + 120))
    return figure


def woe_chart(bins: pd.DataFrame, variable: str, locale: str | None = None,
              units: Mapping[str, str] | None = None) -> go.Figure:
    """Return the WoE of each bin of ``variable`` with its bad rate on hover."""
    locale = _locale(locale)
    rows = bins[(bins["variable"] == variable) & ~bins["empty"]]
    unit = (units or {}).get(variable)
    labels = [escape(bin_label(variable, label, kind, locale, unit)) for label, kind in zip(rows["bin"], rows["kind"])]
    figure = charts.bar_chart(labels, rows["woe"].round(4).tolist(),
                              title=tr("risk.chart.woe", locale=locale, variable=escape(indicator_name(variable, locale))),
                              y_title="WoE")
    figure.update_traces(customdata=(rows["bad_rate"] * 100).round(2).tolist(),
                         hovertemplate="%{x}: WoE %{y}<br>" + tr("risk.header.bad_rate", locale=locale)
                         + " %{customdata}%<extra></extra>")
    charts.style_figure(figure, height=320)
    return figure


def top_woe_chart(bins: pd.DataFrame, summary: Mapping[str, Any], locale: str | None = None) -> go.Figure:
    """Return :func:`woe_chart` of the kept indicator with the highest IV (an empty chart when none was kept)."""
    kept = (summary.get("indicators") or {}).get("kept") or []
    if kept:
        return woe_chart(bins, kept[0], locale)
    return charts.bar_chart([], [], title=tr("risk.chart.no_indicator", locale=_locale(locale)))


def correlation_chart(correlation: pd.DataFrame, locale: str | None = None) -> go.Figure:
    """Return the Spearman correlation heat map of the candidates' WoE (from the long table)."""
    locale = _locale(locale)
    matrix = correlation.pivot(index="variable", columns="other", values="spearman") if len(correlation) else pd.DataFrame()
    variables = list(matrix.index)
    matrix = matrix.reindex(index=variables, columns=variables)
    labels = [escape(indicator_name(name, locale)) for name in variables]
    figure = charts.heatmap(matrix.round(3).to_numpy().tolist(), labels, title=tr("risk.chart.correlation", locale=locale))
    charts.style_figure(figure, height=max(420, 20 * len(labels) + 160))
    return figure


def band_counts(profile: pd.DataFrame, min_group_size: int, locale: str | None = None) -> pd.DataFrame:
    """Return customers per risk band at the latest map date; bands below the minimum group size are pooled."""
    locale = _locale(locale)
    latest = profile[profile["as_of"].astype(str) == str(profile["as_of"].max())]
    counts = [(band, int((latest["risk_band"] == band).sum())) for band in BANDS]
    shown = [(tr(f"risk.band.{band}", locale=locale), count) for band, count in counts if count >= min_group_size]
    hidden = sum(count for _, count in counts if count < min_group_size)
    if hidden:
        shown.append((tr("risk.band.other", locale=locale), hidden))
    return pd.DataFrame(shown, columns=[_header("band", locale), _header("customers", locale)])


def band_chart(profile: pd.DataFrame, min_group_size: int, locale: str | None = None) -> go.Figure:
    """Return the bar chart of :func:`band_counts`."""
    locale = _locale(locale)
    counts = band_counts(profile, min_group_size, locale)
    figure = charts.bar_chart(counts.iloc[:, 0].tolist(), counts.iloc[:, 1].tolist(),
                              title=tr("risk.chart.bands", locale=locale), y_title=_header("customers", locale))
    charts.style_figure(figure, height=320)
    return figure


def lead_time_chart(lead_times: pd.DataFrame, locale: str | None = None, min_group_size: int = 1) -> go.Figure:
    """Return the distribution of months between the first warning and the default.

    Lead times with fewer than ``min_group_size`` customers are merged into
    one "other" bar at the end, with a note under the chart title.
    """
    locale = _locale(locale)
    frame = lead_times if len(lead_times) else pd.DataFrame({"lead_months": [], "customers": []})
    frame = frame.assign(group=frame["lead_months"].astype(int), customers=frame["customers"].astype(int))
    grouped = merge_small_groups(frame[["group", "customers"]], "group", "customers", min_group_size)
    shown = grouped.frame.assign(other=grouped.frame["group"].map(lambda key: key == OTHER_GROUP))
    shown = shown.assign(order=shown["group"].map(lambda key: -1 if key == OTHER_GROUP else int(key)))
    shown = shown.sort_values(["other", "order"])
    other = tr("dashboard.privacy.other_group", locale=locale)
    labels = [other if key == OTHER_GROUP else str(key) for key in shown["group"]]
    title = tr("risk.chart.lead_time", locale=locale)
    note = grouped.note(locale)
    if note:
        title = f"{title}<br><sub>{escape(note)}</sub>"
    figure = charts.bar_chart(labels, shown["customers"].astype(int).tolist(), title=title,
                              x_title=_header("lead_months", locale), y_title=_header("customers", locale))
    charts.style_figure(figure, height=340)
    return figure


def notices_table(summary: Mapping[str, Any], locale: str | None = None,
                  variables: Iterable[str] = ()) -> pd.DataFrame:
    """Return the stage's notices in ``locale``; the column names in ``variables`` are replaced by their labels."""
    locale = _locale(locale)
    key = "message_zh" if locale == "zh_CN" else "message_en"
    messages = [named_in_text(item[key], variables, locale) for item in summary.get("notices", [])]
    return pd.DataFrame({_header("notice", locale): messages})


def named_in_text(text: str, variables: Iterable[str], locale: str | None = None) -> str:
    """Return ``text`` with each whole-word column name of ``variables`` replaced by its display name."""
    locale = _locale(locale)
    names = sorted({str(name) for name in variables}, key=len, reverse=True)
    names = [name for name in names if indicator_name(name, locale) != name]
    if not names or not text:
        return text
    pattern = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])")
    return pattern.sub(lambda match: indicator_name(match.group(1), locale), text)
