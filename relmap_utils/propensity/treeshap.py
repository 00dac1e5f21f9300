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

DENSE_BITS = 12  # Leaves with at most this many distinct path features keep a table of shares per side mask.


def supports(model: Any) -> bool:
    """Return True for a fitted binary HistGradientBoosting classifier or a regressor."""
    predictors = getattr(model, "_predictors", None)
    return bool(predictors) and all(len(iteration) == 1 for iteration in predictors)


class _Forest:
    """The model's trees as flat arrays: split rules, each leaf's path, and a root-first node order.

    Along a root-to-leaf path the distinct features are numbered in the order
    they first appear, so a node's number (``node_unique``) is the same for
    every leaf below it. That lets one walk of a tree per row build the side
    mask of every leaf at once.
    """

    def __init__(self, model: Any) -> None:
        known, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
        self.known = np.ascontiguousarray(known, dtype=np.uint32)
        self.f_idx_map = np.ascontiguousarray(f_idx_map, dtype=np.int64)
        feature, threshold, missing_left, categorical, bitset = [], [], [], [], []
        bitsets, leaf_value, starts, lengths, path_node, path_left, path_unique, unique_features = \
            [], [], [], [], [], [], [], []
        unique_starts, unique_counts = [], []
        order, tree_starts, left_child, right_child, node_unique, node_leaf = [], [], [], [], [], []
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
            left_child.append(nodes["left"].astype(np.int64) + offset)
            right_child.append(nodes["right"].astype(np.int64) + offset)
            own_unique = np.full(len(nodes), -1, dtype=np.int64)
            own_leaf = np.full(len(nodes), -1, dtype=np.int64)
            tree_starts.append(len(order))
            # Depth-first from the root, left child first: a node always comes before its children.
            stack: list[tuple[int, list[tuple[int, bool]], list[int]]] = [(0, [], [])]
            while stack:
                node, path, seen = stack.pop()
                order.append(node + offset)
                if nodes["is_leaf"][node]:
                    own_leaf[node] = len(leaf_value)
                    leaf_value.append(float(nodes["value"][node]))
                    starts.append(len(path_node))
                    lengths.append(len(path))
                    for ancestor, left in path:
                        path_node.append(ancestor + offset)
                        path_left.append(left)
                        path_unique.append(int(own_unique[ancestor]))
                    unique_starts.append(len(unique_features))
                    unique_counts.append(len(seen))
                    unique_features.extend(seen)
                    continue
                column = int(nodes["feature_idx"][node])
                below = seen if column in seen else seen + [column]
                own_unique[node] = below.index(column)
                stack.append((int(nodes["right"][node]), path + [(node, False)], below))
                stack.append((int(nodes["left"][node]), path + [(node, True)], below))
            node_unique.append(own_unique)
            node_leaf.append(own_leaf)
            offset += len(nodes)
            bitset_offset += len(raw)
        tree_starts.append(len(order))
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
        self.order = np.asarray(order, dtype=np.int64)
        self.tree_starts = np.asarray(tree_starts, dtype=np.int64)
        self.left = np.concatenate(left_child)
        self.right = np.concatenate(right_child)
        self.node_unique = np.concatenate(node_unique)
        self.node_leaf = np.concatenate(node_leaf)
        # Room for the tables of the leaves of one tree (every tree reuses it).
        dense = np.where(self.unique_counts <= DENSE_BITS, np.int64(1) << self.unique_counts, 0)
        self.table_start = np.zeros(len(leaf_value), dtype=np.int64)
        self.table_size = 1
        tree_of_leaf = np.repeat(np.arange(len(tree_starts) - 1),
                                 [int((self.node_leaf[self.order[a:b]] >= 0).sum())
                                  for a, b in zip(tree_starts[:-1], tree_starts[1:])])
        for tree_index in np.unique(tree_of_leaf):
            leaves = np.flatnonzero(tree_of_leaf == tree_index)
            sizes = dense[leaves]
            self.table_start[leaves] = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            self.table_size = max(self.table_size, int(sizes.sum()))


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


@njit(cache=True, inline="always")
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
def _background_patterns(background, starts, lengths, path_node, path_left, path_unique, unique_counts, feature,
                         threshold, missing_left, categorical, bitset, raw_bitsets, known, f_idx_map):
    """Per leaf, the distinct side masks of the background rows and how many rows have each.

    Bit u of a side mask is set when the row alone reaches the leaf through
    every split on the leaf's u-th path feature.
    """
    n_leaves = starts.shape[0]
    n_background = background.shape[0]
    pattern_start = np.zeros(n_leaves + 1, dtype=np.int64)
    patterns = np.empty(n_leaves * max(n_background, 1), dtype=np.int64)
    counts = np.empty(n_leaves * max(n_background, 1), dtype=np.float64)
    masks = np.empty(n_background, dtype=np.int64)
    filled = 0
    for leaf in range(n_leaves):
        start, length = starts[leaf], lengths[leaf]
        full = (np.int64(1) << unique_counts[leaf]) - 1
        for r in range(n_background):
            mask = full
            for k in range(start, start + length):
                node = path_node[k]
                left = _goes_left(node, background[r, feature[node]], feature, threshold, missing_left, categorical,
                                  bitset, raw_bitsets, known, f_idx_map)
                if left != path_left[k]:
                    mask &= ~(np.int64(1) << path_unique[k])
            masks[r] = mask
        # Background rows with the same side mask contribute alike: group them, in order of first appearance.
        first = filled
        for r in range(n_background):
            found = -1
            for d in range(first, filled):
                if patterns[d] == masks[r]:
                    found = d
                    break
            if found < 0:
                patterns[filled] = masks[r]
                counts[filled] = 1.0
                filled += 1
            else:
                counts[found] += 1.0
        pattern_start[leaf + 1] = filled
    return pattern_start, patterns[:filled], counts[:filled]


@njit(cache=True, nogil=True)
def _leaf_shares(x_mask, leaf, out, leaf_value, unique_counts, pattern_start, patterns, counts, n_background,
                 positive, negative):
    """Write into ``out[:count]`` the leaf's Shapley shares of its path features for a row with ``x_mask``.

    Return False when every share is zero, because no background row completes the row's path.
    """
    count = unique_counts[leaf]
    full = (np.int64(1) << count) - 1
    for u in range(count):
        out[u] = 0.0
    value = leaf_value[leaf]
    any_share = False
    for d in range(pattern_start[leaf], pattern_start[leaf + 1]):
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
        any_share = True
        share = value * counts[d] / n_background
        for u in range(count):
            if (only_x >> u) & 1:
                out[u] += share * positive[a, b]
            elif (only_z >> u) & 1:
                out[u] -= share * negative[a, b]
    return any_share


@njit(cache=True, nogil=True)
def _shap_kernel(matrix, width, n_background, leaf_value, unique_starts, unique_counts, unique_features,
                 pattern_start, patterns, counts, order, tree_starts, left_child, right_child, node_unique,
                 node_leaf, table_start, table_size, feature, threshold, missing_left, categorical, bitset,
                 raw_bitsets, known, f_idx_map, positive, negative, dense_bits):
    # ``matrix`` is column-major and ``phi`` is (feature, row), so the loops over rows read and write
    # contiguous memory.
    rows = matrix.shape[0]
    phi = np.zeros((width, rows))
    max_nodes = 1
    for tree in range(tree_starts.shape[0] - 1):
        max_nodes = max(max_nodes, tree_starts[tree + 1] - tree_starts[tree])
    # Side masks of every node of one tree for every row, by the node's position in the tree's root-first order.
    node_mask = np.empty((max_nodes, rows), dtype=np.int64)
    position = np.empty(left_child.shape[0], dtype=np.int64)
    # A leaf's shares depend on the row only through its side mask, so each mask's shares are computed once
    # per tree and chunk. The state of a table slot is 0 (not computed), 1 (all zero) or 2 (stored).
    max_count = 1
    for leaf in range(unique_counts.shape[0]):
        max_count = max(max_count, unique_counts[leaf])
    state = np.empty(table_size, dtype=np.int8)
    table = np.empty((table_size, max_count))
    shares = np.empty(max_count)
    for tree in range(tree_starts.shape[0] - 1):
        first, last = tree_starts[tree], tree_starts[tree + 1]
        for k in range(first, last):
            position[order[k]] = k - first
        state[:] = 0
        node_mask[0, :] = -1
        for k in range(first, last):
            node = order[k]
            here = k - first
            leaf = node_leaf[node]
            if leaf < 0:
                bit = np.int64(1) << node_unique[node]
                left, right = position[left_child[node]], position[right_child[node]]
                column = feature[node]
                if not categorical[node]:
                    # Numeric split without branches: NaN goes to the missing-value side.
                    cut = threshold[node]
                    nan_left = missing_left[node]
                    for i in range(rows):
                        value = matrix[i, column]
                        go_left = np.int64((value <= cut) | (np.isnan(value) & nan_left))
                        mask = node_mask[here, i]
                        node_mask[left, i] = mask & (~bit | -go_left)
                        node_mask[right, i] = mask & (~bit | (go_left - 1))
                    continue
                for i in range(rows):
                    mask = node_mask[here, i]
                    if _goes_left(node, matrix[i, column], feature, threshold, missing_left, categorical, bitset,
                                  raw_bitsets, known, f_idx_map):
                        node_mask[left, i] = mask
                        node_mask[right, i] = mask & ~bit
                    else:
                        node_mask[left, i] = mask & ~bit
                        node_mask[right, i] = mask
                continue
            count = unique_counts[leaf]
            full = (np.int64(1) << count) - 1
            base = unique_starts[leaf]
            for i in range(rows):
                x_mask = node_mask[here, i] & full
                if count <= dense_bits:
                    slot = table_start[leaf] + x_mask
                    if state[slot] == 0:
                        nonzero = _leaf_shares(x_mask, leaf, table[slot], leaf_value, unique_counts, pattern_start,
                                               patterns, counts, n_background, positive, negative)
                        state[slot] = 2 if nonzero else 1
                    if state[slot] == 2:
                        for u in range(count):
                            phi[unique_features[base + u], i] += table[slot, u]
                elif _leaf_shares(x_mask, leaf, shares, leaf_value, unique_counts, pattern_start, patterns, counts,
                                  n_background, positive, negative):
                    for u in range(count):
                        phi[unique_features[base + u], i] += shares[u]
    return phi


def tree_shap_values(model: Any, matrix: np.ndarray, background: np.ndarray, chunk: int = 5000,
                     workers: int = 1) -> np.ndarray:
    """Return interventional SHAP values (raw output scale) of ``matrix`` rows against ``background``.

    The background's side masks are computed once per leaf. Then, tree by
    tree and root first, each split is applied to all rows of a chunk at
    once, which gives every row the side mask of every leaf. A leaf's shares
    are computed once per distinct side mask of the chunk's rows and added
    to every row with that mask. Chunks run on ``workers`` threads, and a row's
    values do not depend on the chunking.

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
    rules = (forest.feature, forest.threshold, forest.missing_left, forest.categorical, forest.bitset,
             forest.raw_bitsets, forest.known, forest.f_idx_map)
    pattern_start, patterns, counts = _background_patterns(
        background, forest.starts, forest.lengths, forest.path_node, forest.path_left, forest.path_unique,
        forest.unique_counts, *rules)

    def run(start: int) -> np.ndarray:
        return _shap_kernel(
            np.asfortranarray(matrix[start:start + chunk]), matrix.shape[1], len(background), forest.leaf_value, forest.unique_starts,
            forest.unique_counts, forest.unique_features, pattern_start, patterns, counts, forest.order,
            forest.tree_starts, forest.left, forest.right, forest.node_unique, forest.node_leaf,
            forest.table_start, forest.table_size, *rules, positive, negative, DENSE_BITS)

    starts = range(0, len(matrix), chunk)
    if workers > 1 and len(starts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(run, starts))
    else:
        parts = [run(start) for start in starts]
    internal = np.concatenate([part.T for part in parts]) if parts else np.zeros((0, matrix.shape[1]))
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
