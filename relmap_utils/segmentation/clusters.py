"""Data-driven segments: KMeans or a Gaussian mixture on scaled map features.

The steps, each a function so that tests and the benchmark can call them:

1. :func:`check_features` names the features, drops (and names) those that
   are constant or missing for every customer, and chooses which to
   log-transform, from summary statistics computed in the database;
2. :func:`draw_sample` draws a stratified sample of at most ``sample_size``
   customers (by tier, so small top tiers keep their share), in the database;
3. :func:`fit_segments` scales the sample, fits one model per k, scores
   each k (silhouette on a sub-sample, or BIC) and keeps the best;
4. :func:`bootstrap_stability` refits the chosen k on bootstrap resamples
   and reports the adjusted Rand index against the chosen labels;
5. :func:`assign_segments` assigns every customer in chunks of Arrow record
   batches, so the whole map never sits in memory.

Segments are numbered S1, S2, ... by decreasing size in the sample, so the
numbering does not depend on the model's internal label order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from relmap_utils.errors import ConfigError, StageError
from relmap_utils.segmentation.notices import Notice
from relmap_utils.segmentation.params import ClusterParams

logger = logging.getLogger(__name__)

# Used when clusters.features is empty: common map features, those present.
DEFAULT_FEATURES = (
    "age_years", "tenure_months", "income", "aum", "products_held", "txn_count",
    "event_count", "regular_income_months", "credit_limit", "channel_share_mobile",
)
# Feature dictionary units whose values are log-transformed by default.
LOG_UNITS = ("yuan", "yuan_per_month", "count", "count_per_month")
NUMERIC_PREFIXES = ("int", "uint", "float", "decimal", "boolean")


@dataclass
class FeaturePlan:
    """The features a clustering uses, and how each is prepared."""

    features: list[str]
    log_features: list[str]
    dropped: dict[str, str] = field(default_factory=dict)  # feature -> "constant" or "all_missing"
    notices: list[Notice] = field(default_factory=list)


@dataclass
class SegmentModel:
    """A fitted segmentation: preparation of the features, the model and the segment numbering.

    Attributes
    ----------
    plan : FeaturePlan
    medians : numpy.ndarray
        Per feature, the sample median after the log transform; it replaces
        missing values.
    scaler : StandardScaler
    model : KMeans, MiniBatchKMeans or GaussianMixture
    numbering : numpy.ndarray
        ``numbering[label]`` is the segment number (1 = largest) of a model label.
    """

    plan: FeaturePlan
    medians: np.ndarray
    scaler: StandardScaler
    model: Any
    numbering: np.ndarray
    k: int
    method: str

    def prepare(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the scaled matrix of ``frame``'s features."""
        return self.scaler.transform(prepare_matrix(frame, self.plan, self.medians))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the segment number (1..k) of every row of ``frame``."""
        return self.numbering[self.model.predict(self.prepare(frame))]


@dataclass
class FitResult:
    """The model :func:`fit_segments` chose, the k-selection curve, and the sample it was fitted on."""

    model: SegmentModel
    curve: pd.DataFrame  # k, criterion, score, chosen
    sample_labels: np.ndarray
    sample_matrix: np.ndarray


def check_features(table: Any, params: ClusterParams, units: Mapping[str, str] | None = None) -> FeaturePlan:
    """Check the clustering features against the map and drop unusable ones.

    Parameters
    ----------
    table : ibis Table
        The map partition the model is fitted on.
    params : ClusterParams
    units : mapping of str to str, optional
        Feature dictionary units (``yuan``, ``count``, ...); amounts and
        counts are log-transformed unless ``log_features`` is given.

    Returns
    -------
    FeaturePlan

    Raises
    ------
    ConfigError
        When a feature is not in the map or is not numeric, or when every
        feature is constant or missing.
    """
    columns = set(table.columns)
    requested = list(dict.fromkeys(params.features)) or [name for name in DEFAULT_FEATURES if name in columns]
    missing = [name for name in requested if name not in columns]
    if missing:
        raise ConfigError("segmentation.cluster_unknown_feature", parameter="clusters.features",
                          features=", ".join(missing), columns=", ".join(sorted(columns)))
    schema = table.schema()
    not_numeric = [name for name in requested if not str(schema[name]).lower().startswith(NUMERIC_PREFIXES)]
    if not_numeric:
        raise ConfigError("segmentation.cluster_not_numeric", parameter="clusters.features",
                          features=", ".join(f"{name} ({schema[name]})" for name in not_numeric))
    if not requested:
        raise ConfigError("segmentation.cluster_no_features", parameter="clusters.features")

    stats = table.aggregate(
        **{f"n_{i}": table[name].count() for i, name in enumerate(requested)},
        **{f"lo_{i}": table[name].cast("float64").min() for i, name in enumerate(requested)},
        **{f"hi_{i}": table[name].cast("float64").max() for i, name in enumerate(requested)},
    ).to_pandas().iloc[0]
    dropped: dict[str, str] = {}
    notices = []
    for i, name in enumerate(requested):
        if int(stats[f"n_{i}"]) == 0:
            dropped[name] = "all_missing"
        elif stats[f"lo_{i}"] == stats[f"hi_{i}"]:
            dropped[name] = "constant"
    for name, reason in dropped.items():
        notices.append(Notice("medium", f"segmentation.notice.feature_{reason}", feature=name))
    kept = [name for name in requested if name not in dropped]
    if not kept:
        raise ConfigError("segmentation.cluster_all_dropped", parameter="clusters.features",
                          features=", ".join(f"{name} ({reason})" for name, reason in dropped.items()))

    if params.log_features is not None:
        unknown = [name for name in params.log_features if name not in requested]
        if unknown:
            raise ConfigError("segmentation.cluster_unknown_feature", parameter="clusters.log_features",
                              features=", ".join(unknown), columns=", ".join(requested))
        log_features = [name for name in params.log_features if name in kept]
    else:
        units = units or {}
        log_features = [
            name for i, name in enumerate(requested)
            if name in kept and units.get(name) in LOG_UNITS and float(stats[f"lo_{i}"]) >= 0
        ]
    return FeaturePlan(kept, log_features, dropped, notices)


def prepare_matrix(frame: pd.DataFrame, plan: FeaturePlan, medians: np.ndarray | None = None) -> np.ndarray:
    """Return the unscaled feature matrix: log1p where planned, missing values replaced by ``medians``."""
    matrix = np.empty((len(frame), len(plan.features)), dtype="float64")
    for j, name in enumerate(plan.features):
        values = pd.to_numeric(frame[name], errors="coerce").astype("float64").to_numpy()
        if name in plan.log_features:
            values = np.log1p(np.clip(values, 0, None))
        matrix[:, j] = values
    if medians is not None:
        rows, cols = np.nonzero(np.isnan(matrix))
        matrix[rows, cols] = medians[cols]
    return matrix


def draw_sample(table: Any, params: ClusterParams, columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """Draw a stratified random sample of at most ``params.sample_size`` customers.

    Each stratum (value of ``params.strata``, when the table has that
    column) keeps its share of the customers. Rows are ordered by a hash of
    the customer id and ``random_state``, so the same input and seed give
    the same sample.

    Returns
    -------
    (pandas.DataFrame, int)
        The sample (``customer_id`` and ``columns``) and the number of
        customers it was drawn from.
    """
    total = int(table.count().to_pandas())
    wanted = ["customer_id", *columns]
    if total <= params.sample_size:
        return table.select(*wanted).order_by("customer_id").to_pandas(), total
    fraction = params.sample_size / total
    key = (table.customer_id.cast("string") + f"#{params.random_state}").hash()
    strata = [params.strata] if params.strata and params.strata in table.columns else []
    ranked = table.mutate(
        _position=ibis.row_number().over(group_by=strata, order_by=key),
        _stratum_size=table.count().over(group_by=strata) if strata else table.count().over(),
    )
    chosen = ranked.filter(ranked._position < (ranked._stratum_size * fraction).ceil())
    # Rounding up per stratum can overshoot by one row per stratum; the trim is random too.
    chosen = chosen.order_by(key).limit(params.sample_size)
    return chosen.select(*wanted).order_by("customer_id").to_pandas(), total


def _make_model(method: str, k: int, rows: int, params: ClusterParams, seed: int) -> Any:
    if method == "gmm":
        return GaussianMixture(n_components=k, covariance_type="full", n_init=2, random_state=seed)
    if rows > params.minibatch_above:
        return MiniBatchKMeans(n_clusters=k, n_init=1, batch_size=4096, random_state=seed)
    return KMeans(n_clusters=k, n_init=4, random_state=seed)


def fit_segments(sample: pd.DataFrame, plan: FeaturePlan, params: ClusterParams, customers: int) -> FitResult:
    """Fit one model per k on the sample and keep the k with the best score.

    Silhouette (higher is better) is computed on at most
    ``silhouette_sample`` points; BIC (lower is better) on the whole sample.

    Raises
    ------
    ConfigError
        When the largest k exceeds the number of customers, or the number
        of distinct feature vectors in the sample.
    """
    k_values = params.k_values
    if k_values[-1] > customers:
        raise ConfigError("segmentation.k_too_large", parameter="clusters.k", k=k_values[-1], customers=customers,
                          what="customers")
    raw = prepare_matrix(sample, plan)
    medians = np.nanmedian(np.where(np.isnan(raw).all(axis=0), 0.0, raw), axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)
    raw[np.isnan(raw)] = np.take(medians, np.nonzero(np.isnan(raw))[1])
    distinct = len(np.unique(raw, axis=0))
    if k_values[-1] > distinct:
        raise ConfigError("segmentation.k_too_large", parameter="clusters.k", k=k_values[-1], customers=distinct,
                          what="distinct")
    scaler = StandardScaler().fit(raw)
    matrix = scaler.transform(raw)

    rows = []
    fitted = {}
    for k in k_values:
        model = _make_model(params.method, k, len(matrix), params, params.random_state)
        model.fit(matrix)
        labels = model.predict(matrix)
        if params.selection == "bic":
            score = float(model.bic(matrix)) if params.method == "gmm" else float("nan")
        elif len(np.unique(labels)) < 2:
            score = float("nan")
        else:
            score = float(silhouette_score(matrix, labels, sample_size=min(params.silhouette_sample, len(matrix)),
                                           random_state=params.random_state))
        rows.append({"k": k, "criterion": params.selection, "score": score})
        fitted[k] = (model, labels)
        logger.info("k=%d: %s %.4f", k, params.selection, score)
    curve = pd.DataFrame(rows)
    valid = curve.dropna(subset=["score"])
    if valid.empty:
        best_k = k_values[0]
    elif params.selection == "bic":
        best_k = int(valid.loc[valid.score.idxmin(), "k"])
    else:
        best_k = int(valid.loc[valid.score.idxmax(), "k"])
    curve["chosen"] = curve.k == best_k
    model, labels = fitted[best_k]
    numbering = _numbering(labels, best_k, matrix)
    segment_model = SegmentModel(plan, medians, scaler, model, numbering, best_k, params.method)
    return FitResult(segment_model, curve, numbering[labels], matrix)


def _numbering(labels: np.ndarray, k: int, matrix: np.ndarray) -> np.ndarray:
    """Number model labels 1..k by decreasing size, ties by the centroid's first coordinate."""
    sizes = np.bincount(labels, minlength=k)
    firsts = np.array([matrix[labels == label, 0].mean() if sizes[label] else 0.0 for label in range(k)])
    order = sorted(range(k), key=lambda label: (-sizes[label], firsts[label], label))
    numbering = np.empty(k, dtype="int64")
    for number, label in enumerate(order, start=1):
        numbering[label] = number
    return numbering


def bootstrap_stability(fit: FitResult, params: ClusterParams) -> list[float]:
    """Refit the chosen k on bootstrap resamples of the sample and return each one's ARI.

    Each refit labels the whole sample, and its adjusted Rand index against
    the chosen labels measures how far resampling moves the segments
    (1 = the same partition; near 0 = no better than chance).
    """
    if params.bootstrap == 0:
        return []
    rng = np.random.default_rng(params.random_state)
    matrix = fit.sample_matrix
    scores = []
    for round_number in range(params.bootstrap):
        rows = rng.integers(0, len(matrix), len(matrix))
        model = _make_model(fit.model.method, fit.model.k, len(matrix), params, params.random_state + round_number + 1)
        model.fit(matrix[rows])
        scores.append(float(adjusted_rand_score(fit.sample_labels, model.predict(matrix))))
    return scores


def iter_batches(backend: Any, expression: Any, chunk_size: int) -> Iterator[pd.DataFrame]:
    """Yield ``expression``'s rows as pandas frames of at most ``chunk_size`` rows."""
    reader = backend.to_pyarrow_batches(expression, chunk_size=chunk_size)
    for batch in reader:
        if batch.num_rows:
            yield batch.to_pandas()


def assign_segments(backend: Any, table: Any, model: SegmentModel, chunk_size: int) -> pd.DataFrame:
    """Assign every row of ``table`` to a segment, reading it in chunks.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``as_of`` (when ``table`` has it) and ``segment``
        (``S1``..``Sk``); two short columns per customer.
    """
    keys = ["customer_id", *(["as_of"] if "as_of" in table.columns else [])]
    expression = table.select(*keys, *model.plan.features)
    parts = []
    for frame in iter_batches(backend, expression, chunk_size):
        numbers = model.predict(frame)
        part = frame[keys].copy()
        part["segment"] = np.char.add("S", numbers.astype(str))
        parts.append(part)
    if not parts:
        raise StageError("segmentation.no_customers")
    return pd.concat(parts, ignore_index=True)


def stability_summary(scores: Sequence[float], threshold: float) -> dict[str, Any]:
    """Return the mean and minimum ARI and whether the segments count as stable."""
    if not scores:
        return {"rounds": 0, "ari_mean": None, "ari_min": None, "stable": None, "threshold": threshold}
    mean = float(np.mean(scores))
    return {"rounds": len(scores), "ari_mean": round(mean, 4), "ari_min": round(float(min(scores)), 4),
            "stable": bool(mean >= threshold and not math.isnan(mean)), "threshold": threshold,
            "ari": [round(value, 4) for value in scores]}
