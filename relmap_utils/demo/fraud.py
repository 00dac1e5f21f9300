"""Planted fraud rings: customers who share devices and phones and move money in cycles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from relmap_utils.demo.calendar import DAY, Calendar

RING_SIZE = (4, 12)
# One ring per this many customers, and at least MIN_RINGS.
CUSTOMERS_PER_RING = 1500
MIN_RINGS = 3
CONFIRMED_SHARE = 0.6


@dataclass
class Rings:
    """The planted rings and the money they move.

    Attributes
    ----------
    members : pandas.DataFrame
        ``customer`` (row index), ``ring``, ``phone_slot`` and ``device_slot``.
    rings : pandas.DataFrame
        Per ring: ``ring``, ``size``, ``devices``, ``phones``, ``start_day``,
        ``end_day``, ``cycles``, ``confirmed`` and ``confirmed_day``.
    hops : pandas.DataFrame
        One row per transfer: ``sender``, ``receiver`` (customer row indices),
        ``day``, ``second`` (of the day), ``amount`` (yuan, positive), ``ring``
        and ``cycle``.
    """

    members: pd.DataFrame
    rings: pd.DataFrame
    hops: pd.DataFrame


def plant_rings(rng: np.random.Generator, customers: pd.DataFrame, calendar: Calendar) -> Rings:
    """Choose ring members, rewrite their profile, and schedule their cyclic transfers.

    Members come from the mass-retail and young-professional segments and stay
    there in the ground truth; they are 35 or younger and outside any
    household. Their profile is rewritten in place to what mule accounts look
    like: opened within a few weeks of each other in the last ten months,
    freelance or unemployed, no salary, one or two contact phone numbers shared
    across the ring, and a shared address in half of the rings.
    """
    n_rings = max(MIN_RINGS, round(len(customers) / CUSTOMERS_PER_RING))
    sizes = rng.integers(RING_SIZE[0], RING_SIZE[1] + 1, n_rings)
    pool = np.flatnonzero(
        customers["segment"].isin(["mass_retail", "young_professional"]).to_numpy()
        & (customers["household"].to_numpy() < 0)
        & (customers["age"].to_numpy() <= 35)
    )
    chosen = rng.choice(pool, size=int(sizes.sum()), replace=False)
    ring_of_member = np.repeat(np.arange(n_rings), sizes)

    start_day = calendar.n_days - rng.integers(120, 300, n_rings)
    phones = rng.integers(1, 3, n_rings)
    devices = rng.integers(1, 4, n_rings)
    member_start = start_day[ring_of_member]
    open_day = member_start - rng.integers(0, 30, len(chosen))
    customers.loc[chosen, "open_date"] = calendar.start + open_day * DAY
    customers.loc[chosen, "occupation"] = rng.choice(np.array(["自由职业", "无业"], dtype=object), len(chosen))
    customers.loc[chosen, ["salaried", "retired"]] = False
    customers.loc[chosen, "activity_rate"] = 0.8
    customers.loc[chosen, "app_rate"] = 4.0
    customers.loc[chosen, "aum_level"] = rng.uniform(200, 3000, len(chosen))
    customers.loc[chosen, "liquid_level"] = customers.loc[chosen, "aum_level"]
    customers.loc[chosen, "ring"] = ring_of_member

    phone_slot = rng.integers(0, phones[ring_of_member])
    device_slot = rng.integers(0, devices[ring_of_member])
    first_member = np.r_[0, np.cumsum(sizes)[:-1]]
    # The ring's shared phones are those of its first members.
    shared_phone = customers["phone"].to_numpy()[chosen[first_member[ring_of_member] + phone_slot]]
    customers.loc[chosen, "phone"] = shared_phone
    shares_address = rng.random(n_rings) < 0.5
    address = customers["address"].to_numpy()[chosen[first_member[ring_of_member]]]
    keep = ~shares_address[ring_of_member]
    address[keep] = customers["address"].to_numpy()[chosen[keep]]
    customers.loc[chosen, "address"] = address

    members = pd.DataFrame(
        {"customer": chosen, "ring": ring_of_member, "phone_slot": phone_slot, "device_slot": device_slot}
    )
    hops, cycles, end_day = _cycles(rng, members, start_day, calendar)
    # Investigators confirm CONFIRMED_SHARE of the rings (at least one) 10-40
    # days after their last transfer; the rest are left for the fraud stage to find.
    confirmed_day = end_day + rng.integers(10, 40, n_rings)
    confirmable = np.flatnonzero(confirmed_day < calendar.n_days)
    n_confirmed = min(len(confirmable), max(1, round(CONFIRMED_SHARE * n_rings)))
    confirmed = np.zeros(n_rings, dtype=bool)
    confirmed[rng.choice(confirmable, size=n_confirmed, replace=False)] = True
    rings = pd.DataFrame(
        {
            "ring": np.arange(n_rings),
            "size": sizes,
            "devices": devices,
            "phones": phones,
            "shares_address": shares_address,
            "start_day": start_day,
            "end_day": end_day,
            "cycles": cycles,
            "confirmed": confirmed,
            "confirmed_day": np.where(confirmed, confirmed_day, -1),
        }
    )
    return Rings(members, rings, hops)


def _cycles(
    rng: np.random.Generator, members: pd.DataFrame, start_day: np.ndarray, calendar: Calendar
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    # A ring is active for two to five months. Each cycle passes one sum around
    # the whole ring in a random order, one hop every 0-2 days, each member
    # keeping 0.5-2 % as a cut.
    rows = []
    n_rings = len(start_day)
    cycles = rng.integers(3, 9, n_rings)
    end_day = np.zeros(n_rings, dtype=np.int64)
    for ring in range(n_rings):
        ring_members = members.loc[members["ring"] == ring, "customer"].to_numpy()
        span = min(int(rng.integers(60, 150)), calendar.n_days - 30 - (start_day[ring] + 10))
        cycle_start = np.sort(start_day[ring] + 10 + rng.integers(0, max(span, 1), cycles[ring]))
        for cycle, day in enumerate(cycle_start):
            order = rng.permutation(ring_members)
            amount = float(rng.integers(20, 200)) * 1000
            for hop, sender in enumerate(order):
                receiver = order[(hop + 1) % len(order)]
                rows.append((sender, receiver, day, rng.integers(9 * 3600, 23 * 3600), round(amount, 2), ring, cycle))
                amount *= 1 - rng.uniform(0.005, 0.02)
                day = min(day + int(rng.integers(0, 3)), calendar.n_days - 1)
        end_day[ring] = day
    hops = pd.DataFrame(rows, columns=["sender", "receiver", "day", "second", "amount", "ring", "cycle"])
    return hops, cycles, end_day
