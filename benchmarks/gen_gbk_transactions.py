#!/usr/bin/env python3
"""Write a seeded transaction extract as a GBK CSV with Chinese headers, for the ingest benchmark.

The file looks like an export from a Windows core-banking client: GBK bytes,
CRLF line ends, Chinese headers and identifiers with leading zeros. Amounts
have thousands separators, ￥ signs and negatives in parentheses, dates are
also written as 2023年1月5日, and blanks and ``NULL`` mark missing values.
Its 14 columns:

========== ============================== ==================================
header     content                        ingest mapping in bench_ingest.py
========== ============================== ==================================
流水号     T and 15 digits, leading zeros  txn_id, identifier
客户号     10 digits, leading zeros        customer_id, identifier (pseudonym)
账号       19 digits                       account_id, identifier (pseudonym)
交易时间   2023-01-05 08:12:33             txn_time, datetime
记账日期   2023年1月5日                    unmapped (type guessed)
交易金额   1,234.56 or (1,234.56)           amount, amount
借贷标志   借 or 贷                          direction, category (recoded)
渠道       6 channels                      channel, category
商户类别   20 categories, blank when none  merchant_category, category
交易类型   8 types                         txn_type, category
对手方账号 19 digits, blank or NULL (30%)   counterparty_id, identifier (pseudonym)
交易后余额 ￥12,345.67                      balance_after, amount
网点号     4 digits, leading zero          unmapped (type guessed)
摘要       short Chinese memo              unmapped (type guessed)
========== ============================== ==================================

No value is personal data. Account numbers are random digits, and about one
in ten passes the Luhn check by chance, but both account columns are mapped
keys that ingest pseudonymizes, so its personal-data scan skips them. The
transaction numbers start with a letter, because 16 bare digits would look
like card numbers to that scan. The memos hold no names.

Usage::

    python gen_gbk_transactions.py --rows 1000000 --out transactions_gbk.csv
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20240602
CUSTOMERS = 200_000
CHANNELS = ["手机银行", "网上银行", "柜面", "ATM", "POS", "微信支付"]
MERCHANT_CATEGORIES = [
    "餐饮", "超市", "加油", "医疗", "教育", "旅游", "航空", "酒店", "电商", "通讯",
    "水电煤", "保险", "房租", "汽车", "娱乐", "服饰", "家电", "母婴", "公益", "其他",
]
TXN_TYPES = ["消费", "转账", "取现", "代发工资", "还款", "理财申购", "理财赎回", "利息"]
MEMOS = ["工资", "POS消费", "跨行转账", "ATM取款", "信用卡还款", "理财产品申购", "结息", "快捷支付"]
HEADERS = [
    "流水号", "客户号", "账号", "交易时间", "记账日期", "交易金额", "借贷标志", "渠道",
    "商户类别", "交易类型", "对手方账号", "交易后余额", "网点号", "摘要",
]


def _digits(rng: np.random.Generator, rows: int, prefix: str, width: int) -> np.ndarray:
    # Two draws of up to 9 digits each, because one int64 draw cannot cover 15 digits uniformly.
    high = rng.integers(0, 10 ** (width - 9), rows)
    low = rng.integers(0, 10**9, rows)
    return np.array([f"{prefix}{h:0{width - 9}d}{l:09d}" for h, l in zip(high, low)], dtype=object)


def _money(values: np.ndarray, sign: str = "", parentheses: np.ndarray | None = None) -> list[str]:
    if parentheses is None:
        return [f"{sign}{value:,.2f}" for value in values]
    return [f"({value:,.2f})" if negative else f"{value:,.2f}" for value, negative in zip(values, parentheses)]


def transactions(rows: int, seed: int = SEED) -> pd.DataFrame:
    """Return ``rows`` seeded transactions, every column already formatted as text."""
    rng = np.random.default_rng(seed)
    customer = rng.integers(1, CUSTOMERS + 1, rows)
    # Each customer has one account, so account numbers follow from customer numbers.
    account_rng = np.random.default_rng([seed, 1])
    accounts = _digits(account_rng, CUSTOMERS + 1, "6222", 15)

    start = np.datetime64("2023-01-01T00:00:00", "s")
    seconds = rng.integers(0, 2 * 365 * 86_400, rows)
    times = pd.to_datetime(start + seconds.astype("timedelta64[s]"))
    booked = [f"{t.year}年{t.month}月{t.day}日" for t in times]

    outflow = rng.random(rows) < 0.6
    amount = np.round(rng.lognormal(5.5, 1.4, rows), 2)
    balance = np.round(rng.lognormal(9.0, 1.6, rows), 2)
    counterparty = _digits(rng, rows, "6217", 15)
    missing = rng.random(rows)
    counterparty[missing < 0.25] = ""
    counterparty[(missing >= 0.25) & (missing < 0.30)] = "NULL"
    merchant = np.array(MERCHANT_CATEGORIES, dtype=object)[rng.integers(0, len(MERCHANT_CATEGORIES), rows)]
    merchant[rng.random(rows) < 0.4] = ""

    return pd.DataFrame(
        {
            "流水号": [f"T{index:015d}" for index in range(1, rows + 1)],
            "客户号": [f"{number:010d}" for number in customer],
            "账号": accounts[customer],
            "交易时间": times.strftime("%Y-%m-%d %H:%M:%S"),
            "记账日期": booked,
            "交易金额": _money(amount, parentheses=outflow),
            "借贷标志": np.where(outflow, "借", "贷"),
            "渠道": np.array(CHANNELS, dtype=object)[rng.integers(0, len(CHANNELS), rows)],
            "商户类别": merchant,
            "交易类型": np.array(TXN_TYPES, dtype=object)[rng.integers(0, len(TXN_TYPES), rows)],
            "对手方账号": counterparty,
            "交易后余额": _money(balance, sign="￥"),
            "网点号": [f"{number:04d}" for number in rng.integers(101, 400, rows)],
            "摘要": np.array(MEMOS, dtype=object)[rng.integers(0, len(MEMOS), rows)],
        },
        columns=HEADERS,
    )


def write_csv(rows: int, out: Path, seed: int = SEED) -> None:
    """Write the extract to ``out`` in GBK with CRLF line ends, through a temporary file."""
    frame = transactions(rows, seed)
    temporary = out.with_name(out.name + ".tmp")
    frame.to_csv(temporary, index=False, encoding="gbk", lineterminator="\r\n")
    os.replace(temporary, out)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the GBK transaction extract of the ingest benchmark.")
    parser.add_argument("--rows", type=int, default=1_000_000, help="data rows (default 1000000)")
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(args.rows, args.out, args.seed)


if __name__ == "__main__":
    main()
