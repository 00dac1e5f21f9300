"""WoE/IV binning with optbinning, saved as plain tables and applied to new data.

optbinning's :class:`~optbinning.OptimalBinning` finds the bins; this module
pins its solver settings, gives every declared special value and the missing
values their own bin, computes the WoE and IV with a stated rule for bins
with an empty class, and turns the result into a table that can be saved as
Parquet and applied to new data without optbinning or a pickle.

Conventions
-----------
- WoE of a bin is ``ln(%bad / %good)``, where ``%bad`` is the bin's share of
  all bad (event) rows and ``%good`` its share of all good rows. A positive
  WoE marks a riskier than average bin. optbinning 1.0 reports
  ``ln(%good / %bad)``, the same number with the opposite sign.
- IV is the sum over bins of ``(%bad - %good) * WoE``.
- Numeric intervals are left-closed, ``[a, b)``, as optbinning's splits are.
- Empty-class rule ``"add_half"`` (the default): a bin with rows but no good
  or no bad row gets 0.5 in place of the zero count, before the column
  totals are taken, so every bin's WoE uses the same adjusted totals. Rule
  ``"zero"`` (optbinning 1.0's own): such a bin gets WoE 0 and IV 0, and the
  totals stay unadjusted. Either way the bin is flagged in ``zero_cell``. A
  bin without rows (for example the missing bin when the training data has
  no missing value) gets WoE 0, is left out of the totals and is flagged
  ``empty``. On bins without an empty class both rules give optbinning's IV.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from relmap_utils.i18n import LocalText, Msg

logger = logging.getLogger(__name__)

ZERO_CELL_RULES = ("add_half", "zero")
TRENDS = ("auto", "auto_asc_desc", "ascending", "descending", "convex", "concave", "peak", "valley", "none")
# Trends that a single bin satisfies trivially; a fit that ends with one bin
# under one of them means the constraint could not be met.
CONSTRAINED_TRENDS = ("ascending", "descending", "convex", "concave", "peak", "valley")
NUMERICAL, CATEGORICAL = "numerical", "categorical"
KIND_INTERVAL, KIND_CATEGORIES, KIND_SPECIAL, KIND_MISSING = "interval", "categories", "special", "missing"
BIN_COLUMNS = (
    "variable", "bin_id", "bin", "kind", "lower", "upper", "categories", "special",
    "count", "good", "bad", "bad_rate", "pct_bad", "pct_good", "woe", "iv_part", "zero_cell", "empty",
)


@dataclass(frozen=True)
class SolverSettings:
    """optbinning settings shared by every variable, pinned so reruns give the same bins.

    Parameters
    ----------
    solver : {"cp", "mip"}, default="cp"
        Optimizer; optbinning's CP-SAT model runs with one worker and random
        seed 0, so the same data give the same bins.
    prebinning_method : {"cart", "quantile", "uniform"}, default="cart"
    max_n_prebins : int, default=20
    min_prebin_size : float, default=0.05
        Smallest pre-bin as a share of the rows.
    min_bin_size : float, optional
        Smallest final bin as a share of the rows.
    max_n_bins : int, optional
    time_limit : int, default=60
        Seconds the solver may run per variable; a fit that reaches it has
        status FEASIBLE or UNKNOWN, which is reported.
    cat_cutoff : float, optional
        Categories rarer than this share are pooled by optbinning.
    """

    solver: str = "cp"
    prebinning_method: str = "cart"
    max_n_prebins: int = 20
    min_prebin_size: float = 0.05
    min_bin_size: float | None = None
    max_n_bins: int | None = None
    time_limit: int = 60
    cat_cutoff: float | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """Return the settings as OptimalBinning keyword arguments."""
        return {
            "solver": self.solver,
            "prebinning_method": self.prebinning_method,
            "max_n_prebins": self.max_n_prebins,
            "min_prebin_size": self.min_prebin_size,
            "min_bin_size": self.min_bin_size,
            "max_n_bins": self.max_n_bins,
            "time_limit": self.time_limit,
            "cat_cutoff": self.cat_cutoff,
        }


@dataclass
class VariableBinning:
    """The bins of one variable, their counts, WoE and IV, and how the fit went.

    Attributes
    ----------
    variable, dtype : str
    table : pandas.DataFrame
        One row per bin, columns :data:`BIN_COLUMNS`.
    iv : float
    trend_requested : str
        The ``monotonic_trend`` asked for.
    trend : str
        Shape of the bad rate over the numeric bins found: ascending,
        descending, flat (one bin) or other; "categories" for a categorical
        variable.
    status : str
        optbinning's solver status (OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN).
    seconds : float
    notices : list of Msg
        Problems to report: a constraint met only by one bin, a solver status
        other than OPTIMAL, bins with an empty class.
    """

    variable: str
    dtype: str
    table: pd.DataFrame
    iv: float
    trend_requested: str
    trend: str
    status: str
    seconds: float
    notices: list[Msg] = field(default_factory=list)

    @property
    def n_bins(self) -> int:
        """Bins with rows, special and missing bins included."""
        return int((~self.table["empty"]).sum())


def woe_iv(good: Sequence[float], bad: Sequence[float], rule: str = "add_half") -> pd.DataFrame:
    """Compute the WoE and IV of bins from their good and bad counts.

    Parameters
    ----------
    good, bad : sequence of float
        Counts of good (non-event) and bad (event) rows per bin.
    rule : {"add_half", "zero"}, default="add_half"
        Rule for a bin with rows but an empty class (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        ``count``, ``good``, ``bad``, ``bad_rate``, ``pct_bad``, ``pct_good``,
        ``woe``, ``iv_part``, ``zero_cell``, ``empty``; ``pct_*`` use the
        adjusted totals under ``add_half``.

    Examples
    --------
    >>> table = woe_iv([20, 150, 300, 130], [0, 5, 30, 65])
    >>> round(float(table.iv_part.sum()), 6)
    0.951527
    """
    if rule not in ZERO_CELL_RULES:
        raise ValueError(f"rule must be one of {ZERO_CELL_RULES}; got {rule!r}")

    good = np.asarray(good, dtype=float)
    bad = np.asarray(bad, dtype=float)
    count = good + bad
    empty = count == 0
    zero_cell = ~empty & ((good == 0) | (bad == 0))

    if rule == "add_half":
        good_used = np.where(zero_cell & (good == 0), 0.5, good)
        bad_used = np.where(zero_cell & (bad == 0), 0.5, bad)
        valid = ~empty
    else:
        good_used, bad_used = good, bad
        valid = ~empty & ~zero_cell
    total_good = good_used[~empty].sum()
    total_bad = bad_used[~empty].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        pct_good = np.where(~empty, good_used / total_good, 0.0) if total_good > 0 else np.zeros_like(good)
        pct_bad = np.where(~empty, bad_used / total_bad, 0.0) if total_bad > 0 else np.zeros_like(bad)
        woe = np.where(valid & (pct_good > 0) & (pct_bad > 0), np.log(pct_bad / pct_good), 0.0)
        bad_rate = np.where(~empty, bad / count, np.nan)
    iv_part = np.where(valid, (pct_bad - pct_good) * woe, 0.0)
    return pd.DataFrame(
        {
            "count": count,
            "good": good,
            "bad": bad,
            "bad_rate": bad_rate,
            "pct_bad": pct_bad,
            "pct_good": pct_good,
            "woe": woe,
            "iv_part": iv_part,
            "zero_cell": zero_cell,
            "empty": empty,
        }
    )


def _compress(numbers: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    # Binning depends on the data only through the good and bad count of each
    # distinct value, so optbinning can get one weighted row per value and
    # class. Worth it only when values repeat; None means fit on the rows.
    codes, uniques = pd.factorize(numbers)
    if 2 * len(uniques) > len(numbers):
        return None
    slot = np.where(codes < 0, len(uniques), codes)
    counts = np.bincount(slot * 2 + y, minlength=2 * (len(uniques) + 1)).reshape(-1, 2)
    values = np.append(np.asarray(uniques, dtype=float), np.nan)
    value_index, label = np.nonzero(counts)
    return values[value_index], label, counts[value_index, label].astype(float)


def fit_variable(
    values: pd.Series,
    target: Sequence[int] | np.ndarray,
    *,
    variable: str | None = None,
    dtype: str | None = None,
    monotonic_trend: str = "auto",
    special_values: Sequence[Any] = (),
    breaks: Sequence[float] | None = None,
    fixed_breaks: bool = False,
    settings: SolverSettings | None = None,
    zero_cell_rule: str = "add_half",
) -> VariableBinning:
    """Bin one variable against a 0/1 target with optbinning and compute WoE and IV.

    Parameters
    ----------
    values : pandas.Series
        The variable; NaN or None are missing values.
    target : array-like of {0, 1}
        1 marks a bad (default) row.
    variable : str, optional
        Name used in the table; default ``values.name``.
    dtype : {"numerical", "categorical"}, optional
        Default: numerical for numeric and boolean series, else categorical.
    monotonic_trend : str, default="auto"
        Bad-rate trend over the numeric bins; one of :data:`TRENDS`. "none"
        sets no constraint.
    special_values : sequence, default=()
        Values that mean something other than their number (such as -999 for
        "not provided"); each present one gets its own bin.
    breaks : sequence of float, optional
        Candidate split points in place of optbinning's pre-binning.
    fixed_breaks : bool, default=False
        Keep every break (the optimizer may not merge across them).
    settings : SolverSettings, optional
    zero_cell_rule : {"add_half", "zero"}, default="add_half"

    Returns
    -------
    VariableBinning

    Raises
    ------
    ValueError
        When ``monotonic_trend`` or ``dtype`` is not a known value.

    Notes
    -----
    For a numeric variable optbinning fits on one weighted row per distinct
    value and class. This gives the bins of the full data, because the
    pre-binning tree and the optimizer see the same counts, in less time
    when values repeat.
    """
    from optbinning import OptimalBinning

    if monotonic_trend not in TRENDS:
        raise ValueError(f"monotonic_trend must be one of {TRENDS}; got {monotonic_trend!r}")
    started = time.perf_counter()
    settings = settings or SolverSettings()
    name = str(variable if variable is not None else values.name)
    series = pd.Series(values).reset_index(drop=True)
    dtype = dtype or (NUMERICAL if _is_numeric(series) else CATEGORICAL)
    if dtype not in (NUMERICAL, CATEGORICAL):
        raise ValueError(f"dtype must be 'numerical' or 'categorical'; got {dtype!r}")
    y = np.asarray(target, dtype=np.int64)

    if dtype == NUMERICAL:
        series = pd.to_numeric(series.astype("float64") if series.dtype == bool else series, errors="coerce")
    else:
        series = _as_text(series)
    specials = [value for value in _unique(special_values) if (series == value).any()]

    trend = None if monotonic_trend == "none" else monotonic_trend
    if dtype == CATEGORICAL and breaks is None and settings.cat_cutoff is None:
        splits, status = _categorical_groups(series, y, trend, settings)
    else:
        optimizer = OptimalBinning(
            name=name,
            dtype=dtype,
            monotonic_trend=trend,
            special_codes={_special_label(value): [value] for value in specials} or None,
            user_splits=list(breaks) if breaks is not None else None,
            user_splits_fixed=[True] * len(breaks) if breaks is not None and fixed_breaks else None,
            **settings.as_kwargs(),
        )
        if dtype == NUMERICAL:
            numbers = series.to_numpy(dtype=float, na_value=np.nan)
            compressed = _compress(numbers, y)
            if compressed is None:
                optimizer.fit(numbers, y)
            else:
                optimizer.fit(compressed[0], compressed[1], sample_weight=compressed[2])
        else:
            optimizer.fit(series.to_numpy(dtype=object, na_value=np.nan), y)
        splits, status = optimizer.splits, str(optimizer.status)

    table = _bin_rows(name, dtype, splits, specials)
    bin_ids = assign_bins(table, series)
    good = np.bincount(bin_ids, weights=(y == 0).astype(float), minlength=len(table))
    bad = np.bincount(bin_ids, weights=(y == 1).astype(float), minlength=len(table))
    stats = woe_iv(good, bad, zero_cell_rule)
    table = pd.concat([table.reset_index(drop=True), stats], axis=1)[list(BIN_COLUMNS)]
    iv = float(table["iv_part"].sum())
    trend = _trend(table) if dtype == NUMERICAL else "categories"

    notices: list[Msg] = []
    numeric_bins = int(((table.kind == KIND_INTERVAL) & ~table["empty"]).sum())
    if monotonic_trend in CONSTRAINED_TRENDS and dtype == NUMERICAL and numeric_bins <= 1 and series.nunique() > 1:
        notices.append(Msg("risk.notice.trend_one_bin", variable=name, trend=monotonic_trend))
    if status != "OPTIMAL":
        notices.append(Msg("risk.notice.solver_status", variable=name, status=status, limit=settings.time_limit))
    if table.zero_cell.any():
        notices.append(zero_cell_notice(name, table, zero_cell_rule))
    seconds = round(time.perf_counter() - started, 3)
    logger.info("binned %s (%s): status %s, %d bins, IV %.4f, trend %s, %.2f s",
                name, dtype, status, int((~table["empty"]).sum()), iv, trend, seconds)
    return VariableBinning(name, dtype, table, iv, monotonic_trend, trend, status, seconds, notices)


def _categorical_groups(series: pd.Series, y: np.ndarray, trend: str | None,
                        settings: SolverSettings) -> tuple[list[np.ndarray], str]:
    """Bin categories as optbinning 1.0 does for dtype "categorical", on compressed rows.

    optbinning orders the categories by their event rate, bins the rank of
    each row's category as a number, and requires an ascending event rate
    over the ranks whenever a trend is set. This does the same, but the
    numeric fit gets one weighted row per rank and class instead of every
    row, which gives the same bins much faster on large tables.
    """
    from optbinning import OptimalBinning

    present = series.notna().to_numpy()
    categories = series[present].to_numpy(dtype=object)
    # The same ordering call as optbinning's categorical_transform, so ties order alike.
    event_rate = pd.Series(y[present]).groupby(categories).mean()
    ordered = event_rate.sort_values().index.values
    rank = pd.Series(np.arange(len(ordered)), index=ordered)
    numbers = np.full(len(series), np.nan)
    numbers[present] = rank.reindex(categories).to_numpy(dtype=float)
    compressed = _compress(numbers, y)
    optimizer = OptimalBinning(dtype=NUMERICAL, monotonic_trend="ascending" if trend is not None else None,
                               **settings.as_kwargs())
    if compressed is None:
        optimizer.fit(numbers, y)
    else:
        optimizer.fit(compressed[0], compressed[1], sample_weight=compressed[2])
    edges = [-np.inf, *optimizer.splits, np.inf]
    positions = np.arange(len(ordered))
    groups = [ordered[(positions >= lower) & (positions < upper)] for lower, upper in zip(edges[:-1], edges[1:])]
    return [group for group in groups if len(group)], str(optimizer.status)


def fit_categories(
    values: pd.Series,
    target: Sequence[int] | np.ndarray,
    *,
    variable: str | None = None,
    zero_cell_rule: str = "add_half",
) -> VariableBinning:
    """Give every category of a variable its own bin, without optbinning's grouping.

    This is the textbook WoE/IV on raw categories; the result has the same
    form as :func:`fit_variable` (solver status ``RAW``).

    Examples
    --------
    >>> result = fit_categories(pd.Series(["a", "a", "b", "b"]), [0, 1, 1, 1])
    >>> result.table["bin"].tolist()
    ['{a}', '{b}', 'missing']
    """
    started = time.perf_counter()
    name = str(variable if variable is not None else values.name)
    series = pd.Series(values).reset_index(drop=True)
    series = _as_text(series)
    y = np.asarray(target, dtype=np.int64)
    categories = sorted(series.dropna().unique())
    table = _bin_rows(name, CATEGORICAL, [[category] for category in categories], [])
    bin_ids = assign_bins(table, series)
    good = np.bincount(bin_ids, weights=(y == 0).astype(float), minlength=len(table))
    bad = np.bincount(bin_ids, weights=(y == 1).astype(float), minlength=len(table))
    table = pd.concat([table.reset_index(drop=True), woe_iv(good, bad, zero_cell_rule)], axis=1)[list(BIN_COLUMNS)]
    notices: list[Msg] = []
    if table.zero_cell.any():
        notices.append(zero_cell_notice(name, table, zero_cell_rule))
    iv = float(table["iv_part"].sum())
    seconds = round(time.perf_counter() - started, 3)
    return VariableBinning(name, CATEGORICAL, table, iv, "none", "categories", "RAW", seconds, notices)


def _fit_one(values: pd.Series, target: np.ndarray, options: Mapping[str, Any]) -> VariableBinning | str:
    options = dict(options)
    raw = options.pop("raw_categories", False)
    try:
        if raw:
            return fit_categories(values, target, **options)
        return fit_variable(values, target, **options)
    except (ValueError, TypeError, RuntimeError) as error:
        logger.error("binning of %s failed: %s", options.get("variable", values.name), error)
        return str(error)


def fit_variables(
    frame: pd.DataFrame,
    target: Sequence[int] | np.ndarray,
    options: Mapping[str, Mapping[str, Any]],
    n_jobs: int = 1,
) -> dict[str, VariableBinning | str]:
    """Bin several variables, in ``n_jobs`` processes when more than one.

    Parameters
    ----------
    frame : pandas.DataFrame
    target : array-like of {0, 1}
    options : mapping of str to mapping
        Variable name to the keyword arguments of :func:`fit_variable`; with
        ``raw_categories=True`` the variable goes to :func:`fit_categories`.
    n_jobs : int, default=1
        Worker processes (joblib); each variable is fitted independently, so
        the bins do not depend on ``n_jobs``.

    Returns
    -------
    dict
        Variable name to its :class:`VariableBinning`, or to the error text
        when the fit failed; the other variables are still fitted.
    """
    y = np.asarray(target, dtype=np.int64)
    names = list(options)
    if n_jobs == 1 or len(names) <= 1:
        results = [_fit_one(frame[name], y, {"variable": name, **options[name]}) for name in names]
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs)(
            delayed(_fit_one)(frame[name], y, {"variable": name, **options[name]}) for name in names)
    return dict(zip(names, results))


def _as_text(series: pd.Series) -> pd.Series:
    # Categories compare as text, so 1 and "1" are one category; missing stays None.
    present = series.notna().to_numpy()
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(series.dtype):
        return pd.Series(series.to_numpy(dtype=object, na_value=None), index=series.index)
    text = series.astype(str).astype(object)
    return text.where(present, None)


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _unique(values: Sequence[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def zero_cell_notice(name: str, table: pd.DataFrame, rule: str) -> Msg:
    """Return the notice for bins with no good or no bad row, bins and rule in words.

    Parameters
    ----------
    name : str
        The variable.
    table : pandas.DataFrame
        Its bins, with ``bin``, ``kind`` and ``zero_cell``.
    rule : {"add_half", "zero"}
        The empty-class rule applied.

    Returns
    -------
    Msg
        ``risk.notice.zero_cell``: the missing bin reads "缺失" / "missing"
        and category codes their names, not the stored codes.
    """
    from relmap_utils.risk.report import bin_label

    rows = table[table.zero_cell]
    bins = LocalText({
        locale: ("、" if locale == "zh_CN" else ", ").join(
            bin_label(name, row.bin, row.kind, locale) for row in rows.itertuples())
        for locale in ("zh_CN", "en")
    })
    return Msg("risk.notice.zero_cell", variable=name, bins=bins, rule=Msg(f"risk.zero_cell_rule.{rule}"))


def _special_label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"special:{value}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def _bin_rows(name: str, dtype: str, splits: Any, specials: Sequence[Any]) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    if dtype == NUMERICAL:
        edges = [-math.inf, *[float(split) for split in splits], math.inf]
        for lower, upper in zip(edges[:-1], edges[1:]):
            rows.append({"bin": f"[{_number(lower)},{_number(upper)})", "kind": KIND_INTERVAL,
                         "lower": lower, "upper": upper, "categories": None, "special": None})
    else:
        for group in splits:
            categories = sorted(str(value) for value in group)
            rows.append({"bin": "{" + ",".join(categories) + "}", "kind": KIND_CATEGORIES, "lower": np.nan,
                         "upper": np.nan, "categories": json.dumps(categories, ensure_ascii=False), "special": None})
    for value in specials:
        rows.append({"bin": _special_label(value), "kind": KIND_SPECIAL, "lower": np.nan, "upper": np.nan,
                     "categories": None, "special": json.dumps(value if not isinstance(value, np.generic) else value.item())})
    rows.append({"bin": "missing", "kind": KIND_MISSING, "lower": np.nan, "upper": np.nan,
                 "categories": None, "special": None})
    frame = pd.DataFrame(rows)
    frame.insert(0, "bin_id", np.arange(len(frame)))
    frame.insert(0, "variable", name)
    return frame


def assign_bins(table: pd.DataFrame, values: pd.Series | Sequence[Any]) -> np.ndarray:
    """Return the ``bin_id`` of each value under a saved bin table.

    Missing values go to the missing bin and declared special values to
    their bin. A numeric value falls in the interval ``[lower, upper)``. A
    category the table does not list gets ``-1`` (unseen).

    Parameters
    ----------
    table : pandas.DataFrame
        One variable's rows of a bin table (:data:`BIN_COLUMNS`).
    values : pandas.Series or sequence

    Returns
    -------
    numpy.ndarray of int
    """
    series = pd.Series(values).reset_index(drop=True)
    table = table.sort_values("bin_id")
    result = np.full(len(series), -1, dtype=np.int64)
    missing = series.isna().to_numpy()
    missing_id = table.loc[table.kind == KIND_MISSING, "bin_id"]
    if len(missing_id):
        result[missing] = int(missing_id.iloc[0])
    done = missing.copy()

    for row in table[table.kind == KIND_SPECIAL].itertuples():
        special = json.loads(row.special)
        hit = ~done & (series == special).to_numpy()
        result[hit] = row.bin_id
        done |= hit

    intervals = table[table.kind == KIND_INTERVAL]
    if len(intervals):
        numbers = pd.to_numeric(series.where(~done), errors="coerce").to_numpy(dtype=float)
        uppers = intervals["upper"].to_numpy(dtype=float)[:-1]
        position = np.searchsorted(uppers, numbers, side="right")
        ids = intervals["bin_id"].to_numpy()[np.minimum(position, len(intervals) - 1)]
        todo = ~done & ~np.isnan(numbers)
        result[todo] = ids[todo]

    groups = table[table.kind == KIND_CATEGORIES]
    if len(groups):
        lookup = {category: row.bin_id for row in groups.itertuples() for category in json.loads(row.categories)}
        todo = ~done
        # Look up each distinct value once, then spread the ids over the rows.
        codes, uniques = pd.factorize(_as_text(series[todo]).to_numpy(dtype=object))
        ids = np.array([lookup.get(str(value), -1) for value in uniques], dtype=np.int64)
        result[todo] = ids[codes] if len(ids) else -1
    return result


def apply_woe(table: pd.DataFrame, values: pd.Series | Sequence[Any]) -> np.ndarray:
    """Return the WoE of each value under a saved bin table.

    Unseen categories and values falling in an empty bin get WoE 0, the
    WoE of an average bin.
    """
    ids = assign_bins(table, values)
    woe = np.zeros(int(table["bin_id"].max()) + 2)
    woe[table["bin_id"].to_numpy()] = table["woe"].to_numpy(dtype=float)
    return np.where(ids >= 0, woe[np.maximum(ids, 0)], 0.0)


def _trend(table: pd.DataFrame) -> str:
    rates = table.loc[(table.kind == KIND_INTERVAL) & ~table["empty"], "bad_rate"].to_numpy(dtype=float)
    if len(rates) <= 1:
        return "flat"
    steps = np.diff(rates)
    if (steps >= 0).all():
        return "ascending"
    if (steps <= 0).all():
        return "descending"
    return "other"


def bin_table(binnings: Mapping[str, VariableBinning] | Sequence[VariableBinning]) -> pd.DataFrame:
    """Stack the bin tables of several variables into one table (the saved form)."""
    items = binnings.values() if isinstance(binnings, Mapping) else binnings
    frames = [item.table for item in items]
    if not frames:
        return pd.DataFrame(columns=list(BIN_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def transform_woe(bins: pd.DataFrame, frame: pd.DataFrame, variables: Sequence[str] | None = None) -> pd.DataFrame:
    """Replace each binned variable of ``frame`` by its WoE, using the saved bin table.

    Parameters
    ----------
    bins : pandas.DataFrame
        A table from :func:`bin_table`, possibly read back from Parquet.
    frame : pandas.DataFrame
        New data with the variables as columns.
    variables : sequence of str, optional
        Variables to transform; default every variable in ``bins``.

    Returns
    -------
    pandas.DataFrame
        One WoE column per variable, on ``frame``'s index.
    """
    names = list(variables) if variables is not None else list(dict.fromkeys(bins["variable"]))
    columns = {}
    for name in names:
        columns[name] = apply_woe(bins[bins.variable == name], frame[name])
    return pd.DataFrame(columns, index=frame.index)
