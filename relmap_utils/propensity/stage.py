"""Stage 04 entry point: per-product propensity models, reasons, next best product and campaign lists.

The notebook ``notebooks/04_propensity.ipynb`` calls :func:`run_stage`. It
reads the relationship map (``artifacts/02_map``) and the take-up labels of
the run and writes, under ``artifacts/04_propensity/``:

- ``products.parquet``: every product with its status (modelled or skipped)
  and the reason in both languages;
- ``metrics.parquet``, ``gains.parquet``, ``reliability.parquet``: AUC, Gini,
  KS, capture and Brier per product, model and sample; gains by decile;
  reliability curves;
- ``importance.parquet``, ``shap_sample.parquet``: global SHAP importance and
  the values behind the dependence plots, with the explainer used;
- ``logit_<product>.parquet``, ``calibration_<product>.parquet``,
  ``model_<product>.skops``, ``categories.json`` and ``models.json`` (sha256
  of every model file);
- ``scores.parquet`` (customer, product, calibrated probability, decile,
  exclusion), ``next_best.parquet``, ``reasons.parquet``;
- ``campaign/<product>.csv`` and ``.xlsx``: the top N eligible customers;
- ``model_docs/<product>.md``: the model documentation page;
- ``summary.json``;

and ``reports/04_propensity.html``. Every file is written under a temporary
name and renamed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from relmap_utils.artifacts import write_json, write_parquet
from relmap_utils import schema
from relmap_utils.context import RunContext
from relmap_utils.errors import StageError
from relmap_utils.i18n import tr
from relmap_utils.propensity import data as data_module
from relmap_utils.propensity import explain as explain_module
from relmap_utils.propensity import metrics as metrics_module
from relmap_utils.propensity import models, nbp, storage
from relmap_utils.propensity.data import Skip
from relmap_utils.propensity.params import PropensityParams, check_parameters

logger = logging.getLogger(__name__)

STAGE_ID = "04_propensity"
MAP_STAGE = "02_map"
BACKGROUND_ROWS = 100
TOP_SHAP_FEATURES = 5
# Missing inputs that skip the whole stage with a stated reason rather than fail it.
NOTHING_TO_MODEL = ("propensity.no_labels", "propensity.no_takeup_labels", "propensity.products_not_found")


def run_stage(ctx: RunContext, **params: Any) -> dict[str, Any]:
    """Model take-up of each product and write the stage's artifacts.

    Parameters
    ----------
    ctx : RunContext
        The open run.
    **params
        ``stages.propensity.params`` (see :class:`PropensityParams` and
        docs/propensity.md).

    Returns
    -------
    dict
        ``summary`` (dict), ``products``, ``metrics``, ``gains``,
        ``reliability``, ``importance``, ``next_best`` (DataFrames),
        ``campaigns`` (product to file paths), ``artifacts`` and ``report``.

    Raises
    ------
    ConfigError
        When a parameter is invalid.
    StageError
        When labels or the map are missing, a feature name is absent, or the
        map date lies inside the label window.
    """
    started = time.perf_counter()
    logger.info("starting stage %s in %s", STAGE_ID, ctx.run_dir)
    settings = check_parameters(params)
    backend = ctx.connect()
    tables = ctx.canonical_tables(backend)
    try:
        raw_labels = data_module.load_labels(backend, tables, settings)
    except StageError as exc:
        if exc.key not in NOTHING_TO_MODEL:
            raise
        return skip_stage(ctx, exc, settings)
    window_start = settings.label_window_start or min(raw_labels["label_date"])

    inputs = load_inputs(ctx, tables, settings, window_start, max(raw_labels["label_date"]))
    folder = ctx.artifacts(STAGE_ID)
    products = settings.products or sorted(raw_labels["product"].unique())
    from threadpoolctl import threadpool_limits

    # The trees' OpenMP threads wait for each other on a busy machine; many small
    # predictions (the SHAP fallback) ran ten times slower with all cores than with one.
    with threadpool_limits(limits=settings.threads, user_api="openmp"):
        results = [model_product(product, raw_labels, inputs, settings, tables, folder) for product in products]
        outcome = assemble(results, inputs, settings, folder, ctx)
    outcome["summary"] = make_summary(results, inputs, settings, window_start, time.perf_counter() - started)
    write_json(outcome["summary"], folder / "summary.json")
    from relmap_utils.propensity import report

    outcome["report"] = str(report.write_html_report(ctx.reports_dir / f"{STAGE_ID}.html", outcome,
                                                     ctx.engagement.locale, ctx.engagement.name, ctx.run_dir.name,
                                                     labels=report.product_labels(ctx.engagement)))
    logger.info("finished stage %s in %.1f s: %d products modelled, %d skipped", STAGE_ID,
                time.perf_counter() - started, outcome["summary"]["products_modelled"],
                outcome["summary"]["products_skipped"])
    return outcome


def skip_stage(ctx: RunContext, reason: StageError, settings: PropensityParams) -> dict[str, Any]:
    """Finish without models when the run has no take-up labels, stating the reason in summary.json."""
    logger.warning("stage %s skipped: %s", STAGE_ID, reason.render("en"))
    folder = ctx.artifacts(STAGE_ID)
    summary = {"stage": STAGE_ID, "status": "skipped", "reason": reason.key,
               "message_zh": reason.render("zh_CN"), "message_en": reason.render("en"),
               "split": settings.split.method, "products_modelled": 0, "products_skipped": 0, "products": {},
               "parameters": settings.model_dump(mode="json")}
    write_json(summary, folder / "summary.json")
    empty = pd.DataFrame()
    outcome: dict[str, Any] = {name: empty for name in (
        "products", "metrics", "gains", "reliability", "importance", "shap_sample", "scores", "next_best", "reasons")}
    outcome.update(summary=summary, campaigns={}, model_docs={}, inputs=None,
                   artifacts={"summary": str(folder / "summary.json")})
    from relmap_utils.propensity import report

    outcome["report"] = str(report.write_html_report(ctx.reports_dir / f"{STAGE_ID}.html", outcome,
                                                     ctx.engagement.locale, ctx.engagement.name, ctx.run_dir.name,
                                                     labels=report.product_labels(ctx.engagement)))
    return outcome


class Inputs:
    """The feature frames, encodings and feature dictionary shared by every product."""

    def __init__(self, **items: Any) -> None:
        self.__dict__.update(items)


def load_inputs(ctx: RunContext, tables: Mapping[str, Any], settings: PropensityParams,
                window_start: dt.date, last_label: dt.date | None = None) -> Inputs:
    """Read the training and scoring frames, pick the features and encode them.

    Raises
    ------
    StageError
        See :func:`~relmap_utils.propensity.data.choose_features_date` and
        :func:`~relmap_utils.propensity.data.select_features`.
    """
    from relmap_utils.features import read_map

    map_folder = ctx.run_dir / "artifacts" / MAP_STAGE / "customer_map"
    extra = data_module.customer_columns(tables, settings.customer_columns) if settings.customer_columns else None
    if settings.map_features:
        dates = data_module.map_partitions(map_folder)
        features_as_of = data_module.choose_features_date(dates, window_start, settings.features_as_of)
        scoring_as_of = settings.scoring_as_of or dates[-1]
        train_frame = read_map(map_folder, features_as_of).drop(columns="as_of")
        score_frame = train_frame if scoring_as_of == features_as_of else \
            read_map(map_folder, scoring_as_of).drop(columns="as_of")
        if extra is not None:
            train_frame = train_frame.merge(extra, on="customer_id", how="left", suffixes=("", "_customers"))
            score_frame = score_frame.merge(extra, on="customer_id", how="left", suffixes=("", "_customers"))
    else:
        if extra is None:
            raise StageError("propensity.no_feature_source")
        # Customer columns are a single snapshot: it is scored as of the last label date.
        features_as_of, scoring_as_of = None, settings.scoring_as_of or last_label
        train_frame = score_frame = extra

    personal = [column.name for column in schema.table("customers").columns if column.personal]
    personal += [item.column.split(".", 1)[1] for item in ctx.engagement.privacy.personal_data
                 if item.column.startswith("customers.")]
    features, dropped = data_module.select_features(train_frame, settings, personal)
    matrix, categories = data_module.encode_frame(train_frame, features)
    dictionary = feature_texts(ctx.run_dir / "artifacts" / MAP_STAGE / "feature_dictionary.parquet", features)
    return Inputs(
        train_frame=train_frame.reset_index(drop=True), score_frame=score_frame.reset_index(drop=True),
        matrix=matrix, categories=categories, features=features, dropped=dropped,
        categorical=np.array([name in categories for name in features]), dictionary=dictionary,
        features_as_of=features_as_of, scoring_as_of=scoring_as_of,
        score_matrix=matrix if score_frame is train_frame else data_module.encode_frame(
            score_frame, features, categories)[0],
        policy_frame=policy_frame(tables, settings),
    )


def feature_texts(path: Path, features: list[str]) -> dict[str, dict[str, str]]:
    """Return each feature's Chinese and English description and unit, from the map's feature dictionary.

    A feature the dictionary does not list (a customers column) takes the
    canonical schema's description, or its own name.
    """
    texts: dict[str, dict[str, str]] = {}
    if path.is_file():
        frame = pd.read_parquet(path)
        for row in frame.itertuples():
            texts[row.name] = {"zh_CN": row.description_zh, "en": row.description_en, "unit": row.unit}
    customers = schema.table("customers")
    for name in features:
        if name not in texts:
            column = customers.column(name)
            texts[name] = {"zh_CN": column.description_zh if column else name,
                           "en": column.description_en if column else name,
                           "unit": "yuan" if column is not None and column.type == "amount" else ""}
    return {name: texts[name] for name in features}


def policy_frame(tables: Mapping[str, Any], settings: PropensityParams) -> pd.DataFrame | None:
    """Read the contact-policy columns of the customers table, when any are configured."""
    policy = settings.campaign.contact_policy
    named = [name for name in (policy.opted_out, policy.open_complaint, policy.last_contact) if name]
    if not named:
        return None
    customers = tables["customers"]
    absent = sorted(set(named) - set(customers.columns))
    if absent:
        raise StageError("propensity.absent_columns", where="campaign.contact_policy", columns=", ".join(absent),
                         present=", ".join(sorted(customers.columns)))
    return customers.select("customer_id", *named).execute()


def held_customers(tables: Mapping[str, Any], code: str | None, as_of: dt.date | None) -> set[str]:
    """Customers with an open account of product ``code`` on ``as_of`` (accounts table)."""
    if not code or "accounts" not in tables or "product_code" not in tables["accounts"].columns:
        return set()
    accounts = tables["accounts"]
    chosen = accounts.filter(accounts.product_code == code)
    if as_of is not None and "open_date" in accounts.columns:
        chosen = chosen.filter(chosen.open_date.isnull() | (chosen.open_date <= as_of))
    if as_of is not None and "close_date" in accounts.columns:
        chosen = chosen.filter(chosen.close_date.isnull() | (chosen.close_date > as_of))
    return set(chosen.select("customer_id").distinct().execute()["customer_id"])


def model_product(product: str, raw_labels: pd.DataFrame, inputs: Inputs, settings: PropensityParams,
                  tables: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """Fit, calibrate, evaluate, explain and score one product; return its results or its skip reason."""
    began = time.perf_counter()
    labels, skip = data_module.product_labels(raw_labels, product)
    if skip is not None:
        return _skipped(skip)
    held = held_customers(tables, settings.product_codes.get(product), inputs.scoring_as_of)
    scoring_ids = inputs.score_frame["customer_id"]
    if len(scoring_ids) and scoring_ids.isin(held).all():
        return _skipped(Skip(product, "propensity.skip.held_by_all", {"customers": int(len(scoring_ids))}))
    positives = int(labels["target"].sum())
    if positives == len(labels):
        return _skipped(Skip(product, "propensity.skip.all_positive", {"rows": int(len(labels))}))
    if positives < settings.min_positives:
        return _skipped(Skip(product, "propensity.skip.too_few_positives",
                             {"positives": positives, "floor": settings.min_positives}))
    index = pd.Series(np.arange(len(inputs.train_frame)), index=inputs.train_frame["customer_id"])
    known = labels["customer_id"].isin(index.index)
    if not known.all():
        logger.warning("product %s: %d labelled customers are not in the feature table and are left out",
                       product, int((~known).sum()))
    labels = labels[known].reset_index(drop=True)
    rows = index.loc[labels["customer_id"]].to_numpy()
    target = labels["target"].to_numpy()
    test_mask, cutoff = data_module.split_rows(labels, settings)
    train_rows, test_rows = rows[~test_mask], rows[test_mask]
    y_train, y_test = target[~test_mask], target[test_mask]
    if y_train.sum() < 2 or (1 - y_train).sum() < 2:
        return _skipped(Skip(product, "propensity.skip.train_one_class",
                             {"train_positives": int(y_train.sum()), "train_rows": int(len(y_train))}))
    if len(y_test) == 0:
        # A cut-off after the last label leaves nothing to test, so no figure of the model could be trusted.
        last = pd.to_datetime(labels["label_date"]).max().date().isoformat()
        return _skipped(Skip(product, "propensity.skip.no_test_rows",
                             {"cutoff": str(cutoff), "last_label": last}))
    logger.info("product %s: %d train rows (%d takers), %d test rows (%d takers)", product, len(y_train),
                int(y_train.sum()), len(y_test), int(y_test.sum()))

    from sklearn.model_selection import train_test_split

    fit_part, calibration_part = train_test_split(np.arange(len(train_rows)), test_size=0.2,
                                                  random_state=settings.seed, stratify=y_train)
    matrix = inputs.matrix
    model = models.fit_boosted(matrix[train_rows[fit_part]], y_train[fit_part], inputs.categorical,
                               class_weight=None if settings.class_weight == "none" else "balanced",
                               max_iter=settings.max_iter, learning_rate=settings.learning_rate, seed=settings.seed)
    calibrator = models.fit_calibrator(model.predict_proba(matrix[train_rows[calibration_part]])[:, 1],
                                       y_train[calibration_part], settings.calibration)

    def probability(selected: np.ndarray, source: np.ndarray = matrix) -> np.ndarray:
        return calibrator(model.predict_proba(source[selected])[:, 1]) if len(selected) else np.empty(0)

    p_train, p_test = probability(train_rows), probability(test_rows)
    frame = inputs.train_frame
    logit_features = models.choose_logit_features(frame.loc[train_rows, inputs.features], y_train,
                                                  list(inputs.categories), settings.logit_features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.SeparationWarning)
        logit = models.fit_logit(frame.loc[train_rows, logit_features], y_train)
    for item in logit.separation:
        logger.warning("product %s: feature %s separates takers (%s); left out of the logistic baseline",
                       product, item.feature, item.rule)

    metric_rows, gains_rows = [], []
    for sample, selected, y, p in (("train", train_rows, y_train, p_train), ("test", test_rows, y_test, p_test)):
        for model_name, score in (("boosted", p), ("logit", logit.predict(frame.loc[selected, :]))):
            group = f"{product}/{model_name}/{sample}"
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", metrics_module.OneClassWarning)
                values = metrics_module.summary_metrics(y, score, p if model_name == "boosted" else score, group)
                gains = metrics_module.gains_table(y, score, group=group) if len(y) else pd.DataFrame()
            for item in caught:
                if issubclass(item.category, metrics_module.OneClassWarning):
                    logger.warning("%s", item.message)
            metric_rows.append({"product": product, "model": model_name, "sample": sample, **values})
            if len(gains):
                gains_rows.append(gains.assign(product=product, model=model_name, sample=sample))
    reliability = pd.concat([
        metrics_module.reliability_table(y, p).assign(product=product, sample=sample)
        for sample, y, p in (("train", y_train, p_train), ("test", y_test, p_test)) if len(y)
    ], ignore_index=True)

    rng = np.random.default_rng(settings.seed)
    background = matrix[rng.choice(train_rows, size=min(BACKGROUND_ROWS, len(train_rows)), replace=False)]
    sample_rows = rng.choice(train_rows, size=min(settings.explain_sample, len(train_rows)), replace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", explain_module.AdditivityWarning)
        explanation = explain_module.explain(model, matrix[sample_rows], background, seed=settings.seed,
                                             workers=settings.threads)
    importance = explain_module.global_importance(explanation, inputs.features).assign(
        product=product, method=explanation.method)
    top = importance["feature"].head(TOP_SHAP_FEATURES).tolist()
    shap_sample = pd.concat([
        pd.DataFrame({"product": product, "feature": name,
                      "value": frame.loc[sample_rows, name].astype("string").to_numpy(),
                      "numeric": pd.to_numeric(frame.loc[sample_rows, name], errors="coerce").to_numpy(dtype=float),
                      "shap": explanation.values[:, inputs.features.index(name)]})
        for name in top], ignore_index=True)
    logger.info("product %s: SHAP by %s explainer on %d rows, additivity error %.2g", product,
                explanation.method, len(sample_rows), explanation.max_additivity_error)

    score_frame = inputs.score_frame
    scores = pd.DataFrame({"customer_id": score_frame["customer_id"].to_numpy(), "product": product,
                           "probability": probability(np.arange(len(score_frame)), inputs.score_matrix)})
    taken = set(labels.loc[labels["target"] == 1, "customer_id"])
    scores["held"] = scores["customer_id"].isin(held | taken)

    files = {
        "boosted": {"path": f"model_{product}.skops",
                    "sha256": storage.save_model(model, folder / f"model_{product}.skops")},
        "logit": _parquet_entry(logit.coefficients.assign(product=product), folder, f"logit_{product}.parquet"),
        "calibration": _parquet_entry(calibrator.table(), folder, f"calibration_{product}.parquet"),
    }
    return {
        "product": product, "status": "modelled", "skip": None, "model": model, "calibrator": calibrator,
        "logit": logit, "metrics": metric_rows, "gains": gains_rows, "reliability": reliability,
        "importance": importance, "shap_sample": shap_sample, "explanation": explanation.as_dict(),
        "scores": scores, "files": files, "cutoff": cutoff, "labels": int(len(labels)),
        "train": {"rows": int(len(y_train)), "takers": int(y_train.sum()),
                  "first": _iso(min(labels.loc[~test_mask, "label_date"], default=None)),
                  "last": _iso(max(labels.loc[~test_mask, "label_date"], default=None))},
        "test": {"rows": int(len(y_test)), "takers": int(y_test.sum()),
                 "first": _iso(min(labels.loc[test_mask, "label_date"], default=None)),
                 "last": _iso(max(labels.loc[test_mask, "label_date"], default=None))},
        "trees": int(model.n_iter_), "seconds": round(time.perf_counter() - began, 2),
    }


def _skipped(skip: Skip) -> dict[str, Any]:
    logger.warning("product %s skipped: %s", skip.product, skip.as_dict()["message_en"])
    return {"product": skip.product, "status": "skipped", "skip": skip}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else None


def _parquet_entry(frame: pd.DataFrame, folder: Path, name: str) -> dict[str, str]:
    from relmap_utils.manifest import sha256_file

    write_parquet(frame, folder / name)
    return {"path": name, "sha256": sha256_file(folder / name)}


def assemble(results: list[dict[str, Any]], inputs: Inputs, settings: PropensityParams, folder: Path,
             ctx: RunContext) -> dict[str, Any]:
    """Combine the products' results, rank next best products, build campaign lists and write the tables."""
    modelled = [item for item in results if item["status"] == "modelled"]
    products = pd.DataFrame([_product_row(item) for item in results])
    metrics = pd.DataFrame([row for item in modelled for row in item["metrics"]])
    gains = _concat([frame for item in modelled for frame in item["gains"]])
    reliability = _concat([item["reliability"] for item in modelled])
    importance = _concat([item["importance"] for item in modelled])
    shap_sample = _concat([item["shap_sample"] for item in modelled])
    scores = _concat([item["scores"] for item in modelled])

    campaigns, reasons = {}, []
    if len(scores):
        from relmap_utils.propensity import report

        names = report.product_labels(ctx.engagement)
        scores = add_exclusions(scores, inputs, settings)
        for item in modelled:
            product = item["product"]
            own = scores[scores["product"] == product]
            chosen = nbp.campaign_list(own, settings.campaign.top_n)
            reason = explain_rows(item, inputs, chosen["customer_id"], settings)
            reasons.append(reason)
            listed = chosen[["customer_id", "probability", "decile"]].merge(reason, on="customer_id", how="left")
            listed.insert(0, "rank", np.arange(1, len(listed) + 1))
            listed = with_product_name(listed, product, ctx.engagement.locale, names)
            campaigns[product] = {kind: str(path) for kind, path in nbp.write_campaign_files(
                listed.drop(columns=[c for c in listed.columns if c.endswith("_feature")]),
                folder / "campaign", product, campaign_headers(ctx.engagement.locale)).items()}
    next_best = nbp.next_best(scores[scores["excluded"].isin(["", "held"])], settings.product_values) \
        if len(scores) else pd.DataFrame(columns=["customer_id", "product", "rank"])
    reasons_frame = _concat(reasons)
    artifacts = {
        "products": write_parquet(products, folder / "products.parquet"),
        "metrics": write_parquet(metrics, folder / "metrics.parquet"),
        "gains": write_parquet(gains, folder / "gains.parquet"),
        "reliability": write_parquet(reliability, folder / "reliability.parquet"),
        "importance": write_parquet(importance, folder / "importance.parquet"),
        "shap_sample": write_parquet(shap_sample, folder / "shap_sample.parquet"),
        "scores": write_parquet(scores, folder / "scores.parquet"),
        "next_best": write_parquet(next_best, folder / "next_best.parquet"),
        "reasons": write_parquet(reasons_frame, folder / "reasons.parquet"),
        "categories": write_json(inputs.categories, folder / "categories.json"),
        "models": storage.write_registry(folder, {
            item["product"]: {"files": item["files"], "features": inputs.features,
                              "categorical": [name for name in inputs.features if name in inputs.categories]}
            for item in modelled}),
    }
    from relmap_utils.propensity import report

    docs = {item["product"]: str(report.write_model_doc(folder / "model_docs", item, inputs, settings))
            for item in modelled}
    return {"products": products, "metrics": metrics, "gains": gains, "reliability": reliability,
            "importance": importance, "shap_sample": shap_sample, "scores": scores, "next_best": next_best,
            "reasons": reasons_frame, "campaigns": campaigns, "model_docs": docs,
            "artifacts": {name: str(path) for name, path in artifacts.items()}, "inputs": inputs}


def _product_row(item: dict[str, Any]) -> dict[str, Any]:
    if item["status"] == "skipped":
        return {"product": item["product"], "status": "skipped", **{k: v for k, v in item["skip"].as_dict().items()
                                                                    if k != "product"}}
    return {"product": item["product"], "status": "modelled", "reason": "", "message_zh": "", "message_en": ""}


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [frame for frame in frames if frame is not None and len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def add_exclusions(scores: pd.DataFrame, inputs: Inputs, settings: PropensityParams) -> pd.DataFrame:
    """Add ``decile`` (among customers not holding the product) and ``excluded`` (first reason, or empty)."""
    campaign = settings.campaign
    ids = inputs.score_frame["customer_id"]
    policy_source = inputs.policy_frame if inputs.policy_frame is not None else pd.DataFrame({"customer_id": ids})
    policy = nbp.contact_exclusions(policy_source, campaign, inputs.scoring_as_of)
    policy = policy.set_index("customer_id")
    tolerance_feature = campaign.suitability.tolerance_feature
    tolerance = inputs.score_frame.set_index("customer_id")[tolerance_feature] \
        if tolerance_feature in inputs.score_frame.columns else pd.Series(None, index=ids, dtype="string")
    parts = []
    for product, own in scores.groupby("product", sort=False):
        own = own.copy()
        level = campaign.suitability.risk_levels.get(product)
        fit = nbp.suitable(tolerance.reindex(own["customer_id"]).reset_index(drop=True), level)
        own_policy = policy.reindex(own["customer_id"]).fillna(False).reset_index(drop=True)
        own["excluded"] = nbp.exclusion_text(own["held"].to_numpy(), own_policy, fit)
        own["decile"] = 0
        open_rows = ~own["held"].to_numpy()
        own.loc[open_rows, "decile"] = nbp.decile_of(own.loc[open_rows, "probability"].to_numpy())
        parts.append(own)
    return pd.concat(parts, ignore_index=True)


def explain_rows(item: dict[str, Any], inputs: Inputs, customers: pd.Series, settings: PropensityParams) -> pd.DataFrame:
    """Return the top-3 reason codes of ``customers`` for one product (checked SHAP values)."""
    if not len(customers):
        return pd.DataFrame({"customer_id": pd.Series(dtype="string")})
    frame = inputs.score_frame.set_index("customer_id").loc[list(customers)].reset_index()
    positions = pd.Series(np.arange(len(inputs.score_frame)), index=inputs.score_frame["customer_id"])
    matrix = inputs.score_matrix[positions.loc[list(customers)].to_numpy()]
    rng = np.random.default_rng(settings.seed)
    background = inputs.matrix[rng.choice(len(inputs.matrix), size=min(BACKGROUND_ROWS, len(inputs.matrix)),
                                          replace=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", explain_module.AdditivityWarning)
        explanation = explain_module.explain(item["model"], matrix, background, seed=settings.seed,
                                             workers=settings.threads)
    codes = explain_module.reason_codes(explanation.values, frame, inputs.features, inputs.dictionary)
    codes.insert(0, "customer_id", frame["customer_id"].to_numpy())
    codes.insert(1, "product", item["product"])
    codes["explainer"] = explanation.method
    return codes


def with_product_name(listed: pd.DataFrame, product: str, locale: str,
                      labels: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """Return a campaign list whose ``product`` column names the product, its code kept in ``product_code``.

    Parameters
    ----------
    listed : pandas.DataFrame
        The campaign list of ``product``, with a ``product`` column of codes.
    product : str
        The product code.
    locale : str
        The engagement's language.
    labels : mapping
        Product code to ``{"zh_CN": ..., "en": ...}`` (see
        :func:`relmap_utils.propensity.report.product_labels`).

    Returns
    -------
    pandas.DataFrame
        A copy; the client reads the name, the bank's systems read the code.
    """
    from relmap_utils.propensity.report import product_name

    listed = listed.copy()
    if "product" not in listed.columns:
        return listed
    listed.insert(listed.columns.get_loc("product") + 1, "product_code", listed["product"].astype(str))
    listed["product"] = product_name(product, locale, labels)
    return listed


def campaign_headers(locale: str) -> dict[str, str]:
    """Column headers of the campaign files in the engagement's language."""
    names = ("rank", "customer_id", "probability", "decile", "reason_1_zh", "reason_1_en", "reason_2_zh",
             "reason_2_en", "reason_3_zh", "reason_3_en", "product", "product_code", "explainer")
    return {name: tr(f"propensity.column.{name}", locale=locale) for name in names}


def make_summary(results: list[dict[str, Any]], inputs: Inputs, settings: PropensityParams,
                 window_start: dt.date, seconds: float) -> dict[str, Any]:
    """Return the content of summary.json."""
    products = {}
    for item in results:
        if item["status"] == "skipped":
            products[item["product"]] = {"status": "skipped", **item["skip"].as_dict()}
            continue
        test = next(row for row in item["metrics"] if row["model"] == "boosted" and row["sample"] == "test")
        train = next(row for row in item["metrics"] if row["model"] == "boosted" and row["sample"] == "train")
        logit_test = next(row for row in item["metrics"] if row["model"] == "logit" and row["sample"] == "test")
        products[item["product"]] = {
            "status": "modelled", "train": item["train"], "test": item["test"],
            "cutoff": _iso(item["cutoff"]), "auc_train": train["auc"], "auc_test": test["auc"],
            "gini_test": test["gini"], "ks_test": test["ks"], "capture_10_test": test["capture_10"],
            "brier_test": test["brier"], "logit_auc_test": logit_test["auc"],
            "separation": [finding.as_dict() for finding in item["logit"].separation],
            "logit_converged": item["logit"].converged, "explainer": item["explanation"],
            "top_features": item["importance"]["feature"].head(TOP_SHAP_FEATURES).tolist(),
            "trees": item["trees"], "seconds": item["seconds"],
        }
    return {
        "stage": STAGE_ID,
        "split": settings.split.method,
        "label_window_start": window_start.isoformat(),
        "features_as_of": _iso(inputs.features_as_of),
        "scoring_as_of": _iso(inputs.scoring_as_of),
        "features": len(inputs.features),
        "categorical_features": int(inputs.categorical.sum()),
        "dropped_post_outcome": inputs.dropped,
        "customers_scored": int(len(inputs.score_frame)),
        "products_modelled": sum(item["status"] == "modelled" for item in results),
        "products_skipped": sum(item["status"] == "skipped" for item in results),
        "products": products,
        "seconds": round(seconds, 1),
        "parameters": settings.model_dump(mode="json"),
    }

