"""A tiny hand-made bank for the relationship-map tests, with values worked out by hand.

Four customers (ids are short stand-ins for pseudonyms):

- ``c1``: born 1990-07-01, customer since 2020-01-15, married teacher in 上海. A salary of 10,000
  arrives on the 10th of every month from July 2023, with a year-end bonus. c1 buys on four days,
  holds a deposit, a card and a closed loan, shares a phone with c2, changes address in June 2024
  and pays an instalment late;
- ``c2``: born 1960-06-30, customer since 2024-05-10; one purchase; a wealth product; defaulted
  on 2024-06-15;
- ``c3``: joins on 2024-08-01, after the main as_of;
- ``c4``: no dates and no activity at all.

Data starts on 2023-07-01. The main as_of is 2024-06-30; the month periods then are June 2024
(k = 0) back to July 2023 (k = 11).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from relmap_utils import schema

AS_OF = "2024-06-30"
CUSTOMERS = ["c1", "c2", "c3", "c4"]


def _dates(values: list[str | None]) -> pd.Series:
    # Dates stay datetime64 in pandas; load() and write_run() turn them into SQL dates.
    return pd.to_datetime(pd.Series(values, dtype="object"))


def _times(values: list[str]) -> pd.Series:
    return pd.to_datetime(pd.Series(values))


def customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": CUSTOMERS,
            "gender": ["F", "M", "F", None],
            "birth_date": _dates(["1990-07-01", "1960-06-30", "2000-01-01", None]),
            "open_date": _dates(["2020-01-15", "2024-05-10", "2024-08-01", None]),
            "city": ["上海", "成都", None, None],
            "city_tier": ["一线", "新一线", None, None],
            "occupation": ["教师", "退休人员", None, None],
            "marital_status": ["已婚", "未婚", None, None],
            "income": [120_000.0, 60_000.0, None, None],
            "region_id": ["R1", "R2", None, None],
        }
    )


def regions() -> pd.DataFrame:
    return pd.DataFrame({"region_id": ["R1", "R2"], "region_name": ["上海市", "成都市"],
                         "avg_salary": [12_000.0, 8_000.0]})


def accounts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["a1", "a2", "a3", "a4", "a5"],
            "customer_id": ["c1", "c1", "c1", "c2", "c1"],
            "product_family": ["deposit", "card", "loan", "wealth", "insurance"],
            "product_code": ["D01", "K01", "L01", "W01", "I01"],
            "open_date": _dates(["2020-01-15", "2021-03-01", "2023-02-01", "2024-05-10", "2024-07-15"]),
            "close_date": _dates([None, None, "2024-03-31", None, None]),
            "limit_amount": [None, 50_000.0, 100_000.0, None, None],
        }
    )


def balances() -> pd.DataFrame:
    rows = [
        ("a1", "c1", "2024-03-31", 8_000.0),
        ("a1", "c1", "2024-05-31", 10_000.0),
        ("a1", "c1", "2024-06-30", 12_000.0),
        # The card balance is stored negative; the map takes the amount owed.
        ("a2", "c1", "2024-06-30", -2_000.0),
        ("a3", "c1", "2024-03-31", 50_000.0),
        ("a4", "c2", "2024-05-31", 29_000.0),
        ("a4", "c2", "2024-06-30", 30_000.0),
    ]
    frame = pd.DataFrame(rows, columns=["account_id", "customer_id", "month", "balance"])
    frame["month"] = _dates(list(frame["month"]))
    return frame


def transactions() -> pd.DataFrame:
    rows = []
    month = dt.date(2023, 7, 10)
    for _ in range(12):
        rows.append(("c1", f"{month.isoformat()} 09:00:00", 10_000.0, "in", "批量代发", None, "代发工资", "E1"))
        month = (month.replace(day=1) + dt.timedelta(days=32)).replace(day=10)
    rows += [
        ("c1", "2024-01-20 09:00:00", 20_000.0, "in", "批量代发", None, "年终奖金", "E1"),
        ("c1", "2023-08-01 12:00:00", -400.0, "out", "POS", "餐饮", "消费", "M1"),
        ("c1", "2024-01-05 12:00:00", -300.0, "out", "POS", "餐饮", "消费", "M1"),
        ("c1", "2024-05-15 12:00:00", -200.0, "out", "手机银行", "旅游酒店", "消费", "M2"),
        ("c1", "2024-06-28 08:00:00", -100.0, "out", "手机银行", "旅游酒店", "消费", "M2"),
        ("c1", "2024-06-28 20:00:00", -50.0, "out", "POS", "餐饮", "消费", "M3"),
        ("c1", "2024-06-15 10:00:00", -1_000.0, "out", "手机银行", None, "转账转出", "c2"),
        # The last second of as_of belongs to as_of.
        ("c1", "2024-06-30 23:59:59", 5.0, "in", "手机银行", None, "转账转入", "c2"),
        ("c2", "2024-06-01 10:00:00", -80.0, "out", "手机银行", "超市便利", "消费", "M4"),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "txn_time", "amount", "direction", "channel",
                                        "merchant_category", "txn_type", "counterparty_id"])
    frame["txn_time"] = _times(list(frame["txn_time"]))
    frame.insert(0, "txn_id", [f"t{index:03d}" for index in range(len(frame))])
    return frame


def events() -> pd.DataFrame:
    rows = [
        ("c1", "2023-10-01 20:00:00", "view", "travel", "D0"),
        ("c1", "2024-02-01 20:00:00", "view", "education", "D1"),
        ("c1", "2024-05-05 20:00:00", "search", "education", "D2"),
        ("c1", "2024-06-20 20:00:00", "view", "education", "D1"),
        ("c1", "2024-06-25 08:00:00", "login", None, "D1"),
        ("c2", "2024-06-02 08:00:00", "view", "retirement", "D9"),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "topic", "device_id"])
    frame["event_time"] = _times(list(frame["event_time"]))
    return frame


def relations() -> pd.DataFrame:
    rows = [
        ("c1", "P1", "phone", "phone", "2020-01-15", None),
        ("c2", "P1", "phone", "phone", "2024-05-10", None),
        ("c1", "ADDR1", "address", "address", "2020-01-15", None),
        ("c1", "ADDR2", "address", "address", "2024-06-01", None),
        ("c1", "c2", "family", "customer", "2024-05-10", None),
        # A relative who is not a customer of the bank.
        ("c1", "x9", "family", "customer", "2021-01-01", None),
        ("c3", "c1", "guarantor", "customer", "2024-09-01", None),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "related_id", "relation_type", "related_type",
                                        "start_date", "end_date"])
    frame["start_date"] = _dates(list(frame["start_date"]))
    frame["end_date"] = _dates(list(frame["end_date"]))
    return frame


def repayments() -> pd.DataFrame:
    rows = [
        ("L1", "c1", "2024-04-10", "2024-04-10"),
        ("L1", "c1", "2024-05-10", "2024-05-20"),
        # Paid after the main as_of: still open on 2024-06-30.
        ("L1", "c1", "2024-06-10", "2024-07-05"),
    ]
    frame = pd.DataFrame(rows, columns=["loan_id", "customer_id", "due_date", "paid_date"])
    frame["due_date"] = _dates(list(frame["due_date"]))
    frame["paid_date"] = _dates(list(frame["paid_date"]))
    return frame


def labels() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": ["c2", "c1"],
            "label_type": ["default", "takeup"],
            "label_date": _dates(["2024-06-15", "2024-06-01"]),
            "value": [1, 1],
        }
    )
    return frame


def frames() -> dict[str, pd.DataFrame]:
    """Return every table of the tiny bank by canonical name."""
    return {
        "customers": customers(),
        "regions": regions(),
        "accounts": accounts(),
        "balances": balances(),
        "transactions": transactions(),
        "events": events(),
        "relations": relations(),
        "repayments": repayments(),
        "labels": labels(),
    }


def date_columns(table: str) -> list[str]:
    """Return the columns of a canonical table whose type is date."""
    return [column.name for column in schema.table(table).columns if column.type == "date"]


def load(backend, tables: dict[str, pd.DataFrame]) -> dict[str, ibis.Table]:
    """Create the frames as tables of ``backend`` and return them as Ibis tables, dates as dates."""
    result = {}
    for name, frame in tables.items():
        table = backend.create_table(name, frame, overwrite=True)
        dates = {column: table[column].cast("date") for column in date_columns(name) if column in frame.columns}
        result[name] = table.mutate(**dates) if dates else table
    return result


def write_parquet(frame: pd.DataFrame, table: str, path: Path) -> None:
    """Write a frame as ingest would: date columns as Parquet dates."""
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    for column in date_columns(table):
        if column in frame.columns:
            index = arrow.schema.get_field_index(column)
            arrow = arrow.set_column(index, column, arrow.column(column).cast(pa.timestamp("s")).cast(pa.date32()))
    pq.write_table(arrow, path)


def write_run(folder: Path, tables: dict[str, pd.DataFrame] | None = None, locale: str = "zh_CN",
              stage_params: str = "") -> Path:
    """Write a run folder holding the tiny bank as ingest's canonical Parquet tables."""
    run = folder / "engagements" / "tinybank" / "runs" / "20240701-000000"
    tables_dir = run / "artifacts" / "00_ingest" / "tables"
    tables_dir.mkdir(parents=True)
    (run / "engagement.yaml").write_text(
        f"name: tinybank\nclient: 微型银行\nlocale: {locale}\n"
        "sources:\n  - {name: customers, path: data/customers.csv, table: customers}\n"
        "privacy:\n  min_group_size: 1\n" + stage_params,
        encoding="utf-8",
    )
    for name, frame in (tables if tables is not None else frames()).items():
        write_parquet(frame, name, tables_dir / f"{name}.parquet")
    return run


def test_card_customer_without_coverage_flags():
    from relmap_utils.features.report import _pick_customer

    connection = ibis.duckdb.connect()
    plain = connection.create_table("plain", pd.DataFrame({"customer_id": ["b", "a"], "age": [30, 40]}))
    flagged = connection.create_table(
        "flagged",
        pd.DataFrame({"customer_id": ["b", "a"], "profile_covered": [True, False], "holdings_covered": [True, True]}),
    )

    assert _pick_customer(plain) == "a"
    assert _pick_customer(flagged) == "b"
