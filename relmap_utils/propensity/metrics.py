"""Ranking and calibration metrics per product and sample.

Every metric needs both classes. On a group with one class (a test sample
without takers, for example) each metric is NaN and a
:class:`OneClassWarning` names the group; it is never reported as 0 or 0.5.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

CAPTURE_SHARES = (0.1, 0.2, 0.3)


class OneClassWarning(UserWarning):
    """A metric was asked for on a group with only one class; it is NaN."""


def _check(target: np.ndarray, score: np.ndarray, group: str) -> tuple[np.ndarray, np.ndarray, bool]:
    target = np.asarray(target, dtype=float)
    score = np.asarray(score, dtype=float)
    if target.shape != score.shape:
        raise ValueError(f"target and score must have the same length; got {target.shape} and {score.shape}")
    classes = np.unique(target[~np.isnan(target)])
    if len(classes) < 2:
        warnings.warn(f"group {group!r} has only class {classes.tolist()}: AUC, Gini, KS, lift and capture are NaN",
                      OneClassWarning, stacklevel=3)
        return target, score, False
    return target, score, True


def auc_score(target: np.ndarray, score: np.ndarray, group: str = "all") -> float:
    """Area under the ROC curve; NaN with :class:`OneClassWarning` for a one-class group.

    Examples
    --------
    >>> auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    target, score, ok = _check(target, score, group)
    if not ok:
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(target, score))


def ks_score(target: np.ndarray, score: np.ndarray, group: str = "all") -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the score distributions of the two classes.

    Examples
    --------
    >>> ks_score([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])
    1.0
    """
    target, score, ok = _check(target, score, group)
    if not ok:
        return float("nan")
    order = np.argsort(-score, kind="stable")
    sorted_score, sorted_target = score[order], target[order]
    # Tied scores move together, so the curve is only read at the last row of each tie.
    last = np.r_[sorted_score[1:] != sorted_score[:-1], True]
    positives = np.cumsum(sorted_target)[last] / sorted_target.sum()
    negatives = np.cumsum(1 - sorted_target)[last] / (1 - sorted_target).sum()
    return float(np.max(np.abs(positives - negatives)))


def gains_table(target: np.ndarray, score: np.ndarray, bins: int = 10, group: str = "all") -> pd.DataFrame:
    """Lift and gains by score decile (decile 1 holds the highest scores).

    Returns
    -------
    pandas.DataFrame
        ``decile``, ``customers``, ``takers``, ``rate``, ``lift``,
        ``cumulative_share`` (of customers), ``gain`` (cumulative share of
        takers). A one-class group gives NaN rates, lifts and gains.
    """
    target, score, ok = _check(target, score, group)
    order = np.argsort(-score, kind="stable")
    deciles = np.empty(len(score), dtype=int)
    deciles[order] = np.floor(np.arange(len(score)) * bins / max(len(score), 1)).astype(int) + 1
    frame = pd.DataFrame({"decile": deciles, "target": target})
    table = frame.groupby("decile").agg(customers=("target", "size"), takers=("target", "sum")).reset_index()
    overall = target.mean() if len(target) else float("nan")
    table["rate"] = table.takers / table.customers
    table["lift"] = table.rate / overall if ok else np.nan
    table["cumulative_share"] = table.customers.cumsum() / table.customers.sum()
    table["gain"] = table.takers.cumsum() / table.takers.sum() if ok else np.nan
    return table


def capture_rate(target: np.ndarray, score: np.ndarray, share: float, group: str = "all") -> float:
    """Share of all takers found in the top ``share`` of customers by score.

    Examples
    --------
    >>> capture_rate([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], 0.2)
    0.5
    """
    target, score, ok = _check(target, score, group)
    if not ok:
        return float("nan")
    top = int(np.ceil(share * len(score)))
    order = np.argsort(-score, kind="stable")[:top]
    return float(target[order].sum() / target.sum())


def brier_score(target: np.ndarray, probability: np.ndarray) -> float:
    """Mean squared difference between the probability and the 0/1 outcome (defined for one class too)."""
    target = np.asarray(target, dtype=float)
    return float(np.mean((np.asarray(probability, dtype=float) - target) ** 2)) if len(target) else float("nan")


def reliability_table(target: np.ndarray, probability: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability against the observed rate, in bins of equal customer count."""
    target = np.asarray(target, dtype=float)
    probability = np.asarray(probability, dtype=float)
    if not len(target):
        return pd.DataFrame(columns=["bin", "customers", "predicted", "observed"])
    order = np.argsort(probability, kind="stable")
    bin_of = np.empty(len(target), dtype=int)
    bin_of[order] = np.floor(np.arange(len(target)) * bins / len(target)).astype(int) + 1
    frame = pd.DataFrame({"bin": bin_of, "p": probability, "y": target})
    return frame.groupby("bin").agg(customers=("y", "size"), predicted=("p", "mean"), observed=("y", "mean")).reset_index()


def summary_metrics(target: np.ndarray, score: np.ndarray, probability: np.ndarray | None = None,
                    group: str = "all") -> dict[str, float]:
    """Return AUC, Gini, KS, capture at the top 10/20/30 %, take-up rate and (with probabilities) Brier.

    A one-class group warns once and gives NaN for every ranking metric.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OneClassWarning)
        auc = auc_score(target, score, group)
        result = {
            "rows": int(len(target)),
            "takers": int(np.nansum(target)),
            "rate": float(np.mean(target)) if len(target) else float("nan"),
            "auc": auc,
            "gini": 2 * auc - 1 if np.isfinite(auc) else float("nan"),
            "ks": ks_score(target, score, group),
        }
        for share in CAPTURE_SHARES:
            result[f"capture_{int(share * 100)}"] = capture_rate(target, score, share, group)
    one_class = [item for item in caught if issubclass(item.category, OneClassWarning)]
    if one_class:
        warnings.warn(str(one_class[0].message), OneClassWarning, stacklevel=2)
    if probability is not None:
        result["brier"] = brier_score(target, probability)
    return result
