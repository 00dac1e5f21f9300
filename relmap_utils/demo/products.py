"""Product catalog, account holdings, planted take-up and month-end balances."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from relmap_utils.demo import people
from relmap_utils.demo.calendar import Calendar
from relmap_utils.demo.segments import SEGMENTS


@dataclass(frozen=True)
class Product:
    """One product of the demo bank's catalog."""

    code: str  # six digits with leading zeros, as the bank's product master keeps them
    name: str
    family: str  # raw family name in the bank's files; engagement.yaml recodes it
    risk_level: str | None  # R1..R5 for deposits and wealth products
    term_months: int | None = None  # loans: repayment term


CATALOG: dict[str, Product] = {
    product.code: product
    for product in (
        Product("000101", "活期储蓄", "存款", "R1"),
        Product("000102", "整存整取定期存款", "存款", "R1"),
        Product("000103", "大额存单", "存款", "R1"),
        Product("001201", "稳健理财30天", "理财", "R2"),
        Product("001202", "平衡理财一年期", "理财", "R3"),
        Product("001203", "权益类理财", "理财", "R4"),
        Product("001288", "子女教育金理财计划", "理财", "R2"),
        Product("002101", "个人住房贷款", "贷款", None, 300),
        Product("002102", "个人消费贷款", "贷款", None, 36),
        Product("002103", "个人经营贷款", "贷款", None, 36),
        Product("003101", "标准信用卡", "信用卡", None),
        Product("003102", "白金信用卡", "信用卡", None),
        Product("003188", "旅行白金信用卡", "信用卡", None),
        Product("004101", "重大疾病保险", "保险", None),
        Product("004188", "养老年金保险", "保险", None),
    )
}
DEMAND_DEPOSIT = "000101"


def family_of(codes: np.ndarray) -> np.ndarray:
    """Return the raw product family (存款, 理财, 贷款, 信用卡, 保险) of each product code."""
    unique, inverse = np.unique(np.asarray(codes, dtype=str), return_inverse=True)
    return np.array([CATALOG[code].family for code in unique], dtype=object)[inverse]

# The four products with planted take-up drivers: key -> product code. The keys
# are the values of labels.product after ingest.
TAKEUP_PRODUCTS = {
    "education_wealth": "001288",
    "mortgage": "002101",
    "retirement_insurance": "004188",
    "travel_card": "003188",
}


def takeup_logits(customers: pd.DataFrame) -> dict[str, np.ndarray]:
    """Return the log-odds of taking up each planted product inside the label window.

    Each product's driver adds 2.6-3.2 to the log-odds, several times any other
    term, so the driver is the product's strongest effect:

    - education_wealth: browsing children's-education content;
    - mortgage: browsing mortgage content while receiving a salary;
    - retirement_insurance: aged 50 or over with assets of 50万 or more;
    - travel_card: browsing travel content.
    """
    age = customers["age"].to_numpy()
    aum = customers["aum_level"].to_numpy()
    salaried = customers["salaried"].to_numpy()
    education = customers["interest_education"].to_numpy()
    mortgage = customers["interest_mortgage"].to_numpy()
    retirement = customers["interest_retirement"].to_numpy()
    travel = customers["interest_travel"].to_numpy()
    senior_wealthy = (age >= 50) & (aum >= 500_000)
    wealth_tilt = 0.2 * np.clip(np.log10(np.maximum(aum, 1.0)) - 5.0, -1.0, 1.5)
    logits = {
        "education_wealth": -3.9 + 2.9 * education + wealth_tilt,
        "mortgage": -4.2 + 0.5 * mortgage + 0.4 * salaried + 2.6 * (mortgage & salaried),
        "retirement_insurance": -4.3 + 0.5 * (age >= 50) + 0.4 * (aum >= 500_000) + 2.6 * senior_wealthy
        + 0.6 * retirement,
        "travel_card": -4.0 + 2.7 * travel + 0.3 * (customers["segment"].to_numpy() == "young_professional"),
    }
    return logits


@dataclass
class Holdings:
    """Accounts and take-up outcomes.

    Attributes
    ----------
    accounts : pandas.DataFrame
        One row per account: ``customer`` (row index), ``account_no``,
        ``product_code``, ``open_day``, ``close_day`` (-1 when open),
        ``amount`` (principal, credit limit or sum insured, yuan) and ``status``.
    takeup : pandas.DataFrame
        One row per customer and planted product the customer was eligible
        for: a customer since before the label window, not dormant, not in a
        fraud ring, not holding the product already, and for the R2 education
        plan a risk tolerance of C2 or more:
        ``customer``, ``product`` (TAKEUP_PRODUCTS key), ``taken`` (bool), ``day``.
    """

    accounts: pd.DataFrame
    takeup: pd.DataFrame


def make_holdings(rng: np.random.Generator, customers: pd.DataFrame, calendar: Calendar) -> Holdings:
    """Draw every customer's accounts, then the planted take-up inside the label window."""
    n = len(customers)
    open_day = calendar.day_index(customers["open_date"].to_numpy().astype("datetime64[D]"))
    frames = [pd.DataFrame({"customer": np.arange(n), "product_code": DEMAND_DEPOSIT, "open_day": open_day})]

    segment = customers["segment"].to_numpy()
    window_day = int(calendar.day_index(np.array([calendar.takeup_window_start]))[0])
    in_ring = customers["ring"].to_numpy() >= 0
    dormant = segment == "dormant"
    for code in CATALOG:
        probability = np.zeros(n)
        for name, params in SEGMENTS.items():
            probability[segment == name] = params.products.get(code, 0.0)
        holders = np.flatnonzero((rng.random(n) < probability) & ~in_ring)
        frames.append(_opened_between(rng, holders, code, open_day[holders] + 30, calendar.n_days - 30))

    # Earlier holders of the planted products, opened before the label window.
    age = customers["age"].to_numpy()
    prior = {
        "002101": (age >= 28) & (age <= 55) & customers["salaried"].to_numpy() & (rng.random(n) < 0.12),
        "001288": rng.random(n) < 0.015,
        "004188": (age >= 45) & (rng.random(n) < 0.03),
        "003188": rng.random(n) < 0.015,
    }
    for code, mask in prior.items():
        holders = np.flatnonzero(mask & ~in_ring & ~dormant & (open_day < window_day - 60))
        frames.append(_opened_between(rng, holders, code, open_day[holders] + 30, window_day - 30))

    accounts = pd.concat(frames, ignore_index=True)
    accounts = _drop_unsuitable(accounts, customers)
    takeup, new_accounts = _take_up(rng, customers, accounts, window_day, calendar)
    accounts = pd.concat([accounts, new_accounts], ignore_index=True)
    accounts = accounts.sort_values(["customer", "open_day", "product_code"], kind="stable", ignore_index=True)
    _finish_accounts(rng, accounts, customers, calendar)
    return Holdings(accounts, takeup)


def _opened_between(
    rng: np.random.Generator, holders: np.ndarray, code: str, earliest: np.ndarray, latest: int
) -> pd.DataFrame:
    # Accounts of customers who joined before the history may open before it too,
    # so the lower bound is only the customer's own start plus a month.
    earliest = np.minimum(earliest, latest - 1)
    day = earliest + np.floor(rng.random(len(holders)) * (latest - earliest)).astype(np.int64)
    return pd.DataFrame({"customer": holders, "product_code": code, "open_day": day})


def _drop_unsuitable(accounts: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    # Suitability (适当性): a wealth product's risk level Rk may not exceed the
    # customer's risk tolerance Ck.
    level = accounts["product_code"].map({code: p.risk_level for code, p in CATALOG.items()})
    family = family_of(accounts["product_code"].to_numpy())
    product_rank = level.str[1:].astype(float).to_numpy()
    tolerance = customers["risk_tolerance"].str[1:].astype(int).to_numpy()[accounts["customer"].to_numpy()]
    keep = (family != "理财") | (product_rank <= tolerance)
    return accounts[keep].reset_index(drop=True)


def _take_up(
    rng: np.random.Generator,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    window_day: int,
    calendar: Calendar,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(customers)
    logits = takeup_logits(customers)
    eligible_base = (
        (customers["ring"].to_numpy() < 0)
        & (customers["segment"].to_numpy() != "dormant")
        & (calendar.day_index(customers["open_date"].to_numpy().astype("datetime64[D]")) < window_day)
    )
    tolerance = customers["risk_tolerance"].str[1:].astype(int).to_numpy()
    outcome_frames = []
    account_frames = []
    for key, code in TAKEUP_PRODUCTS.items():
        holds_product = np.zeros(n, dtype=bool)
        holds_product[accounts.loc[accounts["product_code"] == code, "customer"].to_numpy()] = True
        eligible = eligible_base & ~holds_product
        if key == "education_wealth":
            eligible &= tolerance >= 2  # the plan is an R2 product
        rows = np.flatnonzero(eligible)
        takes_up = rng.random(len(rows)) < 1.0 / (1.0 + np.exp(-logits[key][rows]))
        day = window_day + rng.integers(0, calendar.n_days - window_day, len(rows))
        outcome_frames.append(pd.DataFrame({"customer": rows, "product": key, "taken": takes_up, "day": day}))
        account_frames.append(
            pd.DataFrame({"customer": rows[takes_up], "product_code": code, "open_day": day[takes_up]})
        )
    return pd.concat(outcome_frames, ignore_index=True), pd.concat(account_frames, ignore_index=True)


def _finish_accounts(rng: np.random.Generator, accounts: pd.DataFrame, customers: pd.DataFrame, calendar: Calendar) -> None:
    n = len(accounts)
    code = accounts["product_code"].to_numpy()
    customer = accounts["customer"].to_numpy()
    family = family_of(code)
    accounts["account_no"] = _account_numbers(rng, family)

    amount = np.zeros(n)
    aum = customers["aum_level"].to_numpy()[customer]
    liquid = customers["liquid_level"].to_numpy()[customer]
    income = customers["income_wan"].to_numpy()[customer] * 10_000
    tier = customers["city_tier"].to_numpy()[customer]
    # Assets beyond the demand deposit are split across the customer's time
    # deposits and wealth products in random proportions.
    invested = np.isin(family, ["存款", "理财"]) & (code != DEMAND_DEPOSIT)
    share = np.where(invested, rng.gamma(1.0, 1.0, n), 0.0)
    total_share = pd.Series(share).groupby(customer).transform("sum").to_numpy()
    amount[invested] = ((aum - liquid) * share / np.where(total_share > 0, total_share, 1.0))[invested]
    amount[code == DEMAND_DEPOSIT] = liquid[code == DEMAND_DEPOSIT]
    tier_factor = np.select([tier == "一线", tier == "新一线", tier == "二线"], [3.0, 2.0, 1.4], 1.0)
    amount[code == "002101"] = (rng.uniform(60, 150, n) * 10_000 * tier_factor)[code == "002101"]
    amount[code == "002102"] = np.clip(income * rng.uniform(0.3, 1.2, n), 20_000, 300_000)[code == "002102"]
    amount[code == "002103"] = np.clip(income * rng.uniform(1.0, 4.0, n), 100_000, 3_000_000)[code == "002103"]
    card_limit = np.clip(income * rng.uniform(0.1, 0.4, n), 5_000, 300_000)
    amount[family == "信用卡"] = np.round(card_limit / 1000)[family == "信用卡"] * 1000
    amount[family == "保险"] = (rng.integers(10, 101, n) * 10_000)[family == "保险"]
    small = invested & (amount < 1000)
    amount[small] = 1000 + rng.uniform(0, 4000, n)[small]
    accounts["amount"] = np.round(amount, 2)

    # A few accounts other than the demand deposit were closed before the as-of date.
    closable = (code != DEMAND_DEPOSIT) & (accounts["open_day"].to_numpy() < calendar.n_days - 240)
    closed = closable & (rng.random(n) < 0.04) & (customers["ring"].to_numpy()[customer] < 0)
    open_day = accounts["open_day"].to_numpy()
    close_day = np.full(n, -1, dtype=np.int64)
    lower = np.maximum(open_day, 0) + 30
    close_day[closed] = (lower + np.floor(rng.random(n) * (calendar.n_days - lower)).astype(np.int64))[closed]
    accounts["close_day"] = close_day
    status = np.full(n, "正常", dtype=object)
    status[closed] = "销户"
    dormant = customers["segment"].to_numpy()[customer] == "dormant"
    status[dormant & (code == DEMAND_DEPOSIT)] = "久悬"
    accounts["status"] = status


def _account_numbers(rng: np.random.Generator, family: np.ndarray) -> np.ndarray:
    # Deposit accounts carry a 19-digit debit-card number and credit cards a
    # 16-digit card number, both Luhn-valid. Wealth, loan and insurance
    # contracts carry a two-letter prefix and twelve digits.
    n = len(family)
    serial = 1_000_000 + np.cumsum(rng.integers(1, 900, n))
    serial = serial[rng.permutation(n)]
    numbers = np.empty(n, dtype=object)
    deposit = family == "存款"
    numbers[deposit] = people.luhn_complete(np.char.add("6217", np.char.zfill(serial[deposit].astype(str), 14)))
    card = family == "信用卡"
    numbers[card] = people.luhn_complete(np.char.add("6258", np.char.zfill(serial[card].astype(str), 11)))
    for name, prefix in (("理财", "LC"), ("贷款", "DK"), ("保险", "BX")):
        rows = family == name
        numbers[rows] = np.char.add(prefix, np.char.zfill(serial[rows].astype(str), 12))
    return numbers
