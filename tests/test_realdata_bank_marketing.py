"""engagements/bank_marketing on the real UCI file: the profile matches the dataset's README.

Expected figures come from datasets/bank_marketing/README.md: 41,188 rows,
4,640 yes and 36,548 no, and the "unknown" counts per column. The rows per
contact year were counted with pandas from the raw file (the month number
falls twice, after rows 27,690 and 39,130):

    month = df["month"].map({"jan": 1, ..., "dec": 12})
    year = 2008 + (month.diff() < 0).cumsum()
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

ROWS = 41_188


@pytest.fixture(scope="module")
def run_dir(real_engagement_run) -> Path:
    return real_engagement_run("bank_marketing")


@pytest.fixture(scope="module")
def columns(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "artifacts" / "01_profiling" / "columns.parquet").set_index(["table", "column"])


@pytest.fixture(scope="module")
def tables(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "artifacts" / "01_profiling" / "tables.parquet").set_index("table")


def test_every_contact_becomes_one_customer(tables, columns):
    assert tables.loc["customers", "rows"] == ROWS
    assert tables.loc["labels", "rows"] == ROWS
    assert tables.loc["events", "rows"] == ROWS
    assert tables.loc["customers", "duplicate_keys"] == 0
    assert columns.loc[("customers", "customer_id"), "distinct"] == ROWS


@pytest.mark.parametrize(
    ("column", "unknown"),
    [
        ("credit_default", 8597),
        ("education", 1731),
        ("housing_loan", 990),
        ("personal_loan", 990),
        ("occupation", 330),
        ("marital_status", 80),
    ],
)
def test_unknown_is_missing(columns, column, unknown):
    assert columns.loc[("customers", column), "missing"] == unknown


def test_unknown_replacements_are_reported(run_dir):
    report = json.loads((run_dir / "artifacts" / "00_ingest" / "ingest_report.json").read_text(encoding="utf-8"))
    contacts = next(source for source in report["sources"] if source["name"] == "contacts")
    assert contacts["rows_read"] == ROWS
    assert contacts["missing_markers_replaced"] == {
        "default": 8597, "education": 1731, "housing": 990, "loan": 990, "job": 330, "marital": 80
    }


def test_takeup_counts(columns):
    top = {value: rows for value, rows in json.loads(columns.loc[("labels", "detail"), "top_values"])}
    assert top == {"yes": 4640, "no": 36548}
    assert columns.loc[("labels", "value"), "mean"] == pytest.approx(4640 / ROWS, rel=1e-12)


def test_contact_dates_follow_row_order(tables):
    assert tables.loc["labels", "date_min"] == "2008-05-01"
    assert tables.loc["labels", "date_max"] == "2010-11-01"
    per_month = json.loads(tables.loc["labels", "rows_per_month"])
    per_year: dict[str, int] = {}
    for month, rows in per_month:
        per_year[month[:4]] = per_year.get(month[:4], 0) + rows
    assert per_year == {"2008": 27_690, "2009": 11_440, "2010": 2_058}


def test_duration_stays_for_the_leakage_guard(columns):
    # duration is known only after the call; the propensity stage drops it by name.
    assert ("customers", "duration") in columns.index
    assert columns.loc[("customers", "duration"), "missing"] == 0
