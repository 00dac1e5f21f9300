"""Transactions: salaries, repayments, planted patterns and everyday activity.

Each component returns a :class:`Part` (parallel arrays, one row per
transaction); :func:`make_transactions` joins them, fills the rest of the
requested row count with everyday activity and orders everything by time.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from relmap_utils.demo.calendar import DAY, Calendar, draw_by_profile
from relmap_utils.demo.fraud import Rings
from relmap_utils.demo.products import DEMAND_DEPOSIT, family_of
from relmap_utils.demo.risk import Risk
from relmap_utils.demo.segments import ACTIVITY_KINDS, SEGMENT_CODES, SEGMENTS
from relmap_utils.errors import ConfigError

CHANNELS = ("手机银行", "网上银行", "柜面", "ATM", "POS", "第三方支付", "批量代发", "系统")
TXN_TYPES = (
    "代发工资", "年终奖金", "养老金", "贷款还款", "信用卡还款", *ACTIVITY_KINDS,
)
MERCHANT_CATEGORIES = (
    "餐饮", "超市便利", "电商购物", "交通出行", "旅游酒店", "教育培训", "医疗健康", "房产家装", "娱乐休闲", "通讯缴费", "其他",
)
_MERCHANT_WEIGHTS = np.array([0.22, 0.18, 0.2, 0.1, 0.03, 0.02, 0.05, 0.02, 0.08, 0.06, 0.04])
_MERCHANT_MEDIAN = np.array([60, 120, 180, 30, 1200, 2500, 250, 4000, 150, 100, 200], dtype=float)
# Categories whose spending rises in the three weeks before the Spring Festival.
_FESTIVAL_CATEGORIES = np.array([0, 1, 2])
# Everyday activity may take at most this share of the requested rows less than
# the fixed components need; below it the demo refuses the size.
MIN_EVERYDAY_SHARE = 0.15

# Counterparty kinds; the number beside each kind identifies the counterparty.
NO_COUNTERPARTY, MERCHANT, EMPLOYER, EXTERNAL, ACCOUNT, PENSION_FUND, PARTNER = range(7)


@dataclass
class Part:
    """Transactions as parallel arrays; ``account`` and counterparty ``ACCOUNT`` numbers are account rows."""

    customer: np.ndarray
    account: np.ndarray
    day: np.ndarray
    second: np.ndarray
    amount: np.ndarray
    channel: np.ndarray
    txn_type: np.ndarray
    merchant: np.ndarray
    counterparty_kind: np.ndarray
    counterparty: np.ndarray

    def __len__(self) -> int:
        return len(self.customer)


def _part(customer, account, day, second, amount, channel, txn_type, counterparty_kind, counterparty, merchant=None) -> Part:
    n = len(customer)

    def full(value, dtype=np.int64):
        return np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()

    return Part(
        customer=full(customer),
        account=full(account),
        day=full(day),
        second=full(second),
        amount=full(amount, float),
        channel=full(channel),
        txn_type=full(txn_type),
        merchant=full(-1 if merchant is None else merchant),
        counterparty_kind=full(counterparty_kind),
        counterparty=full(counterparty),
    )


def concat(parts: list[Part]) -> Part:
    """Join parts into one."""
    return Part(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Part)))


def _code(options: tuple[str, ...], value: str) -> int:
    return options.index(value)


def _seconds(rng: np.random.Generator, n: int, start_hour: float, end_hour: float) -> np.ndarray:
    return rng.integers(int(start_hour * 3600), int(end_hour * 3600), n)


def _daytime_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    # Card and app spending peaks at lunch and in the evening.
    hours = np.arange(24)
    weight = np.array([0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.2, 1.5, 1.6, 2.0,
                       2.6, 2.0, 1.5, 1.5, 1.6, 2.0, 2.6, 2.8, 2.6, 2.0, 1.2, 0.5])
    hour = rng.choice(hours, size=n, p=weight / weight.sum())
    return hour * 3600 + rng.integers(0, 3600, n)


def _previous_weekday(day_index: np.ndarray, calendar: Calendar) -> np.ndarray:
    weekday = ((calendar.start + day_index * DAY).astype(np.int64) + 3) % 7
    return day_index - np.where(weekday == 5, 1, np.where(weekday == 6, 2, 0))


def _sample_days(rng: np.random.Generator, cdf: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Draw one day per row in [low, high] with probability proportional to the weights behind ``cdf``."""
    low = np.clip(low, 0, len(cdf) - 2)
    high = np.clip(high, low, len(cdf) - 2)
    u = cdf[low] + rng.random(len(low)) * (cdf[high + 1] - cdf[low])
    return np.clip(np.searchsorted(cdf, u, side="right") - 1, low, high)


def salaries(rng: np.random.Generator, customers: pd.DataFrame, demand: np.ndarray, risk: Risk, calendar: Calendar) -> Part:
    """Monthly salaries and pensions, year-end bonuses before the Spring Festival.

    Pay days falling on a weekend move to the Friday before. Planted
    ``salary_stop`` defaulters receive nothing from their behaviour day on, and
    ``salary_gap`` false alarms miss one or two months.
    """
    earners = np.flatnonzero(customers["salaried"].to_numpy())
    months = len(calendar.month_starts)
    customer = np.repeat(earners, months)
    month_start = calendar.day_index(calendar.month_starts)
    day = np.tile(month_start, len(earners)) + customers["salary_day"].to_numpy()[customer] - 1
    day = _previous_weekday(day, calendar)
    open_day = calendar.day_index(customers["open_date"].to_numpy().astype("datetime64[D]"))
    keep = (day >= np.maximum(open_day[customer], 0)) & (day < calendar.n_days)

    stop = np.full(len(customers), calendar.n_days)
    stopped = risk.defaults[risk.defaults["salary_stop"]]
    stop[stopped["customer"].to_numpy()] = stopped["behaviour_day"].to_numpy()
    keep &= day < stop[customer]
    gaps = risk.false_alarms[risk.false_alarms["kind"] == "salary_gap"]
    gap_start = np.full(len(customers), -1)
    gap_start[gaps["customer"].to_numpy()] = gaps["day"].to_numpy()
    gap_end = gap_start + rng.integers(31, 62, len(customers))
    keep &= ~((gap_start[customer] >= 0) & (day >= gap_start[customer]) & (day < gap_end[customer]))
    customer, day = customer[keep], day[keep]

    retired = customers["retired"].to_numpy()[customer]
    salary = customers["salary"].to_numpy()[customer]
    amount = np.round(np.where(retired, salary, salary * rng.normal(1.0, 0.02, len(customer))), 2)
    counterparty_kind = np.where(retired, PENSION_FUND, EMPLOYER)
    counterparty = np.where(retired, customers["city_index"].to_numpy()[customer],
                            customers["employer"].to_numpy()[customer])
    txn_type = np.where(retired, _code(TXN_TYPES, "养老金"), _code(TXN_TYPES, "代发工资"))
    pay = _part(customer, demand[customer], day, _seconds(rng, len(customer), 9, 11.5), amount,
                _code(CHANNELS, "批量代发"), txn_type, counterparty_kind, counterparty)

    # Employers pay a year-end bonus 10-20 days before the Spring Festival.
    bonus_parts = [pay]
    employed = earners[~customers["retired"].to_numpy()[earners]]
    for festival in calendar.festivals:
        receivers = employed[rng.random(len(employed)) < 0.7]
        bonus_day = calendar.day_index(np.array([festival]))[0] - rng.integers(10, 21, len(receivers))
        ok = (bonus_day >= np.maximum(open_day[receivers], 0)) & (bonus_day < stop[receivers])
        receivers, bonus_day = receivers[ok], _previous_weekday(bonus_day[ok], calendar)
        bonus = np.round(customers["salary"].to_numpy()[receivers] * rng.uniform(1.0, 3.0, len(receivers)), 2)
        bonus_parts.append(
            _part(receivers, demand[receivers], bonus_day, _seconds(rng, len(receivers), 9, 11.5), bonus,
                  _code(CHANNELS, "批量代发"), _code(TXN_TYPES, "年终奖金"), EMPLOYER,
                  customers["employer"].to_numpy()[receivers])
        )
    return concat(bonus_parts)


def repayment_debits(
    rng: np.random.Generator, repayments: pd.DataFrame, accounts: pd.DataFrame, demand: np.ndarray
) -> Part:
    """Debits from the demand deposit for every paid loan instalment and card statement."""
    paid = repayments[repayments["paid"] & (repayments["paid_day"] >= 0)]
    customer = paid["customer"].to_numpy()
    credit_account = paid["account"].to_numpy()
    card = family_of(accounts["product_code"].to_numpy()[credit_account]) == "信用卡"
    on_due_date = paid["paid_day"].to_numpy() == paid["due_day"].to_numpy()
    # Automatic debits run at night; early or late payments are made in the app.
    second = np.where(on_due_date, _seconds(rng, len(paid), 2, 5), _daytime_seconds(rng, len(paid)))
    channel = np.where(on_due_date, _code(CHANNELS, "系统"), _code(CHANNELS, "手机银行"))
    txn_type = np.where(card, _code(TXN_TYPES, "信用卡还款"), _code(TXN_TYPES, "贷款还款"))
    return _part(customer, demand[customer], paid["paid_day"].to_numpy(), second, -paid["amount_paid"].to_numpy(),
                 channel, txn_type, ACCOUNT, credit_account)


def cash_bursts(rng: np.random.Generator, risk: Risk, demand: np.ndarray, calendar: Calendar) -> Part:
    """Planted cash withdrawals: about five a month from the behaviour day of ``cash_jump`` defaulters
    until a month after delinquency, and one month of three to six for ``cash_month`` false alarms."""
    jump = risk.defaults[risk.defaults["cash_jump"]]
    start = jump["behaviour_day"].to_numpy()
    end = np.minimum(jump["delinquency_day"].to_numpy() + 30, calendar.n_days - 1)
    count = rng.poisson(5.0 * (end - start) / 30.44)
    alarms = risk.false_alarms[risk.false_alarms["kind"] == "cash_month"]
    alarm_count = rng.integers(3, 7, len(alarms))
    alarm_start = np.repeat(alarms["day"].to_numpy(), alarm_count)

    customer = np.concatenate(
        [np.repeat(jump["customer"].to_numpy(), count), np.repeat(alarms["customer"].to_numpy(), alarm_count)]
    )
    low = np.concatenate([np.repeat(start, count), alarm_start])
    high = np.concatenate([np.repeat(end, count), np.minimum(alarm_start + 30, calendar.n_days - 1)])
    day = low + np.floor(rng.random(len(low)) * (high - low + 1)).astype(np.int64)
    amount = -np.round(rng.uniform(10, 50, len(day))) * 100
    channel = np.where(rng.random(len(day)) < 0.85, _code(CHANNELS, "ATM"), _code(CHANNELS, "柜面"))
    return _part(customer, demand[customer], day, _seconds(rng, len(day), 8, 22), amount, channel,
                 _code(TXN_TYPES, "取现"), NO_COUNTERPARTY, 0)


def transfer_pairs(rng: np.random.Generator, customers: pd.DataFrame, family: pd.DataFrame) -> np.ndarray:
    """Return pairs of customers who send each other money: households and friends in the same city.

    Dormant customers are left out of every pair.
    """
    n = len(customers)
    # Dormant customers send nothing, and ring members only move money in their ring.
    dormant = customers["segment"].to_numpy() == "dormant"
    outside_rings = np.flatnonzero((customers["ring"].to_numpy() < 0) & ~dormant)
    friends_a = rng.choice(outside_rings, size=n // 4)
    city = customers["city_index"].to_numpy()
    # Friends live in the same city: pick the partner among that city's customers.
    order = np.argsort(city[outside_rings], kind="stable")
    by_city = outside_rings[order]
    city_sorted = city[by_city]
    first = np.searchsorted(city_sorted, city[friends_a], side="left")
    last = np.searchsorted(city_sorted, city[friends_a], side="right")
    friends_b = by_city[first + np.floor(rng.random(len(friends_a)) * (last - first)).astype(np.int64)]
    pairs = np.concatenate(
        [np.column_stack([family["member"].to_numpy(), family["head"].to_numpy()]), np.column_stack([friends_a, friends_b])]
    )
    return pairs[(pairs[:, 0] != pairs[:, 1]) & ~dormant[pairs[:, 0]] & ~dormant[pairs[:, 1]]]


def social_transfers(
    rng: np.random.Generator, customers: pd.DataFrame, demand: np.ndarray, pairs: np.ndarray, calendar: Calendar
) -> Part:
    """Transfers between customers of the bank, busiest around the Spring Festival (red envelopes)."""
    count = rng.poisson(3.0, len(pairs))
    pair = np.repeat(np.arange(len(pairs)), count)
    swap = rng.random(len(pair)) < 0.5
    sender = np.where(swap, pairs[pair, 1], pairs[pair, 0])
    receiver = np.where(swap, pairs[pair, 0], pairs[pair, 1])
    open_day = calendar.day_index(customers["open_date"].to_numpy().astype("datetime64[D]"))
    low = np.maximum(np.maximum(open_day[sender], open_day[receiver]), 0)
    day = _sample_days(rng, calendar.spending_cdf(), low, np.full(len(low), calendar.n_days - 1))
    festival_week = np.zeros(calendar.n_days, dtype=bool)
    for festival in calendar.day_index(calendar.festivals):
        festival_week[max(festival - 3, 0) : festival + 7] = True
    amount = np.round(rng.lognormal(np.log(600), 0.9, len(day)) * np.where(festival_week[day], 2.5, 1.0), 2)
    second = _daytime_seconds(rng, len(day))
    channel = np.where(rng.random(len(day)) < 0.85, _code(CHANNELS, "手机银行"), _code(CHANNELS, "网上银行"))
    return _mirrored(sender, receiver, day, second, amount, channel, demand)


def ring_transfers(rng: np.random.Generator, rings: Rings, demand: np.ndarray) -> Part:
    """Book the planted fraud rings' cyclic transfers, one debit and one credit per hop."""
    hops = rings.hops
    channel = np.where(rng.random(len(hops)) < 0.7, _code(CHANNELS, "手机银行"), _code(CHANNELS, "网上银行"))
    return _mirrored(hops["sender"].to_numpy(), hops["receiver"].to_numpy(), hops["day"].to_numpy(),
                     hops["second"].to_numpy(), hops["amount"].to_numpy(), channel, demand)


def _mirrored(sender, receiver, day, second, amount, channel, demand) -> Part:
    # The receiving side is booked a few seconds after the paying side.
    debit = _part(sender, demand[sender], day, second, -amount, channel, _code(TXN_TYPES, "转账转出"), ACCOUNT,
                  demand[receiver])
    credit = _part(receiver, demand[receiver], day, np.minimum(second + 3, 86_399), amount, channel,
                   _code(TXN_TYPES, "转账转入"), ACCOUNT, demand[sender])
    return concat([debit, credit])


def everyday_activity(
    rng: np.random.Generator,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    demand: np.ndarray,
    count: int,
    calendar: Calendar,
) -> Part:
    """Spending, transfers, cash and business flows, ``count`` rows in all.

    Rows are spread over customers by their segment's activity rate and the
    months they were customers. Kinds, channels, merchant categories and
    amounts follow the segment. Customers interested in travel or education
    spend more on those, and baskets grow before the Spring Festival.
    """
    n = len(customers)
    open_day = calendar.day_index(customers["open_date"].to_numpy().astype("datetime64[D]"))
    active_days = calendar.n_days - np.clip(open_day, 0, calendar.n_days)
    weight = customers["activity_rate"].to_numpy() * active_days / 30.44
    per_customer = rng.multinomial(count, weight / weight.sum())
    customer = np.repeat(np.arange(n), per_customer)
    rows = len(customer)

    segment_of_customer = pd.Categorical(customers["segment"], categories=SEGMENT_CODES).codes.astype(np.int64)
    segment = segment_of_customer[customer]
    kind = draw_by_profile(rng, segment, np.array([SEGMENTS[code].kind_weights for code in SEGMENT_CODES]))
    kind_name = np.array(ACTIVITY_KINDS, dtype=object)[kind]
    spending = kind_name == "消费"

    low = np.maximum(open_day[customer], 0)
    high = np.full(rows, calendar.n_days - 1)
    day = np.where(spending | (kind_name == "转账转出"),
                   _sample_days(rng, calendar.spending_cdf(), low, high),
                   low + np.floor(rng.random(rows) * (high - low + 1)).astype(np.int64))
    second = np.where(np.isin(kind_name, ["经营收入", "经营支出", "存现"]), _seconds(rng, rows, 9, 17),
                      _daytime_seconds(rng, rows))

    # Spending profiles: segment x travel interest x education interest.
    profile_weight = np.tile(_MERCHANT_WEIGHTS, (len(SEGMENT_CODES) * 4, 1))
    profile_segment = np.repeat(np.arange(len(SEGMENT_CODES)), 4)
    profile_weight[np.arange(len(profile_weight)) % 4 >= 2, 4] *= 5
    profile_weight[np.arange(len(profile_weight)) % 2 == 1, 5] *= 6
    profile_weight[profile_segment == SEGMENT_CODES.index("affluent_senior"), 6] *= 2
    profile_weight[profile_segment == SEGMENT_CODES.index("young_professional"), 2] *= 1.5
    profile = (segment_of_customer * 4 + customers["interest_travel"].to_numpy() * 2
               + customers["interest_education"].to_numpy())
    merchant = np.full(rows, -1)
    spend_rows = np.flatnonzero(spending)
    merchant[spend_rows] = draw_by_profile(rng, profile[customer[spend_rows]], profile_weight)

    median = np.select(
        [kind_name == "转账转出", kind_name == "转账转入", kind_name == "取现", kind_name == "存现",
         kind_name == "经营收入", kind_name == "经营支出"],
        [2000.0, 2500.0, 1000.0, 3000.0, 30_000.0, 22_000.0],
        _MERCHANT_MEDIAN[np.maximum(merchant, 0)],
    )
    multiplier = np.array([SEGMENTS[code].spend_multiplier for code in SEGMENT_CODES])[segment]
    festival_ramp = np.zeros(calendar.n_days, dtype=bool)
    for festival in calendar.day_index(calendar.festivals):
        festival_ramp[max(festival - 21, 0) : festival] = True
    basket = np.where(spending & festival_ramp[day] & np.isin(merchant, _FESTIVAL_CATEGORIES), 1.4, 1.0)
    size = np.round(median * multiplier * basket * rng.lognormal(0.0, 0.8, rows), 2)
    size = np.where(np.isin(kind_name, ["取现", "存现"]), np.maximum(np.round(size / 100), 1) * 100, size)
    outflow = np.isin(kind_name, ["消费", "转账转出", "取现", "经营支出"])
    amount = np.where(outflow, -size, size)

    mobile = rng.random(rows) < np.array([SEGMENTS[code].mobile_share for code in SEGMENT_CODES])[segment]
    counter = rng.random(rows) < np.array([SEGMENTS[code].counter_share for code in SEGMENT_CODES])[segment]
    channel = np.select(
        [spending & mobile, spending, kind_name == "取现", kind_name == "存现", counter],
        [_code(CHANNELS, "第三方支付"), _code(CHANNELS, "POS"),
         np.where(counter, _code(CHANNELS, "柜面"), _code(CHANNELS, "ATM")),
         np.where(counter, _code(CHANNELS, "柜面"), _code(CHANNELS, "ATM")), _code(CHANNELS, "柜面")],
        np.where(mobile, _code(CHANNELS, "手机银行"), _code(CHANNELS, "网上银行")),
    )

    # Card holders put about half of their spending on their first credit card.
    card_rows = np.flatnonzero(family_of(accounts["product_code"].to_numpy()) == "信用卡")
    first_card = np.full(n, -1)
    card_customer = accounts["customer"].to_numpy()[card_rows]
    first_card[card_customer[::-1]] = card_rows[::-1]
    account = demand[customer]
    on_card = spending & (first_card[customer] >= 0) & (rng.random(rows) < 0.5)
    on_card &= day > accounts["open_day"].to_numpy()[np.maximum(first_card[customer], 0)]
    account = np.where(on_card, first_card[customer], account)

    # Counterparties repeat: each customer pays the same few merchants, payees and
    # business partners again and again.
    pool = max(n // 10, 50)
    favourite = (customer * 7919 + np.floor(rng.random(rows) ** 3 * 12).astype(np.int64) * 104_729) % pool
    counterparty_kind = np.select(
        [spending, np.isin(kind_name, ["转账转出", "转账转入"]), np.isin(kind_name, ["经营收入", "经营支出"])],
        [MERCHANT, EXTERNAL, PARTNER],
        NO_COUNTERPARTY,
    )
    counterparty = np.where(spending, np.maximum(merchant, 0) * pool + favourite, favourite)
    txn_type = np.array([_code(TXN_TYPES, name) for name in ACTIVITY_KINDS])[kind]
    return _part(customer, account, day, second, amount, channel, txn_type, counterparty_kind, counterparty, merchant)


def make_transactions(
    rng: np.random.Generator,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    repayments: pd.DataFrame,
    risk: Risk,
    rings: Rings,
    family: pd.DataFrame,
    n_transactions: int,
    calendar: Calendar,
) -> tuple[Part, np.ndarray]:
    """Build exactly ``n_transactions`` transactions, ordered by time.

    Returns the transactions and the transfer pairs between customers (for the
    relations table).

    Raises
    ------
    ConfigError
        When salaries, repayments, transfers between customers and the
        planted patterns leave less than ``MIN_EVERYDAY_SHARE`` of
        ``n_transactions`` for everyday activity. The message gives the
        smallest workable count.
    """
    demand = demand_accounts(accounts, len(customers))
    pairs = transfer_pairs(rng, customers, family)
    fixed = concat(
        [
            salaries(rng, customers, demand, risk, calendar),
            repayment_debits(rng, repayments, accounts, demand),
            cash_bursts(rng, risk, demand, calendar),
            social_transfers(rng, customers, demand, pairs, calendar),
            ring_transfers(rng, rings, demand),
        ]
    )
    everyday = n_transactions - len(fixed)
    if everyday < MIN_EVERYDAY_SHARE * n_transactions:
        minimum = int(np.ceil(len(fixed) / (1 - MIN_EVERYDAY_SHARE) / 1000) * 1000)
        raise ConfigError("demo.too_few_transactions", requested=n_transactions, customers=len(customers),
                          minimum=minimum)
    everything = concat([fixed, everyday_activity(rng, customers, accounts, demand, everyday, calendar)])
    order = np.lexsort((everything.amount, everything.customer, everything.second, everything.day))
    return Part(*(getattr(everything, f.name)[order] for f in fields(Part))), pairs


def demand_accounts(accounts: pd.DataFrame, n_customers: int) -> np.ndarray:
    """Return the row of each customer's demand-deposit account."""
    rows = np.flatnonzero(accounts["product_code"].to_numpy() == DEMAND_DEPOSIT)
    demand = np.full(n_customers, -1)
    demand[accounts["customer"].to_numpy()[rows]] = rows
    return demand
