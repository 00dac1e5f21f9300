"""Planted delinquency: who defaults, the behaviour that comes first, and repayments.

Timeline of a planted defaulter (days counted from the history start):

- ``behaviour_day``: the warning behaviour starts, 2 to 6 months before
  delinquency (only for customers with planted pre-default behaviour);
- ``delinquency_day``: the first instalment that is never paid falls due;
- ``default_day``: 90 days later, the usual default definition (90 days past due).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from relmap_utils.demo.calendar import Calendar
from relmap_utils.demo.products import CATALOG, family_of

DEFAULT_DAYS_PAST_DUE = 90
# Share of defaulters whose behaviour changes before delinquency; the others
# default without warning in the data.
PRE_DEFAULT_SHARE = 0.8
LEAD_DAYS = (61, 183)  # 2 to 6 months
SIGNALS = ("salary_stop", "cash_jump", "new_device", "late_payment")
SIGNAL_PROBABILITY = 0.75
# Share of other customers (not dormant, not in a fraud ring) with one isolated
# warning-like event (false alarms).
FALSE_ALARM_SHARE = 0.03
FALSE_ALARM_KINDS = ("salary_gap", "new_device", "late_payment", "cash_month")


@dataclass
class Risk:
    """Planted default and warning behaviour.

    Attributes
    ----------
    defaults : pandas.DataFrame
        One row per defaulter: ``customer``, ``account`` (row in accounts of the
        credit account that defaults), ``delinquency_day``, ``default_day``,
        ``planted`` (bool), ``behaviour_day`` (-1 when not planted), and one
        bool column per signal in SIGNALS.
    false_alarms : pandas.DataFrame
        ``customer``, ``kind`` (FALSE_ALARM_KINDS) and ``day``.
    borrowers : numpy.ndarray
        Customer rows that held a loan or credit card before the history began;
        the default label covers them.
    """

    defaults: pd.DataFrame
    false_alarms: pd.DataFrame
    borrowers: np.ndarray


def default_logits(customers: pd.DataFrame, credit_to_income: np.ndarray) -> np.ndarray:
    """Return the log-odds of defaulting inside the history, per customer.

    Low income, freelance or unemployed occupations, small-business owners,
    youth, smaller cities and high credit relative to income raise the odds.
    Together they make the risk indicators of later stages move with default.
    """
    income = customers["income_wan"].to_numpy()
    occupation = customers["occupation"].to_numpy()
    return (
        -3.3
        + 0.9 * (income < 6)
        + 0.7 * np.isin(occupation, ["自由职业", "无业", "个体工商户"])
        + 0.6 * (customers["segment"].to_numpy() == "small_business")
        + 0.5 * (customers["age"].to_numpy() < 28)
        + 0.4 * np.isin(customers["city_tier"].to_numpy(), ["三线", "四线及以下"])
        + 0.7 * (credit_to_income > 3)
        - 1.5 * (customers["segment"].to_numpy() == "affluent_senior")
    )


def plant_defaults(
    rng: np.random.Generator, customers: pd.DataFrame, accounts: pd.DataFrame, calendar: Calendar
) -> Risk:
    """Choose defaulters among borrowers and plant their pre-default behaviour."""
    n = len(customers)
    family = family_of(accounts["product_code"].to_numpy())
    credit = np.isin(family, ["贷款", "信用卡"]) & (accounts["open_day"].to_numpy() < 0)
    credit &= accounts["close_day"].to_numpy() < 0
    credit_rows = np.flatnonzero(credit)
    credit_total = np.bincount(accounts["customer"].to_numpy()[credit_rows],
                               weights=accounts["amount"].to_numpy()[credit_rows], minlength=n)
    borrower = credit_total > 0
    borrower &= customers["ring"].to_numpy() < 0
    income = customers["income_wan"].to_numpy() * 10_000
    logits = default_logits(customers, credit_total / np.maximum(income, 1.0))
    defaulted = borrower & (rng.random(n) < 1.0 / (1.0 + np.exp(-logits)))
    defaulters = np.flatnonzero(defaulted)

    # The defaulting account is the customer's first credit account. Its first
    # unpaid due date is the first due date after a day drawn between month 7
    # of the history and 121 days before the as-of date, so default (90 days
    # later) never falls after the as-of date.
    first_credit = pd.Series(credit_rows, index=accounts["customer"].to_numpy()[credit_rows]).groupby(level=0).first()
    account = first_credit.loc[defaulters].to_numpy()
    earliest = int(calendar.day_index(np.array([calendar.month_starts[6]]))[0])
    latest = calendar.n_days - DEFAULT_DAYS_PAST_DUE - 31
    target = earliest + np.floor(rng.random(len(defaulters)) * (latest - earliest)).astype(np.int64)
    delinquency_day = _next_due_day(target, due_day_of(accounts, calendar)[account], calendar)
    default_day = delinquency_day + DEFAULT_DAYS_PAST_DUE

    planted = rng.random(len(defaulters)) < PRE_DEFAULT_SHARE
    behaviour_day = np.where(planted, delinquency_day - rng.integers(LEAD_DAYS[0], LEAD_DAYS[1] + 1, len(defaulters)), -1)
    applicable = {
        "salary_stop": customers["salaried"].to_numpy()[defaulters],
        "cash_jump": np.ones(len(defaulters), dtype=bool),
        "new_device": customers["app_rate"].to_numpy()[defaulters] >= 0.3,
        "late_payment": np.ones(len(defaulters), dtype=bool),
    }
    signals = {name: planted & applicable[name] & (rng.random(len(defaulters)) < SIGNAL_PROBABILITY) for name in SIGNALS}
    # Every planted defaulter shows at least two signals.
    too_few = planted & (sum(signals[name].astype(int) for name in SIGNALS) < 2)
    signals["late_payment"] |= too_few
    signals["cash_jump"] |= too_few

    defaults = pd.DataFrame(
        {
            "customer": defaulters,
            "account": account,
            "delinquency_day": delinquency_day,
            "default_day": default_day,
            "planted": planted,
            "behaviour_day": behaviour_day,
            **signals,
        }
    )
    false_alarms = _false_alarms(rng, customers, borrower, defaulted, calendar)
    return Risk(defaults, false_alarms, np.flatnonzero(borrower))


def _false_alarms(
    rng: np.random.Generator, customers: pd.DataFrame, borrower: np.ndarray, defaulted: np.ndarray, calendar: Calendar
) -> pd.DataFrame:
    active = customers["segment"].to_numpy() != "dormant"
    candidates = np.flatnonzero(~defaulted & (customers["ring"].to_numpy() < 0) & active)
    chosen = candidates[rng.random(len(candidates)) < FALSE_ALARM_SHARE]
    kind = rng.choice(np.array(FALSE_ALARM_KINDS, dtype=object), len(chosen))
    # A kind that does not fit the customer falls back to a month of cash withdrawals.
    fits = np.select(
        [kind == "salary_gap", kind == "new_device", kind == "late_payment"],
        [customers["salaried"].to_numpy()[chosen], customers["app_rate"].to_numpy()[chosen] >= 0.3, borrower[chosen]],
        True,
    )
    kind[~fits] = "cash_month"
    day = rng.integers(30, calendar.n_days - 30, len(chosen))
    return pd.DataFrame({"customer": chosen, "kind": kind, "day": day})


def due_day_of(accounts: pd.DataFrame, calendar: Calendar) -> np.ndarray:
    """Return each account's monthly due day: the opening day for loans (at most 28), 5-25 for cards."""
    open_date = calendar.start + accounts["open_day"].to_numpy() * np.timedelta64(1, "D")
    day_of_month = (open_date - open_date.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    card_day = 5 + (accounts["account_no"].map(hash_digits).to_numpy() % 21)
    family = family_of(accounts["product_code"].to_numpy())
    return np.where(family == "信用卡", card_day, np.minimum(day_of_month, 28))


def hash_digits(text: str) -> int:
    """Return a stable number from the digits of an account number (not Python's salted hash)."""
    digits = "".join(ch for ch in text if ch.isdigit())
    return int(digits[-6:]) if digits else 0


def _next_due_day(target: np.ndarray, due_day: np.ndarray, calendar: Calendar) -> np.ndarray:
    month = calendar.month_index(calendar.start + target * np.timedelta64(1, "D"))
    candidate = calendar.day_index(calendar.month_starts[month]) + due_day - 1
    later = candidate < target
    month = np.where(later, month + 1, month)
    return calendar.day_index(calendar.month_starts[np.minimum(month, len(calendar.month_starts) - 1)]) + due_day - 1


def make_repayments(
    rng: np.random.Generator, accounts: pd.DataFrame, risk: Risk, calendar: Calendar
) -> pd.DataFrame:
    """Build the monthly schedule of every loan and credit card with what was paid when.

    Returns one row per account and due date up to the as-of date: ``account``
    (row in accounts), ``customer``, ``due_day``, ``paid`` (bool), ``paid_day``,
    ``amount_due``, ``amount_paid`` and ``days_past_due``. Days past due are
    ``paid - due`` for paid instalments and ``as_of - due`` for unpaid ones.
    ``paid_day`` is -1 when unpaid, but -1 is also a real day: an instalment
    due early in the first month may be paid before the history starts, so
    read ``paid`` to tell them apart.
    """
    family = family_of(accounts["product_code"].to_numpy())
    credit_rows = np.flatnonzero(np.isin(family, ["贷款", "信用卡"]))
    due_day = due_day_of(accounts, calendar)[credit_rows]
    open_day = accounts["open_day"].to_numpy()[credit_rows]
    close_day = accounts["close_day"].to_numpy()[credit_rows]
    months = len(calendar.month_starts)
    month_start = calendar.day_index(calendar.month_starts)

    account = np.repeat(credit_rows, months)
    due = (month_start[None, :] + due_day[:, None] - 1).ravel()
    opened = np.repeat(open_day, months)
    closed = np.repeat(close_day, months)
    keep = (due > opened + 20) & (due < calendar.n_days) & ((closed < 0) | (due <= closed))
    # A credit card has a statement only in months it was used; each card is
    # used in 30-100 % of months.
    card_use = np.repeat(rng.uniform(0.3, 1.0, len(credit_rows)), months)
    is_card = np.repeat(family[credit_rows] == "信用卡", months)
    keep &= ~is_card | (rng.random(len(keep)) < card_use)
    account, due = account[keep], due[keep]
    n = len(account)

    amount = accounts["amount"].to_numpy()[account]
    code = accounts["product_code"].to_numpy()[account]
    term = np.array([CATALOG[c].term_months or 12 for c in code])
    monthly_rate = 0.049 / 12
    instalment = amount * monthly_rate / (1 - (1 + monthly_rate) ** -term)
    card = family[account] == "信用卡"
    statement = amount * rng.beta(2, 6, n)
    amount_due = np.round(np.where(card, statement, instalment), 2)

    # Most instalments are debited automatically on the due date; some are paid
    # a few days early and 1.5 % one to five days late.
    draw = rng.random(n)
    offset = np.where(draw < 0.7, 0, np.where(draw < 0.985, -rng.integers(1, 6, n), rng.integers(1, 6, n)))
    paid = due + offset

    customer = accounts["customer"].to_numpy()[account]
    defaults = risk.defaults.set_index("customer")
    in_default = np.isin(customer, defaults.index.to_numpy())
    rows = np.flatnonzero(in_default)
    start = defaults["delinquency_day"].reindex(customer[rows]).to_numpy()
    behaviour = defaults["behaviour_day"].reindex(customer[rows]).to_numpy()
    late_signal = defaults["late_payment"].reindex(customer[rows]).to_numpy()
    # Planted late payments: instalments due between the behaviour start and
    # delinquency are paid 5-25 days late. From delinquency on, nothing is paid.
    late = late_signal & (due[rows] >= behaviour) & (due[rows] < start)
    paid[rows[late]] = due[rows[late]] + rng.integers(5, 26, late.sum())
    unpaid_rows = rows[due[rows] >= start]

    alarms = risk.false_alarms[risk.false_alarms["kind"] == "late_payment"]
    for customer_row, day in zip(alarms["customer"].to_numpy(), alarms["day"].to_numpy()):
        hit = np.flatnonzero((customer == customer_row) & (due >= day))[:1]
        paid[hit] = due[hit] + rng.integers(5, 21, len(hit))

    unpaid = np.zeros(n, dtype=bool)
    unpaid[unpaid_rows] = True
    # A late payment that lands after the as-of date is still unpaid on it.
    unpaid |= paid > calendar.n_days - 1
    paid = np.where(unpaid, -1, paid)
    days_past_due = np.where(unpaid, calendar.n_days - 1 - due, np.maximum(paid - due, 0))
    return pd.DataFrame(
        {
            "account": account,
            "customer": customer,
            "due_day": due,
            "paid": ~unpaid,
            "paid_day": paid,
            "amount_due": amount_due,
            "amount_paid": np.where(unpaid, 0.0, amount_due),
            "days_past_due": days_past_due,
        }
    )
