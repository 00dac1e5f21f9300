"""Recommended actions per tier, RFM cell and segment.

Defaults come from the catalog, in both languages; ``actions`` in the stage
parameters replaces any of them (``actions.tier.<code>``,
``actions.rfm_cell.<cell>``, ``actions.segment.<S1..>``). Defaults:

- tiers by position: the first rule's tier (the top tier) gets exclusive
  service, the catch-all the digital mass service, the others upgrade offers;
- RFM cells: one action per cell of the eight-cell model;
- segments: the action of the segment's strongest contrast
  (:data:`SEGMENT_TEMPLATES`), or a generic one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from relmap_utils.i18n import bilingual
from relmap_utils.segmentation.params import ActionParams, Bilingual, TierRule
from relmap_utils.segmentation.rfm import CELL_ORDER

# (feature, direction of the contrast) -> action key under segmentation.action.segment.
SEGMENT_TEMPLATES = {
    ("aum", "high"): "exclusive",
    ("income", "high"): "wealth",
    ("age_years", "low"): "young",
    ("age_years", "high"): "senior",
    ("txn_count", "low"): "reactivate",
    ("event_count", "low"): "reactivate",
    ("purchase_count", "high"): "card",
    ("channel_share_counter", "high"): "digital",
    ("credit_limit", "high"): "business",
    ("regular_income_months", "high"): "payroll",
}


def _text(override: Bilingual | None, key: str) -> dict[str, str]:
    default = bilingual(key)
    if override is None:
        return default
    return {"zh_CN": override.get("zh_CN"), "en": override.get("en")}


def tier_actions(rules: Sequence[TierRule], params: ActionParams) -> dict[str, dict[str, str]]:
    """Return the action per tier code: the parameter's, else the default by position."""
    actions = {}
    for position, rule in enumerate(rules):
        if position == 0 and not rule.catch_all:
            default = "segmentation.action.tier.top"
        elif rule.catch_all:
            default = "segmentation.action.tier.base"
        else:
            default = "segmentation.action.tier.middle"
        actions[rule.code] = _text(params.tier.get(rule.code), default)
    return actions


def rfm_actions(params: ActionParams) -> dict[str, dict[str, str]]:
    """Return the action per RFM cell."""
    return {cell: _text(params.rfm_cell.get(cell), f"segmentation.action.rfm.{cell}") for cell in CELL_ORDER}


def segment_actions(names: pd.DataFrame, params: ActionParams) -> dict[str, dict[str, str]]:
    """Return the action per segment, chosen from its strongest contrasts (``names.top_features``)."""
    actions = {}
    for row in names.itertuples():
        template = "generic"
        for item in filter(None, str(row.top_features).split(", ")):
            feature, _, value = item.partition(":")
            direction = "high" if value.startswith("+") else "low"
            if (feature, direction) in SEGMENT_TEMPLATES:
                template = SEGMENT_TEMPLATES[(feature, direction)]
                break
        actions[str(row.group)] = _text(params.segment.get(str(row.group)), f"segmentation.action.segment.{template}")
    return actions


def action_columns(groups: pd.DataFrame, actions: Mapping[str, Mapping[str, dict[str, str]]]) -> pd.DataFrame:
    """Add ``action_zh`` and ``action_en`` to a groups table with ``kind`` and ``group`` columns."""
    zh, en = [], []
    for row in groups.itertuples():
        text = actions.get(row.kind, {}).get(str(row.group), {})
        zh.append(text.get("zh_CN", ""))
        en.append(text.get("en", ""))
    return groups.assign(action_zh=zh, action_en=en)
