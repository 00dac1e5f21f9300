"""run_stage on a hand-made run folder: bad products are skipped by name, the others still run.

The run folder holds what ingest and the map would have written: canonical
customers, accounts and labels tables, and two map partitions, the month-end
before the label window and the window's last day. No notebook runs, so the
test is fast.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from relmap_utils.context import RunContext
from relmap_utils.errors import StageError

CUSTOMERS = 400
WINDOW_START = dt.date(2024, 1, 1)


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("propensity_stage") / "runs" / "run-1"
    rng = np.random.default_rng(7)
    ids = [f"{index:024x}" for index in range(CUSTOMERS)]
    signal = rng.random(CUSTOMERS)
    segment = rng.choice(["甲", "乙", "丙"], CUSTOMERS)
    partition = pd.DataFrame({"customer_id": ids, "signal": signal, "noise": rng.normal(size=CUSTOMERS),
                              "segment_name": segment, "risk_tolerance": rng.choice(["C1", "C3"], CUSTOMERS)})
    for day in ("2023-12-31", "2024-06-30"):
        _write(partition, folder / "artifacts" / "02_map" / "customer_map" / f"as_of={day}" / "part-0.parquet")
    tables = folder / "artifacts" / "00_ingest" / "tables"
    _write(pd.DataFrame({"customer_id": ids, "opted_out": rng.random(CUSTOMERS) < 0.1}), tables / "customers.parquet")
    _write(pd.DataFrame({"account_id": [f"a{i}" for i in range(CUSTOMERS)], "customer_id": ids,
                         "product_family": "deposit", "product_code": "everyone"}), tables / "accounts.parquet")
    taken = (rng.random(CUSTOMERS) < 0.05 + 0.4 * signal).astype(int)
    dates = [WINDOW_START + dt.timedelta(days=int(day)) for day in rng.integers(0, 180, CUSTOMERS)]
    rows = []
    for product in ("good", "few", "odd", "held"):
        values = taken.astype(str) if product != "few" else np.where(np.arange(CUSTOMERS) < 5, "1", "0")
        if product == "odd":
            values = np.where(np.arange(CUSTOMERS) < 3, "maybe", values)
        rows.append(pd.DataFrame({"customer_id": ids, "label_type": "takeup", "label_date": dates,
                                  "value": values, "product": product}))
    _write(pd.concat(rows, ignore_index=True), tables / "labels.parquet")
    engagement = {
        "name": "unit", "client": "test", "locale": "en",
        "sources": [{"name": "customers", "path": "data/customers.csv", "table": "customers"}],
        "stages": {"propensity": {"params": {}}},
    }
    (folder / "engagement.yaml").write_text(yaml.safe_dump(engagement), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def outcome(run_dir):
    from relmap_utils.propensity import run_stage

    ctx = RunContext.open(run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_stage(ctx, min_positives=20, product_codes={"held": "everyone"}, explain_sample=50,
                         max_iter=30, campaign={"top_n": 10, "contact_policy": {"opted_out": "opted_out"},
                                                "suitability": {"risk_levels": {"good": "R3"}}})


def test_bad_products_skipped_by_name(outcome):
    products = outcome["products"].set_index("product")

    assert products.loc["good", "status"] == "modelled"
    assert products.loc["few", "reason"] == "too_few_positives"
    assert "only 5 takers" in products.loc["few", "message_en"]
    assert products.loc["odd", "reason"] == "label_values"
    assert "maybe" in products.loc["odd", "message_en"]
    assert "3 rows" in products.loc["odd", "message_en"]
    assert products.loc["held", "reason"] == "held_by_all"


def test_time_split_by_default(outcome):
    entry = outcome["summary"]["products"]["good"]

    assert outcome["summary"]["split"] == "time"
    assert outcome["summary"]["features_as_of"] == "2023-12-31"
    assert entry["train"]["last"] < entry["cutoff"] <= entry["test"]["first"]


def test_campaign_list_applies_policy_and_suitability(outcome, run_dir):
    scores = outcome["scores"]
    listed = pd.read_csv(run_dir / "artifacts" / "04_propensity" / "campaign" / "good.csv", encoding="utf-8-sig")
    chosen = scores[(scores["product"] == "good") & scores["customer_id"].isin(listed.iloc[:, 1])]
    customers = pd.read_parquet(run_dir / "artifacts" / "00_ingest" / "tables" / "customers.parquet")
    partition = pd.read_parquet(run_dir / "artifacts" / "02_map" / "customer_map" / "as_of=2024-06-30" /
                                "part-0.parquet")

    assert len(listed) == 10
    assert not customers[customers["customer_id"].isin(chosen["customer_id"])]["opted_out"].any()
    assert (partition[partition["customer_id"].isin(chosen["customer_id"])]["risk_tolerance"] == "C3").all()
    assert set(scores.loc[scores["product"] == "good", "excluded"]) >= {"opted_out", "unsuitable"}


def test_summary_is_valid_json(run_dir):
    summary = json.loads((run_dir / "artifacts" / "04_propensity" / "summary.json").read_text(encoding="utf-8"))
    assert summary["products_modelled"] == 1
    assert summary["products_skipped"] == 3


def test_absent_feature_names_stop_the_stage(run_dir):
    from relmap_utils.propensity import run_stage

    with pytest.raises(StageError, match="not_there"):
        run_stage(RunContext.open(run_dir), features=["signal", "not_there"])


def test_features_dated_inside_window_refused(run_dir):
    from relmap_utils.propensity import run_stage

    with pytest.raises(StageError, match="not before the label window start 2024-01-01"):
        run_stage(RunContext.open(run_dir), features_as_of="2024-06-30")


def test_run_without_labels_is_skipped_with_reason(tmp_path):
    from relmap_utils.propensity import run_stage

    folder = tmp_path / "runs" / "run-1"
    _write(pd.DataFrame({"customer_id": ["a", "b"]}), folder / "artifacts" / "00_ingest" / "tables" /
           "customers.parquet")
    engagement = {"name": "unit", "client": "test", "locale": "en",
                  "sources": [{"name": "customers", "path": "data/customers.csv", "table": "customers"}]}
    (folder / "engagement.yaml").write_text(yaml.safe_dump(engagement), encoding="utf-8")

    result = run_stage(RunContext.open(folder))

    summary = json.loads((folder / "artifacts" / "04_propensity" / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "skipped"
    assert "no labels table" in summary["message_en"]
    assert result["products"].empty


def test_cutoff_after_last_label_skips_product(run_dir):
    from relmap_utils.propensity import run_stage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_stage(RunContext.open(run_dir), min_positives=20, product_codes={"held": "everyone"},
                           explain_sample=50, max_iter=30, split={"method": "time", "cutoff": "2030-01-01"})
    products = result["products"].set_index("product")

    assert result["summary"]["products_modelled"] == 0
    assert products.loc["good", "reason"] == "no_test_rows"
    assert "2024-06-28" in products.loc["good", "message_en"]
