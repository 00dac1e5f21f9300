"""Next best product and campaign lists, with contact policy and suitability applied.

For each customer the products are ranked by calibrated expected value:
take-up probability times the product's value (``product_values`` in
engagement.yaml, 1 by default). A product the customer already holds is
never offered. A campaign list holds the top N eligible customers of one
product: not opted out, not contacted within the last N days, no open
complaint, and for a product with a risk level (R1-R5) a risk tolerance
(C1-C5) at least as high (适当性).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from relmap_utils.errors import StageError
from relmap_utils.propensity.params import CampaignParams, risk_rank

logger = logging.getLogger(__name__)

TRUE_TEXT = {"1", "true", "yes", "y", "是", "t"}
EXCLUSION_REASONS = ("held", "opted_out", "recent_contact", "open_complaint", "unsuitable")


def _truthy(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values):
        return values.fillna(False).to_numpy(dtype=bool)
    text = values.astype("string").str.strip().str.lower()
    return text.isin(TRUE_TEXT).fillna(False).to_numpy(dtype=bool)


def contact_exclusions(customers: pd.DataFrame, campaign: CampaignParams, scoring_date: dt.date) -> pd.DataFrame:
    """Return per customer whether the contact policy excludes them, and why.

    Parameters
    ----------
    customers : pandas.DataFrame
        ``customer_id`` and the policy columns named in ``campaign.contact_policy``.
    campaign : CampaignParams
    scoring_date : date
        "Contacted in the last N days" counts back from this date.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``opted_out``, ``recent_contact``, ``open_complaint`` (bool).

    Raises
    ------
    StageError
        When a named policy column is absent.
    """
    policy = campaign.contact_policy
    named = [name for name in (policy.opted_out, policy.open_complaint, policy.last_contact) if name]
    absent = sorted(set(named) - set(customers.columns))
    if absent:
        raise StageError("propensity.absent_columns", where="campaign.contact_policy", columns=", ".join(absent),
                         present=", ".join(sorted(customers.columns)))
    result = pd.DataFrame({"customer_id": customers["customer_id"].to_numpy()})
    result["opted_out"] = _truthy(customers[policy.opted_out]) if policy.opted_out else False
    result["open_complaint"] = _truthy(customers[policy.open_complaint]) if policy.open_complaint else False
    if policy.last_contact:
        last = pd.to_datetime(customers[policy.last_contact], errors="coerce")
        days = (pd.Timestamp(scoring_date) - last).dt.days
        result["recent_contact"] = ((days >= 0) & (days <= policy.recent_days)).fillna(False).to_numpy(dtype=bool)
    else:
        result["recent_contact"] = False
    return result


def suitable(tolerance: pd.Series, risk_level: str | None) -> np.ndarray:
    """Return True where a customer's tolerance (C1-C5) allows a product of ``risk_level`` (R1-R5).

    A product without a risk level suits everyone; a customer without a
    known tolerance is not offered a product that has one.

    Examples
    --------
    >>> suitable(pd.Series(["C2", "C3", None]), "R3").tolist()
    [False, True, False]
    """
    if not risk_level:
        return np.ones(len(tolerance), dtype=bool)
    product = risk_rank(risk_level)
    ranks = tolerance.map(risk_rank)
    return np.array([rank is not None and not pd.isna(rank) and rank >= product for rank in ranks], dtype=bool)


def decile_of(score: np.ndarray) -> np.ndarray:
    """Return the score decile of each row: 1 for the highest 10 %, 10 for the lowest."""
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    deciles = np.empty(len(order), dtype=np.int64)
    deciles[order] = np.floor(np.arange(len(order)) * 10 / max(len(order), 1)).astype(np.int64) + 1
    return deciles


def next_best(scores: pd.DataFrame, values: Mapping[str, float]) -> pd.DataFrame:
    """Rank each customer's products by expected value, leaving out held products.

    Parameters
    ----------
    scores : pandas.DataFrame
        ``customer_id``, ``product``, ``probability``, ``held`` (bool).
    values : mapping
        Product value; 1 for a product not named.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``product``, ``probability``, ``value``,
        ``expected_value``, ``rank`` (1 = best), held products removed.
    """
    offered = scores[~scores["held"]].copy()
    offered["value"] = offered["product"].map(lambda name: float(values.get(name, 1.0)))
    offered["expected_value"] = offered["probability"] * offered["value"]
    offered = offered.sort_values(["customer_id", "expected_value", "product"], ascending=[True, False, True],
                                  kind="stable")
    offered["rank"] = offered.groupby("customer_id").cumcount() + 1
    return offered[["customer_id", "product", "probability", "value", "expected_value", "rank"]].reset_index(drop=True)


def campaign_list(scores: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """Return the ``top_n`` eligible customers of one product, best first.

    ``scores`` contains ``customer_id``, ``probability``, ``decile`` and
    ``excluded`` (empty text when eligible).
    """
    eligible = scores[scores["excluded"] == ""]
    ranked = eligible.sort_values(["probability", "customer_id"], ascending=[False, True], kind="stable")
    return ranked.head(top_n).reset_index(drop=True)


def write_campaign_files(frame: pd.DataFrame, folder: Path, stem: str, headers: Mapping[str, str]) -> dict[str, Path]:
    """Write a campaign list as CSV (UTF-8 with BOM, so Excel shows Chinese) and as Excel.

    Parameters
    ----------
    frame : pandas.DataFrame
    folder : Path
    stem : str
        File name without extension.
    headers : mapping
        Column to header text; columns not named keep their name.

    Returns
    -------
    dict
        ``csv`` and ``xlsx`` paths.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shown = frame.rename(columns=dict(headers))
    paths = {"csv": folder / f"{stem}.csv", "xlsx": folder / f"{stem}.xlsx"}
    temporary = paths["csv"].with_name(paths["csv"].name + ".tmp")
    shown.to_csv(temporary, index=False, encoding="utf-8-sig")
    temporary.replace(paths["csv"])
    temporary = paths["xlsx"].with_name(f".{stem}.tmp.xlsx")
    with pd.ExcelWriter(temporary, engine="openpyxl") as writer:
        shown.to_excel(writer, index=False, sheet_name=stem[:31])
    temporary.replace(paths["xlsx"])
    return paths


def exclusion_text(held: np.ndarray, policy: pd.DataFrame, suitable_mask: np.ndarray) -> np.ndarray:
    """Return the first exclusion reason per customer (empty when eligible), in :data:`EXCLUSION_REASONS` order."""
    reasons = np.full(len(held), "", dtype=object)
    checks: Sequence[tuple[str, Any]] = (
        ("held", held), ("opted_out", policy["opted_out"].to_numpy()),
        ("recent_contact", policy["recent_contact"].to_numpy()),
        ("open_complaint", policy["open_complaint"].to_numpy()), ("unsuitable", ~suitable_mask),
    )
    for name, mask in reversed(checks):
        reasons[np.asarray(mask, dtype=bool)] = name
    return reasons
