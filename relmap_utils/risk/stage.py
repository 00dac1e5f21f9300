"""Stage 05 entry point: screen risk indicators, build the scorecard, profile and warn.

The notebook ``notebooks/05_risk.ipynb`` calls :func:`run_stage`. The stage
reads the relationship map of the run (every map date) and the default
labels, and writes under ``artifacts/05_risk/``:

- ``indicators.parquet``: every screened variable with IV, band, KS, AUC,
  VIF, univariate and multivariate logit, status and reason;
- ``bins.parquet``: the bins of every binned variable (edges, categories,
  special values, counts, WoE), the saved form that applies to new data;
- ``correlation.parquet``, ``clusters.parquet``, ``vif.parquet``,
  ``logit.parquet``, ``scorecard.parquet``, ``performance.parquet``;
- ``profile.parquet``: per customer and map date the score, the WoE of each
  kept indicator and its change against the customer's earlier dates, the
  triggered signals, the combined default probability and its band;
- ``warnings.parquet``: warned customers per map date with the signals as
  sentences in both languages;
- ``backtest_monthly.parquet``, ``lead_times.parquet``, ``warning_model.parquet``;
- ``summary.json``: counts, settings, notices and the backtest headline.

Every file is written under a temporary name and renamed.
"""

from __future__ import annotations

import difflib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from relmap_utils.artifacts import write_json, write_parquet
from relmap_utils.context import RunContext
from relmap_utils.errors import ConfigError, StageError
from relmap_utils.i18n import Msg, bilingual
from relmap_utils.risk import warning as early
from relmap_utils.risk.binning import transform_woe
from relmap_utils.risk.metrics import discrimination
from relmap_utils.risk.params import DEFAULT_SENSITIVE, NOT_INDICATORS, PARAMS_PATH, RiskParams, make_params
from relmap_utils.risk.scorecard import Scorecard, build_scorecard
from relmap_utils.risk.screening import Screening, screen_indicators
from relmap_utils.schema import TABLES

logger = logging.getLogger(__name__)

STAGE_ID = "05_risk"
MAP_STAGE = "02_map"
BANDS = ("low", "medium", "high", "very_high")


def run_stage(ctx: RunContext, **params: Any) -> dict[str, Any]:
    """Run stage 05 on the map of the run and write its artifacts.

    Parameters
    ----------
    ctx : RunContext
        The open run.
    **params
        Settings of :class:`~relmap_utils.risk.params.RiskParams`.

    Returns
    -------
    dict
        Every artifact table by name (``indicators``, ``bins``,
        ``correlation``, ``scorecard``, ``profile``, ``warnings``,
        ``backtest_monthly``, ``lead_times``, ...; DataFrames), ``summary``
        (dict), ``screening`` (:class:`~relmap_utils.risk.screening.Screening`
        or None) and ``artifacts`` (name to path).

    Raises
    ------
    ConfigError
        When a parameter is invalid.
    StageError
        When the run has no map, or ``observation_as_of`` is not a map date.
    """
    started = time.perf_counter()
    logger.info("starting stage %s in %s", STAGE_ID, ctx.run_dir)
    settings = make_params(params)
    notices: list[Msg] = []

    panel, recent_months = load_panel(ctx, settings)
    check_variables(panel, settings)
    dates = sorted(panel["as_of"].unique())
    labels = load_labels(ctx, settings.label_type)
    if labels.empty:
        notices.append(Msg("risk.notice.no_labels", label_type=settings.label_type))
    variables = choose_indicators(panel, settings, notices)
    # A misspelled name in a consultant's own list would silently switch the protection off.
    unknown = sorted(set(settings.sensitive) - set(panel.columns) - set(DEFAULT_SENSITIVE))
    if "sensitive" in settings.model_fields_set and unknown and not settings.use_sensitive:
        raise ConfigError("risk.sensitive_unknown", variables=", ".join(unknown))
    sensitive = [name for name in settings.sensitive if name in variables] if not settings.use_sensitive else []
    if sensitive:
        notices.append(Msg("risk.notice.sensitive_excluded", variables=", ".join(sensitive)))

    observation = observation_date(dates, settings)
    notices.append(observation_notice(dates, observation, settings))
    training = training_sample(panel, labels, observation, settings)
    screening, scorecard, performance = None, None, pd.DataFrame()
    bad = int(training["bad"].sum()) if len(training) else 0
    if labels.empty:
        pass
    elif bad < settings.min_defaults:
        notices.append(Msg("risk.notice.few_defaults", bad=bad, needed=settings.min_defaults))
    else:
        screening, scorecard, performance = _screen_and_score(training, variables, sensitive, settings)
        notices.extend(screening.notices)
        if not screening.kept:
            scorecard = None

    profile = risk_profile(panel, screening, scorecard, settings)
    signals = early.compute_signals(panel, settings.warning, recent_months)
    if len(dates) < 2:
        notices.append(Msg("risk.notice.single_snapshot", as_of=_iso(dates[-1])))
    profile = profile.merge(signals.frame, on=["customer_id", "as_of"], how="left")
    profile = _mark_defaulted(profile, labels)
    model = _warning_model(profile, labels, training, dates, settings)
    profile = _combine(profile, model, settings)

    warning_list = make_warning_list(profile, signals.available)
    backtest_summary, monthly, lead_times = None, pd.DataFrame(), pd.DataFrame()
    if len(dates) >= 2 and not labels.empty:
        backtest_summary, monthly, lead_times, _ = early.backtest(
            profile[["customer_id", "as_of", "warned", "risk_pd"]].rename(columns={"risk_pd": "score"}),
            labels, dates, settings.horizon_months, settings.warning.top_k, settings.warning.lead_months)

    for notice in notices:
        logger.warning("%s", notice.render("en"))
    summary = make_summary(
        settings, dates, observation, training, screening, scorecard, performance, signals, model,
        backtest_summary, notices, sensitive, profile,
    )
    if labels.empty:
        # Without any default label nothing can be screened, scored or backtested:
        # the runner records the stage as nothing_to_do, with this reason.
        summary.update(status="skipped", **_skip_reason(Msg("risk.notice.no_labels", label_type=settings.label_type)))
    folder = ctx.artifacts(STAGE_ID)
    tables = {
        "indicators": screening.indicators if screening else pd.DataFrame(),
        "bins": screening.bins if screening else pd.DataFrame(),
        "correlation": _long_correlation(screening.correlation) if screening else pd.DataFrame(),
        "clusters": screening.clusters if screening else pd.DataFrame(),
        "vif": screening.vif if screening else pd.DataFrame(),
        "logit": screening.logit if screening else pd.DataFrame(),
        "scorecard": scorecard.table if scorecard else pd.DataFrame(),
        "performance": performance,
        "profile": _profile_columns(profile, signals.available),
        "warnings": warning_list,
        "backtest_monthly": monthly,
        "lead_times": lead_times,
        "warning_model": model.coefficients if model else pd.DataFrame(),
    }
    artifacts = {name: write_parquet(frame, folder / f"{name}.parquet") for name, frame in tables.items()}
    artifacts["summary"] = write_json(summary, folder / "summary.json")
    logger.info("finished stage %s in %.1f s", STAGE_ID, time.perf_counter() - started)
    return {**tables, "summary": summary, "screening": screening,
            "artifacts": {name: str(path) for name, path in artifacts.items()}}


def load_panel(ctx: RunContext, settings: RiskParams) -> tuple[pd.DataFrame, int]:
    """Read every map date of the run, with the extra customer columns when asked.

    Returns
    -------
    panel : pandas.DataFrame
        One row per customer and map date, ``as_of`` as a datetime64 column.
    recent_months : int
        The map's recent window.

    Raises
    ------
    StageError
        When the run has no map.
    """
    from relmap_utils.features import read_map

    folder = ctx.run_dir / "artifacts" / MAP_STAGE / "customer_map"
    if not folder.is_dir():
        raise StageError("risk.no_map", folder=str(folder))
    panel = read_map(folder)
    panel["as_of"] = pd.to_datetime(panel["as_of"])
    recent_months = 3
    summary_path = ctx.run_dir / "artifacts" / MAP_STAGE / "summary.json"
    if summary_path.is_file():
        spec = json.loads(summary_path.read_text(encoding="utf-8")).get("spec") or {}
        recent_months = int(spec.get("recent_months") or 3)
    if settings.customer_columns:
        extra = _extra_customer_columns(ctx, set(panel.columns))
        if extra is not None:
            panel = panel.merge(extra, on="customer_id", how="left")
    return panel, recent_months


def _extra_customer_columns(ctx: RunContext, present: set[str]) -> pd.DataFrame | None:
    path = ctx.tables_dir / "customers.parquet"
    if not path.is_file():
        return None
    backend = ctx.connect()
    table = backend.read_parquet(path)
    schema_columns = {column.name for column in TABLES["customers"].columns}
    extra = [name for name in table.columns if name not in schema_columns and name not in present]
    if not extra:
        return None
    return table.select("customer_id", *extra).to_pandas()


def load_labels(ctx: RunContext, label_type: str) -> pd.DataFrame:
    """Return one row per labelled customer: ``customer_id``, ``bad`` and ``default_date``.

    ``bad`` is 1 when any label row of ``label_type`` has value 1;
    ``default_date`` is the earliest date of such a row (NaT otherwise).
    Customers come in the order of their first row in the labels table.
    """
    path = ctx.tables_dir / "labels.parquet"
    empty = pd.DataFrame({"customer_id": pd.Series(dtype=str), "bad": pd.Series(dtype=int),
                          "default_date": pd.Series(dtype="datetime64[ns]"), "label_order": pd.Series(dtype=int)})
    if not path.is_file():
        return empty
    needed = ["customer_id", "label_type", "value", "label_date"]
    if not set(needed) <= set(pq.read_schema(path).names):
        return empty
    rows = pq.read_table(path, columns=needed, filters=[("label_type", "==", label_type)]).to_pandas()
    if rows.empty:
        return empty
    bad = rows["value"] == 1
    rows = rows.assign(bad=bad.astype(int), default_date=pd.to_datetime(rows["label_date"]).where(bad))
    # Customers keep the order of the labels file, not of their pseudonyms: a random split
    # over them then gives the same samples whatever the pseudonym key is.
    frame = rows.groupby("customer_id", sort=False).agg(bad=("bad", "max"), default_date=("default_date", "min"))
    frame = frame.reset_index()
    frame["label_order"] = np.arange(len(frame))
    frame["bad"] = frame["bad"].fillna(0).astype(int)
    frame["default_date"] = pd.to_datetime(frame["default_date"])
    return frame


def choose_indicators(panel: pd.DataFrame, settings: RiskParams, notices: list[Msg]) -> list[str]:
    """Return the columns to screen: ``indicators`` when given, else every non-bookkeeping column."""
    columns = [name for name in panel.columns if name not in NOT_INDICATORS]
    if settings.indicators:
        unknown = [name for name in settings.indicators if name not in panel.columns]
        if unknown:
            notices.append(Msg("risk.notice.unknown_indicator", variables=", ".join(unknown)))
        columns = [name for name in settings.indicators if name in panel.columns]
    excluded = set(settings.exclude)
    return [name for name in columns if name not in excluded]


def check_variables(panel: pd.DataFrame, settings: RiskParams) -> None:
    """Check the per-variable overrides against the map before any binning.

    Raises
    ------
    ConfigError
        Listing each ``variables.<name>`` that is not a column of the map
        (with the closest column names), and each ``breaks`` given for a
        variable that is not numeric or is declared categorical.
    """
    problems = []
    for name, override in settings.variables.items():
        path = f"{PARAMS_PATH}.variables.{name}"
        if name not in panel.columns:
            close = difflib.get_close_matches(name, [str(column) for column in panel.columns], n=3, cutoff=0.6)
            problems.append(Msg("config.problem", key=path, value=name, detail=Msg("risk.rule.variable_unknown"),
                                allowed=", ".join(close) or Msg("risk.rule.see_dictionary")))
            continue
        numeric = pd.api.types.is_numeric_dtype(panel[name]) and not pd.api.types.is_bool_dtype(panel[name])
        if override.breaks is not None and (override.dtype == "categorical" or not numeric):
            problems.append(Msg("config.problem_no_allowed", key=f"{path}.breaks", value=str(override.breaks),
                                detail=Msg("risk.rule.breaks_not_numeric", dtype=str(panel[name].dtype))))
    if problems:
        raise ConfigError("config.invalid_params", section=PARAMS_PATH, problems=problems)


def observation_notice(dates: Sequence[Any], observation: pd.Timestamp, settings: RiskParams) -> Msg:
    """Return the notice that states which map date the training snapshot uses and why."""
    last = _iso(max(dates))
    chosen = _iso(observation)
    if settings.observation_as_of:
        return Msg("risk.notice.observation_set", date=chosen)
    if settings.outcome == "any":
        return Msg("risk.notice.observation_latest_any", date=chosen)
    if observation + pd.DateOffset(months=settings.horizon_months) <= pd.Timestamp(max(dates)):
        return Msg("risk.notice.observation_window", date=chosen, months=settings.horizon_months, last=last)
    return Msg("risk.notice.observation_short", date=chosen, months=settings.horizon_months, last=last)


def observation_date(dates: Sequence[Any], settings: RiskParams) -> pd.Timestamp:
    """Return the map date of the training snapshot.

    Raises
    ------
    StageError
        When ``observation_as_of`` is set but is not a map date.
    """
    stamps = [pd.Timestamp(day) for day in dates]
    if settings.observation_as_of:
        chosen = pd.Timestamp(settings.observation_as_of)
        if chosen not in stamps:
            raise StageError("risk.bad_observation_date", as_of=settings.observation_as_of,
                             dates=", ".join(day.date().isoformat() for day in stamps))
        return chosen
    if settings.outcome == "any":
        return stamps[-1]
    complete = [day for day in stamps if day + pd.DateOffset(months=settings.horizon_months) <= stamps[-1]]
    return complete[-1] if complete else stamps[0]


def training_sample(panel: pd.DataFrame, labels: pd.DataFrame, observation: pd.Timestamp,
                    settings: RiskParams) -> pd.DataFrame:
    """Return the labelled customers at the observation date with the column ``bad``.

    Under ``outcome: horizon`` customers who defaulted on or before the
    observation date are left out, and ``bad`` marks a default within the
    horizon after it.
    """
    rows = panel[panel["as_of"] == observation]
    frame = rows.merge(labels, on="customer_id", how="inner", suffixes=("", "_label"))
    if settings.outcome == "horizon":
        frame = frame[frame["default_date"].isna() | (frame["default_date"] > observation)].copy()
        frame["bad"] = early.outcome_in_horizon(frame["as_of"], frame["default_date"],
                                                settings.horizon_months).astype(int)
    return frame.sort_values("label_order", kind="stable").reset_index(drop=True)


def _split(target: np.ndarray, settings: RiskParams) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(target))
    return train_test_split(rows, test_size=settings.test_share, stratify=target,
                            random_state=settings.random_state)


def _screen_and_score(training: pd.DataFrame, variables: list[str], sensitive: list[str],
                      settings: RiskParams) -> tuple[Screening, Scorecard | None, pd.DataFrame]:
    target = training["bad"].to_numpy()
    train_rows, test_rows = _split(target, settings)
    train = training.iloc[train_rows].reset_index(drop=True)
    test = training.iloc[test_rows].reset_index(drop=True)
    screening = screen_indicators(train, target[train_rows], variables, settings, sensitive)
    if not screening.kept:
        return screening, None, pd.DataFrame()

    scorecard = build_scorecard(screening.bins, screening.logit, settings.scorecard)
    rows = []
    for name, part, y in (("train", train, target[train_rows]), ("test", test, target[test_rows])):
        probability = scorecard.probability(scorecard.score(part))
        rows.append({"sample": name, **discrimination(probability, y)})
    performance = pd.DataFrame(rows)
    logger.info("scorecard on %d indicators: test AUC %s, KS %s", len(screening.kept),
                performance.iloc[1]["auc"], performance.iloc[1]["ks"])
    training["sample"] = "train"
    training.loc[test_rows, "sample"] = "test"
    return screening, scorecard, performance


def risk_profile(panel: pd.DataFrame, screening: Screening | None, scorecard: Scorecard | None,
                 settings: RiskParams) -> pd.DataFrame:
    """Compute the level of each kept indicator and its change against the customer's own history.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``as_of``, ``points`` (scorecard points, NaN without
        a scorecard), ``pd_level`` (the probability the points stand for),
        and per kept indicator ``woe_<name>`` and ``woe_change_<name>``: the
        WoE at the date minus the mean WoE of the customer's earlier dates
        (up to ``warning.history_snapshots``). A positive change means the
        indicator moved to a riskier bin.
    """
    frame = panel[["customer_id", "as_of"]].copy()
    if scorecard is None or screening is None:
        frame["points"] = np.nan
        frame["pd_level"] = np.nan
        return frame.sort_values(["customer_id", "as_of"]).reset_index(drop=True)

    frame["points"] = scorecard.score(panel)
    frame["pd_level"] = scorecard.probability(frame["points"])
    woe = transform_woe(screening.bins, panel, scorecard.variables)
    for name in scorecard.variables:
        frame[f"woe_{name}"] = woe[name].to_numpy()
    frame = frame.sort_values(["customer_id", "as_of"]).reset_index(drop=True)
    grouped = frame.groupby("customer_id", sort=False)
    snapshots = settings.warning.history_snapshots
    for name in scorecard.variables:
        column = f"woe_{name}"
        earlier = pd.concat({lag: grouped[column].shift(lag) for lag in range(1, snapshots + 1)}, axis=1)
        frame[f"woe_change_{name}"] = frame[column] - earlier.mean(axis=1)
    return frame


def _warning_model(profile: pd.DataFrame, labels: pd.DataFrame, training: pd.DataFrame,
                   dates: Sequence[Any], settings: RiskParams) -> early.WarningModel | None:
    if labels.empty or len(dates) < 2:
        return None
    last = pd.Timestamp(max(dates))
    frame = profile.merge(labels, on="customer_id", how="inner")
    frame = frame[frame["default_date"].isna() | (frame["as_of"] < frame["default_date"])]
    complete = frame["as_of"] + pd.DateOffset(months=settings.horizon_months) <= last
    frame = frame[complete]
    if "sample" in training.columns:
        # The model learns from the scorecard's training customers only, so the
        # test customers stay out of sample for both.
        test_customers = set(training.loc[training["sample"] == "test", "customer_id"])
        frame = frame[~frame["customer_id"].isin(test_customers)]
    target = early.outcome_in_horizon(frame["as_of"], frame["default_date"], settings.horizon_months).astype(int)
    if int(target.sum()) < settings.min_defaults:
        return None
    features = [*early.MODEL_FEATURES, "pd_level"]
    return early.fit_warning_model(frame, target.to_numpy(), features, settings.random_state)


def _mark_defaulted(profile: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    # A customer already in default is no longer warned: the risk is in the books.
    default_date = profile["customer_id"].map(labels.set_index("customer_id")["default_date"]) if len(labels) else None
    profile = profile.copy()
    profile["defaulted"] = (pd.to_datetime(default_date) <= profile["as_of"]) if default_date is not None else False
    return profile


def _combine(profile: pd.DataFrame, model: early.WarningModel | None, settings: RiskParams) -> pd.DataFrame:
    profile = profile.copy()
    if model is not None:
        profile["model_pd"] = model.predict(profile)
    else:
        profile["model_pd"] = np.nan
    profile["risk_pd"] = profile["model_pd"].where(profile["model_pd"].notna(), profile["pd_level"])
    cuts = [-np.inf, *settings.risk_bands, np.inf]
    profile["risk_band"] = pd.cut(profile["risk_pd"], cuts, labels=list(BANDS), right=False).astype(object)
    rules = profile["n_signals"].fillna(0) >= settings.warning.min_signals
    by_model = profile["model_pd"].fillna(0) >= settings.warning.model_threshold
    profile["warned"] = (rules | by_model) & ~profile["defaulted"]
    profile["warned_by"] = np.where(profile["warned"], np.select(
        [rules & by_model, rules, by_model], ["rules_and_model", "rules", "model"], ""), "")
    return profile


def make_warning_list(profile: pd.DataFrame, signals: Sequence[str]) -> pd.DataFrame:
    """Return the warned customers per map date with their signals in both languages, riskiest first."""
    warned = profile[profile["warned"]].copy()
    columns = ["customer_id", "as_of", "warned_by", "n_signals", "signals", "risk_pd", "risk_band",
               "reasons_zh", "reasons_en"]
    if warned.empty:
        return pd.DataFrame(columns=columns)
    warned["signals"] = [", ".join(name for name in signals if bool(row[name])) for _, row in warned.iterrows()]
    sentences = [early.signal_sentences(row, signals) for _, row in warned.iterrows()]
    model_text = bilingual("risk.signal.model")
    for locale, column in (("zh_CN", "reasons_zh"), ("en", "reasons_en")):
        texts = []
        separator = "；" if locale == "zh_CN" else "; "
        for sentence, by in zip(sentences, warned["warned_by"]):
            parts = [sentence[locale]] if sentence[locale] else []
            if by in ("model", "rules_and_model"):
                parts.append(model_text[locale])
            texts.append(separator.join(parts))
        warned[column] = texts
    warned["as_of"] = pd.to_datetime(warned["as_of"]).dt.date
    return warned.sort_values(["as_of", "risk_pd"], ascending=[False, False])[columns].reset_index(drop=True)


def _profile_columns(profile: pd.DataFrame, signals: Sequence[str]) -> pd.DataFrame:
    keep = ["customer_id", "as_of", "points", "pd_level", "model_pd", "risk_pd", "risk_band", "defaulted", "warned",
            "warned_by",
            "n_signals",
            *signals, *[name for name in profile.columns if name.startswith("woe_")]]
    frame = profile[[name for name in keep if name in profile.columns]].copy()
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    return frame


def _long_correlation(matrix: pd.DataFrame) -> pd.DataFrame:
    if matrix.empty:
        return pd.DataFrame(columns=["variable", "other", "spearman"])
    frame = matrix.stack().rename("spearman").reset_index()
    frame.columns = ["variable", "other", "spearman"]
    return frame


def _iso(value: Any) -> str:
    return pd.Timestamp(value).date().isoformat()


def make_summary(settings: RiskParams, dates: Sequence[Any], observation: pd.Timestamp, training: pd.DataFrame,
                 screening: Screening | None, scorecard: Scorecard | None, performance: pd.DataFrame,
                 signals: early.Signals, model: early.WarningModel | None, backtest_summary: dict | None,
                 notices: Sequence[Msg], sensitive: Sequence[str], profile: pd.DataFrame) -> dict[str, Any]:
    """Return the content of summary.json, headline cards and findings included."""
    test = performance[performance["sample"] == "test"].iloc[0].to_dict() if len(performance) else {}
    latest = profile[profile["as_of"] == profile["as_of"].max()]
    bands = {band: int((latest["risk_band"] == band).sum()) for band in BANDS}
    headline = [
        _card("risk.headline.kept", len(screening.kept) if screening else 0, "number"),
        _card("risk.headline.test_auc", test.get("auc"), "score"),
        _card("risk.headline.test_ks", test.get("ks"), "score"),
        _card("risk.headline.warned_latest", int(latest["warned"].sum()), "number"),
    ]
    if backtest_summary:
        headline += [
            _card("risk.headline.warned_lead_share", backtest_summary["warned_lead_share"], "percent",
                  months=backtest_summary["lead_months_target"]),
            _card("risk.headline.false_alarm_rate", backtest_summary["false_alarm_rate"], "percent"),
        ]
    findings = [
        {"severity": "info", **_message_pair(notice)} for notice in notices
    ]
    return {
        "stage": STAGE_ID,
        "as_of_dates": [_iso(day) for day in dates],
        "observation_as_of": _iso(observation),
        "outcome": settings.outcome,
        "horizon_months": settings.horizon_months,
        "training": {
            "customers": int(len(training)),
            "defaulters": int(training["bad"].sum()) if len(training) else 0,
        },
        "woe_convention": bilingual("risk.report.woe_convention"),
        "zero_cell_rule": settings.zero_cell_rule,
        "indicators": {
            "screened": int(len(screening.indicators)) if screening else 0,
            "binned": int(len(screening.binnings)) if screening else 0,
            "kept": list(screening.kept) if screening else [],
        },
        "sensitive_excluded": list(sensitive),
        "performance": performance.to_dict(orient="records"),
        "scorecard": {
            "base_score": settings.scorecard.base_score,
            "base_odds": settings.scorecard.base_odds,
            "pdo": settings.scorecard.pdo,
            "factor": scorecard.factor if scorecard else None,
            "offset": scorecard.offset if scorecard else None,
            "intercept": scorecard.intercept if scorecard else None,
        },
        "signals": {"available": signals.available, "unavailable": signals.unavailable},
        "warning_model": {"features": model.features, "train": model.performance} if model else None,
        "risk_bands": {"cuts": list(settings.risk_bands), "latest": bands},
        "backtest": backtest_summary,
        "notices": [_message_pair(notice) for notice in notices],
        "params": settings.model_dump(mode="json"),
        "headline_metrics": headline,
        "headline_findings": findings,
    }


def _skip_reason(notice: Msg) -> dict[str, str]:
    """Return the ``reason``, ``message_zh`` and ``message_en`` fields of a skipped stage's summary."""
    return {"reason": notice.key, "message_zh": notice.render("zh_CN"), "message_en": notice.render("en")}


def _message_pair(notice: Msg) -> dict[str, str]:
    return {"key": notice.key, "message_zh": notice.render("zh_CN"), "message_en": notice.render("en")}


def _card(key: str, value: Any, kind: str, **params: Any) -> dict[str, Any]:
    if value is not None and isinstance(value, float) and np.isnan(value):
        value = None
    return {"label": bilingual(key, **params), "value": value, "format": kind}

