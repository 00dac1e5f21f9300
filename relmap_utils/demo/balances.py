"""Month-end balances of every account over the history."""

from __future__ import annotations

import numpy as np
import pandas as pd

from relmap_utils.demo.calendar import Calendar
from relmap_utils.demo.products import CATALOG, DEMAND_DEPOSIT, family_of
from relmap_utils.demo.risk import Risk


def make_balances(
    rng: np.random.Generator, accounts: pd.DataFrame, customers: pd.DataFrame, risk: Risk, calendar: Calendar
) -> pd.DataFrame:
    """Return one row per account and month-end while the account is open.

    Columns: ``account`` (row in accounts), ``month`` (index into
    ``calendar.month_ends``) and ``balance`` in yuan. Deposits and wealth
    products show what the customer owns. Loans and credit cards show what the
    customer owes, as a positive number, and insurance the policy's cash value.

    Planted pre-default behaviour shows here too: from the behaviour month on,
    the demand deposit of a customer whose salary stops or whose cash
    withdrawals jump drains, and the credit-card balance climbs to its limit.
    """
    months = len(calendar.month_ends)
    month_end = calendar.day_index(calendar.month_ends)
    n_accounts = len(accounts)
    account = np.repeat(np.arange(n_accounts), months)
    month = np.tile(np.arange(months), n_accounts)
    open_day = accounts["open_day"].to_numpy()[account]
    close_day = accounts["close_day"].to_numpy()[account]
    alive = (open_day <= month_end[month]) & ((close_day < 0) | (close_day > month_end[month]))
    account, month, open_day = account[alive], month[alive], open_day[alive]
    n = len(account)

    code = accounts["product_code"].to_numpy()[account]
    family = family_of(code)
    amount = accounts["amount"].to_numpy()[account]
    customer = accounts["customer"].to_numpy()[account]
    months_open = np.maximum((month_end[month] - open_day) / 30.44, 0.0)

    # Demand deposits wander month to month around the customer's usual level
    # and dip in the Spring Festival month.
    steps = rng.normal(0.0, 0.07, (n_accounts, months)).cumsum(axis=1)
    wander = np.exp(steps[account, month])
    festival_month = np.isin(month, calendar.month_index(calendar.festivals))
    balance = np.where(code == DEMAND_DEPOSIT, amount * wander * np.where(festival_month, 0.85, 1.0), 0.0)
    balance = np.where(family == "存款", np.where(code == DEMAND_DEPOSIT, balance, amount), balance)
    balance = np.where(family == "理财", amount * (1 + 0.0025 * months_open) * rng.normal(1.0, 0.004, n), balance)
    term = np.array([CATALOG[c].term_months or 1 for c in code])
    balance = np.where(family == "贷款", amount * np.clip(1 - months_open / term, 0.0, 1.0), balance)
    utilisation = rng.beta(2, 6, n_accounts)[account] * rng.uniform(0.8, 1.2, n)
    balance = np.where(family == "信用卡", amount * np.clip(utilisation, 0.0, 1.0), balance)
    balance = np.where(family == "保险", amount * 0.02 * np.minimum(months_open / 12, 20), balance)

    defaults = risk.defaults[risk.defaults["planted"]]
    behaviour_month = np.full(len(customers), -1)
    draining = defaults["salary_stop"].to_numpy() | defaults["cash_jump"].to_numpy()
    behaviour_month[defaults["customer"].to_numpy()] = calendar.month_index(
        calendar.start + defaults["behaviour_day"].to_numpy() * np.timedelta64(1, "D")
    )
    drains = np.zeros(len(customers), dtype=bool)
    drains[defaults["customer"].to_numpy()[draining]] = True
    since = month - behaviour_month[customer]
    in_distress = (behaviour_month[customer] >= 0) & (since >= 0)
    drain = in_distress & drains[customer] & (code == DEMAND_DEPOSIT)
    balance[drain] *= 0.55 ** (since[drain] + 1)
    maxed = in_distress & (family == "信用卡")
    balance[maxed] = amount[maxed] * rng.uniform(0.92, 1.0, maxed.sum())
    return pd.DataFrame({"account": account, "month": month, "balance": np.round(balance, 2)})
