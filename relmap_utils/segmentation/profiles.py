"""Profiles of tiers, RFM cells and segments, and automatic segment names.

Every statistic is an aggregate computed in the database over one map date:
group sizes and shares of customers and of assets (``aum``), the mean of
each profile feature per group against the population (the contrast is the
difference of means in population standard deviations), the share of
customers holding each product family, and the mix of ``risk_tolerance``
values. A segment's automatic name joins its strongest contrasts
("资产高、年龄高" / "high assets, high age").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from relmap_utils.i18n import format_amount, tr
from relmap_utils.segmentation.params import SegmentName

PRODUCT_FAMILIES = ("deposit", "wealth", "loan", "card", "insurance")
RISK_COLUMN = "risk_tolerance"
# Contrasts smaller than this (in population standard deviations) do not name a segment.
NAMING_THRESHOLD = 0.25
GROUP_KINDS = ("tier", "rfm_cell", "segment")


def group_sizes(table: Any, kind: str) -> pd.DataFrame:
    """Return ``group``, ``customers``, ``share`` and ``aum_share`` per value of column ``kind``."""
    metrics: dict[str, Any] = {"customers": table.count()}
    if "aum" in table.columns:
        metrics["aum_sum"] = table.aum.fill_null(0).sum()
    frame = table.group_by(group=table[kind]).aggregate(**metrics).to_pandas()
    frame.insert(0, "kind", kind)
    total = frame["customers"].sum()
    frame["share"] = frame["customers"] / total if total else 0.0
    if "aum_sum" in frame.columns:
        assets = frame["aum_sum"].sum()
        frame["aum_share"] = frame["aum_sum"] / assets if assets else None
        frame = frame.drop(columns="aum_sum")
    else:
        frame["aum_share"] = None
    return frame.sort_values(["customers", "group"], ascending=[False, True], ignore_index=True)


def feature_contrasts(table: Any, kind: str, features: Sequence[str]) -> pd.DataFrame:
    """Return per group and feature the mean, the population mean and std, and the contrast.

    The contrast is ``(group mean - population mean) / population std``;
    it is NaN for a feature whose population std is 0 or unknown.
    """
    features = [name for name in features if name in table.columns]
    if not features:
        return pd.DataFrame(columns=["kind", "group", "feature", "mean", "population_mean", "population_std",
                                     "contrast"])
    population = table.aggregate(
        **{f"m_{i}": table[name].cast("float64").mean() for i, name in enumerate(features)},
        **{f"s_{i}": table[name].cast("float64").std(how="pop") for i, name in enumerate(features)},
    ).to_pandas().iloc[0]
    grouped = table.group_by(group=table[kind]).aggregate(
        **{f"m_{i}": table[name].cast("float64").mean() for i, name in enumerate(features)}
    ).to_pandas()
    rows = []
    for _, row in grouped.iterrows():
        for i, name in enumerate(features):
            mean, base, spread = row[f"m_{i}"], population[f"m_{i}"], population[f"s_{i}"]
            contrast = (mean - base) / spread if spread and spread == spread and mean == mean else float("nan")
            rows.append({"kind": kind, "group": row["group"], "feature": name, "mean": mean,
                         "population_mean": base, "population_std": spread, "contrast": contrast})
    return pd.DataFrame(rows)


def product_holdings(table: Any, kind: str) -> pd.DataFrame:
    """Return per group and product family the share of customers holding it (``<family>_accounts > 0``)."""
    families = [family for family in PRODUCT_FAMILIES if f"{family}_accounts" in table.columns]
    if not families:
        return pd.DataFrame(columns=["kind", "group", "product", "share"])
    grouped = table.group_by(group=table[kind]).aggregate(
        _n=table.count(),
        **{family: (table[f"{family}_accounts"].fill_null(0) > 0).ifelse(1, 0).sum() for family in families},
    ).to_pandas()
    frame = grouped.melt(id_vars=["group", "_n"], value_vars=families, var_name="product", value_name="holders")
    frame["share"] = frame["holders"] / frame["_n"]
    frame.insert(0, "kind", kind)
    return frame[["kind", "group", "product", "share"]]


def risk_mix(table: Any, kind: str) -> pd.DataFrame:
    """Return per group the share of each ``risk_tolerance`` value (missing as ``"-"``)."""
    if RISK_COLUMN not in table.columns:
        return pd.DataFrame(columns=["kind", "group", "risk", "customers", "share"])
    counts = table.group_by(group=table[kind], risk=table[RISK_COLUMN].cast("string").fill_null("-")).aggregate(
        customers=table.count()
    ).to_pandas()
    counts["share"] = counts["customers"] / counts.groupby("group")["customers"].transform("sum")
    counts.insert(0, "kind", kind)
    return counts.sort_values(["group", "risk"], ignore_index=True)


def feature_label(name: str, locale: str, dictionary: pd.DataFrame | None = None) -> str:
    """Return a short label of a map feature: the segmentation catalog's, the map's label, or the dictionary's."""
    from relmap_utils.features.labels import feature_label as map_feature_label
    from relmap_utils.features.labels import is_labelled

    key = f"segmentation.feature.{name}"
    text = tr(key, locale=locale)
    if text != key:
        return text
    if is_labelled(name):
        return map_feature_label(name, locale)
    if dictionary is not None and not dictionary.empty:
        row = dictionary[dictionary["name"] == name]
        if not row.empty:
            description = str(row.iloc[0]["description_en" if locale == "en" else "description_zh"] or "")
            for separator in ("（", "：", " (", ": ", "，", ", "):
                description = description.split(separator)[0]
            if description:
                return description
    return name


def format_feature_value(value: float, unit: str | None, locale: str) -> str:
    """Format a mean for a description: amounts in 万/亿 (Chinese), others with three significant digits."""
    if value != value:
        return "-"
    if unit in ("yuan", "yuan_per_month"):
        return format_amount(value, locale)
    if unit == "share":
        return f"{value:.0%}"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def name_segments(
    contrasts: pd.DataFrame,
    sizes: pd.DataFrame,
    *,
    count: int = 2,
    overrides: Mapping[str, SegmentName] | None = None,
    dictionary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Name and describe each segment from its strongest contrasts, unless the consultant named it.

    Returns
    -------
    pandas.DataFrame
        ``group``, ``name_zh``, ``name_en``, ``description_zh``,
        ``description_en``, ``named_by`` (``auto`` or ``params``) and
        ``top_features`` (the contrasts used, strongest first, as
        ``feature:+0.82``).
    """
    overrides = overrides or {}
    units = {}
    if dictionary is not None and not dictionary.empty:
        units = dict(zip(dictionary["name"], dictionary["unit"]))
    rows = []
    for group in sizes["group"]:
        own = contrasts[(contrasts["group"] == group) & contrasts["contrast"].notna()]
        own = own.reindex(own["contrast"].abs().sort_values(ascending=False).index)
        strongest = own[own["contrast"].abs() >= NAMING_THRESHOLD].head(count)
        texts = {}
        for locale in ("zh_CN", "en"):
            parts = [
                tr("segmentation.name.high" if row.contrast > 0 else "segmentation.name.low", locale=locale,
                   feature=feature_label(row.feature, locale, dictionary))
                for row in strongest.itertuples()
            ]
            separator = "、" if locale == "zh_CN" else ", "
            name = separator.join(parts) if parts else tr("segmentation.name.average", locale=locale)
            details = [
                tr("segmentation.description.item", locale=locale, feature=feature_label(row.feature, locale, dictionary),
                   value=format_feature_value(row.mean, units.get(row.feature), locale),
                   population=format_feature_value(row.population_mean, units.get(row.feature), locale))
                for row in own.head(3).itertuples()
            ]
            description = tr("segmentation.description.lead", locale=locale, items=separator.join(details)) \
                if details else tr("segmentation.name.average", locale=locale)
            texts[locale] = (f"{group} {name}", description)
        override = overrides.get(str(group))
        row = {
            "group": group,
            "name_zh": (override.zh_CN if override and override.zh_CN else texts["zh_CN"][0]),
            "name_en": (override.en if override and override.en else texts["en"][0]),
            "description_zh": (override.description_zh if override and override.description_zh
                               else texts["zh_CN"][1]),
            "description_en": (override.description_en if override and override.description_en else texts["en"][1]),
            "named_by": "params" if override else "auto",
            "top_features": ", ".join(f"{item.feature}:{item.contrast:+.2f}" for item in strongest.itertuples()),
        }
        rows.append(row)
    return pd.DataFrame(rows)
