"""Stage 03 entry point: tiers, RFM, segments, profiles, migration and actions.

The notebook ``notebooks/03_segmentation.ipynb`` calls :func:`run_stage`. The
stage reads the relationship map of the run (``artifacts/02_map/``) and
writes, under ``artifacts/03_segmentation/``:

- ``customer_segments.parquet``: per customer and map date the tier and the
  rule that placed them, R/F/M values, scores and cell, and the segment;
- ``groups.parquet``: per tier, RFM cell and segment its size, shares,
  bilingual name, description and recommended action;
- ``profiles.parquet``, ``holdings.parquet``, ``risk_mix.parquet``: the
  contrasts, product holdings and risk mix of every group;
- ``tier_rules.parquet`` and ``tier_overlaps.parquet``: matches per rule;
- ``k_selection.parquet``: the silhouette or BIC curve over k;
- ``transitions.parquet`` and ``top_movers.parquet``: migration;
- ``summary.json``: settings, sample size, stability, notices, headline cards;

and ``reports/03_segmentation.html``. Files are written under a temporary
name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import ibis
import pandas as pd

from relmap_utils.artifacts import write_json, write_parquet
from relmap_utils.context import RunContext
from relmap_utils.errors import ConfigError, StageError
from relmap_utils.segmentation import actions as actions_module
from relmap_utils.segmentation import clusters, migration, profiles, report, rfm, tiers
from relmap_utils.segmentation.notices import Notice
from relmap_utils.segmentation.params import SegmentationParams, check_threshold_units, parse_params

logger = logging.getLogger(__name__)

STAGE_ID = "03_segmentation"
MAP_STAGE = "02_map"
SEGMENTS_FILE = migration.SEGMENTS_FILE
# Profile features used when profiles.features is empty, those the map has.
DEFAULT_PROFILE_FEATURES = (
    "age_years", "tenure_months", "income", "aum", "liabilities", "products_held", "txn_count",
    "purchase_amount", "event_count", "channel_share_mobile", "channel_share_counter", "days_since_last_transaction",
)


def run_stage(ctx: RunContext, **values: Any) -> dict[str, Any]:
    """Segment the run's customers and write the stage's artifacts.

    Parameters
    ----------
    ctx : RunContext
        The open run.
    **values
        ``stages.segmentation.params``: ``as_of``, ``tiers``, ``rfm``,
        ``clusters``, ``profiles``, ``migration``, ``actions`` (see
        :class:`~relmap_utils.segmentation.params.SegmentationParams`).

    Returns
    -------
    dict
        ``summary`` (dict), ``groups``, ``profiles``, ``holdings``,
        ``risk_mix``, ``tier_rules``, ``tier_overlaps``, ``k_selection``,
        ``transitions``, ``top_movers`` (DataFrames), ``artifacts`` (name to
        path) and ``report`` (path).

    Raises
    ------
    ConfigError
        When a parameter is invalid (the message names its key path).
    StageError
        When the run has no map, or a baseline run has no segmentation.
    """
    started = time.perf_counter()
    logger.info("starting stage %s in %s", STAGE_ID, ctx.run_dir)
    params = parse_params(values)
    # A wrong baseline run would otherwise stop the stage only after clustering.
    check_baseline_run(params, ctx.run_dir)
    backend = ctx.connect()
    map_table, dates = open_map(backend, ctx.run_dir)
    map_table = attach_customer_columns(backend, map_table, ctx.tables_dir, referenced_columns(params))
    as_of = _choose_date(params.as_of, dates, "as_of")
    dictionary = _read_dictionary(ctx.run_dir)
    units = dict(zip(dictionary["name"], dictionary["unit"])) if not dictionary.empty else {}
    result = segment_map(backend, map_table, dates, as_of, params, units, dictionary, ctx.run_dir)
    folder = ctx.artifacts(STAGE_ID)
    artifacts = write_artifacts(backend, folder, result)
    summary = result["summary"]
    summary["seconds"] = round(time.perf_counter() - started, 1)
    artifacts["summary"] = write_json(summary, folder / "summary.json")
    report_path = report.write_html_report(
        ctx.reports_dir / f"{STAGE_ID}.html", result=result, locale=ctx.engagement.locale,
        engagement=ctx.engagement.name, run_id=ctx.run_dir.name, min_group_size=ctx.engagement.privacy.min_group_size,
    )
    logger.info("finished stage %s in %.1f s", STAGE_ID, summary["seconds"])
    return {**result, "artifacts": {name: str(path) for name, path in artifacts.items()}, "report": str(report_path)}


def check_baseline_run(params: SegmentationParams, run_dir: Path) -> None:
    """Check that ``migration.baseline_run`` names a run of this engagement with segmentation results.

    Called before any work, so a wrong run id fails in seconds. Nothing is
    checked when migration is off or compares two map dates of this run.

    Raises
    ------
    ConfigError
        When the value is not a plain run folder name, names this run, or no
        such run exists.
    StageError
        When that run has no segmentation results.
    """
    settings = params.migration
    baseline = settings.baseline_run
    if not settings.enabled or not baseline:
        return
    parameter = "migration.baseline_run"
    if "/" in baseline or "\\" in baseline or baseline in (".", "..") or baseline.strip() != baseline:
        raise ConfigError("segmentation.baseline_invalid", parameter=parameter, value=baseline)
    if baseline == run_dir.name:
        raise ConfigError("segmentation.baseline_is_this_run", parameter=parameter, value=baseline)
    folder = run_dir.parent / baseline
    if not folder.is_dir():
        raise ConfigError("segmentation.baseline_missing", parameter=parameter, value=baseline,
                          folder=str(run_dir.parent))
    path = folder / "artifacts" / STAGE_ID / migration.SEGMENTS_FILE
    if not path.is_file():
        raise StageError("segmentation.baseline_without_stage", run=baseline, path=str(path))


def open_map(backend: Any, run_dir: Path) -> tuple[Any, list[str]]:
    """Open every partition of the run's map as one Ibis table with an ``as_of`` date column.

    Raises
    ------
    StageError
        When the run has no map partition.
    """
    folder = run_dir / "artifacts" / MAP_STAGE / "customer_map"
    paths = sorted(folder.glob("as_of=*/part-0.parquet"))
    if not paths:
        raise StageError("segmentation.no_map", folder=str(folder))
    dates = [path.parent.name.removeprefix("as_of=") for path in paths]
    table = backend.read_parquet(str(folder / "as_of=*" / "part-0.parquet"), hive_partitioning=True,
                                 table_name="segmentation_map")
    table = table.mutate(as_of=table.as_of.cast("date"))
    return table, dates


def referenced_columns(params: SegmentationParams) -> list[str]:
    """Return every column the tier rules, cluster features and profile features name."""
    names = [column for rule in params.tiers.rules for clause in rule.clauses() for column in clause]
    names += params.clusters.features if params.clusters.enabled else []
    names += params.profiles.features
    return list(dict.fromkeys(names))


def attach_customer_columns(backend: Any, table: Any, tables_dir: Path, wanted: list[str]) -> Any:
    """Join customer attributes that the map does not carry from the canonical customers table.

    The map keeps only the attributes it derives features from; an
    engagement may segment on others (Bank Marketing's ``age`` or
    ``campaign``). Columns named in the parameters that are in neither
    table are left for the parameter checks to report.
    """
    missing = [name for name in wanted if name not in table.columns]
    path = tables_dir / "customers.parquet"
    if not missing or not path.is_file():
        return table
    customers = backend.read_parquet(path, table_name="segmentation_customers")
    found = [name for name in missing if name in customers.columns]
    if not found:
        return table
    logger.info("columns taken from the customers table: %s", ", ".join(found))
    extra = customers.select("customer_id", *found).distinct(on="customer_id", keep="first")
    joined = table.left_join(extra, "customer_id")
    return joined.drop("customer_id_right") if "customer_id_right" in joined.columns else joined


def _choose_date(value: str, dates: list[str], parameter: str) -> str:
    if not value:
        return dates[-1]
    if value not in dates:
        raise ConfigError("segmentation.unknown_date", parameter=parameter, value=value, dates=", ".join(dates))
    return value


def _read_dictionary(run_dir: Path) -> pd.DataFrame:
    path = run_dir / "artifacts" / MAP_STAGE / "feature_dictionary.parquet"
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame(columns=["name", "unit"])


def segment_map(
    backend: Any,
    map_table: Any,
    dates: list[str],
    as_of: str,
    params: SegmentationParams,
    units: dict[str, str],
    dictionary: pd.DataFrame,
    run_dir: Path | None = None,
) -> dict[str, Any]:
    """Compute tiers, RFM, segments, profiles, migration and actions on an opened map.

    The map may hold several dates (``as_of`` column); the model is fitted
    at ``as_of`` and every date is assigned. Returns the tables of
    :func:`run_stage` and ``segments_table`` (an Ibis expression of the
    customer-level result) without writing anything.
    """
    notices: list[Notice] = []
    table = map_table
    columns: list[str] = []

    tier_result = None
    if params.tiers.rules:
        amount_columns = {name for name, unit in units.items() if unit in tiers.AMOUNT_UNITS}
        check_threshold_units(params.tiers, amount_columns)
        tier_result = tiers.assign_tiers(table, params.tiers, amount_columns)
        table = tier_result.expression
        notices += tier_result.notices
        latest_overlaps = tier_result.overlaps
        if "as_of" in latest_overlaps.columns:
            latest_overlaps = latest_overlaps[latest_overlaps["as_of"].astype(str) == as_of]
        for row in latest_overlaps.itertuples():
            notices.append(Notice("info", "segmentation.notice.tier_overlap", tier=row.tier, other_tier=row.other_tier,
                                  customers=int(row.customers)))
        columns += ["tier", "tier_rule"]
    else:
        notices.append(Notice("info", "segmentation.notice.no_tiers"))

    rfm_done = False
    if params.rfm.enabled:
        missing = [getattr(params.rfm, role) for role in ("recency", "frequency", "monetary")
                   if getattr(params.rfm, role) not in table.columns]
        if missing and not params.rfm.model_fields_set & {"recency", "frequency", "monetary"}:
            notices.append(Notice("info", "segmentation.notice.rfm_skipped", columns=", ".join(missing)))
        else:
            table = rfm.score_rfm(table, params.rfm)
            rfm_done = True
            columns += [params.rfm.recency, params.rfm.frequency, params.rfm.monetary, *rfm.SCORE_COLUMNS]

    cluster_info: dict[str, Any] = {"enabled": False}
    k_selection = pd.DataFrame(columns=["k", "criterion", "score", "chosen"])
    if params.clusters.enabled:
        try:
            cluster_info, k_selection, assignments, cluster_notices = _cluster(backend, table, as_of, params, units)
        except ConfigError as error:
            # The default k range assumes a real customer book; a k the consultant set stays an error.
            if error.key != "segmentation.k_too_large" or "k" in params.clusters.model_fields_set:
                raise
            notices.append(Notice("medium", "segmentation.notice.clusters_skipped_few", **error.params))
            assignments = None
        else:
            notices += cluster_notices
    if params.clusters.enabled and assignments is not None:
        assigned = ibis.memtable(assignments)
        table = table.left_join(assigned, ["customer_id", "as_of"]).drop("customer_id_right", "as_of_right")
        columns.append("segment")

    # Materialized once: the profiles and migration below run a dozen queries on it,
    # and each would otherwise recompile and recompute the rules, ranks and join.
    table = _materialize(backend, table)
    keep = ["as_of", "customer_id", *dict.fromkeys(columns)]
    segments_table = table.select(*keep).order_by(["as_of", "customer_id"])
    # The profiles read the map's features next to the assigned groups at as_of only.
    latest = table.filter(table.as_of == ibis.date(as_of))
    kinds = [kind for kind in profiles.GROUP_KINDS if kind in columns]
    groups, contrasts, holdings, risk = _profile(latest, kinds, params, dictionary)
    names = pd.DataFrame(columns=["group", "top_features"])
    if "segment" in kinds:
        names = profiles.name_segments(contrasts[contrasts.kind == "segment"], groups[groups.kind == "segment"],
                                       count=params.profiles.name_contrasts, overrides=params.clusters.names,
                                       dictionary=dictionary)
    groups = _name_groups(groups, names, params, tier_result)
    action_map = {
        "tier": actions_module.tier_actions(tier_result.rules, params.actions) if tier_result else {},
        "rfm_cell": actions_module.rfm_actions(params.actions),
        "segment": actions_module.segment_actions(names, params.actions),
    }
    groups = actions_module.action_columns(groups, action_map)

    rank = tiers.tier_order(tier_result.rules) if tier_result else {}
    transitions, movers, migration_info = _migrate(backend, table, dates, as_of, params, rank, run_dir, kinds)

    summary = make_summary(
        dates=dates, as_of=as_of, params=params, groups=groups, notices=notices, cluster_info=cluster_info,
        migration_info=migration_info, rfm_done=rfm_done, tier_result=tier_result,
    )
    return {
        "summary": summary,
        "segments_table": segments_table,
        "groups": groups,
        "profiles": contrasts,
        "holdings": holdings,
        "risk_mix": risk,
        "tier_rules": tier_result.counts if tier_result else pd.DataFrame(),
        "tier_overlaps": tier_result.overlaps if tier_result else pd.DataFrame(),
        "k_selection": k_selection,
        "transitions": transitions,
        "top_movers": movers,
    }


def _materialize(backend: Any, table: Any) -> Any:
    if getattr(backend, "name", "") != "duckdb":
        return table
    return backend.create_table(f"segmentation_{id(table):x}", table, temp=True, overwrite=True)


def _cluster(
    backend: Any, table: Any, as_of: str, params: SegmentationParams, units: dict[str, str]
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, list[Notice]]:
    cluster_params = params.clusters
    latest = table.filter(table.as_of == ibis.date(as_of))
    plan = clusters.check_features(latest, cluster_params, units)
    strata = [cluster_params.strata] if cluster_params.strata and cluster_params.strata in table.columns else []
    sample, customers = clusters.draw_sample(latest, cluster_params, [*plan.features, *strata])
    logger.info("fitting %s on %d of %d customers, %d features", cluster_params.method, len(sample), customers,
                len(plan.features))

    fit = clusters.fit_segments(sample, plan, cluster_params, customers)
    scores = clusters.bootstrap_stability(fit, cluster_params)
    stability = clusters.stability_summary(scores, cluster_params.stability_threshold)
    notices = list(plan.notices)
    if stability["stable"] is False:
        notices.append(Notice("high", "segmentation.notice.unstable", ari=stability["ari_mean"],
                              threshold=cluster_params.stability_threshold, k=fit.model.k))

    assignments = clusters.assign_segments(backend, table, fit.model, cluster_params.chunk_size)
    assignments["as_of"] = pd.to_datetime(assignments["as_of"]).dt.date
    info = {
        "enabled": True,
        "method": cluster_params.method,
        "model": type(fit.model.model).__name__,
        "features": plan.features,
        "log_features": plan.log_features,
        "dropped_features": plan.dropped,
        "k_range": cluster_params.k_values,
        "criterion": cluster_params.selection,
        "k": fit.model.k,
        "sample_size": int(len(sample)),
        "sample_of": customers,
        "sampled": bool(len(sample) < customers),
        "strata": strata[0] if strata else None,
        "random_state": cluster_params.random_state,
        "stability": stability,
    }
    return info, fit.curve, assignments, notices


def _profile(
    latest: Any, kinds: list[str], params: SegmentationParams, dictionary: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    features = params.profiles.features or [name for name in DEFAULT_PROFILE_FEATURES if name in latest.columns]
    unknown = [name for name in features if name not in latest.columns]
    if unknown:
        raise ConfigError("segmentation.cluster_unknown_feature", parameter="profiles.features",
                          features=", ".join(unknown), columns=", ".join(sorted(latest.columns)))
    if params.clusters.enabled and params.clusters.features:
        features = list(dict.fromkeys([*features, *params.clusters.features]))
    empty = pd.DataFrame(columns=["kind", "group"])
    groups = pd.concat([profiles.group_sizes(latest, kind) for kind in kinds], ignore_index=True) if kinds else empty
    contrasts = pd.concat([profiles.feature_contrasts(latest, kind, features) for kind in kinds],
                          ignore_index=True) if kinds else empty
    holdings = pd.concat([profiles.product_holdings(latest, kind) for kind in kinds],
                         ignore_index=True) if kinds else empty
    risk = pd.concat([profiles.risk_mix(latest, kind) for kind in kinds], ignore_index=True) if kinds else empty
    return groups, contrasts, holdings, risk


def _name_groups(groups: pd.DataFrame, names: pd.DataFrame, params: SegmentationParams,
                 tier_result: tiers.TierResult | None) -> pd.DataFrame:
    if groups.empty:
        return groups.assign(name_zh=[], name_en=[], description_zh=[], description_en=[])
    cells = rfm.cell_names()
    rules = {rule.code: rule for rule in tier_result.rules} if tier_result else {}
    by_segment = names.set_index("group") if not names.empty else pd.DataFrame()
    rows = []
    for row in groups.itertuples():
        zh = en = description_zh = description_en = ""
        if row.kind == "tier":
            rule = rules.get(row.group)
            name = rule.name if rule is not None else None
            if name is not None:
                zh, en = name.get("zh_CN"), name.get("en")
            elif row.group == tiers.UNASSIGNED:
                zh, en = _unassigned("zh_CN"), _unassigned("en")
            else:
                zh = en = str(row.group)
        elif row.kind == "rfm_cell":
            zh, en = cells.get(row.group, {}).get("zh_CN", row.group), cells.get(row.group, {}).get("en", row.group)
        elif row.kind == "segment" and row.group in by_segment.index:
            item = by_segment.loc[row.group]
            zh, en, description_zh, description_en = item.name_zh, item.name_en, item.description_zh, item.description_en
        rows.append({"name_zh": zh, "name_en": en, "description_zh": description_zh, "description_en": description_en})
    return pd.concat([groups.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def _unassigned(locale: str) -> str:
    from relmap_utils.i18n import tr

    return tr("segmentation.tier.unassigned", locale=locale)


def _migrate(
    backend: Any, table: Any, dates: list[str], as_of: str, params: SegmentationParams, rank: dict[str, int],
    run_dir: Path | None, kinds: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    settings = params.migration
    empty = pd.DataFrame(columns=["kind", "from_group", "to_group", "customers", "share", "direction"])
    if not settings.enabled or not kinds:
        return empty, pd.DataFrame(), {"enabled": False}
    amount = "aum" if "aum" in table.columns else None
    after = table.filter(table.as_of == ibis.date(as_of))
    if settings.baseline_run:
        if run_dir is None:
            raise ConfigError("segmentation.baseline_invalid", parameter="migration.baseline_run",
                              value=settings.baseline_run)
        before, before_date = migration.baseline_table(backend, run_dir, settings.baseline_run)
        amount = None
        source = {"baseline_run": settings.baseline_run}
    else:
        before_date = _choose_date(settings.from_date, dates, "migration.from_date") if settings.from_date else dates[0]
        after_date = _choose_date(settings.to_date, dates, "migration.to_date") if settings.to_date else as_of
        after = table.filter(table.as_of == ibis.date(after_date))
        if before_date == after_date:
            return empty, pd.DataFrame(), {"enabled": False, "reason": "one_date", "from": before_date}
        before = table.filter(table.as_of == ibis.date(before_date))
        source = {}
    transitions, movers = migration.compare_states(before, after, rank, top_movers=settings.top_movers,
                                                   amount_column=amount)
    info = {"enabled": True, "from": before_date, "to": settings.to_date or as_of, **source,
            "tier_moves": migration.movement_summary(transitions)}
    return transitions, movers, info


def make_summary(
    *,
    dates: list[str],
    as_of: str,
    params: SegmentationParams,
    groups: pd.DataFrame,
    notices: list[Notice],
    cluster_info: dict[str, Any],
    migration_info: dict[str, Any],
    rfm_done: bool,
    tier_result: tiers.TierResult | None,
) -> dict[str, Any]:
    """Return the content of summary.json, with the overview's headline cards and findings."""
    customers = int(groups[groups.kind == groups.kind.iloc[0]]["customers"].sum()) if not groups.empty else 0
    metrics = [{"label": _bilingual("segmentation.metric.customers"), "value": customers, "format": "number"}]
    if tier_result is not None:
        tier_groups = groups[groups.kind == "tier"]
        metrics.append({"label": _bilingual("segmentation.metric.tiers"), "value": int(len(tier_groups)),
                        "format": "number"})
        top = tier_groups[tier_groups.group == tier_result.rules[0].code]
        if not top.empty and top.iloc[0]["aum_share"] is not None and top.iloc[0]["aum_share"] == top.iloc[0]["aum_share"]:
            metrics.append({"label": _tier_headline(tier_result.rules[0]), "value": float(top.iloc[0]["aum_share"]),
                            "format": "percent"})
    if cluster_info.get("enabled"):
        metrics.append({"label": _bilingual("segmentation.metric.segments"), "value": cluster_info["k"],
                        "format": "number"})
        if cluster_info["stability"]["ari_mean"] is not None:
            metrics.append({"label": _bilingual("segmentation.metric.stability"),
                            "value": cluster_info["stability"]["ari_mean"], "format": "number"})
    if migration_info.get("enabled"):
        moves = migration_info["tier_moves"]
        metrics.append({"label": _bilingual("segmentation.metric.upgrades"), "value": moves["up"], "format": "number"})
        metrics.append({"label": _bilingual("segmentation.metric.downgrades"), "value": moves["down"],
                        "format": "number"})
    return {
        "stage": STAGE_ID,
        "as_of": as_of,
        "as_of_dates": dates,
        "customers": customers,
        "tiers": [rule.code for rule in tier_result.rules] if tier_result else [],
        "rfm": {"enabled": rfm_done, **params.rfm.model_dump()},
        "clusters": cluster_info,
        "migration": migration_info,
        "notices": [notice.as_dict() for notice in notices],
        "headline_metrics": metrics,
        "headline_findings": [notice.as_dict() for notice in notices if notice.severity != "info"],
        "params": json.loads(params.model_dump_json(by_alias=True)),
    }


def _tier_headline(rule: Any) -> dict[str, str]:
    # The headline names the tier as the pages do (私人银行), not by its rule code.
    from relmap_utils.i18n import tr

    labels = {}
    for locale in ("zh_CN", "en"):
        name = (rule.name.get(locale) if rule.name is not None else "") or rule.code
        labels[locale] = tr("segmentation.metric.top_tier_assets", locale=locale, tier=name)
    return labels


def _bilingual(key: str, **params: Any) -> dict[str, str]:
    from relmap_utils.i18n import bilingual

    return bilingual(key, **params)


def write_artifacts(backend: Any, folder: Path, result: dict[str, Any]) -> dict[str, Path]:
    """Write the customer-level table (from DuckDB) and the small tables into ``folder``."""
    paths = {}
    target = folder / SEGMENTS_FILE
    temporary = target.with_name(f".{target.name}.tmp")
    if getattr(backend, "name", "") == "duckdb":
        backend.to_parquet(result["segments_table"], temporary)
    else:
        import pyarrow.parquet as pq

        pq.write_table(backend.to_pyarrow(result["segments_table"]), temporary)
    temporary.replace(target)
    paths["customer_segments"] = target
    for name in ("groups", "profiles", "holdings", "risk_mix", "tier_rules", "tier_overlaps", "k_selection",
                 "transitions", "top_movers"):
        paths[name] = _write_parquet(result[name], folder / f"{name}.parquet")
    return paths


def _write_parquet(frame: pd.DataFrame, target: Path) -> Path:
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].map(lambda value: value if value is None or isinstance(value, str)
                                              else str(value))
    return write_parquet(frame, target)
