"""The demo bank generator: determinism, sizes, file formats, fake personal data, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from relmap_utils.demo import MIN_CUSTOMERS, demo_bank_is_current, generate_demo_bank
from relmap_utils.errors import ConfigError

# Small enough to generate in about a second, large enough for every planted signal.
CUSTOMERS = 3000
TRANSACTIONS = 100_000
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


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("demo_bank")
    summary = generate_demo_bank(folder, n_customers=CUSTOMERS, n_transactions=TRANSACTIONS)
    return folder, summary


@pytest.fixture(scope="module")
def customers(bank) -> pd.DataFrame:
    folder, _ = bank
    return pd.read_csv(folder / "customers.csv", encoding="gbk", dtype=str)


def _resident_id_check(first17: str) -> str:
    # GB 11643-1999: weights 2^(17-i) mod 11, check = (12 - sum mod 11) mod 11, 10 written X.
    total = sum(int(digit) * (2 ** (17 - i) % 11) for i, digit in enumerate(first17))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def _luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def test_same_seed_gives_identical_files(bank, tmp_path):
    folder, summary = bank
    again = generate_demo_bank(tmp_path, n_customers=CUSTOMERS, n_transactions=TRANSACTIONS)
    assert again == summary
    for name in [*SOURCE_FILES.values(), "planted_truth.parquet", "planted_signals.json", "demo_bank.json"]:
        assert (tmp_path / name).read_bytes() == (folder / name).read_bytes(), name


def test_other_seed_gives_other_data(bank, tmp_path):
    _, summary = bank
    other = generate_demo_bank(tmp_path, n_customers=CUSTOMERS, n_transactions=TRANSACTIONS, seed=7)
    assert other["files"]["transactions"]["sha256"] != summary["files"]["transactions"]["sha256"]
    assert other["files"]["customers"]["sha256"] != summary["files"]["customers"]["sha256"]


def test_sizes_follow_parameters(bank):
    folder, summary = bank
    assert pq.read_metadata(folder / "transactions.parquet").num_rows == TRANSACTIONS
    assert pq.read_metadata(folder / "events.parquet").num_rows == 60_000
    assert pq.read_metadata(folder / "planted_truth.parquet").num_rows == CUSTOMERS
    assert summary["files"]["customers"]["rows"] == CUSTOMERS
    assert summary["files"]["transactions"]["rows"] == TRANSACTIONS
    assert summary["parameters"] == {
        "n_customers": CUSTOMERS, "n_transactions": TRANSACTIONS, "seed": 20240601, "as_of": "2024-06-30"
    }


def test_summary_lists_every_file_with_hash(bank):
    folder, summary = bank
    assert {name: entry["path"] for name, entry in summary["files"].items()} == SOURCE_FILES
    written = json.loads((folder / "demo_bank.json").read_text(encoding="utf-8"))
    assert written == summary
    for entry in summary["files"].values():
        assert len(entry["sha256"]) == 64


def test_customer_file_is_gbk_with_crlf(bank):
    folder, _ = bank
    raw = (folder / "customers.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gbk")
    assert text.startswith("客户号,姓名,证件号码,手机号,性别,出生日期,城市,城市等级,联系地址,职业")
    assert text.count("\r\n") == CUSTOMERS + 1


def test_customer_numbers_keep_leading_zeros(customers):
    numbers = customers["客户号"]
    assert numbers.str.fullmatch(r"0\d{11}").all()
    assert numbers.is_unique


def test_resident_ids_are_fictitious_and_valid(customers):
    ids = customers["证件号码"]
    assert ids.is_unique
    assert ids.str.fullmatch(r"9900\d{13}[\dX]").all()
    assert (ids.str[17] == ids.str[:17].map(_resident_id_check)).all()
    compact_birth = customers["出生日期"].where(customers["出生日期"].str.fullmatch(r"\d{8}"))
    written = compact_birth.notna()
    assert (ids[written].str[6:14] == compact_birth[written]).all()
    odd_sequence = ids.str[16].astype(int) % 2 == 1
    assert (odd_sequence == (customers["性别"] == "男")).all()


def test_birth_dates_mix_two_formats(customers):
    births = customers["出生日期"]
    chinese = births.str.fullmatch(r"(19|20)\d{2}年\d{1,2}月\d{1,2}日")
    compact = births.str.fullmatch(r"(19|20)\d{6}")
    assert (chinese | compact).all()
    assert chinese.mean() > 0.4
    assert compact.mean() > 0.3


def test_names_phones_and_addresses_look_real(customers):
    assert customers["姓名"].str.fullmatch(r"[\u4e00-\u9fff]{2,3}").all()
    assert customers["手机号"].str.fullmatch(r"1[3-9]\d{9}").all()
    assert customers["联系地址"].str.fullmatch(r"[\u4e00-\u9fff]+市.+\d+号\d+栋\d+单元\d+室").all()
    assert set(customers["城市等级"]) == {"一线", "新一线", "二线", "三线", "四线及以下"}


def test_account_numbers_and_product_codes(bank, customers):
    folder, _ = bank
    accounts = pd.read_csv(folder / "accounts.csv", encoding="utf-8-sig", dtype=str)
    assert set(accounts["产品大类"]) == {"存款", "理财", "贷款", "信用卡", "保险"}
    assert accounts["产品代码"].str.fullmatch(r"00\d{4}").all()
    assert accounts["账号"].is_unique
    cards = accounts.loc[accounts["产品大类"] == "信用卡", "账号"]
    deposits = accounts.loc[accounts["产品大类"] == "存款", "账号"]
    assert cards.str.fullmatch(r"\d{16}").all()
    assert deposits.str.fullmatch(r"\d{19}").all()
    assert cards.map(_luhn_valid).all()
    assert deposits.map(_luhn_valid).all()
    assert set(accounts["客户号"]) <= set(customers["客户号"])


def test_wealth_products_suit_risk_tolerance(bank, customers):
    folder, _ = bank
    accounts = pd.read_csv(folder / "accounts.csv", encoding="utf-8-sig", dtype=str)
    wealth = accounts[accounts["产品大类"] == "理财"].merge(customers[["客户号", "风险承受能力"]], on="客户号")
    assert len(wealth) > 0
    assert (wealth["风险等级"].str[1].astype(int) <= wealth["风险承受能力"].str[1].astype(int)).all()


def test_transactions_are_signed_dated_and_unique(bank):
    folder, _ = bank
    con = duckdb.connect()
    row = con.execute(
        f"""
        select count(distinct txn_no), min(txn_tm), max(txn_tm),
               count(*) filter (where (txn_amt > 0) <> (dr_cr_flag = '贷')),
               count(*) filter (where txn_amt = 0)
        from '{folder / "transactions.parquet"}'
        """
    ).fetchall()[0]
    assert row[0] == TRANSACTIONS
    assert str(row[1]) >= "2023-01-01"
    assert str(row[2]) < "2024-07-01"
    assert row[3] == 0
    assert row[4] == 0


def test_spending_peaks_before_spring_festival(bank):
    # 春节 2024 fell on 10 February: the three weeks before it carry more
    # spending per day than the rest of the history.
    folder, _ = bank
    con = duckdb.connect()
    peak, usual = con.execute(
        f"""
        select sum(-txn_amt) filter (where txn_tm >= '2024-01-20' and txn_tm < '2024-02-10') / 21,
               sum(-txn_amt) filter (where txn_tm < '2024-01-20' or txn_tm >= '2024-03-01') / (547 - 41)
        from '{folder / "transactions.parquet"}' where txn_type = '消费'
        """
    ).fetchall()[0]
    assert peak > 1.5 * usual


def test_salaries_arrive_monthly(bank, customers):
    folder, _ = bank
    con = duckdb.connect()
    long_standing = customers.loc[customers["开户日期"] < "2023-01-01", ["客户号"]]
    con.register("long_standing", long_standing)
    months = con.sql(
        f"""
        select t.cust_no, count(distinct date_trunc('month', txn_tm)) as months
        from '{folder / "transactions.parquet"}' t
        join '{folder / "planted_truth.parquet"}' p on p.customer_no = t.cust_no
        join long_standing l on l.客户号 = t.cust_no
        where txn_type = '代发工资' and not p.defaulted and p.false_alarm is null
        group by 1
        """
    ).df()
    assert len(months) > 500
    assert (months["months"] == 18).all()


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"n_customers": MIN_CUSTOMERS - 1}, r"n_customers.*>= 500"),
        ({"n_customers": 3000.0}, r"n_customers.*3000\.0"),
        ({"n_transactions": 0}, r"n_transactions.*>= 1"),
        ({"seed": True}, r"seed.*True"),
        ({"as_of": "2024-13-01"}, r"2024-13-01.*YYYY-MM-DD"),
        ({"as_of": "2031-01-01"}, r"2031-01-01.*2016-06-01.*2030-12-31"),
    ],
    ids=["too-few-customers", "float-customers", "no-transactions", "bool-seed", "bad-date", "date-out-of-range"],
)
def test_invalid_parameters_are_rejected(tmp_path, kwargs, pattern):
    with pytest.raises(ConfigError) as raised:
        generate_demo_bank(tmp_path, **kwargs)
    assert re.search(pattern, raised.value.render("en"))
    assert not any(tmp_path.iterdir())


def test_too_few_transactions_names_the_minimum(tmp_path):
    with pytest.raises(ConfigError, match="交易笔数 20000 太少") as raised:
        generate_demo_bank(tmp_path, n_customers=CUSTOMERS, n_transactions=20_000)
    minimum = int(re.search(r"at least (\d+)", raised.value.render("en")).group(1))
    assert 20_000 < minimum <= TRANSACTIONS
    generate_demo_bank(tmp_path, n_customers=CUSTOMERS, n_transactions=minimum)


def test_current_bank_is_recognised(bank, tmp_path):
    folder, _ = bank
    assert demo_bank_is_current(folder, n_customers=CUSTOMERS, n_transactions=TRANSACTIONS)
    assert not demo_bank_is_current(folder, n_customers=CUSTOMERS, n_transactions=TRANSACTIONS, seed=1)
    assert not demo_bank_is_current(folder)
    assert not demo_bank_is_current(tmp_path, n_customers=CUSTOMERS, n_transactions=TRANSACTIONS)


def test_changed_file_makes_bank_stale(tmp_path):
    generate_demo_bank(tmp_path, n_customers=1000, n_transactions=40_000)
    assert demo_bank_is_current(tmp_path, n_customers=1000, n_transactions=40_000)
    with (tmp_path / "labels.csv").open("a", encoding="utf-8") as handle:
        handle.write("000000000000,违约,,2024-06-30,1,x\n")
    assert not demo_bank_is_current(tmp_path, n_customers=1000, n_transactions=40_000)
