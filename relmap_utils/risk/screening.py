"""Indicator screening: bins, IV, KS/AUC, correlation clusters, VIF and logit.

:func:`screen_indicators` bins every candidate indicator against the
default label, measures it, and keeps a short list for the scorecard. Each
indicator leaves with a status (kept or dropped) and the reason. A
variable that cannot be screened (one distinct value, all missing, a copy
of the label, too few defaults among its non-missing rows, a failed fit) is
reported by name and the others still run.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from relmap_utils.i18n import Msg, bilingual
from relmap_utils.risk.binning import (
    CATEGORICAL,
    NUMERICAL,
    VariableBinning,
    bin_table,
    fit_variables,
    transform_woe,
)
from relmap_utils.risk.metrics import discrimination
from relmap_utils.risk.params import RiskParams

logger = logging.getLogger(__name__)

# Usual IV strength bands (Siddiqi, Credit Risk Scorecards, 2006): lower bound
# and name. IV of 0.5 or more is more often a leak of the outcome than a signal.
IV_BANDS = ((0.0, "useless"), (0.02, "weak"), (0.1, "medium"), (0.3, "strong"), (0.5, "suspicious"))
KEPT, DROPPED = "kept", "dropped"


@dataclass
class Screening:
    """Result of :func:`screen_indicators`.

    Attributes
    ----------
    indicators : pandas.DataFrame
        One row per screened variable: metrics, status and reason.
    bins : pandas.DataFrame
        Bin tables of every binned variable (the saved form).
    correlation : pandas.DataFrame
        Spearman correlation of the WoE of the candidates (square).
    clusters : pandas.DataFrame
        ``cluster``, ``variable``, ``iv``, ``representative``.
    vif : pandas.DataFrame
        ``variable``, ``vif`` (None for a constant column), ``constant``.
    logit : pandas.DataFrame
        Multivariate logit on the WoE of the kept indicators: ``variable``
        (``const`` for the intercept), ``coef``, ``std_err``, ``p_value``,
        ``odds_ratio``.
    kept : list of str
    notices : list of Msg
    binnings : dict of str to VariableBinning
    """

    indicators: pd.DataFrame
    bins: pd.DataFrame
    correlation: pd.DataFrame
    clusters: pd.DataFrame
    vif: pd.DataFrame
    logit: pd.DataFrame
    kept: list[str]
    notices: list[Msg] = field(default_factory=list)
    binnings: dict[str, VariableBinning] = field(default_factory=dict)


def iv_band(iv: float | None) -> str | None:
    """Return the strength band of an IV value (see :data:`IV_BANDS`).

    Examples
    --------
    >>> iv_band(0.15)
    'medium'
    """
    if iv is None or np.isnan(iv):
        return None
    band = IV_BANDS[0][1]
    for lower, name in IV_BANDS:
        if iv >= lower:
            band = name
    return band


def unusable_reason(values: pd.Series, target: np.ndarray, min_defaults: int) -> str | None:
    """Return why a variable cannot be binned, or None.

    Reasons: ``all_missing``; ``constant`` (one distinct non-missing value);
    ``label_copy`` (two values, each seen with one class only, no missing:
    the variable is the label or its negation); ``few_defaults`` (fewer
    than ``min_defaults`` bad rows where the variable is not missing).
    """
    present = values.notna().to_numpy()
    if not present.any():
        return "all_missing"
    distinct = values[present].nunique()
    if distinct <= 1:
        return "constant"
    if distinct == 2 and present.all():
        classes = pd.Series(target).groupby(values.astype(str).to_numpy()).nunique()
        if (classes == 1).all():
            return "label_copy"
    if int(target[present].sum()) < min_defaults:
        return "few_defaults"
    return None


def screen_indicators(
    frame: pd.DataFrame,
    target: Sequence[int] | np.ndarray,
    variables: Sequence[str],
    params: RiskParams,
    sensitive: Sequence[str] = (),
) -> Screening:
    """Bin, measure and shortlist the indicators of a training table.

    Parameters
    ----------
    frame : pandas.DataFrame
        Training rows, one column per variable.
    target : array-like of {0, 1}
        1 marks a bad (default) row.
    variables : sequence of str
        Columns of ``frame`` to screen.
    params : RiskParams
    sensitive : sequence of str, default=()
        Variables that are screened and reported but never kept.

    Returns
    -------
    Screening
    """
    y = np.asarray(target, dtype=np.int64)
    settings = params.binning.solver_settings()
    rules = params.screening
    notices: list[Msg] = []
    rows: dict[str, dict[str, Any]] = {}
    binnings: dict[str, VariableBinning] = {}

    options = {}
    for name in variables:
        values = frame[name].reset_index(drop=True)
        reason = unusable_reason(values, y, rules.min_variable_defaults)
        if reason:
            notices.append(Msg(f"risk.notice.variable_{reason}", variable=name))
            rows[name] = _row(name, None, status=DROPPED, reason=reason)
            continue
        options[name] = _options(values, params, settings)
    fitted = fit_variables(frame.reset_index(drop=True), y, options, n_jobs=params.binning.n_jobs)
    for name, result in fitted.items():
        if isinstance(result, str):
            notices.append(Msg("risk.notice.binning_failed", variable=name, error=result[:200]))
            rows[name] = _row(name, None, status=DROPPED, reason="binning_failed")
            continue
        binnings[name] = result
        notices.extend(result.notices)

    bins = bin_table(binnings)
    woe = transform_woe(bins, frame.reset_index(drop=True), list(binnings)) if binnings else pd.DataFrame()
    for name, binning in binnings.items():
        rows[name] = _row(name, binning, **discrimination(woe[name], y))

    candidates = [name for name, binning in binnings.items()
                  if binning.iv >= rules.min_iv and rows[name]["n_bins"] > 1]
    for name in binnings:
        if name not in candidates:
            rows[name].update(status=DROPPED, reason="low_iv")
    for name in [name for name in candidates if name in set(sensitive)]:
        rows[name].update(status=DROPPED, reason="sensitive")
        candidates.remove(name)

    correlation = woe[candidates].corr(method="spearman") if candidates else pd.DataFrame()
    clusters = correlation_clusters(correlation, {name: binnings[name].iv for name in candidates},
                                    rules.correlation_threshold)
    for row in clusters[~clusters.representative].itertuples():
        leader = clusters.loc[(clusters.cluster == row.cluster) & clusters.representative, "variable"].iloc[0]
        rows[row.variable].update(status=DROPPED, reason="correlated", related=leader)
        candidates.remove(row.variable)
    for row in clusters.itertuples():
        rows[row.variable]["cluster"] = int(row.cluster)

    candidates.sort(key=lambda name: -binnings[name].iv)
    for name in candidates[rules.max_indicators:]:
        rows[name].update(status=DROPPED, reason="max_indicators")
    candidates = candidates[: rules.max_indicators]

    candidates, vif = _drop_high_vif(woe, candidates, rules.max_vif, rows)
    for name, row in vif.set_index("variable").iterrows():
        rows[name]["vif"] = row["vif"]

    for name in binnings:
        rows[name].update(_univariate_logit(frame[name].reset_index(drop=True), woe[name], y))
    candidates, logit = _multivariate_logit(woe, y, candidates, rows, rules.max_p_value)
    for name in candidates:
        rows[name].update(status=KEPT, reason="kept")
    if not candidates:
        notices.append(Msg("risk.notice.nothing_kept", min_iv=rules.min_iv))
    for name in candidates:
        if binnings[name].iv > rules.suspicious_iv:
            notices.append(Msg("risk.notice.iv_suspicious", variable=name, iv=f"{binnings[name].iv:.3f}",
                               limit=rules.suspicious_iv))

    indicators = _indicator_table(rows, variables)
    logger.info("screened %d variables: %d binned, %d kept", len(variables), len(binnings), len(candidates))
    return Screening(indicators, bins, correlation, clusters, vif, logit, candidates, notices, binnings)


def _options(values: pd.Series, params: RiskParams, settings: Any) -> dict[str, Any]:
    name = str(values.name)
    override = params.variable(name)
    dtype = override.dtype or (NUMERICAL if pd.api.types.is_numeric_dtype(values) or
                               pd.api.types.is_bool_dtype(values) else CATEGORICAL)
    if dtype == CATEGORICAL and params.categorical_bins == "raw":
        return {"raw_categories": True, "zero_cell_rule": params.zero_cell_rule}
    specials = override.special_values if override.special_values is not None else params.special_values
    return {
        "dtype": dtype,
        "monotonic_trend": override.monotonic_trend or params.monotonic_trend,
        "special_values": specials if dtype == NUMERICAL else [],
        "breaks": override.breaks,
        "fixed_breaks": override.fixed_breaks,
        "settings": settings,
        "zero_cell_rule": params.zero_cell_rule,
    }


def _row(name: str, binning: VariableBinning | None, status: str | None = None, reason: str | None = None,
         **metrics: Any) -> dict[str, Any]:
    iv = binning.iv if binning else None
    return {
        "variable": name,
        "dtype": binning.dtype if binning else None,
        "n_bins": binning.n_bins if binning else None,
        "iv": iv,
        "iv_band": iv_band(iv),
        "ks": metrics.get("ks"),
        "auc": metrics.get("auc"),
        "trend": binning.trend if binning else None,
        "solver_status": binning.status if binning else None,
        "status": status,
        "reason": reason,
        "related": None,
        "cluster": None,
        "vif": None,
    }


def correlation_clusters(correlation: pd.DataFrame, iv: dict[str, float], threshold: float) -> pd.DataFrame:
    """Group variables whose absolute Spearman correlation reaches ``threshold``.

    Clusters are the connected components of the graph that links two
    variables at ``|rho| >= threshold``; the variable with the highest IV
    represents its cluster. Every variable gets a cluster, alone or not.

    Returns
    -------
    pandas.DataFrame
        ``cluster``, ``variable``, ``iv``, ``representative`` (bool), sorted
        by cluster and descending IV.
    """
    names = list(correlation.columns)
    parent = {name: name for name in names}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    values = correlation.to_numpy() if names else np.zeros((0, 0))
    for i, first in enumerate(names):
        for j in range(i + 1, len(names)):
            if abs(values[i, j]) >= threshold:
                parent[root(names[j])] = root(first)

    rows = [{"variable": name, "root": root(name), "iv": iv.get(name, 0.0)} for name in names]
    frame = pd.DataFrame(rows, columns=["variable", "root", "iv"])
    if frame.empty:
        return pd.DataFrame(columns=["cluster", "variable", "iv", "representative"])
    order = frame.groupby("root")["iv"].max().sort_values(ascending=False).index
    frame["cluster"] = frame["root"].map({name: number for number, name in enumerate(order, start=1)})
    frame = frame.sort_values(["cluster", "iv"], ascending=[True, False]).reset_index(drop=True)
    frame["representative"] = ~frame.duplicated("cluster")
    return frame[["cluster", "variable", "iv", "representative"]]


def variance_inflation(frame: pd.DataFrame) -> pd.DataFrame:
    """Compute the VIF of each column, with an intercept in the design.

    A column with zero variance is flagged ``constant`` and gets no VIF,
    because it duplicates the intercept.

    Returns
    -------
    pandas.DataFrame
        ``variable``, ``vif``, ``constant``.
    """
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    constant = [name for name in frame.columns if frame[name].nunique(dropna=False) <= 1]
    varying = [name for name in frame.columns if name not in constant]
    rows = [{"variable": name, "vif": None, "constant": True} for name in constant]
    if varying:
        design = np.column_stack([np.ones(len(frame)), frame[varying].to_numpy(dtype=float)])
        with np.errstate(divide="ignore", invalid="ignore"):
            for position, name in enumerate(varying, start=1):
                value = float(variance_inflation_factor(design, position)) if len(varying) > 1 else 1.0
                rows.append({"variable": name, "vif": value, "constant": False})
    order = {name: i for i, name in enumerate(frame.columns)}
    return pd.DataFrame(rows, columns=["variable", "vif", "constant"]).sort_values(
        "variable", key=lambda column: column.map(order)).reset_index(drop=True)


def _drop_high_vif(woe: pd.DataFrame, candidates: list[str], max_vif: float,
                   rows: dict[str, dict[str, Any]]) -> tuple[list[str], pd.DataFrame]:
    kept = list(candidates)
    while True:
        vif = variance_inflation(woe[kept]) if kept else pd.DataFrame(columns=["variable", "vif", "constant"])
        for name in vif.loc[vif.constant, "variable"]:
            rows[name].update(status=DROPPED, reason="constant_woe")
            kept.remove(name)
        finite = vif[~vif.constant].dropna(subset=["vif"])
        if finite.empty or finite["vif"].max() <= max_vif:
            return kept, vif
        worst = finite.sort_values("vif").iloc[-1]["variable"]
        rows[worst].update(status=DROPPED, reason="high_vif", vif=float(finite["vif"].max()))
        kept.remove(worst)


def fit_logit(design: pd.DataFrame, target: np.ndarray) -> pd.DataFrame | None:
    """Fit a statsmodels logit with an intercept and return its coefficient table.

    Returns
    -------
    pandas.DataFrame or None
        ``variable`` (``const`` for the intercept), ``coef``, ``std_err``,
        ``p_value``, ``odds_ratio``; None when the fit fails (perfect
        separation, a singular design).
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    exog = sm.add_constant(design.astype(float), has_constant="add")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", PerfectSeparationWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            result = sm.Logit(np.asarray(target, dtype=float), exog).fit(disp=0, maxiter=200)
    except (np.linalg.LinAlgError, ValueError) as error:
        logger.warning("logit on %s failed: %s", ", ".join(design.columns), error)
        return None
    table = pd.DataFrame(
        {
            "variable": list(exog.columns),
            "coef": result.params.to_numpy(),
            "std_err": result.bse.to_numpy(),
            "p_value": result.pvalues.to_numpy(),
        }
    )
    table["odds_ratio"] = np.exp(table["coef"])
    return table


def _univariate_logit(values: pd.Series, woe: pd.Series, y: np.ndarray) -> dict[str, Any]:
    # On its own WoE a variable's coefficient is 1 by construction. So a
    # numeric variable's univariate odds ratio is per standard deviation of
    # its value, with missing rows left out, and a categorical one uses its WoE.
    empty = {"uni_basis": None, "uni_coef": None, "uni_odds_ratio": None, "uni_p_value": None}
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        present = values.notna().to_numpy()
        numbers = values[present].astype(float)
        if numbers.std() == 0 or len(np.unique(y[present])) < 2:
            return empty
        design, basis, target = ((numbers - numbers.mean()) / numbers.std()).to_frame(), "std", y[present]
    else:
        if woe.nunique() <= 1:
            return empty
        design, basis, target = woe.to_frame(), "woe", y
    table = fit_logit(design, target)
    if table is None:
        return empty
    row = table.iloc[1]
    return {"uni_basis": basis, "uni_coef": row["coef"], "uni_odds_ratio": row["odds_ratio"],
            "uni_p_value": row["p_value"]}


def _multivariate_logit(woe: pd.DataFrame, y: np.ndarray, candidates: list[str],
                        rows: dict[str, dict[str, Any]], max_p_value: float) -> tuple[list[str], pd.DataFrame]:
    # Backward elimination, one variable per refit. With WoE = ln(%bad/%good)
    # every coefficient should be positive: a negative one means the
    # variable's effect is taken by others. A coefficient with a p-value above
    # max_p_value adds nothing the others do not carry. Quasi-separation on a
    # small sample shows as huge coefficients with p-values near 1 and ends here.
    kept = list(candidates)
    empty = pd.DataFrame(columns=["variable", "coef", "std_err", "p_value", "odds_ratio"])
    while kept:
        table = fit_logit(woe[kept], y)
        if table is None:
            worst = kept[-1]
            rows[worst].update(status=DROPPED, reason="logit_failed")
            kept.remove(worst)
            continue
        slopes = table[table.variable != "const"]
        negative = slopes[slopes["coef"] < 0]
        if not negative.empty:
            worst = negative.sort_values("coef").iloc[0]["variable"]
            rows[worst].update(status=DROPPED, reason="negative_coefficient")
            kept.remove(worst)
            continue
        weak = slopes[~(slopes["p_value"] <= max_p_value)]
        if not weak.empty:
            worst = weak.sort_values("p_value").iloc[-1]["variable"]
            rows[worst].update(status=DROPPED, reason="not_significant")
            kept.remove(worst)
            continue
        for row in slopes.itertuples():
            rows[row.variable].update(multi_coef=row.coef, multi_odds_ratio=row.odds_ratio,
                                      multi_p_value=row.p_value)
        return kept, table
    return kept, empty


def _indicator_table(rows: dict[str, dict[str, Any]], order: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame([rows[name] for name in order if name in rows])
    for column in ("uni_basis", "uni_coef", "uni_odds_ratio", "uni_p_value", "multi_coef", "multi_odds_ratio", "multi_p_value"):
        if column not in frame.columns:
            frame[column] = None
    reasons = [bilingual(f"risk.reason.{row.reason}", related=row.related or "")
               for row in frame.itertuples()]
    frame["reason_zh"] = [text["zh_CN"] for text in reasons]
    frame["reason_en"] = [text["en"] for text in reasons]
    frame = frame.sort_values(["status", "iv"], ascending=[False, False], na_position="last")
    return frame.reset_index(drop=True)
