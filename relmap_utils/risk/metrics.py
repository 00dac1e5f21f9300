"""Discrimination metrics of a risk score: AUC, KS and Gini, per group and pooled.

A group (a branch, a month, a segment) with only good or only bad rows has
no AUC or KS. :func:`discrimination` returns ``None`` for them with the
reason, never 0 or 0.5, and :func:`group_discrimination` leaves such groups
out of the mean over groups.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

UNDEFINED_NO_BAD = "no_bad"
UNDEFINED_NO_GOOD = "no_good"
UNDEFINED_EMPTY = "empty"


def discrimination(score: Sequence[float], target: Sequence[int]) -> dict[str, Any]:
    """Compute AUC, KS and Gini of a score where a higher score means riskier.

    Parameters
    ----------
    score : array-like of float
        Risk score; rows with a missing score are left out.
    target : array-like of {0, 1}
        1 marks a bad (default) row.

    Returns
    -------
    dict
        ``n``, ``n_bad``, ``auc`` (probability that a bad row scores higher
        than a good row, ties counting one half), ``ks`` (maximum over the
        distinct scores ``t`` of ``|TPR(score >= t) - FPR(score >= t)|``),
        ``gini`` (``2 * auc - 1``) and ``undefined``: None, or ``"no_bad"``,
        ``"no_good"`` or ``"empty"`` when the metrics do not exist; the three
        metrics are None then.

    Examples
    --------
    >>> discrimination([0.9, 0.2, 0.6, 0.1], [1, 0, 1, 0])["auc"]
    1.0
    >>> discrimination([0.9, 0.2], [0, 0])["undefined"]
    'no_bad'
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    score = np.asarray(score, dtype=float)
    target = np.asarray(target, dtype=np.int64)
    keep = ~np.isnan(score)
    score, target = score[keep], target[keep]
    n, n_bad = int(len(target)), int(target.sum())
    result: dict[str, Any] = {"n": n, "n_bad": n_bad, "auc": None, "ks": None, "gini": None, "undefined": None}

    if n == 0:
        result["undefined"] = UNDEFINED_EMPTY
        return result
    if n_bad == 0:
        result["undefined"] = UNDEFINED_NO_BAD
        return result
    if n_bad == n:
        result["undefined"] = UNDEFINED_NO_GOOD
        return result

    auc = float(roc_auc_score(target, score))
    false_positive, true_positive, _ = roc_curve(target, score, drop_intermediate=False)
    result.update(auc=auc, ks=float(np.max(np.abs(true_positive - false_positive))), gini=2 * auc - 1)
    return result


def group_discrimination(frame: pd.DataFrame, group: str, score: str, target: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Compute :func:`discrimination` per group and pooled over all rows.

    Parameters
    ----------
    frame : pandas.DataFrame
    group, score, target : str
        Columns of ``frame``.

    Returns
    -------
    per_group : pandas.DataFrame
        ``group``, ``n``, ``n_bad``, ``auc``, ``ks``, ``gini``, ``undefined``.
    overall : dict
        The pooled metrics, plus ``mean_auc``, ``mean_ks`` and ``mean_gini``
        over the groups with both classes, and ``groups_in_mean``.
    """
    rows = []
    for name, part in frame.groupby(group, sort=True, dropna=False):
        rows.append({"group": name, **discrimination(part[score], part[target])})
    per_group = pd.DataFrame(rows, columns=["group", "n", "n_bad", "auc", "ks", "gini", "undefined"])
    defined = per_group[per_group["undefined"].isna()]
    for name, reason in per_group.loc[per_group["undefined"].notna(), ["group", "undefined"]].itertuples(index=False):
        logger.warning("AUC and KS undefined for %s=%s: %s", group, name, reason)

    overall = discrimination(frame[score], frame[target])
    overall["groups_in_mean"] = int(len(defined))
    for metric in ("auc", "ks", "gini"):
        overall[f"mean_{metric}"] = float(defined[metric].astype(float).mean()) if len(defined) else None
    return per_group, overall
