"""Stage 03 on public data: CDNOW RFM, Berka tiers, Bank Marketing clusters.

CDNOW_master.txt.gz is read by ingest as tests/test_map_cdnow.py reads it,
the map's purchase columns are built at the last purchase day, and the RFM
scores are compared with pandas' ``rank(method="min")``, an independent
implementation of the tie rule. Berka and Bank Marketing run through the
runner with ingest, the map and this stage only, so that a failure of a
later stage does not hide this one's result.
"""

from __future__ import annotations

import json
import math
import secrets
from pathlib import Path

import pandas as pd
import pytest
import yaml

from relmap_utils import engine, spark
from relmap_utils.features import MapSpec, build_map
from relmap_utils.segmentation.params import RfmParams
from relmap_utils.segmentation.rfm import score_rfm
from tests.test_map_cdnow import ENGAGEMENT, LAST_DAY

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

STAGE = "03_segmentation"
RFM_COLUMNS = ["days_since_last_purchase", "purchase_count", "purchase_amount"]


@pytest.fixture(scope="module")
def cdnow_scores(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """RFM scores of every CDNOW customer at the last purchase day."""
    from relmap_utils.runner import run_engagement

    folder = tmp_path_factory.mktemp("cdnow_rfm")
    (folder / "engagement.yaml").write_text(yaml.safe_dump(ENGAGEMENT, sort_keys=False), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_SHARED_DIR", str(shared))
        patch.setenv("RELMAP_PSEUDONYM_KEY", secrets.token_hex(32))
        result = run_engagement(folder, stages=["ingest"])
    assert result.status == "succeeded", result.failure and result.failure.render("en")
    backend = engine.connect()
    tables = spark.read_tables(backend, result.run_dir / "artifacts" / "00_ingest" / "tables")
    # A history window of 18 months covers the whole log (1997-01 to 1998-06).
    expr = build_map(tables, LAST_DAY, MapSpec(purchase_direction="any", history_months=18), timezone="Asia/Shanghai")
    scored = score_rfm(expr.select("customer_id", *RFM_COLUMNS), RfmParams())
    return spark.collect(backend, scored).to_pandas().set_index("customer_id")


def expected_score(values: pd.Series, higher_is_better: bool) -> pd.Series:
    """ceil(5 * minrank / n) with pandas' minimum rank of ties."""
    ranks = (values if higher_is_better else -values).rank(method="min")
    return ranks.map(lambda rank: math.ceil(5 * rank / len(values))).astype("int64")


def test_cdnow_every_buyer_scored(cdnow_scores):
    assert len(cdnow_scores) == 23_570
    assert cdnow_scores["rfm_cell"].ne("no_purchase").all()
    assert cdnow_scores[["r_score", "f_score", "m_score"]].isin(range(1, 6)).all().all()


@pytest.mark.parametrize(
    ("column", "score", "higher_is_better"),
    [("days_since_last_purchase", "r_score", False), ("purchase_count", "f_score", True),
     ("purchase_amount", "m_score", True)],
    ids=["recency", "frequency", "monetary"],
)
def test_cdnow_scores_follow_tie_rule(cdnow_scores, column, score, higher_is_better):
    expected = expected_score(cdnow_scores[column].astype("float64"), higher_is_better)
    assert (cdnow_scores[score].astype("int64") == expected).all()


def test_cdnow_single_purchases_share_lowest_score(cdnow_scores):
    # About half of CDNOW's customers bought once: they all tie at the worst frequency.
    once = cdnow_scores[cdnow_scores.purchase_count == 1]
    assert len(once) > len(cdnow_scores) / 3
    assert set(once.f_score) == {1}
    assert cdnow_scores[cdnow_scores.purchase_count == 2].f_score.min() > 1


@pytest.fixture(scope="module")
def stage_run(real_engagement_run):
    """The shared run of a real engagement, with every enabled stage."""
    return real_engagement_run


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "artifacts" / STAGE / "summary.json").read_text(encoding="utf-8"))


def test_berka_tiers_from_products(stage_run):
    run_dir = stage_run("berka")
    segments = pd.read_parquet(run_dir / "artifacts" / STAGE / "customer_segments.parquet")
    summary = _summary(run_dir)

    assert len(segments) == segments.customer_id.nunique() == 5369
    assert segments.tier.notna().all()
    assert set(segments.tier) <= set(summary["tiers"])
    assert segments.tier.nunique() >= 3
    assert summary["rfm"]["enabled"] is False
    assert "segment" not in segments.columns


def test_bank_marketing_clusters(stage_run):
    run_dir = stage_run("bank_marketing")
    segments = pd.read_parquet(run_dir / "artifacts" / STAGE / "customer_segments.parquet")
    summary = _summary(run_dir)

    assert segments.segment.notna().all()
    assert summary["clusters"]["k"] == segments.segment.nunique()
    assert summary["clusters"]["stability"]["ari_mean"] is not None
    groups = pd.read_parquet(run_dir / "artifacts" / STAGE / "groups.parquet")
    assert groups[groups.kind == "segment"].name_en.str.len().gt(0).all()
