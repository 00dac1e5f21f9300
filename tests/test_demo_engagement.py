"""engagements/demo: its mapping covers the demo bank, and a run turns it into clean canonical tables."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from relmap_utils import schema
from relmap_utils.config import load_engagement
from relmap_utils.demo import generate_demo_bank
from relmap_utils.demo.products import TAKEUP_PRODUCTS
from relmap_utils.ingest.privacy import pseudonymize_value
from relmap_utils.paths import ENGAGEMENTS_DIR

DEMO = ENGAGEMENTS_DIR / "demo"
CUSTOMERS = 1000
TRANSACTIONS = 40_000


def test_engagement_maps_every_demo_file(tmp_path):
    engagement = load_engagement(DEMO)
    summary = generate_demo_bank(tmp_path, n_customers=CUSTOMERS, n_transactions=TRANSACTIONS)
    paths = {source.table: source.path for source in engagement.sources}
    assert paths == {table: f"data/{entry['path']}" for table, entry in summary["files"].items()}
    assert set(paths) == set(schema.TABLES) - {"regions"}


def test_engagement_maps_required_columns():
    engagement = load_engagement(DEMO)
    for source in engagement.sources:
        mapped = {column.name for column in source.columns.values()} | set(source.constants)
        missing = set(schema.TABLES[source.table].required) - mapped
        assert not missing, f"{source.name}: {sorted(missing)}"


def test_engagement_declares_personal_columns():
    engagement = load_engagement(DEMO)
    declared = {entry.column for entry in engagement.privacy.personal_data}
    assert {"customers.name", "customers.id_number", "customers.phone", "customers.address"} <= declared
    treatments = {entry.column: entry.treatment for entry in engagement.privacy.personal_data}
    assert treatments.pop("customers.birth_date") == "year_only"
    assert set(treatments.values()) == {"pseudonymize"}
    assert engagement.locale == "zh_CN"
    assert engagement.timezone == "Asia/Shanghai"
    assert engagement.privacy.min_group_size == 10


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A copy of engagements/demo with a small demo bank, run through ingest and profiling.

    Returns the engagement folder, the run folder and the pseudonym key of the
    run (the autouse key fixture of conftest is per test, this run is per module).
    """
    from relmap_utils.runner import run_engagement

    folder = tmp_path_factory.mktemp("demo_engagement")
    shutil.copy(DEMO / "engagement.yaml", folder / "engagement.yaml")
    generate_demo_bank(folder / "data", n_customers=CUSTOMERS, n_transactions=TRANSACTIONS)
    key = secrets.token_hex(32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_PSEUDONYM_KEY", key)
        result = run_engagement(folder, stages=["ingest", "profiling"])
    assert result.status == "succeeded", result.failure and result.failure.render("en")
    return folder, result.run_dir, key


@pytest.fixture(scope="module")
def tables(demo_run) -> duckdb.DuckDBPyConnection:
    _, run_dir, _ = demo_run
    con = duckdb.connect()
    for path in sorted((run_dir / "artifacts" / "00_ingest" / "tables").glob("*.parquet")):
        con.execute(f"create view {path.stem} as select * from '{path}'")
    return con


@pytest.mark.slow
def test_run_writes_every_table_with_all_rows(demo_run, tables):
    folder, _, _ = demo_run
    summary = json.loads((folder / "data" / "demo_bank.json").read_text(encoding="utf-8"))
    for table, entry in summary["files"].items():
        rows = tables.execute(f"select count(*) from {table}").fetchall()[0][0]
        assert rows == entry["rows"], table


@pytest.mark.slow
def test_customer_numbers_become_keyed_pseudonyms(demo_run, tables):
    folder, _, key = demo_run
    raw = pd.read_csv(folder / "data" / "customers.csv", encoding="gbk", dtype=str)
    expected = {pseudonymize_value(number, key.encode()) for number in raw["客户号"]}
    stored = {row[0] for row in tables.execute("select customer_id from customers").fetchall()}
    assert stored == expected
    orphans = tables.execute(
        "select count(*) from labels where customer_id not in (select customer_id from customers)"
    ).fetchall()[0][0]
    assert orphans == 0


@pytest.mark.slow
def test_no_raw_personal_value_leaves_ingest(demo_run, tables):
    folder, _, _ = demo_run
    raw = pd.read_csv(folder / "data" / "customers.csv", encoding="gbk", dtype=str)
    values = pd.DataFrame(
        {"value": pd.concat([raw["客户号"], raw["姓名"], raw["证件号码"], raw["手机号"], raw["联系地址"]])}
    )
    text_columns = tables.execute(
        "select table_name, column_name from duckdb_columns() where data_type = 'VARCHAR' "
        "and table_name in (select view_name from duckdb_views() where not internal)"
    ).fetchall()
    tables.register("personal_values", values)
    assert len(text_columns) > 30
    for table, column in text_columns:
        leaked = tables.execute(
            f'select count(*) from {table} where "{column}" in (select value from personal_values)'
        ).fetchall()[0][0]
        assert leaked == 0, f"{table}.{column}"


@pytest.mark.slow
def test_raw_codes_are_recoded(tables):
    def values(sql: str) -> set:
        return {row[0] for row in tables.execute(sql).fetchall()}

    assert values("select distinct gender from customers") == {"M", "F"}
    assert values("select distinct product_family from accounts") == set(schema.PRODUCT_FAMILIES)
    assert values("select distinct direction from transactions") == {"in", "out"}
    assert values("select distinct event_type from events") == {"login", "view", "search", "click"}
    assert values("select distinct topic from events where topic is not null") == {
        "education", "mortgage", "retirement", "travel", "wealth", "fund", "insurance", "credit_card", "deposit",
        "news",
    }
    assert values("select distinct relation_type from relations") == {
        "device", "phone", "address", "family", "guarantor", "transfer"
    }
    assert values("select distinct label_type from labels") == {"takeup", "default", "fraud"}
    assert values("select distinct product from labels where label_type = 'takeup'") == set(TAKEUP_PRODUCTS)


@pytest.mark.slow
def test_values_are_parsed(demo_run, tables):
    folder, _, _ = demo_run
    raw = pd.read_csv(folder / "data" / "customers.csv", encoding="gbk", dtype=str)
    income, births, missing = tables.execute(
        "select sum(income), count(birth_date), count(*) - count(open_date) from customers"
    ).fetchall()[0]
    # 年收入(万元) carries its unit in the header: 1 万 is 10,000 yuan.
    assert income == pytest.approx(raw["年收入(万元)"].astype(float).sum() * 10_000, rel=1e-9)
    assert births == CUSTOMERS
    assert missing == 0
    low, high = tables.execute("select min(txn_time), max(txn_time) from transactions").fetchall()[0]
    assert str(low) >= "2023-01-01"
    assert str(high) < "2024-07-01"


@pytest.mark.slow
def test_birth_dates_keep_only_the_year(demo_run, tables):
    folder, run_dir, _ = demo_run
    raw = pd.read_csv(folder / "data" / "customers.csv", encoding="gbk", dtype=str)
    raw_years = raw["出生日期"].str.slice(0, 4).astype(int).value_counts().sort_index()

    not_first_of_january = tables.execute(
        "select count(*) from customers where month(birth_date) <> 1 or day(birth_date) <> 1"
    ).fetchone()[0]
    years = tables.execute("select year(birth_date) as y, count(*) from customers group by y order by y").fetchall()

    assert not_first_of_january == 0
    assert dict(years) == raw_years.to_dict()
    columns = pd.read_parquet(run_dir / "artifacts" / "01_profiling" / "columns.parquet").set_index(["table", "column"])
    assert columns.loc[("customers", "birth_date"), "min"].endswith("-01-01")
    assert columns.loc[("customers", "birth_date"), "max"].endswith("-01-01")


@pytest.mark.slow
def test_keys_join_across_tables(tables):
    checks = {
        "repayment loans": "select count(*) from repayments where loan_id not in (select account_id from accounts)",
        "transfers to oneself": (
            "select count(*) from transactions t join accounts a on a.account_id = t.counterparty_id "
            "where t.txn_type = '转账转出' and a.customer_id = t.customer_id"
        ),
        "related customers": (
            "select count(*) from relations where related_type = 'customer' and related_id not in "
            "(select customer_id from customers)"
        ),
        "balances": "select count(*) from balances where account_id not in (select account_id from accounts)",
    }
    for name, sql in checks.items():
        assert tables.execute(sql).fetchall()[0][0] == 0, name
    internal = tables.execute(
        "select count(*) from transactions t join accounts a on a.account_id = t.counterparty_id "
        "where t.txn_type = '转账转出'"
    ).fetchall()[0][0]
    assert internal > 100


@pytest.mark.slow
def test_profile_finds_no_orphans(demo_run):
    _, run_dir, _ = demo_run
    integrity = pd.read_parquet(run_dir / "artifacts" / "01_profiling" / "integrity.parquet")
    references = integrity[integrity["check"] == "reference"]
    assert len(references) >= 8
    assert (references["failures"] == 0).all()
    findings = pd.read_parquet(run_dir / "artifacts" / "01_profiling" / "findings.parquet")
    assert not findings["severity"].isin(["critical", "high"]).any()
