"""The two models per product: a logistic baseline and calibrated boosted trees.

The baseline is a statsmodels Logit on a handful of standardized features:
its coefficients, odds ratios and p-values are what a model-risk reviewer
reads. Before fitting, each feature is checked for complete or quasi-complete
separation; a separating feature has no finite maximum-likelihood
coefficient (the optimiser drifts to a large number with a huge standard
error), so it is taken out, reported by name, and the rest is refitted.

The ranking model is scikit-learn's HistGradientBoostingClassifier with the
categorical features declared as such (no one-hot), class weights balanced,
and its probabilities calibrated on a held-out part of the development
sample (isotonic or sigmoid).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


class SeparationWarning(UserWarning):
    """A feature separates takers from non-takers; its logistic coefficient is not finite."""


@dataclass
class SeparationFinding:
    """One feature that separates the classes on its own."""

    feature: str
    kind: str  # "complete" or "quasi"
    rule: str

    def as_dict(self) -> dict[str, str]:
        return {"feature": self.feature, "kind": self.kind, "rule": self.rule}


def find_separation(frame: pd.DataFrame, target: np.ndarray) -> list[SeparationFinding]:
    """Find features that separate the two classes by a single threshold.

    A feature separates completely when some threshold puts every taker on
    one side and every non-taker on the other; quasi-completely when the two
    classes overlap only at the threshold value itself. Missing values are
    ignored.

    Parameters
    ----------
    frame : pandas.DataFrame
        Numeric features.
    target : array of 0/1

    Returns
    -------
    list of SeparationFinding

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [0, 0, 1, 2], "z": [1, 5, 2, 4]})
    >>> [item.feature + ":" + item.kind for item in find_separation(frame, np.array([0, 0, 1, 1]))]
    ['x:complete']
    """
    target = np.asarray(target)
    found = []
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        known = ~np.isnan(values)
        positive, negative = values[known & (target == 1)], values[known & (target == 0)]
        if len(positive) == 0 or len(negative) == 0:
            continue
        for low, high, direction in ((negative, positive, ">"), (positive, negative, "<")):
            if low.max() < high.min():
                side = f"{column} {direction}= {_number(high.min())}" if direction == ">" else \
                    f"{column} <= {_number(low.max())}"
                found.append(SeparationFinding(column, "complete", side))
                break
            if low.max() == high.min() and np.unique(values[known]).size > 2 and \
                    not (np.isclose(low, low.max()).all() and np.isclose(high, high.min()).all()):
                found.append(SeparationFinding(column, "quasi", f"{column} = {_number(low.max())} on both sides only"))
                break
    return found


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass
class LogitResult:
    """Baseline logistic fit, or the reason it has no valid coefficients.

    Attributes
    ----------
    coefficients : pandas.DataFrame
        ``feature``, ``coefficient``, ``std_error``, ``z``, ``p_value``,
        ``odds_ratio`` (per standard deviation of the feature), ``mean``,
        ``std`` and ``status`` (``fitted``, or ``separation_complete`` /
        ``separation_quasi`` with no numbers).
    separation : list of SeparationFinding
    converged : bool
    """

    coefficients: pd.DataFrame
    separation: list[SeparationFinding] = field(default_factory=list)
    converged: bool = True
    intercept: float = float("nan")

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the fitted probability of take-up for ``frame``."""
        fitted = self.coefficients[self.coefficients.status == "fitted"]
        score = np.full(len(frame), self.intercept)
        for row in fitted.itertuples():
            values = pd.to_numeric(frame[row.feature], errors="coerce").to_numpy(dtype=float)
            values = np.where(np.isnan(values), row.mean, values)
            score = score + row.coefficient * (values - row.mean) / row.std
        return 1.0 / (1.0 + np.exp(-score))


def fit_logit(frame: pd.DataFrame, target: np.ndarray, maxiter: int = 100) -> LogitResult:
    """Fit the logistic baseline with statsmodels, dropping separating features.

    Features are standardized (missing values set to the mean), so the odds
    ratio is per standard deviation. Separating features (see
    :func:`find_separation`) get no coefficient; a :class:`SeparationWarning`
    names them.

    Parameters
    ----------
    frame : pandas.DataFrame
        Numeric features.
    target : array of 0/1
    maxiter : int, default=100

    Returns
    -------
    LogitResult

    Notes
    -----
    Only single-feature separation is searched before the fit. Separation
    by a combination of features shows as fitted probabilities of exactly 0
    or 1; the fit is then marked not converged (``converged`` False), but
    no feature is named.
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    target = np.asarray(target, dtype=float)
    separation = find_separation(frame, target)
    if separation:
        warnings.warn("separating features: " + ", ".join(item.feature for item in separation),
                      SeparationWarning, stacklevel=2)
    usable = [column for column in frame.columns if column not in {item.feature for item in separation}]
    rows = [{"feature": item.feature, "coefficient": np.nan, "std_error": np.nan, "z": np.nan, "p_value": np.nan,
             "odds_ratio": np.nan, "mean": np.nan, "std": np.nan, "status": f"separation_{item.kind}"}
            for item in separation]
    if not usable:
        return LogitResult(pd.DataFrame(rows), separation, converged=False)
    values = frame[usable].apply(pd.to_numeric, errors="coerce").astype(float)
    means, stds = values.mean(), values.std(ddof=0).replace(0, 1.0).fillna(1.0)
    standard = ((values.fillna(means) - means) / stds).fillna(0.0)
    kept = _independent_columns(standard)
    for column in usable:
        if column not in kept:
            rows.append({"feature": column, "coefficient": np.nan, "std_error": np.nan, "z": np.nan,
                         "p_value": np.nan, "odds_ratio": np.nan, "mean": np.nan, "std": np.nan,
                         "status": "collinear"})
    usable, standard = kept, standard[kept]
    design = sm.add_constant(standard.to_numpy(), has_constant="add")
    converged = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitted = sm.Logit(target, design).fit(method="newton", maxiter=maxiter, disp=0)
        except np.linalg.LinAlgError:
            return LogitResult(pd.DataFrame(rows), separation, converged=False)
    if any(issubclass(item.category, (ConvergenceWarning, PerfectSeparationWarning)) for item in caught):
        converged = False
    params = np.asarray(fitted.params)
    errors = np.asarray(getattr(fitted, "bse", np.full_like(params, np.nan)))
    probabilities = fitted.predict(design)
    if np.mean((probabilities < 1e-8) | (probabilities > 1 - 1e-8)) > 0.0 or not converged:
        converged = False
    for position, column in enumerate(usable, start=1):
        coefficient, error = params[position], errors[position]
        z = coefficient / error if error else np.nan
        from scipy.stats import norm

        rows.append({"feature": column, "coefficient": coefficient, "std_error": error, "z": z,
                     "p_value": float(2 * norm.sf(abs(z))) if np.isfinite(z) else np.nan,
                     "odds_ratio": float(np.exp(coefficient)), "mean": float(means[column]),
                     "std": float(stds[column]), "status": "fitted"})
    return LogitResult(pd.DataFrame(rows), separation, converged, float(params[0]))


def _independent_columns(standard: pd.DataFrame, limit: float = 0.95) -> list[str]:
    """Keep columns in order while each adds rank and is not almost a copy of one kept before."""
    kept: list[str] = []
    for column in standard.columns:
        candidate = standard[kept + [column]].to_numpy()
        if np.linalg.matrix_rank(np.column_stack([np.ones(len(candidate)), candidate])) < len(kept) + 2:
            continue
        if kept and standard[kept].corrwith(standard[column]).abs().max() > limit:
            continue
        kept.append(column)
    return kept


def choose_logit_features(frame: pd.DataFrame, target: np.ndarray, categorical: Sequence[str], limit: int) -> list[str]:
    """Pick up to ``limit`` numeric features for the baseline, by absolute rank correlation with the target.

    Categorical features stay out of the baseline: their codes have no order.
    """
    scores = {}
    ranks_target = pd.Series(target, dtype=float)
    for column in frame.columns:
        if column in categorical:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.nunique() < 2:
            continue
        correlation = values.rank().corr(ranks_target.rank())
        if np.isfinite(correlation):
            scores[column] = abs(correlation)
    return [name for name, _ in sorted(scores.items(), key=lambda item: -item[1])[:limit]]


def fit_boosted(
    matrix: np.ndarray, target: np.ndarray, categorical_mask: np.ndarray, *, class_weight: str | None = "balanced",
    max_iter: int = 200, learning_rate: float = 0.1, seed: int = 42,
) -> Any:
    """Fit a HistGradientBoostingClassifier with native categorical features.

    Early stopping holds out 10 % of the rows (seeded), so the number of
    trees adapts to each product.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        categorical_features=np.asarray(categorical_mask, dtype=bool),
        class_weight=class_weight, max_iter=max_iter, learning_rate=learning_rate,
        early_stopping=True, validation_fraction=0.1, n_iter_no_change=15,
        l2_regularization=1.0, min_samples_leaf=40, random_state=seed,
    )
    model.fit(matrix, target)
    return model


@dataclass
class Calibrator:
    """Maps raw model scores to calibrated probabilities; stored as a parameter table.

    ``method`` isotonic keeps ``x`` (raw probability thresholds) and ``y``;
    sigmoid keeps ``a`` and ``b`` of ``1 / (1 + exp(a * logit + b))``.
    """

    method: str
    x: np.ndarray = field(default_factory=lambda: np.empty(0))
    y: np.ndarray = field(default_factory=lambda: np.empty(0))
    a: float = float("nan")
    b: float = float("nan")

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=float)
        if self.method == "isotonic":
            return np.interp(raw, self.x, self.y)
        logit = np.log(np.clip(raw, 1e-12, 1 - 1e-12) / np.clip(1 - raw, 1e-12, 1))
        return 1.0 / (1.0 + np.exp(self.a * logit + self.b))

    def table(self) -> pd.DataFrame:
        """Return the parameters as a table (one row per isotonic step, or one row a, b)."""
        if self.method == "isotonic":
            return pd.DataFrame({"method": self.method, "x": self.x, "y": self.y})
        return pd.DataFrame({"method": [self.method], "a": [self.a], "b": [self.b]})

    @classmethod
    def from_table(cls, table: pd.DataFrame) -> "Calibrator":
        method = str(table["method"].iloc[0])
        if method == "isotonic":
            return cls(method, table["x"].to_numpy(float), table["y"].to_numpy(float))
        return cls(method, a=float(table["a"].iloc[0]), b=float(table["b"].iloc[0]))


def fit_calibrator(raw: np.ndarray, target: np.ndarray, method: str = "isotonic") -> Calibrator:
    """Fit an isotonic or sigmoid (Platt) calibration of ``raw`` probabilities on held-out rows."""
    raw = np.asarray(raw, dtype=float)
    target = np.asarray(target, dtype=float)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, target)
        return Calibrator("isotonic", np.asarray(iso.X_thresholds_, float), np.asarray(iso.y_thresholds_, float))
    from sklearn.linear_model import LogisticRegression

    logit = np.log(np.clip(raw, 1e-12, 1 - 1e-12) / np.clip(1 - raw, 1e-12, 1)).reshape(-1, 1)
    fitted = LogisticRegression(C=1e6).fit(logit, target)
    return Calibrator("sigmoid", a=-float(fitted.coef_[0, 0]), b=-float(fitted.intercept_[0]))
