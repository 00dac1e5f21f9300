"""engagements/demo through the runner: the map stage notebook on a small demo bank.

A copy of the engagement runs ingest and the map (two of its monthly dates,
to keep the test short) as `relmap run` does. The notebook must run offline
without errors, and no personal data may leave the stage. Every customer is
in every partition, and the lifetime quartet equals an independent
implementation of lifetimes' definition. The demo's planted signals show in
the features that should carry them.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from relmap_utils.features import read_map
from relmap_utils.ingest.privacy import pseudonymize_value

from tests.conftest import make_small_demo_engagement

pytestmark = pytest.mark.slow

CUSTOMERS = 2000
TRANSACTIONS = 60_000
AS_OF = "2024-06-30"
PLOTLYJS_BANNER = "* plotly.js v"
REMOTE_SCRIPT = re.compile(r"<script[^>]+src=[\"']?(https?:)?//", re.IGNORECASE)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """Return the engagement folder, the run folder and the run's pseudonym key."""
    from relmap_utils.runner import run_engagement

    folder = tmp_path_factory.mktemp("demo_map")
    make_small_demo_engagement(folder, n_customers=CUSTOMERS, n_transactions=TRANSACTIONS)
    key = secrets.token_hex(32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_PSEUDONYM_KEY", key)
        result = run_engagement(folder, stages=["ingest", "map"], overrides={"map": {"as_of_dates": 2}})
    assert result.status == "succeeded", result.failure and result.failure.render("en")
    return folder, result.run_dir, key


@pytest.fixture(scope="module")
def customer_map(demo_run) -> pd.DataFrame:
    _, run_dir, _ = demo_run
    return read_map(run_dir / "artifacts" / "02_map" / "customer_map", AS_OF).set_index("customer_id")


@pytest.fixture(scope="module")
def truth(demo_run) -> pd.DataFrame:
    folder, _, key = demo_run
    frame = pd.read_parquet(folder / "data" / "planted_truth.parquet")
    frame["customer_id"] = [pseudonymize_value(number, key.encode()) for number in frame.customer_no]
    return frame.set_index("customer_id")


def test_stage_recorded_in_manifest(demo_run):
    _, run_dir, _ = demo_run
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))

    stage = next(entry for entry in manifest["stages"] if entry["key"] == "map")
    assert stage["status"] == "succeeded"
    paths = {item["path"] for item in stage["artifacts"]}
    assert "artifacts/02_map/customer_map/as_of=2024-06-30/part-0.parquet" in paths
    assert "artifacts/02_map/feature_dictionary.parquet" in paths
    assert {item["path"] for item in stage["reports"]} == {"reports/02_map.html"}


def test_notebook_runs_offline(demo_run):
    _, run_dir, _ = demo_run
    executed = nbformat.read(run_dir / "executed" / "02_map.ipynb", as_version=4)

    outputs = [item for cell in executed.cells if cell.cell_type == "code" for item in cell.get("outputs", [])]
    assert [item for item in outputs if item["output_type"] == "error"] == []
    pages = [item["data"]["text/html"] for item in outputs if "text/html" in item.get("data", {})]
    assert sum(page.count(PLOTLYJS_BANNER) for page in pages) == 1
    assert all(REMOTE_SCRIPT.search(page) is None for page in pages)
    assert "客户关系地图" in nbformat.writes(executed)


def test_no_personal_data_leaves_the_stage(demo_run):
    folder, run_dir, _ = demo_run
    raw = pd.read_csv(folder / "data" / "customers.csv", encoding="gbk", dtype=str)
    values = set(raw["客户号"]) | set(raw["姓名"]) | set(raw["证件号码"]) | set(raw["手机号"]) | set(raw["联系地址"])

    texts = [nbformat.writes(nbformat.read(run_dir / "executed" / "02_map.ipynb", as_version=4)),
             (run_dir / "reports" / "02_map.html").read_text(encoding="utf-8")]
    stage_folder = run_dir / "artifacts" / "02_map"
    texts += [path.read_text(encoding="utf-8") for path in stage_folder.glob("*.json")]
    texts += [pd.read_parquet(path).to_csv() for path in stage_folder.rglob("*.parquet")]
    everything = "\n".join(texts)

    leaked = sorted(value for value in values if value in everything)
    assert leaked == []


def test_every_customer_in_every_partition(demo_run):
    _, run_dir, _ = demo_run
    frame = read_map(run_dir / "artifacts" / "02_map" / "customer_map")

    assert frame.groupby("as_of").customer_id.nunique().tolist() == [CUSTOMERS, CUSTOMERS]
    assert len(frame) == 2 * CUSTOMERS


def lifetimes_summary(transactions: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """Compute lifetimes' summary_data_from_transaction_data(freq='D') by its definition, in pandas.

    Transactions are cut at the end of ``as_of`` and summed per customer and
    calendar day. frequency is the purchase days minus 1 and recency the days
    from the first to the last purchase day. T is the days from the first
    purchase day to as_of, and monetary_value the mean daily sum after the
    first day (0 without repeat days). lifetimes/utils.py computes them so.
    """
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    rows = transactions[transactions.txn_time < end].copy()
    rows["day"] = rows.txn_time.dt.floor("D")
    daily = rows.groupby(["customer_id", "day"], as_index=False).value.sum().sort_values(["customer_id", "day"])
    first = daily.groupby("customer_id").day.transform("min")
    repeat = daily[daily.day > first].groupby("customer_id").value.mean()
    summary = daily.groupby("customer_id").day.agg(["min", "max", "count"])
    return pd.DataFrame(
        {
            "frequency": summary["count"] - 1,
            "recency": (summary["max"] - summary["min"]).dt.days,
            "T": (pd.Timestamp(as_of) - summary["min"]).dt.days,
            "monetary_value": repeat.reindex(summary.index).fillna(0.0),
        }
    )


def test_lifetime_quartet_matches_definition(demo_run, customer_map):
    _, run_dir, _ = demo_run
    transactions = pd.read_parquet(run_dir / "artifacts" / "00_ingest" / "tables" / "transactions.parquet")
    # The demo's purchases are outflows of type 消费 (engagements/demo, stages.map.params.spec).
    purchases = transactions[(transactions.txn_type == "消费") & (transactions.amount < 0)].copy()
    purchases["value"] = purchases.amount.abs()

    expected = lifetimes_summary(purchases, AS_OF)

    actual = customer_map.loc[expected.index, ["frequency", "recency", "T", "monetary_value"]]
    assert len(expected) > 1000
    pd.testing.assert_frame_equal(actual.astype("float64"), expected.astype("float64"), rtol=1e-9,
                                  check_names=False)
    others = customer_map.drop(index=expected.index)
    assert others.frequency.isna().all()


def test_salary_rule_finds_the_salaried(customer_map, truth):
    joined = customer_map.join(truth[["salaried", "segment"]])
    active = joined[joined.segment != "dormant"]

    found = active.groupby("salaried").salary_regular.mean()
    assert found[True] > 0.85
    assert found[False] < 0.05


def test_education_interest_shows_in_browsing(customer_map, truth):
    joined = customer_map.join(truth[["interest_education"]])

    means = joined.groupby("interest_education").interest_education_count.mean()
    assert means[True] > 5 * means[False]


def test_fraud_rings_share_devices(customer_map, truth):
    joined = customer_map.join(truth[["fraud_ring"]])

    in_ring = joined.fraud_ring.notna()
    assert (joined.loc[in_ring, "shared_device_customers"] > 0).mean() > 0.5
    assert (joined.loc[~in_ring, "shared_device_customers"] > 0).mean() < 0.1


def test_every_paid_instalment_has_its_paid_date(demo_run):
    folder, _, _ = demo_run
    repayments = pd.read_csv(folder / "data" / "repayments.csv", dtype=str, keep_default_na=False)
    paid = repayments["实还金额"].astype(float) > 0

    assert (repayments.loc[paid, "实还日期"] != "").all()
    assert (repayments.loc[~paid, "实还日期"] == "").all()
    # Instalments due early in the first month may be paid in the month before it.
    assert (repayments.loc[paid, "实还日期"] < "2023-01-01").any()


def test_days_past_due_only_large_for_defaulters(customer_map, truth):
    joined = customer_map.join(truth[["defaulted"]])
    # Planted late payments are at most 25 days late; only defaulters stop paying.
    assert joined.loc[~joined.defaulted, "days_past_due"].max() <= 25
    assert joined.loc[joined.defaulted, "days_past_due"].max() > 25


def test_dormant_customers_keep_rows(customer_map, truth):
    dormant = customer_map.join(truth[["segment"]]).query("segment == 'dormant'")

    assert len(dormant) > 100
    assert (dormant.txn_count == 0).all()
    assert dormant.days_since_last_purchase.isna().all()
    assert (~dormant.transactions_covered).all()
