"""Clusters, profiles and migration on small synthetic maps with known groups."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from relmap_utils import engine
from relmap_utils.errors import ConfigError, StageError
from relmap_utils.segmentation import clusters
from relmap_utils.segmentation.migration import baseline_table, compare_states
from relmap_utils.segmentation.params import ClusterParams, SegmentName, parse_params
from relmap_utils.segmentation.profiles import feature_contrasts, group_sizes, name_segments
from relmap_utils.segmentation.stage import open_map, segment_map


def three_groups(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Three well-separated groups of equal size in two features, plus a constant and an empty column."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1, 2], n // 3)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    points = centres[truth] + rng.normal(0, 1, (len(truth), 2))
    return pd.DataFrame({"customer_id": [f"c{i:04d}" for i in range(len(truth))], "x": points[:, 0],
                         "y": points[:, 1], "flat": 1.0, "empty": np.nan, "truth": truth,
                         "tier": np.where(truth == 0, "top", "rest")})


def plan_of(frame: pd.DataFrame, **params) -> tuple[clusters.FeaturePlan, ClusterParams]:
    settings = ClusterParams(**params)
    return clusters.check_features(ibis.memtable(frame), settings), settings


def test_recovers_separated_groups():
    frame = three_groups()
    plan, settings = plan_of(frame, features=["x", "y"], k=[2, 5], bootstrap=3)

    fit = clusters.fit_segments(frame, plan, settings, len(frame))
    stability = clusters.stability_summary(clusters.bootstrap_stability(fit, settings), settings.stability_threshold)

    assert fit.model.k == 3
    assert fit.curve.loc[fit.curve.chosen, "k"].tolist() == [3]
    assert adjusted_rand_score(frame.truth, fit.model.predict(frame)) == pytest.approx(1.0)
    assert stability["stable"] is True
    assert stability["rounds"] == 3


def test_same_seed_same_labels():
    frame = three_groups()
    plan, settings = plan_of(frame, features=["x", "y"], k=3, random_state=7)

    first = clusters.fit_segments(frame, plan, settings, len(frame)).model.predict(frame)
    second = clusters.fit_segments(frame, plan, settings, len(frame)).model.predict(frame)
    assert (first == second).all()


def test_gaussian_mixture_chooses_by_bic():
    frame = three_groups()
    plan, settings = plan_of(frame, features=["x", "y"], k=[2, 4], method="gmm")

    fit = clusters.fit_segments(frame, plan, settings, len(frame))
    assert settings.selection == "bic"
    assert fit.model.k == 3
    assert fit.curve.score.idxmin() == fit.curve.index[fit.curve.chosen][0]


def test_segments_numbered_by_size():
    frame = three_groups()
    frame = pd.concat([frame, frame[frame.truth == 2].assign(customer_id=lambda f: f.customer_id + "b")])
    plan, settings = plan_of(frame, features=["x", "y"], k=3)

    labels = clusters.fit_segments(frame, plan, settings, len(frame)).model.predict(frame)
    assert (labels[frame.truth.to_numpy() == 2] == 1).all()


def test_constant_and_empty_features_dropped_and_named():
    plan, _ = plan_of(three_groups(), features=["x", "y", "flat", "empty"])

    assert plan.features == ["x", "y"]
    assert plan.dropped == {"flat": "constant", "empty": "all_missing"}
    messages = [notice.as_dict()["message_en"] for notice in plan.notices]
    assert "Clustering feature flat has the same value for every customer and was dropped." in messages
    assert "Clustering feature empty is missing for every customer and was dropped." in messages


def test_all_features_unusable_rejected():
    with pytest.raises(ConfigError, match="clusters.features"):
        plan_of(three_groups(), features=["flat", "empty"])


def test_unknown_feature_named():
    with pytest.raises(ConfigError, match="assets"):
        plan_of(three_groups(), features=["x", "assets"])


def test_text_feature_rejected():
    with pytest.raises(ConfigError, match="tier"):
        plan_of(three_groups(), features=["x", "tier"])


def test_k_above_customers_rejected():
    frame = three_groups(n=6)
    plan, settings = plan_of(frame, features=["x", "y"], k=[2, 8])
    with pytest.raises(ConfigError) as caught:
        clusters.fit_segments(frame, plan, settings, len(frame))
    assert "clusters.k" in caught.value.render("en")
    assert "k = 8 exceeds the 6 customers" in caught.value.render("en")


def test_k_above_distinct_points_rejected():
    frame = three_groups(n=30).assign(x=lambda f: f.truth.astype(float), y=0.5)
    frame.loc[0, "y"] = 0.6
    plan, settings = plan_of(frame, features=["x", "y"], k=[2, 5])
    with pytest.raises(ConfigError, match="clusters.k"):
        clusters.fit_segments(frame, plan, settings, len(frame))


def test_stratified_sample_keeps_shares():
    frame = three_groups(n=3000)
    _, settings = plan_of(frame, features=["x", "y"], sample_size=300)
    backend = ibis.duckdb.connect()

    sample, total = clusters.draw_sample(backend.create_table("m", frame), settings, ["x", "y", "tier"])
    assert total == 3000
    assert len(sample) <= 300
    assert sample.tier.value_counts()["top"] == pytest.approx(100, abs=2)
    again, _ = clusters.draw_sample(backend.create_table("m2", frame), settings, ["x", "y", "tier"])
    assert again.customer_id.tolist() == sample.customer_id.tolist()


def test_contrasts_and_names():
    frame = pd.DataFrame({"group": ["A"] * 4 + ["B"] * 4, "aum": [10.0, 10, 10, 10, 0, 0, 0, 0],
                          "age_years": [30.0, 30, 30, 30, 30, 30, 30, 30]})
    table = ibis.memtable(frame)
    contrasts = feature_contrasts(table, "group", ["aum", "age_years"])
    sizes = group_sizes(table, "group")

    a = contrasts[(contrasts.group == "A") & (contrasts.feature == "aum")].iloc[0]
    # mean 10 vs population mean 5 and population std 5: one std above.
    assert a.contrast == pytest.approx(1.0)
    assert contrasts[contrasts.feature == "age_years"].contrast.isna().all()
    names = name_segments(contrasts, sizes, count=1, overrides={"B": SegmentName(zh_CN="低资产客户")})
    assert names.set_index("group").name_zh.to_dict() == {"A": "A 资产高", "B": "低资产客户"}
    assert names.set_index("group").name_en["A"] == "A high assets"
    assert names.set_index("group").named_by.to_dict() == {"A": "auto", "B": "params"}


def test_migration_counts_up_and_down():
    before = ibis.memtable(pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "tier": ["top", "mid", "mid", "low"],
                                         "aum": [9.0, 5.0, 5.0, 1.0]}))
    after = ibis.memtable(pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "tier": ["mid", "mid", "top", "top"],
                                        "aum": [4.0, 5.0, 9.0, 10.0]}))
    transitions, movers = compare_states(before, after, {"top": 1, "mid": 2, "low": 3}, top_movers=2)

    directions = transitions.groupby("direction").customers.sum().to_dict()
    assert directions == {"up": 2, "down": 1, "same": 1}
    assert movers.customer_id.tolist() == ["d", "a"]
    assert movers.steps.tolist() == [2, -1]


def write_map(run_dir: Path, frames: dict[str, pd.DataFrame]) -> None:
    for day, frame in frames.items():
        folder = run_dir / "artifacts" / "02_map" / "customer_map" / f"as_of={day}"
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "part-0.parquet", index=False)


def test_baseline_without_stage_rejected(tmp_path):
    runs = tmp_path / "runs"
    (runs / "20240101-000000").mkdir(parents=True)
    backend = engine.connect()
    with pytest.raises(StageError) as caught:
        baseline_table(backend, runs / "20240201-000000", "20240101-000000")
    assert "Baseline run 20240101-000000 has no segmentation results" in caught.value.render("en")
    with pytest.raises(ConfigError, match="migration.baseline_run"):
        baseline_table(backend, runs / "20240201-000000", "20231231-000000")


def test_segment_map_on_two_dates(tmp_path):
    frame = three_groups().assign(aum=lambda f: np.where(f.truth == 0, 2e6, 1e4),
                                  days_since_last_purchase=5, purchase_count=1, purchase_amount=10.0)
    later = frame.assign(aum=lambda f: np.where(f.truth == 1, 2e6, f.aum))
    write_map(tmp_path, {"2024-05-31": frame.drop(columns="tier"), "2024-06-30": later.drop(columns="tier")})
    params = parse_params({"tiers": {"amount_unit": "万元", "rules": [{"code": "rich", "when": {"aum": {"min": 100}}},
                                                                      {"code": "rest"}]},
                           "clusters": {"features": ["x", "y"], "k": 3, "bootstrap": 1}})
    backend = engine.connect()
    table, dates = open_map(backend, tmp_path)

    result = segment_map(backend, table, dates, dates[-1], params, {"aum": "yuan"}, pd.DataFrame(), tmp_path)
    segments = result["segments_table"].to_pandas()
    assert dates == ["2024-05-31", "2024-06-30"]
    assert segments.groupby("as_of").size().tolist() == [300, 300]
    assert pd.Timestamp(segments.as_of.iloc[0]) == pd.Timestamp(dt.date(2024, 5, 31))
    assert result["summary"]["migration"]["tier_moves"] == {"up": 100, "down": 0, "same": 200, "moved": 0}
    assert result["summary"]["clusters"]["k"] == 3
    groups = result["groups"]
    assert set(groups.kind) == {"tier", "rfm_cell", "segment"}
    assert groups[groups.kind == "tier"].set_index("group").customers.to_dict() == {"rich": 200, "rest": 100}
    assert groups.action_zh.str.len().gt(0).all()
