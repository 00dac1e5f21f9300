"""The relations table: devices, phones, addresses, family, guarantors and transfers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from relmap_utils.demo.calendar import Calendar
from relmap_utils.demo.events import Events
from relmap_utils.demo.transactions import ACCOUNT, TXN_TYPES, Part

# Raw relation and entity type names in the bank's file; engagement.yaml recodes them.
RELATION_TYPES = {"device": "使用设备", "phone": "手机号码", "address": "联系地址", "family": "亲属",
                  "guarantor": "担保", "transfer": "转账"}
RELATED_TYPES = {"device": "设备", "phone": "手机", "address": "地址", "customer": "客户"}
GUARANTEED_PRODUCTS = ("002101", "002103")
GUARANTOR_SHARE = 0.3


def make_relations(
    rng: np.random.Generator,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    family: pd.DataFrame,
    events: Events,
    transactions: Part,
    calendar: Calendar,
) -> pd.DataFrame:
    """Return one row per relation with ``customer`` (row index), ``related`` (text),
    ``relation``, ``related_type``, ``start_day``, ``end_day`` (-1 while ongoing) and ``amount``."""
    numbers = customers["customer_no"].to_numpy()
    open_day = calendar.day_index(customers["open_date"].to_numpy().astype("datetime64[D]"))
    n = len(customers)
    frames = [
        _frame(np.arange(n), customers["phone"].to_numpy(), "phone", "phone", open_day),
        _frame(np.arange(n), customers["address"].to_numpy(), "address", "address", open_day),
    ]

    seen = pd.DataFrame({"customer": events.customer, "device": events.device, "day": events.day})
    used = seen.groupby(["customer", "device"], sort=True)["day"].agg(["min", "max"]).reset_index()
    frames.append(_frame(used["customer"].to_numpy(), events.device_ids[used["device"].to_numpy()], "device",
                         "device", used["min"].to_numpy(), used["max"].to_numpy()))

    member, head = family["member"].to_numpy(), family["head"].to_numpy()
    since = np.maximum(open_day[member], open_day[head])
    frames.append(_frame(np.r_[member, head], numbers[np.r_[head, member]], "family", "customer", np.r_[since, since]))

    frames.append(_guarantors(rng, customers, accounts))
    frames.append(_transfers(customers, accounts, transactions))
    relations = pd.concat(frames, ignore_index=True)
    return relations.sort_values(["customer", "relation", "start_day", "related"], kind="stable", ignore_index=True)


def _frame(customer, related, relation, related_type, start_day, end_day=None, amount=None) -> pd.DataFrame:
    size = len(customer)
    return pd.DataFrame(
        {
            "customer": customer,
            "related": related,
            "relation": relation,
            "related_type": related_type,
            "start_day": start_day,
            "end_day": np.full(size, -1) if end_day is None else end_day,
            "amount": np.full(size, np.nan) if amount is None else amount,
        }
    )


def _guarantors(rng: np.random.Generator, customers: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    # Mortgages and business loans often carry a personal guarantee, from a
    # household member where there is one, otherwise from someone in the same city.
    loans = accounts[accounts["product_code"].isin(GUARANTEED_PRODUCTS).to_numpy()]
    loans = loans[rng.random(len(loans)) < GUARANTOR_SHARE]
    borrower = loans["customer"].to_numpy()
    household = customers["household"].to_numpy()
    city = customers["city_index"].to_numpy()
    by_city = np.argsort(city, kind="stable")
    first = np.searchsorted(city[by_city], city[borrower], side="left")
    last = np.searchsorted(city[by_city], city[borrower], side="right")
    guarantor = by_city[first + np.floor(rng.random(len(borrower)) * (last - first)).astype(np.int64)]
    members = pd.Series(np.arange(len(customers)))[household >= 0]
    household_head = members.groupby(household[household >= 0]).first()
    in_household = household[borrower] >= 0
    guarantor[in_household] = household_head.reindex(household[borrower][in_household]).to_numpy()
    keep = guarantor != borrower
    return _frame(borrower[keep], customers["customer_no"].to_numpy()[guarantor[keep]], "guarantor", "customer",
                  loans["open_day"].to_numpy()[keep], amount=loans["amount"].to_numpy()[keep])


def _transfers(customers: pd.DataFrame, accounts: pd.DataFrame, transactions: Part) -> pd.DataFrame:
    # Money sent from one customer of the bank to another, summed per ordered pair.
    sent = (transactions.txn_type == TXN_TYPES.index("转账转出")) & (transactions.counterparty_kind == ACCOUNT)
    receiver = accounts["customer"].to_numpy()[transactions.counterparty[sent]]
    flows = pd.DataFrame(
        {"customer": transactions.customer[sent], "receiver": receiver, "day": transactions.day[sent],
         "amount": -transactions.amount[sent]}
    )
    pairs = flows.groupby(["customer", "receiver"], sort=True).agg(
        start_day=("day", "min"), end_day=("day", "max"), amount=("amount", "sum")
    ).reset_index()
    return _frame(pairs["customer"].to_numpy(), customers["customer_no"].to_numpy()[pairs["receiver"].to_numpy()],
                  "transfer", "customer", pairs["start_day"].to_numpy(), pairs["end_day"].to_numpy(),
                  np.round(pairs["amount"].to_numpy(), 2))
