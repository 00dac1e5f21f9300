"""Labels and the modelling frame: who took up what, and what was known before.

Labels come from the canonical ``labels`` table (``label_type`` takeup by
default, one row per customer and product). Features come from one
partition of the relationship map, dated before the label window starts,
and optionally from declared columns of the canonical ``customers`` table.
Everything that can be wrong per product (label values, too few positives,
one class) skips that product with a stated reason; everything that is
wrong for the whole stage (absent feature names, a map dated inside the
label window) stops it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from relmap_utils.errors import StageError
from relmap_utils.i18n import bilingual
from relmap_utils.propensity.params import PropensityParams

logger = logging.getLogger(__name__)

POSITIVE_TEXT = {"1": 1, "yes": 1, "0": 0, "no": 0}
# Map columns that are keys or bookkeeping, never model inputs.
NOT_FEATURES = {"customer_id", "as_of"}


@dataclass
class Skip:
    """A product the stage does not model, with the reason as a catalog key and its parameters."""

    product: str
    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        texts = bilingual(self.key, product=self.product, **self.params)
        return {"product": self.product, "reason": self.key.rsplit(".", 1)[-1],
                "message_zh": texts["zh_CN"], "message_en": texts["en"]}


def parse_label_values(values: pd.Series) -> tuple[pd.Series, dict[str, int]]:
    """Turn label values into 0/1.

    Accepted values are 0, 1, yes and no (any case, surrounding spaces
    ignored). Anything else, a missing value included, is returned in the
    second element with its row count.

    Parameters
    ----------
    values : pandas.Series

    Returns
    -------
    parsed : pandas.Series
        0/1 as float, NaN where the value is not accepted.
    refused : dict of str to int
        Each refused value (as text) and how many rows hold it.

    Examples
    --------
    >>> parsed, refused = parse_label_values(pd.Series(["yes", "0", "2", None]))
    >>> parsed.tolist()[:2], refused
    ([1.0, 0.0], {'2': 1, '<NULL>': 1})
    """
    text = values.astype("string").str.strip().str.lower()
    # 1.0 and 0.0 arrive when an integer column passed through a float.
    text = text.replace({"1.0": "1", "0.0": "0"})
    parsed = text.map(POSITIVE_TEXT).astype("float64")
    bad = text[parsed.isna()].fillna("<NULL>")
    refused = {str(key): int(count) for key, count in bad.value_counts(dropna=False).items()}
    return parsed, refused


def load_labels(backend: Any, tables: Mapping[str, Any], params: PropensityParams) -> pd.DataFrame:
    """Return the take-up labels of the run, one row per customer, product and date.

    Parameters
    ----------
    backend : ibis backend
    tables : mapping
        Canonical tables of the run (Ibis tables).
    params : PropensityParams

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``product``, ``label_date`` (date) and ``value``
        as read (text).

    Raises
    ------
    StageError
        When the run has no labels table, it lacks a required column, or no
        row has ``label_type`` equal to ``params.label_type``.
    """
    if "labels" not in tables:
        raise StageError("propensity.no_labels", tables=", ".join(sorted(tables)) or "-")
    labels = tables["labels"]
    missing = sorted({"customer_id", "label_type", "label_date", "value", "product"} - set(labels.columns))
    if missing:
        raise StageError("propensity.labels_columns", columns=", ".join(missing))
    chosen = labels.filter(labels.label_type == params.label_type)
    if params.products:
        chosen = chosen.filter(chosen["product"].isin(params.products))
    frame = chosen.select(
        "customer_id", "product", "label_date", value=chosen.value.cast("string")
    ).execute()
    if frame.empty and params.products:
        of_type = labels.filter(labels.label_type == params.label_type)
        available = sorted(map(str, of_type.select("product").distinct().execute()["product"].dropna().tolist()))
        if available:
            # The labels exist, so the product filter is wrong: the reason names it, not missing data.
            raise StageError("propensity.products_not_found", products=", ".join(params.products),
                             label_type=params.label_type, available=", ".join(available[:50]))
    if frame.empty:
        present = labels.label_type.value_counts().execute()
        raise StageError("propensity.no_takeup_labels", label_type=params.label_type,
                         present=", ".join(map(str, present.iloc[:, 0].tolist())) or "-")
    frame["label_date"] = pd.to_datetime(frame["label_date"]).dt.date
    frame["product"] = frame["product"].astype(str)
    return frame


def product_labels(raw: pd.DataFrame, product: str) -> tuple[pd.DataFrame | None, Skip | None]:
    """Check one product's labels and reduce them to one row per customer.

    A customer with several rows counts as a taker when any row is 1, dated
    on the first such row; otherwise on the last row's date.

    Returns
    -------
    labels : pandas.DataFrame or None
        ``customer_id``, ``label_date``, ``target`` (0/1).
    skip : Skip or None
        Why the product cannot be modelled (refused label values).
    """
    rows = raw[raw["product"] == product]
    parsed, refused = parse_label_values(rows["value"])
    if refused:
        value, count = next(iter(refused.items()))
        return None, Skip(product, "propensity.skip.label_values",
                          {"values": ", ".join(refused)[:200], "value": value, "rows": sum(refused.values()),
                           "first_rows": count})
    frame = rows.assign(target=parsed.astype(int))
    # sort=False keeps the labels table's row order, so a seeded random split
    # picks the same rows whatever the pseudonym key (pseudonyms sort randomly).
    first_taken = frame[frame.target == 1].groupby("customer_id", sort=False)["label_date"].min()
    last_seen = frame.groupby("customer_id", sort=False)["label_date"].max()
    result = pd.DataFrame({"label_date": last_seen})
    result["target"] = 0
    result.loc[first_taken.index, "target"] = 1
    result.loc[first_taken.index, "label_date"] = first_taken
    return result.reset_index(), None


def map_partitions(map_folder: Path) -> list[dt.date]:
    """Return the dates of the map partitions in ``map_folder``, oldest first."""
    return sorted(dt.date.fromisoformat(path.name.removeprefix("as_of="))
                  for path in Path(map_folder).glob("as_of=*") if (path / "part-0.parquet").is_file())


def choose_features_date(available: Sequence[dt.date], window_start: dt.date, requested: dt.date | None) -> dt.date:
    """Pick the map partition the models learn from: the latest one before the label window.

    Raises
    ------
    StageError
        When ``requested`` lies on or after ``window_start`` (features dated
        inside the label window would leak the outcome), is not a partition,
        or no partition lies before the window.
    """
    if requested is not None:
        if requested >= window_start:
            raise StageError("propensity.leakage_features_date", features_as_of=requested.isoformat(),
                             window_start=window_start.isoformat())
        if requested not in available:
            raise StageError("propensity.no_such_partition", as_of=requested.isoformat(),
                             available=", ".join(day.isoformat() for day in available) or "-")
        return requested
    before = [day for day in available if day < window_start]
    if not before:
        raise StageError("propensity.no_partition_before_window", window_start=window_start.isoformat(),
                         available=", ".join(day.isoformat() for day in available) or "-")
    return before[-1]


def customer_columns(tables: Mapping[str, Any], columns: Sequence[str]) -> pd.DataFrame:
    """Read declared columns of the canonical customers table (``customer_id`` first).

    Raises
    ------
    StageError
        When a column is absent; the message lists the absent and present columns.
    """
    customers = tables["customers"]
    absent = sorted(set(columns) - set(customers.columns))
    if absent:
        raise StageError("propensity.absent_columns", where="customers", columns=", ".join(absent),
                         present=", ".join(sorted(customers.columns)))
    return customers.select("customer_id", *columns).execute()


def select_features(
    frame: pd.DataFrame, params: PropensityParams, personal: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """Return the feature columns to model and the declared post-outcome columns dropped.

    Without ``params.features`` every column of ``frame`` except keys,
    personal data and ``exclude_features`` is a feature.

    Raises
    ------
    StageError
        When ``features`` or ``exclude_features`` names a column that is not
        in the data; every absent name is listed.
    """
    present = [column for column in frame.columns if column not in NOT_FEATURES]
    named = list(params.features) + list(params.exclude_features)
    absent = sorted(set(named) - set(present))
    if absent:
        raise StageError("propensity.absent_columns", where="features", columns=", ".join(absent),
                         present=", ".join(sorted(present))[:600])
    # A misspelled post-outcome column would leave the leaking column among the features.
    absent = sorted(set(params.post_outcome) - set(frame.columns))
    if absent:
        raise StageError("propensity.absent_columns", where="post_outcome", columns=", ".join(absent),
                         present=", ".join(sorted(present))[:600])
    chosen = list(params.features) or present
    dropped = [column for column in chosen if column in set(params.post_outcome)]
    blocked = set(params.exclude_features) | set(params.post_outcome) | set(personal)
    features = [column for column in chosen if column not in blocked]
    constant = [column for column in features if frame[column].nunique(dropna=False) <= 1]
    features = [column for column in features if column not in constant]
    if not features:
        raise StageError("propensity.no_features", dropped=", ".join(dropped + constant) or "-")
    return features, dropped


def encode_frame(frame: pd.DataFrame, features: Sequence[str], categories: Mapping[str, list[str]] | None = None,
                 max_categories: int = 250) -> tuple[np.ndarray, dict[str, list[str]]]:
    """Turn the features into a float matrix; categories become their code (NaN when missing or unseen).

    Text, boolean-as-text and categorical columns are categorical. Their
    levels are kept most frequent first up to ``max_categories``; rarer
    levels share the code of the level ``"(other)"``, because the boosted
    trees take at most 255 bins per feature.

    Returns
    -------
    matrix : numpy.ndarray of shape (n_rows, n_features)
    categories : dict
        Levels per categorical feature, in code order (pass it back to
        encode new rows the same way).
    """
    learn = categories is None
    categories = dict(categories or {})
    matrix = np.empty((len(frame), len(features)), dtype=np.float64)
    for position, column in enumerate(features):
        values = frame[column]
        if learn and _is_categorical(values):
            levels = values.dropna().astype(str).value_counts()
            kept = levels.index[:max_categories].tolist()
            if len(levels) > max_categories:
                kept.append("(other)")
            categories[column] = kept
        if column in categories:
            levels = categories[column]
            lookup = {level: code for code, level in enumerate(levels)}
            text = values.astype("string")
            codes = text.map(lookup).astype("float64")
            if "(other)" in lookup:
                codes = codes.where(codes.notna() | text.isna(), float(lookup["(other)"]))
            matrix[:, position] = codes.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            matrix[:, position] = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy(na_value=np.nan)
    return matrix, categories


def _is_categorical(values: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)) or isinstance(
        values.dtype, pd.CategoricalDtype)


def time_cutoff(dates: pd.Series, test_share: float) -> dt.date:
    """Return the first label date of the test sample so that about ``test_share`` of the rows are on or after it.

    Rows of one date stay together, so the realised share can differ; the
    date whose split share is closest to ``1 - test_share`` wins.
    """
    counts = pd.Series(pd.to_datetime(dates)).dt.date.value_counts().sort_index()
    before = counts.cumsum().shift(1, fill_value=0) / counts.sum()
    target = 1.0 - test_share
    candidates = before.iloc[1:] if len(before) > 1 else before
    return (candidates - target).abs().idxmin()


def split_rows(labels: pd.DataFrame, params: PropensityParams) -> tuple[np.ndarray, dt.date | None]:
    """Return a boolean mask of test rows, and the cut-off date of a time split.

    Parameters
    ----------
    labels : pandas.DataFrame
        ``label_date`` and ``target`` per row.
    params : PropensityParams
        ``split.method`` time (default) or random.
    """
    split = params.split
    if split.method == "random":
        from sklearn.model_selection import train_test_split

        index = np.arange(len(labels))
        _, test = train_test_split(index, test_size=split.test_share, random_state=split.seed,
                                   stratify=labels["target"].to_numpy())
        mask = np.zeros(len(labels), dtype=bool)
        mask[test] = True
        return mask, None
    cutoff = split.cutoff or time_cutoff(labels["label_date"], split.test_share)
    dates = pd.to_datetime(labels["label_date"]).dt.date
    return (dates >= cutoff).to_numpy(), cutoff
