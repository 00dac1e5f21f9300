"""SHAP explanations with an additivity check on every one, and reason codes a client can read.

shap's TreeExplainer is fast, but for HistGradientBoosting models with
native categorical splits shap 0.51 reads the split as a numeric threshold
and returns wrong values without raising. So every explanation is checked:
the base value plus the sum of a row's SHAP values must equal the model's
raw output (log-odds for a classifier) for that row. When shap's tree path
fails the check on any row, the values are recomputed, in this order:

1. ``tree_interventional``: exact interventional SHAP values of a
   HistGradientBoosting model computed by :mod:`relmap_utils.propensity.treeshap`
   from the model's own split rules, categorical bitsets included;
2. a model-agnostic method on the model's own predictions (for any other
   model, or if step 1 failed its check): ``exact`` enumeration of all
   coalitions of the features the model uses, up to
   :data:`EXACT_MAX_FEATURES` of them, else ``permutation``: one random
   permutation per row walked forward and backward (an unbiased estimate
   whose sum is exact by construction).

All use training rows as background (interventional Shapley values, the
convention of shap's Independent masker). Step 2 evaluates "hybrid" rows
(the row's values on the coalition, the background's elsewhere) in
batches, because shap's own Exact and Permutation explainers call the model
once per row and took about 0.5 s per row on a two-feature model. The
method used is recorded with every explanation.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from relmap_utils.i18n import tr

logger = logging.getLogger(__name__)

EXACT_MAX_FEATURES = 6
CHUNK_ROWS = 2_000_000  # hybrid rows predicted at once
PROBE_ROWS = 200  # rows the fast tree path must explain correctly before it explains the rest
ADDITIVITY_TOLERANCE = 1e-6
TREE, TREE_INTERVENTIONAL, EXACT, PERMUTATION = "tree", "tree_interventional", "exact", "permutation"


class AdditivityWarning(UserWarning):
    """The fast tree explanation failed the additivity check; a slower correct explainer was used."""


@dataclass
class Explanation:
    """SHAP values of some rows, with how they were obtained.

    Attributes
    ----------
    values : numpy.ndarray of shape (n_rows, n_features)
    base_value : float
        Expected raw output over the background.
    output : numpy.ndarray
        The model's raw output for each row.
    method : str
        ``tree``, ``exact`` or ``permutation``.
    max_additivity_error : float
        Largest ``|base + sum(values) - output|`` over the rows.
    tree_additivity_error : float or None
        The tree path's error when it was tried and rejected.
    seconds : float
    """

    values: np.ndarray
    base_value: float
    output: np.ndarray
    method: str
    max_additivity_error: float
    tree_additivity_error: float | None
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "rows": int(len(self.values)), "base_value": self.base_value,
                "max_additivity_error": self.max_additivity_error,
                "tree_additivity_error": self.tree_additivity_error, "seconds": round(self.seconds, 2)}


def raw_output(model: Any, matrix: np.ndarray) -> np.ndarray:
    """Return the model's raw output: log-odds for a classifier, the prediction for a regressor."""
    if hasattr(model, "decision_function"):
        return np.asarray(model.decision_function(matrix), dtype=float).reshape(len(matrix))
    return np.asarray(model.predict(matrix), dtype=float).reshape(len(matrix))


def additivity_error(values: np.ndarray, base_value: float, output: np.ndarray) -> float:
    """Return the largest ``|base + row sum - output|``."""
    if not len(values):
        return 0.0
    return float(np.max(np.abs(base_value + values.sum(axis=1) - output)))


def explain(model: Any, matrix: np.ndarray, background: np.ndarray, *, try_tree: bool = True,
            tolerance: float = ADDITIVITY_TOLERANCE, seed: int = 42, workers: int = 1) -> Explanation:
    """Explain ``matrix`` rows and check additivity on every row.

    Parameters
    ----------
    model : fitted scikit-learn estimator
        HistGradientBoosting classifier or regressor (any model with
        ``decision_function`` or ``predict`` works on the fallback path).
    matrix : numpy.ndarray
        Rows to explain (categories as codes, see
        :func:`~relmap_utils.propensity.data.encode_frame`).
    background : numpy.ndarray
        Training rows; all of them are used as the background.
    try_tree : bool, default=True
        Try TreeExplainer first.
    tolerance : float, default=1e-6
        Largest additivity error accepted, relative to ``max(1, |output|)``.
    seed : int, default=42
        Seed of the permutation explainer.
    workers : int, default=1
        Threads of the exact tree path.

    Returns
    -------
    Explanation

    Raises
    ------
    RuntimeError
        When even the model-agnostic explanation fails the check (a bug,
        never a silent wrong answer).
    """
    from threadpoolctl import threadpool_limits

    # Many small predictions: OpenMP threads cost more than they give here.
    with threadpool_limits(limits=1, user_api="openmp"):
        return _explain(model, matrix, background, try_tree, tolerance, seed, workers)


def _explain(model: Any, matrix: np.ndarray, background: np.ndarray, try_tree: bool, tolerance: float,
             seed: int, workers: int) -> Explanation:
    import shap

    started = time.perf_counter()
    matrix = np.asarray(matrix, dtype=float)
    background = np.asarray(background, dtype=float)
    output = raw_output(model, matrix)
    scale = max(1.0, float(np.max(np.abs(output)))) if len(output) else 1.0
    tree_error = None
    if try_tree:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                explainer = shap.TreeExplainer(model, data=background, feature_perturbation="interventional")
                # A probe of the first rows shows a wrong tree path cheaply; only a
                # path that passes it explains (and is checked on) every row.
                probe = slice(0, PROBE_ROWS)
                values = np.asarray(explainer.shap_values(matrix[probe], check_additivity=False), dtype=float)
                base = float(np.ravel(explainer.expected_value)[0])
                tree_error = additivity_error(values.reshape(len(matrix[probe]), -1), base, output[probe])
                if tree_error <= tolerance * scale and len(matrix) > PROBE_ROWS:
                    values = np.asarray(explainer.shap_values(matrix, check_additivity=False), dtype=float)
            values = values.reshape(len(matrix), -1) if tree_error <= tolerance * scale else values
            if tree_error <= tolerance * scale:
                tree_error = additivity_error(values, base, output)
            if tree_error <= tolerance * scale:
                return Explanation(values, base, output, TREE, tree_error, None, time.perf_counter() - started)
        except Exception as exc:  # shap raises many kinds for models it cannot read
            logger.info("tree explainer not usable: %s", exc)
            tree_error = float("inf")
        warnings.warn(f"tree explanation failed the additivity check (error {tree_error:.3g}); "
                      "using a correct slower explainer", AdditivityWarning, stacklevel=2)

    features = matrix.shape[1]
    from relmap_utils.propensity import treeshap

    if treeshap.supports(model):
        chunk = max(200, min(5000, -(-len(matrix) // workers)))
        values = treeshap.tree_shap_values(model, matrix, background, chunk=chunk, workers=workers)
        base = float(raw_output(model, background).mean())
        error = additivity_error(values, base, output)
        if error <= tolerance * scale:
            return Explanation(values, base, output, TREE_INTERVENTIONAL, error, tree_error,
                               time.perf_counter() - started)
        logger.warning("interventional tree SHAP failed the additivity check (error %.3g)", error)
    # A feature no split reads does not change the output, so its Shapley value
    # is exactly 0; only the features the trees use take part in the coalitions.
    used = used_features(model, features)
    values = np.zeros((len(matrix), features))
    if len(used) <= EXACT_MAX_FEATURES:
        method = EXACT
        part, base = _exact_values(model, matrix, background, used)
    else:
        method = PERMUTATION
        part, base = _permutation_values(model, matrix, background, used, np.random.default_rng(seed))
    values[:, used] = part
    error = additivity_error(values, base, output)
    if error > max(tolerance, 1e-6) * scale * 10:
        raise RuntimeError(f"{method} explanation failed the additivity check: error {error:.3g}")
    return Explanation(values, base, output, method, error, tree_error, time.perf_counter() - started)


def global_importance(explanation: Explanation, features: Sequence[str]) -> pd.DataFrame:
    """Mean absolute SHAP value per feature, largest first (``feature``, ``mean_abs_shap``, ``rank``)."""
    table = pd.DataFrame({"feature": list(features), "mean_abs_shap": np.abs(explanation.values).mean(axis=0)})
    table = table.sort_values("mean_abs_shap", ascending=False, kind="stable", ignore_index=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table


def reason_codes(
    values: np.ndarray, frame: pd.DataFrame, features: Sequence[str], dictionary: Mapping[str, Mapping[str, str]],
    top: int = 3,
) -> pd.DataFrame:
    """Turn each row's largest positive SHAP values into up to ``top`` sentences in Chinese and English.

    Parameters
    ----------
    values : numpy.ndarray
        SHAP values, one row per customer of ``frame``.
    frame : pandas.DataFrame
        The same customers' feature values as read (not encoded).
    features : sequence of str
    dictionary : mapping
        Feature name to ``{"zh_CN": description, "en": description, "unit": unit}``,
        from the map's feature dictionary; a feature without an entry is
        named by its column.
    top : int, default=3

    Returns
    -------
    pandas.DataFrame
        ``reason_1_zh`` ... ``reason_{top}_en`` and ``reason_1_feature`` ...,
        in the row order of ``frame``. A customer with fewer positive
        contributions gets empty texts.
    """
    values = np.asarray(values, dtype=float)
    rows = len(values)
    records = frame.reset_index(drop=True)
    order = np.argsort(-values, axis=1, kind="stable")[:, :top]
    every = np.arange(rows)
    columns: dict[str, np.ndarray] = {}
    for rank in range(top):
        named = np.full(rows, "", dtype=object)
        texts = {"zh": np.full(rows, "", dtype=object), "en": np.full(rows, "", dtype=object)}
        if rank < order.shape[1]:
            position = order[:, rank]
            chosen = values[every, position] > 0
            # One pass per feature: its sentences are written once per distinct value and shared by the rows.
            for index in np.unique(position[chosen]):
                name = features[index]
                hit = np.flatnonzero(chosen & (position == index))
                named[hit] = name
                codes, distinct = pd.factorize(records[name].iloc[hit], use_na_sentinel=False)
                for locale, suffix in (("zh_CN", "zh"), ("en", "en")):
                    texts[suffix][hit] = np.asarray(
                        [_sentence(name, value, 0.0, dictionary, locale) for value in distinct], dtype=object)[codes]
        columns[f"reason_{rank + 1}_feature"] = named
        columns[f"reason_{rank + 1}_zh"] = texts["zh"]
        columns[f"reason_{rank + 1}_en"] = texts["en"]
    return pd.DataFrame(columns)


def _sentence(feature: str, value: Any, contribution: float, dictionary: Mapping[str, Mapping[str, str]],
              locale: str) -> str:
    # Short names and readable values ("年龄段为“45-54岁”"), never the map's column names or codes.
    from relmap_utils.features.labels import feature_label, format_value, is_flag, is_labelled, is_missing

    entry = dictionary.get(feature, {})
    label = feature_label(feature, locale) if is_labelled(feature) else entry.get(locale) or feature
    if is_missing(value):
        return tr("propensity.reason.missing", locale=locale, feature=label)
    if isinstance(value, (bool, np.bool_)) or is_flag(feature):
        return tr("propensity.reason.flag_yes" if bool(value) else "propensity.reason.flag_no", locale=locale,
                  feature=label)
    unit = entry.get("unit", "")
    shown = format_value(feature, value, unit, locale)
    if isinstance(value, (int, float, np.integer, np.floating)) and unit != "category":
        return tr("propensity.reason.value", locale=locale, feature=label, value=shown)
    return tr("propensity.reason.category", locale=locale, feature=label, value=shown)


def used_features(model: Any, width: int) -> np.ndarray:
    """Return the positions of the features that some split of the model reads (all, when unknown)."""
    predictors = getattr(model, "_predictors", None)
    if not predictors:
        return np.arange(width)
    used: set[int] = set()
    for iteration in predictors:
        for tree in iteration:
            nodes = tree.nodes
            used.update(int(value) for value in nodes["feature_idx"][~nodes["is_leaf"].astype(bool)])
    from relmap_utils.propensity.treeshap import internal_order

    order = internal_order(model, width)
    return np.array(sorted(int(order[index]) for index in used), dtype=np.int64)


def _coalition_value(model: Any, matrix: np.ndarray, background: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean raw output over the background with each row's masked features taken from the row.

    ``masks`` has one boolean row per row of ``matrix``, over all its columns.
    """
    rows, width = matrix.shape
    size = len(background)
    step = max(1, CHUNK_ROWS // max(size, 1))
    result = np.empty(rows)
    for start in range(0, rows, step):
        part = slice(start, start + step)
        hybrid = np.where(masks[part, None, :], matrix[part, None, :], background[None, :, :])
        output = raw_output(model, hybrid.reshape(-1, width))
        result[part] = output.reshape(-1, size).mean(axis=1)
    return result


def _exact_values(model: Any, matrix: np.ndarray, background: np.ndarray,
                  used: np.ndarray) -> tuple[np.ndarray, float]:
    from math import factorial

    rows, columns = matrix.shape
    width = len(used)
    subsets = [np.array([(code >> bit) & 1 for bit in range(width)], dtype=bool) for code in range(2 ** width)]
    value = {}
    for code, mask in enumerate(subsets):
        full = np.zeros(columns, dtype=bool)
        full[used[mask]] = True
        value[code] = _coalition_value(model, matrix, background, np.broadcast_to(full, (rows, columns)))
    phi = np.zeros((rows, width))
    for code, mask in enumerate(subsets):
        size = int(mask.sum())
        weight = factorial(size) * factorial(width - size - 1) / factorial(width) if size < width else 0.0
        for feature in np.flatnonzero(~mask):
            phi[:, feature] += weight * (value[code | (1 << feature)] - value[code])
    return phi, float(value[0][0]) if rows else float(raw_output(model, background).mean())


def _permutation_values(model: Any, matrix: np.ndarray, background: np.ndarray, used: np.ndarray,
                        rng: np.random.Generator) -> tuple[np.ndarray, float]:
    rows, columns = matrix.shape
    width = len(used)
    base = float(raw_output(model, background).mean())
    order = np.argsort(rng.random((rows, width)), axis=1)
    phi = np.zeros((rows, width))
    every = np.arange(rows)
    for walk in (order, order[:, ::-1]):
        mask = np.zeros((rows, columns), dtype=bool)
        previous = np.full(rows, base)
        for step in range(width):
            feature = walk[:, step]
            mask[every, used[feature]] = True
            current = raw_output(model, matrix) if step == width - 1 else \
                _coalition_value(model, matrix, background, mask)
            phi[every, feature] += (current - previous) / 2.0
            previous = current
    return phi, base
