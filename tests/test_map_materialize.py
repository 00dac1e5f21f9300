"""The map computed step by step into DuckDB temporary tables, and narrowed to a few features.

Stage 02 builds the map on DuckDB through TemporaryTables: every shared
intermediate table and every family is computed first, so that no query
keeps the whole map's hash tables in memory at once. The result must be the map of
the one lazy expression: same columns, same Parquet column types, same
values. build_map(features=...) builds only the features named, with the
values of the whole map.
"""

from __future__ import annotations

import ibis
import pandas as pd
import pyarrow.parquet as pq
import pytest

from relmap_utils.errors import ConfigError
from relmap_utils.features import build_map
from relmap_utils.features.builder import TemporaryTables, included_features
from relmap_utils.features.stage import build_partition, partition_path
from relmap_utils.features.windows import parse_date
from test_map_pointintime import SPEC
from test_map_support import AS_OF, frames, load


@pytest.fixture(scope="module")
def backend():
    connection = ibis.duckdb.connect()
    yield connection
    connection.disconnect()


@pytest.fixture(scope="module")
def tables(backend):
    return load(backend, frames())


@pytest.fixture(scope="module")
def lazy_file(backend, tables, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("lazy") / "map.parquet"
    backend.to_parquet(build_map(tables, AS_OF, SPEC).drop("as_of").order_by("customer_id"), path)
    return str(path)


def temporary_tables(backend) -> list[str]:
    rows = backend.raw_sql("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    return [name for (name,) in rows]


def test_stage_partition_equals_lazy_map(backend, tables, lazy_file, tmp_path):
    path = build_partition(backend, tables, parse_date(AS_OF), SPEC, tmp_path / "customer_map")

    assert path == partition_path(tmp_path / "customer_map", parse_date(AS_OF))
    assert pq.read_schema(path) == pq.read_schema(lazy_file)
    pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(lazy_file), rtol=1e-12)


def test_temporary_tables_cleaned_up(backend, tables):
    before = backend.raw_sql("SELECT current_setting('preserve_insertion_order')").fetchone()[0]

    with TemporaryTables(backend) as materialize:
        build_map(tables, AS_OF, SPEC, materialize=materialize)
        inside = backend.raw_sql("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
        created = len(materialize.names)
        assert set(materialize.names) <= set(temporary_tables(backend))

    assert created > 6  # the customer ids, shared tables and the six families
    assert inside is False
    assert backend.raw_sql("SELECT current_setting('preserve_insertion_order')").fetchone()[0] == before
    assert not [name for name in temporary_tables(backend) if name.startswith("_relmap_map_")]


def test_every_feature_builds_alone(tables):
    for item in included_features(SPEC, tables):
        name = item.feature.name
        assert build_map(tables, AS_OF, SPEC, features=[name]).columns == ("customer_id", "as_of", name), name


@pytest.mark.parametrize("names", [
    ["days_since_last_purchase", "purchase_count", "inflow_monthly_avg", "deposit_balance", "card_accounts"],
    ["related_default_rate", "cash_withdrawals_monthly_avg"],
    ["interest_education_days_since", "channel_share_mobile", "merchant_share_dining"],
    ["frequency", "monetary_value", "days_past_due", "age_band"],
    # Without the monthly volatility, the window sums and activity come from one grouping by customer.
    ["inflow_change", "txn_count_change", "stability_covered", "inflow_trend", "cash_withdrawals_recent",
     "channels_used", "channel_share_mobile", "transactions_covered", "txn_count", "days_since_last_transaction"],
    ["outflow_change", "net_flow_monthly_avg", "cash_withdrawals_monthly_avg", "months_observed"],
])
def test_narrow_map_equals_whole_map(backend, tables, lazy_file, names):
    whole = pd.read_parquet(lazy_file, columns=["customer_id", *names])

    with TemporaryTables(backend) as materialize:
        narrow = build_map(tables, AS_OF, SPEC, features=names, materialize=materialize)
        frame = narrow.drop("as_of").order_by("customer_id").to_pandas()

    # Columns come in dictionary order, whatever the requested order.
    assert sorted(frame.columns) == sorted(whole.columns)
    pd.testing.assert_frame_equal(frame, whole[list(frame.columns)], rtol=1e-12, check_dtype=False)


@pytest.mark.parametrize("names", [["no_such_feature"], [], ["rel_*_count"]])
def test_unknown_feature_rejected(tables, names):
    with pytest.raises(ConfigError, match="features"):
        build_map(tables, AS_OF, SPEC, features=names)
