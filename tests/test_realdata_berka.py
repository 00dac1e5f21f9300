"""engagements/berka on the real PKDD'99 Czech bank files: the profile matches the dataset's README.

Expected figures come from datasets/berka/README.md (rows per file, loan
status counts, 2,645 women, 1,379 blank order purposes, "?" in A12 and A15
of district 69). The run goes through the runner, as `relmap run` does, into
a copy of the engagement under tmp_path so no run folder lands in the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="module")
def run_dir(real_engagement_run) -> Path:
    return real_engagement_run("berka")


@pytest.fixture(scope="module")
def columns(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "artifacts" / "01_profiling" / "columns.parquet").set_index(["table", "column"])


@pytest.fixture(scope="module")
def tables(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "artifacts" / "01_profiling" / "tables.parquet").set_index("table")


@pytest.fixture(scope="module")
def ingest_report(run_dir: Path) -> dict:
    report = json.loads((run_dir / "artifacts" / "00_ingest" / "ingest_report.json").read_text(encoding="utf-8"))
    return {source["name"]: source for source in report["sources"]}


def _top_values(columns: pd.DataFrame, table: str, column: str) -> dict[str, int]:
    return {value: rows for value, rows in json.loads(columns.loc[(table, column), "top_values"])}


def test_every_file_is_read_whole(ingest_report):
    rows = {name: ingest_report[name]["rows_read"] for name in
            ("account", "client", "disp", "payment_order", "loan", "card", "district")}
    assert rows == {"account": 4500, "client": 5369, "disp": 5369, "payment_order": 6471, "loan": 682,
                    "card": 892, "district": 77}


def test_canonical_tables_have_expected_rows(tables):
    assert tables["rows"].to_dict() == {
        "customers": 5369,  # client
        "regions": 77,  # district
        "accounts": 4500 + 682 + 892,  # account, loan, card
        "relations": 5369 + 6471,  # disp, order
        "labels": 682,  # loan
    }


def test_accounts_by_product_family(columns):
    assert _top_values(columns, "accounts", "product_family") == {"deposit": 4500, "loan": 682, "card": 892}


def test_dispositions_and_orders_become_relations(columns):
    assert _top_values(columns, "relations", "relation_type") == {
        "owner": 4500, "disponent": 869, "payment_order": 6471
    }


def test_loan_status_counts(columns):
    assert _top_values(columns, "labels", "detail") == {"A": 203, "B": 31, "C": 403, "D": 45}
    # Status B and D are defaults: (31 + 45) of 682 loans.
    assert columns.loc[("labels", "value"), "mean"] == pytest.approx(76 / 682, rel=1e-12)


def test_question_marks_are_missing(columns, ingest_report):
    assert ingest_report["district"]["missing_markers_replaced"] == {"A12": 1, "A15": 1}
    assert columns.loc[("regions", "unemployment_rate_1995"), "missing"] == 1
    assert columns.loc[("regions", "crimes_1995"), "missing"] == 1
    assert columns.loc[("regions", "unemployment_rate"), "missing"] == 0


def test_blank_order_purpose_is_missing(columns, ingest_report):
    assert ingest_report["payment_order"]["missing_markers_replaced"] == {"k_symbol": 1379}
    # 1,379 blank purposes among 6,471 orders, and no purpose on the 5,369 disposition rows.
    assert columns.loc[("relations", "purpose"), "missing"] == 1379 + 5369


def test_birth_number_gives_sex_and_birth_date(columns):
    assert _top_values(columns, "customers", "gender") == {"M": 2724, "F": 2645}
    assert columns.loc[("customers", "birth_date"), "missing"] == 0
    assert columns.loc[("customers", "birth_date"), "min"] >= "1900-01-01"
    assert columns.loc[("customers", "birth_date"), "max"] <= "1990-12-31"


def test_dates_fall_in_1993_to_1998(tables):
    for table in ("accounts", "labels", "relations", "customers"):
        assert tables.loc[table, "date_min"] >= "1993-01-01", table
        assert tables.loc[table, "date_max"] <= "1998-12-31", table


def test_profile_finds_no_orphans(run_dir):
    integrity = pd.read_parquet(run_dir / "artifacts" / "01_profiling" / "integrity.parquet")
    references = integrity[integrity["check"] == "reference"].set_index(["table", "column"])
    for table in ("accounts", "relations", "labels"):
        assert references.loc[(table, "customer_id"), "failures"] == 0, table
    assert references.loc[("customers", "region_id"), "failures"] == 0
    assert references.loc[("relations", "customer_id"), "other_unmatched"] == 0


def test_dispositions_point_at_accounts(run_dir):
    folder = run_dir / "artifacts" / "00_ingest" / "tables"
    con = duckdb.connect()
    con.execute(f"create view relations as select * from '{folder / 'relations.parquet'}'")
    con.execute(f"create view accounts as select * from '{folder / 'accounts.parquet'}'")
    orphans, owners_per_account = con.execute(
        """
        select (select count(*) from relations where relation_type in ('owner', 'disponent')
                  and related_id not in (select account_id from accounts where product_family = 'deposit')),
               (select max(owners) from (select count(*) as owners from relations
                                         where relation_type = 'owner' group by related_id))
        """
    ).fetchall()[0]
    assert orphans == 0
    assert owners_per_account == 1
