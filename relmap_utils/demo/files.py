"""Write the demo bank's files the way a bank's extract looks.

The customer master is a GBK CSV with Chinese headers (as exported from a
Windows core-banking client), the other small tables are UTF-8 CSV, and the
large ones are Parquet with warehouse-style column names. Every write goes to
a temporary file first and is then renamed, and the bytes depend only on the
data, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from relmap_utils.demo.calendar import DAY, Calendar
from relmap_utils.demo.people import format_birth_dates
from relmap_utils.demo.events import EVENT_CHANNELS, EVENT_TYPES, TOPICS, Events
from relmap_utils.demo.products import CATALOG
from relmap_utils.demo.relations import RELATED_TYPES, RELATION_TYPES
from relmap_utils.demo.transactions import (
    ACCOUNT,
    CHANNELS,
    EMPLOYER,
    EXTERNAL,
    MERCHANT,
    MERCHANT_CATEGORIES,
    PARTNER,
    PENSION_FUND,
    TXN_TYPES,
    Part,
)

# File name of each canonical table's source, relative to the output folder.
SOURCE_FILES = {
    "customers": "customers.csv",
    "accounts": "accounts.csv",
    "balances": "balances.parquet",
    "transactions": "transactions.parquet",
    "events": "events.parquet",
    "relations": "relations.csv",
    "repayments": "repayments.csv",
    "labels": "labels.csv",
}
TRUTH_FILE = "planted_truth.parquet"
SIGNALS_FILE = "planted_signals.json"
SUMMARY_FILE = "demo_bank.json"


def _atomic(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def write_csv(frame: pd.DataFrame, path: Path, encoding: str, line_end: str = "\n") -> None:
    """Write ``frame`` as CSV in ``encoding`` through a temporary file."""
    temporary = _atomic(path)
    frame.to_csv(temporary, index=False, encoding=encoding, lineterminator=line_end)
    os.replace(temporary, path)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write ``table`` as Parquet through a temporary file."""
    temporary = _atomic(path)
    pq.write_table(table, temporary, compression="zstd")
    os.replace(temporary, path)


def write_json(data: Any, path: Path) -> None:
    """Write ``data`` as indented UTF-8 JSON through a temporary file."""
    temporary = _atomic(path)
    temporary.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def sha256_of(path: Path) -> str:
    """Return the SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _date_text(calendar: Calendar, days: np.ndarray, blank: np.ndarray | None = None) -> np.ndarray:
    """Return days as ``YYYY-MM-DD`` text, empty where ``blank`` is true (by default where the day is -1)."""
    days = np.asarray(days)
    text = (calendar.start + np.maximum(days, -100_000) * DAY).astype(str).astype(object)
    text[days == -1 if blank is None else np.asarray(blank)] = ""
    return text


def customers_frame(rng: np.random.Generator, customers: pd.DataFrame) -> pd.DataFrame:
    """Return the customer master as the bank exports it: Chinese headers, birth dates in mixed formats."""
    return pd.DataFrame(
        {
            "客户号": customers["customer_no"],
            "姓名": customers["name"],
            "证件号码": customers["id_number"],
            "手机号": customers["phone"],
            "性别": np.where(customers["male"], "男", "女"),
            "出生日期": format_birth_dates(rng, customers["birth_date"].to_numpy().astype("datetime64[D]")),
            "城市": customers["city"],
            "城市等级": customers["city_tier"],
            "联系地址": customers["address"],
            "职业": customers["occupation"],
            "学历": customers["education"],
            "婚姻状况": customers["marital"],
            "年收入(万元)": customers["income_wan"],
            "开户日期": customers["open_date"].to_numpy().astype("datetime64[D]").astype(str),
            "所属网点": customers["branch_no"],
            "风险承受能力": customers["risk_tolerance"],
        }
    )


def accounts_frame(accounts: pd.DataFrame, customers: pd.DataFrame, calendar: Calendar) -> pd.DataFrame:
    code = accounts["product_code"].to_numpy()
    return pd.DataFrame(
        {
            "账号": accounts["account_no"],
            "客户号": customers["customer_no"].to_numpy()[accounts["customer"].to_numpy()],
            "产品大类": [CATALOG[c].family for c in code],
            "产品代码": code,
            "产品名称": [CATALOG[c].name for c in code],
            "开户日期": _date_text(calendar, accounts["open_day"].to_numpy()),
            "销户日期": _date_text(calendar, accounts["close_day"].to_numpy()),
            "账户状态": accounts["status"],
            "风险等级": [CATALOG[c].risk_level or "" for c in code],
            "授信额度或合同金额(元)": accounts["amount"],
        }
    )


def truth_table(truth: pd.DataFrame) -> pa.Table:
    """Return the ground truth as Arrow: text as string, dates as date32, no pandas metadata."""
    table = pa.Table.from_pandas(truth, preserve_index=False)
    fields = []
    for field in table.schema:
        if pa.types.is_large_string(field.type):
            field = field.with_type(pa.string())
        elif pa.types.is_timestamp(field.type):
            field = field.with_type(pa.date32())
        fields.append(field)
    return table.cast(pa.schema(fields)).replace_schema_metadata(None)


def _strings(values: np.ndarray | tuple[str, ...]) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object), pa.string())


def _take(strings: pa.Array, index: np.ndarray) -> pa.Array:
    """Return ``strings[index]`` without building Python strings; negative indices give nulls."""
    index = np.asarray(index, dtype=np.int64)
    return strings.take(pa.array(index, mask=index < 0))


def balances_table(balances: pd.DataFrame, accounts: pd.DataFrame, customers: pd.DataFrame, calendar: Calendar) -> pa.Table:
    account = balances["account"].to_numpy()
    return pa.table(
        {
            "acct_no": _take(_strings(accounts["account_no"].to_numpy()), account),
            "cust_no": _take(_strings(customers["customer_no"].to_numpy()), accounts["customer"].to_numpy()[account]),
            "stat_month": pa.array(calendar.month_ends[balances["month"].to_numpy()], pa.date32()),
            "bal": pa.array(balances["balance"].to_numpy(), pa.float64()),
        }
    )


def _padded(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _counterparties(part: Part, account_numbers: pa.Array) -> pa.Array:
    # Build each kind's ids as one Arrow array, then put the rows back in order.
    kind, number = part.counterparty_kind, part.counterparty
    formats = {MERCHANT: ("M", 9), EMPLOYER: ("E", 8), PENSION_FUND: ("SB", 4), PARTNER: ("B", 9)}
    pieces, positions = [], []
    for code in np.unique(kind):
        rows = np.flatnonzero(kind == code)
        if code in formats:
            prefix, width = formats[code]
            pieces.append(_padded(prefix, number[rows], width))
        elif code == EXTERNAL:
            # Accounts at other banks: 18 digits derived from the payee number.
            pieces.append(_padded("62", (number[rows] * 2_654_435_761 + 97_531) % 10**16, 16))
        elif code == ACCOUNT:
            pieces.append(_take(account_numbers, number[rows]))
        else:
            pieces.append(pa.nulls(len(rows), pa.string()))
        positions.append(rows)
    order = np.empty(len(kind), dtype=np.int64)
    order[np.concatenate(positions)] = np.arange(len(kind))
    return pa.concat_arrays(pieces).take(pa.array(order))


def transactions_table(part: Part, accounts: pd.DataFrame, customers: pd.DataFrame, calendar: Calendar) -> pa.Table:
    n = len(part)
    epoch_day = calendar.start.astype(np.int64)
    micros = ((epoch_day + part.day) * 86_400 + part.second) * 1_000_000
    timestamp = pa.array(micros, pa.timestamp("us"))
    serial = _padded("", np.arange(1, n + 1), 8)
    txn_no = pc.binary_join_element_wise(pa.scalar("TX"), pc.strftime(timestamp, format="%Y%m%d"), serial, "")
    account_numbers = _strings(accounts["account_no"].to_numpy())
    return pa.table(
        {
            "txn_no": txn_no,
            "cust_no": _take(_strings(customers["customer_no"].to_numpy()), part.customer),
            "acct_no": _take(account_numbers, part.account),
            "txn_tm": timestamp,
            "txn_amt": pa.array(part.amount, pa.float64()),
            "dr_cr_flag": _take(_strings(("借", "贷")), (part.amount > 0).astype(np.int64)),
            "chnl": _take(_strings(CHANNELS), part.channel),
            "mcc_cat": _take(_strings(MERCHANT_CATEGORIES), part.merchant),
            "txn_type": _take(_strings(TXN_TYPES), part.txn_type),
            "cpty_no": _counterparties(part, account_numbers),
        }
    )


def events_table(events: Events, customers: pd.DataFrame, calendar: Calendar) -> pa.Table:
    epoch_day = calendar.start.astype(np.int64)
    micros = ((epoch_day + events.day) * 86_400 + events.second) * 1_000_000
    return pa.table(
        {
            "cust_no": _take(_strings(customers["customer_no"].to_numpy()), events.customer),
            "evt_tm": pa.array(micros, pa.timestamp("us")),
            "evt_type": _take(_strings(EVENT_TYPES), events.event_type),
            "page_cat": _take(_strings(TOPICS), events.topic),
            "chnl": _take(_strings(EVENT_CHANNELS), events.channel),
            "device_id": _take(_strings(events.device_ids), events.device),
        }
    )


def relations_frame(relations: pd.DataFrame, customers: pd.DataFrame, calendar: Calendar) -> pd.DataFrame:
    amount = relations["amount"].to_numpy()
    return pd.DataFrame(
        {
            "客户号": customers["customer_no"].to_numpy()[relations["customer"].to_numpy()],
            "关联方": relations["related"].to_numpy(),
            "关系类型": relations["relation"].map(RELATION_TYPES).to_numpy(),
            "关联方类型": relations["related_type"].map(RELATED_TYPES).to_numpy(),
            "开始日期": _date_text(calendar, relations["start_day"].to_numpy()),
            "结束日期": _date_text(calendar, relations["end_day"].to_numpy()),
            "金额": np.where(np.isnan(amount), None, amount),
        }
    )


def repayments_frame(repayments: pd.DataFrame, accounts: pd.DataFrame, customers: pd.DataFrame,
                     calendar: Calendar) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "借据号": accounts["account_no"].to_numpy()[repayments["account"].to_numpy()],
            "客户号": customers["customer_no"].to_numpy()[repayments["customer"].to_numpy()],
            "应还日期": _date_text(calendar, repayments["due_day"].to_numpy()),
            # Day -1 is a real payment day (the last day before the history), so blank by the paid flag.
            "实还日期": _date_text(calendar, repayments["paid_day"].to_numpy(), ~repayments["paid"].to_numpy()),
            "应还金额": repayments["amount_due"].to_numpy(),
            "实还金额": repayments["amount_paid"].to_numpy(),
            "逾期天数": repayments["days_past_due"].to_numpy(),
        }
    )


def labels_frame(labels: pd.DataFrame, customers: pd.DataFrame, calendar: Calendar) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "客户号": customers["customer_no"].to_numpy()[labels["customer"].to_numpy()],
            "标签类型": labels["label_type"].to_numpy(),
            "产品": labels["product"].to_numpy(),
            "标签日期": _date_text(calendar, labels["day"].to_numpy()),
            "标签值": labels["value"].to_numpy(),
            "说明": labels["detail"].to_numpy(),
        }
    )
