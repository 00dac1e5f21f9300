"""Exact interventional SHAP values for scikit-learn's histogram gradient boosting, categorical splits included.

shap's TreeExplainer treats a categorical split of a HistGradientBoosting
model as a numeric threshold and returns wrong values. This module computes
the same quantity shap's interventional tree algorithm defines, reading the
model's own split rules (numeric thresholds, category bitsets, missing-value
directions), so categorical splits are followed exactly as ``predict`` does.

For one explained row x and one background row z, the value of a coalition
S is the tree's output on the hybrid row (x on S, z elsewhere). A leaf is
reached by the hybrid row when every feature on its path takes the side
that reaches it: some features only from x (set A, size a), some only from
z (set B, size b), the rest from either. The leaf's value v is then a
unanimity-type game whose Shapley values are::

    i in A:  v * (a - 1)! * b! / (a + b)!
    j in B: -v * a! * (b - 1)! / (a + b)!

Summing over leaves and trees and averaging over the background rows gives
the interventional SHAP values; their sum is exactly ``f(x)`` minus the mean
output over the background, which the caller checks.
"""

from __future__ import annotations

from math import factorial
from typing import Any

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is a pinned dependency
    def njit(*args: Any, **kwargs: Any) -> Any:
        return (lambda function: function) if not args or not callable(args[0]) else args[0]

MAX_DEPTH = 64


def supports(model: Any) -> bool:
    """Return True for a fitted binary HistGradientBoosting classifier or a regressor."""
    predictors = getattr(model, "_predictors", None)
    return bool(predictors) and all(len(iteration) == 1 for iteration in predictors)


class _Forest:
    """The model's trees as flat arrays, and each leaf's path from the root."""

    def __init__(self, model: Any) -> None:
        known, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
        self.known = np.ascontiguousarray(known, dtype=np.uint32)
        self.f_idx_map = np.ascontiguousarray(f_idx_map, dtype=np.int64)
        feature, threshold, missing_left, categorical, bitset = [], [], [], [], []
        bitsets, leaf_value, starts, lengths, path_node, path_left, path_unique, unique_features = \
            [], [], [], [], [], [], [], []
        unique_starts, unique_counts = [], []
        offset, bitset_offset = 0, 0
        for iteration in model._predictors:
            tree = iteration[0]
            nodes = tree.nodes
            raw = np.asarray(tree.raw_left_cat_bitsets, dtype=np.uint32).reshape(-1, 8)
            bitsets.append(raw)
            feature.append(nodes["feature_idx"].astype(np.int64))
            threshold.append(nodes["num_threshold"].astype(np.float64))
            missing_left.append(nodes["missing_go_to_left"].astype(np.bool_))
            categorical.append(nodes["is_categorical"].astype(np.bool_))
            bitset.append(nodes["bitset_idx"].astype(np.int64) + bitset_offset)
            stack = [(0, [])]
            while stack:
                node, path = stack.pop()
                if nodes["is_leaf"][node]:
                    leaf_value.append(float(nodes["value"][node]))
                    starts.append(len(path_node))
                    lengths.append(len(path))
                    seen: list[int] = []
                    for ancestor, left in path:
                        column = int(nodes["feature_idx"][ancestor])
                        if column not in seen:
                            seen.append(column)
                        path_node.append(ancestor + offset)
                        path_left.append(left)
                        path_unique.append(seen.index(column))
                    unique_starts.append(len(unique_features))
                    unique_counts.append(len(seen))
                    unique_features.extend(seen)
                    continue
                stack.append((int(nodes["left"][node]), path + [(node, True)]))
                stack.append((int(nodes["right"][node]), path + [(node, False)]))
            offset += len(nodes)
            bitset_offset += len(raw)
        self.feature = np.concatenate(feature)
        self.threshold = np.concatenate(threshold)
        self.missing_left = np.concatenate(missing_left)
        self.categorical = np.concatenate(categorical)
        self.bitset = np.concatenate(bitset)
        self.raw_bitsets = np.ascontiguousarray(np.concatenate(bitsets) if bitsets else np.zeros((1, 8)),
                                                dtype=np.uint32)
        if len(self.raw_bitsets) == 0:
            self.raw_bitsets = np.zeros((1, 8), dtype=np.uint32)
        self.leaf_value = np.asarray(leaf_value, dtype=np.float64)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.path_node = np.asarray(path_node, dtype=np.int64)
        self.path_left = np.asarray(path_left, dtype=np.bool_)
        self.path_unique = np.asarray(path_unique, dtype=np.int64)
        self.unique_starts = np.asarray(unique_starts, dtype=np.int64)
        self.unique_counts = np.asarray(unique_counts, dtype=np.int64)
        self.unique_features = np.asarray(unique_features, dtype=np.int64)


def _weights(depth: int) -> tuple[np.ndarray, np.ndarray]:
    size = depth + 2
    positive = np.zeros((size, size))
    negative = np.zeros((size, size))
    for a in range(size):
        for b in range(size):
            if a >= 1:
                positive[a, b] = factorial(a - 1) * factorial(b) / factorial(a + b)
            if b >= 1:
                negative[a, b] = factorial(a) * factorial(b - 1) / factorial(a + b)
    return positive, negative


@njit(cache=True)
def _goes_left(node, value, feature, threshold, missing_left, categorical, bitset, raw_bitsets, known, f_idx_map):
    if np.isnan(value):
        return missing_left[node]
    if categorical[node]:
        if value < 0:
            return missing_left[node]
        code = int(value) & 255
        if (raw_bitsets[bitset[node], code >> 5] >> np.uint32(code & 31)) & np.uint32(1):
            return True
        if (known[f_idx_map[feature[node]], code >> 5] >> np.uint32(code & 31)) & np.uint32(1):
            return False
        return missing_left[node]
    return value <= threshold[node]


@njit(cache=True)
def _side_masks(rows, leaf, starts, lengths, path_node, path_left, path_unique, unique_counts,
                feature, threshold, missing_left, categorical, bitset, raw_bitsets, known, f_idx_map):
    # Bit u of the result is set when the row alone reaches the leaf through every split on unique feature u.
    result = np.empty(rows.shape[0], dtype=np.int64)
    start, length = starts[leaf], lengths[leaf]
    full = (np.int64(1) << unique_counts[leaf]) - 1
    for r in range(rows.shape[0]):
        mask = full
        for k in range(start, start + length):
            node = path_node[k]
            left = _goes_left(node, rows[r, feature[node]], feature, threshold, missing_left, categorical, bitset,
                              raw_bitsets, known, f_idx_map)
            if left != path_left[k]:
                mask &= ~(np.int64(1) << path_unique[k])
        result[r] = mask
    return result


@njit(cache=True, nogil=True)
def _shap_kernel(matrix, background, width, leaf_value, starts, lengths, path_node, path_left, path_unique,
                 unique_starts, unique_counts, unique_features, feature, threshold, missing_left, categorical,
                 bitset, raw_bitsets, known, f_idx_map, positive, negative):
    rows = matrix.shape[0]
    phi = np.zeros((rows, width))
    n_background = background.shape[0]
    patterns = np.empty(n_background, dtype=np.int64)
    weights = np.empty(n_background, dtype=np.float64)
    for leaf in range(leaf_value.shape[0]):
        count = unique_counts[leaf]
        full = (np.int64(1) << count) - 1
        x_masks = _side_masks(matrix, leaf, starts, lengths, path_node, path_left, path_unique, unique_counts,
                              feature, threshold, missing_left, categorical, bitset, raw_bitsets, known, f_idx_map)
        z_masks = _side_masks(background, leaf, starts, lengths, path_node, path_left, path_unique, unique_counts,
                              feature, threshold, missing_left, categorical, bitset, raw_bitsets, known, f_idx_map)
        # Background rows with the same side mask contribute alike: group them.
        distinct = 0
        for j in range(n_background):
            found = -1
            for d in range(distinct):
                if patterns[d] == z_masks[j]:
                    found = d
                    break
            if found < 0:
                patterns[distinct] = z_masks[j]
                weights[distinct] = 1.0
                distinct += 1
            else:
                weights[found] += 1.0
        value = leaf_value[leaf]
        base = unique_starts[leaf]
        for i in range(rows):
            x_mask = x_masks[i]
            for d in range(distinct):
                z_mask = patterns[d]
                if (x_mask | z_mask) != full:
                    continue  # some feature reaches the leaf from neither row
                only_x = x_mask & ~z_mask
                only_z = z_mask & ~x_mask
                a = 0
                b = 0
                for u in range(count):
                    if (only_x >> u) & 1:
                        a += 1
                    elif (only_z >> u) & 1:
                        b += 1
                if a == 0 and b == 0:
                    continue
                share = value * weights[d] / n_background
                for u in range(count):
                    if (only_x >> u) & 1:
                        phi[i, unique_features[base + u]] += share * positive[a, b]
                    elif (only_z >> u) & 1:
                        phi[i, unique_features[base + u]] -= share * negative[a, b]
    return phi


def tree_shap_values(model: Any, matrix: np.ndarray, background: np.ndarray, chunk: int = 5000,
                     workers: int = 1) -> np.ndarray:
    """Return interventional SHAP values (raw output scale) of ``matrix`` rows against ``background``.

    Parameters
    ----------
    model : HistGradientBoostingClassifier (binary) or HistGradientBoostingRegressor
    matrix, background : numpy.ndarray
        Rows in the model's input encoding.
    chunk : int, default=5000
        Rows per call of the compiled kernel.
    workers : int, default=1
        Threads running chunks at once (the kernel releases the GIL).

    Returns
    -------
    numpy.ndarray of shape (n_rows, n_features)
    """
    forest = _Forest(model)
    positive, negative = _weights(int(forest.lengths.max(initial=0)) + 1)
    order = internal_order(model, matrix.shape[1])
    matrix = np.ascontiguousarray(_internal(model, matrix), dtype=np.float64)
    background = np.ascontiguousarray(_internal(model, background), dtype=np.float64)
    def run(start: int) -> np.ndarray:
        return _shap_kernel(
            matrix[start:start + chunk], background, matrix.shape[1], forest.leaf_value, forest.starts,
            forest.lengths, forest.path_node, forest.path_left, forest.path_unique, forest.unique_starts,
            forest.unique_counts, forest.unique_features, forest.feature, forest.threshold, forest.missing_left,
            forest.categorical, forest.bitset, forest.raw_bitsets, forest.known, forest.f_idx_map, positive,
            negative)

    starts = range(0, len(matrix), chunk)
    if workers > 1 and len(starts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(run, starts))
    else:
        parts = [run(start) for start in starts]
    internal = np.concatenate(parts) if parts else np.zeros((0, matrix.shape[1]))
    values = np.empty_like(internal)
    values[:, order] = internal
    return values


def internal_order(model: Any, width: int) -> np.ndarray:
    """Return, for each column the trees see, the position of that feature in the caller's columns.

    With categorical features, scikit-learn re-encodes them with its own
    ordinal encoder and moves them in front of the numeric ones; the trees'
    ``feature_idx`` counts in that order.
    """
    mask = getattr(model, "is_categorical_", None)
    if getattr(model, "_preprocessor", None) is None or mask is None:
        return np.arange(width)
    mask = np.asarray(mask, dtype=bool)
    return np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)])


def _internal(model: Any, rows: np.ndarray) -> np.ndarray:
    preprocessor = getattr(model, "_preprocessor", None)
    return np.asarray(rows if preprocessor is None else preprocessor.transform(rows), dtype=np.float64)
