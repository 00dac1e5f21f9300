"""The lifetime quartet of the map equals lifetimes' on the CDNOW purchase log.

CDNOW_master.txt.gz (RELMAP_SHARED_DIR/datasets/cdnow) is read by ingest
through a small engagement, as a bank's extract would be: runs of spaces as
separator, zero-padded customer ids kept as text, YYYYMMDD dates. The map's
``frequency``, ``recency``, ``T`` and ``monetary_value`` are compared, per
customer, with ``lifetimes.utils.summary_data_from_transaction_data`` on the
same file with the same observation end. Ingest pseudonymizes the ids, so
lifetimes' rows are joined through ``pseudonymize_value`` with the run's key.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from relmap_utils import engine, spark
from relmap_utils.features import MapSpec, build_map
from relmap_utils.ingest.privacy import pseudonymize_value

RELATIVE_TOLERANCE = 1e-9
CUSTOMERS = 23_570
# The last purchase date in the file, and a date inside the cohort's history.
LAST_DAY = dt.date(1998, 6, 30)
EARLIER_DAY = dt.date(1997, 9, 30)
QUARTET = ["frequency", "recency", "T", "monetary_value"]

pytestmark = pytest.mark.realdata

# The purchase log as a bank-style extract: one staging source read from the
# file, and two query sources that turn it into canonical tables. Every row
# is a purchase, so the amount is an outflow (negative, inflow positive).
ENGAGEMENT = {
    "name": "cdnow",
    "client": "CDNOW (public data)",
    "locale": "en",
    "timezone": "Asia/Shanghai",
    "sources": [
        {
            "name": "purchases",
            "path": "${RELMAP_SHARED_DIR}/datasets/cdnow/CDNOW_master.txt.gz",
            "separator": "spaces",
            "columns": {
                "customer_id": {"name": "customer_id", "role": "identifier"},
                "date": {"name": "purchase_date", "role": "date", "date_format": "%Y%m%d"},
                "number_of_cds": {"name": "number_of_cds", "role": "integer"},
                "dollar_value": {"name": "dollar_value", "role": "amount"},
            },
        },
        {
            "name": "transactions",
            "table": "transactions",
            "sql": "select customer_id, cast(purchase_date as timestamp) as txn_time, "
            "-dollar_value as amount, 'out' as direction, number_of_cds from purchases",
        },
        {"name": "customers", "table": "customers", "sql": "select distinct customer_id from purchases"},
    ],
}


def require_lifetimes():
    """Import lifetimes.utils; skip without it, but fail in CI (CI=true), where it is installed."""
    try:
        from lifetimes import utils
    except ImportError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"lifetimes is not installed: {exc}")
        pytest.skip(f"lifetimes is not installed: {exc}")
    return utils


@pytest.fixture(scope="module")
def purchase_log(shared: Path) -> pd.DataFrame:
    """The raw file as lifetimes' users read it: ids as text, dates parsed."""
    path = shared / "datasets" / "cdnow" / "CDNOW_master.txt.gz"
    frame = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


@pytest.fixture(scope="module")
def cdnow_run(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """Ingest of the CDNOW engagement; returns the canonical tables folder and the run's key."""
    from relmap_utils.runner import run_engagement

    folder = tmp_path_factory.mktemp("cdnow")
    (folder / "engagement.yaml").write_text(yaml.safe_dump(ENGAGEMENT, sort_keys=False), encoding="utf-8")
    key = secrets.token_hex(32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_SHARED_DIR", str(shared))
        patch.setenv("RELMAP_PSEUDONYM_KEY", key)
        result = run_engagement(folder, stages=["ingest"])
    assert result.status == "succeeded", result.failure and result.failure.render("en")
    return result.run_dir / "artifacts" / "00_ingest" / "tables", key.encode("utf-8")


def lifetimes_summary(purchase_log: pd.DataFrame, as_of: dt.date, key: bytes) -> pd.DataFrame:
    """Return lifetimes' quartet at ``as_of``, indexed by the pseudonym ingest gives each id."""
    utils = require_lifetimes()
    summary = utils.summary_data_from_transaction_data(
        purchase_log,
        "customer_id",
        "date",
        monetary_value_col="dollar_value",
        observation_period_end=pd.Timestamp(as_of),
        freq="D",
    )
    summary.index = [pseudonymize_value(raw_id, key) for raw_id in summary.index]
    return summary[QUARTET]


def map_quartet(tables_dir: Path, as_of: dt.date) -> pd.DataFrame:
    """Return the map's quartet at ``as_of`` on DuckDB, indexed by customer pseudonym."""
    backend = engine.connect()
    tables = spark.read_tables(backend, tables_dir)
    # Every row of the log is a purchase, also the 80 rows of value 0.
    expr = build_map(tables, as_of, MapSpec(purchase_direction="any"), timezone="Asia/Shanghai")
    frame = spark.collect(backend, expr.select("customer_id", *QUARTET)).to_pandas()
    backend.disconnect()
    return frame.set_index("customer_id")


def test_ingest_keeps_every_purchase(cdnow_run, purchase_log):
    tables_dir, key = cdnow_run
    transactions = pd.read_parquet(tables_dir / "transactions.parquet")
    customers = pd.read_parquet(tables_dir / "customers.parquet")
    assert len(transactions) == len(purchase_log) == 69_659
    assert customers.customer_id.nunique() == len(customers) == CUSTOMERS
    assert transactions.txn_time.max() == pd.Timestamp(LAST_DAY)
    assert purchase_log.date.max() == pd.Timestamp(LAST_DAY)
    assert -transactions.amount.sum() == pytest.approx(2_500_315.63, rel=1e-12)
    # Leading zeros survive: customer 00001 keeps its pseudonym, not that of "1".
    assert pseudonymize_value("00001", key) in set(customers.customer_id)
    assert pseudonymize_value("1", key) not in set(customers.customer_id)


@pytest.mark.parametrize("as_of", [LAST_DAY, EARLIER_DAY], ids=["last_day", "earlier_day"])
def test_quartet_equals_lifetimes(cdnow_run, purchase_log, as_of):
    tables_dir, key = cdnow_run
    expected = lifetimes_summary(purchase_log, as_of, key)
    actual = map_quartet(tables_dir, as_of)

    # Every customer is in the map. Those without a purchase by as_of have no quartet.
    assert len(actual) == CUSTOMERS
    purchased = actual.dropna(subset=["frequency"])
    assert sorted(purchased.index) == sorted(expected.index)
    assert actual.drop(index=purchased.index)[QUARTET].isna().all().all()

    actual = purchased.loc[expected.index]
    for column in ("frequency", "recency", "T"):
        assert np.array_equal(actual[column].to_numpy(dtype="float64"), expected[column].to_numpy()), column
    assert np.allclose(
        actual["monetary_value"].to_numpy(dtype="float64"),
        expected["monetary_value"].to_numpy(),
        rtol=RELATIVE_TOLERANCE,
        atol=0.0,
    )


def test_quartet_spot_values(cdnow_run):
    # Customer 00003 bought 20.76 on 1997-01-02, then 20.76 on 1997-03-30,
    # 19.54 on 1997-04-02, 57.45 on 1997-11-15, 20.96 on 1997-11-25 and 16.99
    # on 1998-05-28: six purchase days, so frequency 5, recency 511 days, T
    # 544 days to 1998-06-30, and monetary_value (20.76 + 19.54 + 57.45 +
    # 20.96 + 16.99) / 5 = 27.14 over the five days after the first.
    tables_dir, key = cdnow_run
    actual = map_quartet(tables_dir, LAST_DAY).loc[pseudonymize_value("00003", key)]
    assert actual["frequency"] == 5
    assert actual["recency"] == 511
    assert actual["T"] == 544
    assert actual["monetary_value"] == pytest.approx(27.14, rel=RELATIVE_TOLERANCE)
