"""Early warning: rules over indicator changes, a model, the warning list and its backtest.

Rules compare each customer's indicators at a map date with the same
customer's earlier map dates (their own history), with the thresholds of
:class:`~relmap_utils.risk.params.WarningSettings`:

=================  ===========================================================
signal             triggered when
=================  ===========================================================
income_drop        months with regular income in the recent window fell by at
                   least ``income_drop_months`` below the customer's maximum
                   over earlier dates, and that maximum was at least
                   ``income_baseline_months``
cash_jump          cash withdrawals in the recent window reach
                   ``cash_jump_min`` and ``cash_jump_ratio`` times the baseline
                   (the lowest earlier value; without earlier dates, the
                   monthly average over the history window times the months
                   of the recent window)
new_device         new devices in the recent window >= ``new_devices``
late_payment       instalments paid late in the recent window >= ``late_instalments``
missed_payment     days past due of unpaid instalments >= ``days_past_due``
aum_drop           assets changed by ``aum_drop`` or less over the recent window
related_default    related customers with a default rose by ``related_defaults``
                   or more against the earlier maximum
=================  ===========================================================

A customer is warned at a date when at least ``min_signals`` rules trigger,
or when the warning model's default probability reaches
``model_threshold``. A rule whose map columns are absent is left out and
listed in the summary.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from relmap_utils.i18n import bilingual
from relmap_utils.risk.metrics import discrimination
from relmap_utils.risk.params import WarningSettings

logger = logging.getLogger(__name__)

# Map columns each rule reads.
SIGNAL_COLUMNS = {
    "income_drop": ("regular_income_months_recent",),
    "cash_jump": ("cash_withdrawals_recent", "cash_withdrawals_monthly_avg"),
    "new_device": ("new_devices_recent",),
    "late_payment": ("late_instalments_recent",),
    "missed_payment": ("days_past_due",),
    "aum_drop": ("aum_change_recent",),
    "related_default": ("related_defaulted",),
}
SIGNALS = tuple(SIGNAL_COLUMNS)
MODEL_FEATURES = ("income_drop_months", "cash_ratio", "new_devices", "late_instalments", "days_past_due_capped",
                  "aum_change", "related_default_rise")


@dataclass
class Signals:
    """Rule signals per customer and map date.

    Attributes
    ----------
    frame : pandas.DataFrame
        ``customer_id``, ``as_of``, one bool column per available signal,
        ``n_signals``, the evidence columns ``<signal>_now`` and
        ``<signal>_before``, and the model features.
    available, unavailable : list of str
        Signals computed, and those whose map columns are missing.
    """

    frame: pd.DataFrame
    available: list[str]
    unavailable: list[str] = field(default_factory=list)


def _history(grouped: pd.core.groupby.DataFrameGroupBy, column: str, snapshots: int) -> pd.DataFrame:
    return pd.concat({lag: grouped[column].shift(lag) for lag in range(1, snapshots + 1)}, axis=1)


def compute_signals(panel: pd.DataFrame, settings: WarningSettings, recent_months: int = 3) -> Signals:
    """Evaluate the warning rules on every customer and map date of ``panel``.

    Parameters
    ----------
    panel : pandas.DataFrame
        Map rows: ``customer_id``, ``as_of`` and the map features.
    settings : WarningSettings
    recent_months : int, default=3
        Length of the map's recent window (``windows.recent`` of the map).

    Returns
    -------
    Signals
    """
    panel = panel.sort_values(["customer_id", "as_of"]).reset_index(drop=True)
    grouped = panel.groupby("customer_id", sort=False)
    snapshots = settings.history_snapshots
    out = panel[["customer_id", "as_of"]].copy()
    available = [name for name, columns in SIGNAL_COLUMNS.items() if all(c in panel.columns for c in columns)]
    unavailable = [name for name in SIGNALS if name not in available]

    def number(column: str) -> pd.Series:
        return pd.to_numeric(panel[column], errors="coerce").astype(float)

    if "income_drop" in available:
        now = number("regular_income_months_recent")
        before = _history(grouped, "regular_income_months_recent", snapshots).max(axis=1)
        out["income_drop"] = (before >= settings.income_baseline_months) & (now <= before - settings.income_drop_months)
        out["income_drop_now"], out["income_drop_before"] = now, before
        out["income_drop_months"] = (before - now).clip(lower=0).fillna(0)
    if "cash_jump" in available:
        now = number("cash_withdrawals_recent")
        earlier = _history(grouped, "cash_withdrawals_recent", snapshots).min(axis=1)
        fallback = number("cash_withdrawals_monthly_avg") * recent_months
        before = earlier.fillna(fallback)
        out["cash_jump"] = (now >= settings.cash_jump_min) & (now >= settings.cash_jump_ratio * before.fillna(0))
        out["cash_jump_now"], out["cash_jump_before"] = now, before
        out["cash_ratio"] = (now / (before.fillna(0) + 1)).fillna(0)
    if "new_device" in available:
        now = number("new_devices_recent").fillna(0)
        out["new_device"] = now >= settings.new_devices
        out["new_device_now"], out["new_device_before"] = now, np.nan
        out["new_devices"] = now
    if "late_payment" in available:
        now = number("late_instalments_recent").fillna(0)
        out["late_payment"] = now >= settings.late_instalments
        out["late_payment_now"], out["late_payment_before"] = now, np.nan
        out["late_instalments"] = now
    if "missed_payment" in available:
        now = number("days_past_due").fillna(0)
        out["missed_payment"] = now >= settings.days_past_due
        out["missed_payment_now"], out["missed_payment_before"] = now, np.nan
        out["days_past_due_capped"] = now.clip(upper=120)
    if "aum_drop" in available:
        now = number("aum_change_recent")
        out["aum_drop"] = now <= settings.aum_drop
        out["aum_drop_now"], out["aum_drop_before"] = now, np.nan
        out["aum_change"] = now.fillna(0).clip(-1, 5)
    if "related_default" in available:
        now = number("related_defaulted").fillna(0)
        before = _history(grouped, "related_defaulted", snapshots).max(axis=1)
        rise = (now - before).where(before.notna(), 0)
        out["related_default"] = rise >= settings.related_defaults
        out["related_default_now"], out["related_default_before"] = now, before
        out["related_default_rise"] = rise.clip(lower=0).fillna(0)

    for name in available:
        out[name] = out[name].fillna(False).astype(bool)
    out["n_signals"] = out[available].sum(axis=1).astype(int) if available else 0
    return Signals(out, available, unavailable)


def signal_sentences(row: pd.Series, signals: Sequence[str]) -> dict[str, str]:
    """Return the triggered signals of one row as sentences in both languages."""
    texts: dict[str, list[str]] = {"zh_CN": [], "en": []}
    for name in signals:
        if not bool(row.get(name)):
            continue
        sentence = bilingual(f"risk.signal.{name}", now=_format(row.get(f"{name}_now")),
                             before=_format(row.get(f"{name}_before")))
        for locale, text in sentence.items():
            texts[locale].append(text)
    return {locale: "；".join(items) if locale == "zh_CN" else "; ".join(items) for locale, items in texts.items()}


def _format(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    number = float(value)
    if abs(number) < 1 and number != 0:
        return f"{number:.0%}"
    return f"{number:.0f}" if number.is_integer() else f"{number:.1f}"


def months_between(start: pd.Series, end: pd.Series) -> pd.Series:
    """Return whole calendar months from ``start`` to ``end`` (month of end minus month of start)."""
    start = pd.to_datetime(start)
    end = pd.to_datetime(end)
    return (end.dt.year - start.dt.year) * 12 + (end.dt.month - start.dt.month)


def outcome_in_horizon(as_of: pd.Series, default_date: pd.Series, horizon_months: int) -> pd.Series:
    """Return True where the default falls after ``as_of`` and within ``horizon_months`` of it."""
    as_of = pd.to_datetime(as_of)
    default_date = pd.to_datetime(default_date)
    end = as_of + pd.DateOffset(months=horizon_months)
    return (default_date > as_of) & (default_date <= end)


@dataclass
class WarningModel:
    """A logistic model of default within the horizon over the change features.

    Attributes
    ----------
    features : list of str
    coefficients : pandas.DataFrame
        ``feature``, ``coef`` (on standardised features), ``mean``, ``scale``.
    intercept : float
    performance : dict
        :func:`~relmap_utils.risk.metrics.discrimination` on the training rows.
    """

    features: list[str]
    coefficients: pd.DataFrame
    intercept: float
    performance: dict

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the default probability of each row."""
        table = self.coefficients
        values = frame[self.features].astype(float).fillna(0).to_numpy()
        scaled = (values - table["mean"].to_numpy()) / table["scale"].to_numpy()
        return 1.0 / (1.0 + np.exp(-(self.intercept + scaled @ table["coef"].to_numpy())))


def fit_warning_model(rows: pd.DataFrame, target: np.ndarray, features: Sequence[str],
                      random_state: int = 42) -> WarningModel | None:
    """Fit the warning model on panel rows with a known outcome.

    Returns None when the rows have one class only or no feature varies.
    """
    from sklearn.linear_model import LogisticRegression

    features = [name for name in features if name in rows.columns and rows[name].astype(float).nunique() > 1]
    target = np.asarray(target, dtype=int)
    if not features or target.min() == target.max():
        return None
    values = rows[features].astype(float).fillna(0).to_numpy()
    mean, scale = values.mean(axis=0), values.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(max_iter=1000, random_state=random_state)
    model.fit((values - mean) / scale, target)
    coefficients = pd.DataFrame({"feature": features, "coef": model.coef_[0], "mean": mean, "scale": scale})
    fitted = WarningModel(features, coefficients, float(model.intercept_[0]), {})
    fitted.performance = discrimination(fitted.predict(rows), target)
    return fitted


def backtest(
    warnings: pd.DataFrame,
    population: pd.DataFrame,
    dates: Sequence,
    horizon_months: int,
    top_k: int,
    lead_months: int,
) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Measure how early and how precisely the warnings came.

    Parameters
    ----------
    warnings : pandas.DataFrame
        Every customer and map date: ``customer_id``, ``as_of``, ``warned``
        (bool) and ``score`` (combined default probability).
    population : pandas.DataFrame
        The labelled customers: ``customer_id`` and ``default_date`` (NaT
        for customers without a default).
    dates : sequence of date
        The map dates.
    horizon_months, top_k, lead_months : int

    Returns
    -------
    summary : dict
        ``defaulters`` (defaults after the first map date), ``warned_in_advance``
        and its ``share``, ``warned_lead`` (at least ``lead_months`` ahead)
        and its share, ``median_lead_months``, ``non_defaulters``,
        ``false_alarms`` and ``false_alarm_rate``.
    monthly : pandas.DataFrame
        Per map date: customers, warned, defaults within the horizon, and
        precision and recall of the warnings and of the top ``top_k``.
    lead_times : pandas.DataFrame
        ``lead_months`` and ``customers`` among the warned defaulters.
    customers : pandas.DataFrame
        Per labelled customer: ``default_date``, ``first_warning``, ``lead_months``.
    """
    first_date = pd.Timestamp(min(dates))
    frame = warnings.merge(population[["customer_id", "default_date"]], on="customer_id", how="inner")
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    frame["default_date"] = pd.to_datetime(frame["default_date"])
    # A customer stays in the monitored population until the default date.
    frame = frame[frame["default_date"].isna() | (frame["as_of"] < frame["default_date"])]
    first_warning = frame[frame["warned"]].groupby("customer_id")["as_of"].min()

    customers = population[["customer_id", "default_date"]].copy()
    customers["default_date"] = pd.to_datetime(customers["default_date"])
    customers = customers.merge(first_warning.rename("first_warning"), left_on="customer_id",
                                right_index=True, how="left")
    customers["first_warning"] = pd.to_datetime(customers["first_warning"])
    customers["lead_months"] = months_between(customers["first_warning"], customers["default_date"])
    later = customers[customers["default_date"] > first_date]
    clean = customers[customers["default_date"].isna()]
    warned_ahead = later["first_warning"].notna()
    warned_lead = warned_ahead & (later["lead_months"] >= lead_months)
    false_alarms = int(clean["first_warning"].notna().sum())
    summary = {
        "defaulters": int(len(later)),
        "warned_in_advance": int(warned_ahead.sum()),
        "warned_in_advance_share": float(warned_ahead.mean()) if len(later) else None,
        "lead_months_target": lead_months,
        "warned_lead": int(warned_lead.sum()),
        "warned_lead_share": float(warned_lead.mean()) if len(later) else None,
        "median_lead_months": float(later.loc[warned_ahead, "lead_months"].median()) if warned_ahead.any() else None,
        "non_defaulters": int(len(clean)),
        "false_alarms": false_alarms,
        "false_alarm_rate": false_alarms / len(clean) if len(clean) else None,
        "horizon_months": horizon_months,
        "top_k": top_k,
    }
    lead_times = (later.loc[warned_ahead, "lead_months"].astype(int).value_counts().sort_index()
                  .rename_axis("lead_months").reset_index(name="customers"))

    rows = []
    for day, part in frame.groupby("as_of", sort=True):
        positive = outcome_in_horizon(part["as_of"], part["default_date"], horizon_months).to_numpy()
        warned = part["warned"].to_numpy()
        ranked = part["score"].fillna(-1).to_numpy().argsort()[::-1][:top_k]
        hits_top = int(positive[ranked].sum())
        window_end = pd.Timestamp(day) + pd.DateOffset(months=horizon_months)
        rows.append({
            "as_of": pd.Timestamp(day).date(),
            "customers": int(len(part)),
            "warned": int(warned.sum()),
            "defaults_in_horizon": int(positive.sum()),
            "horizon_complete": bool(window_end <= pd.Timestamp(max(dates))),
            "warned_precision": float(positive[warned].mean()) if warned.any() else None,
            "warned_recall": float(warned[positive].mean()) if positive.any() else None,
            "k": int(min(top_k, len(part))),
            "precision_at_k": hits_top / min(top_k, len(part)) if len(part) else None,
            "recall_at_k": hits_top / int(positive.sum()) if positive.any() else None,
        })
    monthly = pd.DataFrame(rows)
    logger.info("backtest: %s of %s defaulters warned %s+ months ahead, false-alarm rate %s",
                summary["warned_lead"], summary["defaulters"], lead_months, summary["false_alarm_rate"])
    return summary, monthly, lead_times, customers
