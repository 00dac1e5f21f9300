"""App and web events: logins and browsing by topic, each from a device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from relmap_utils.demo.calendar import Calendar, draw_by_profile
from relmap_utils.demo.fraud import Rings
from relmap_utils.demo.products import Holdings
from relmap_utils.demo.risk import Risk

EVENT_TYPES = ("登录", "浏览", "搜索", "点击")
_EVENT_TYPE_WEIGHTS = np.array([0.30, 0.50, 0.08, 0.12])
# Raw topic names as the app's content system labels them; engagement.yaml
# recodes them to education, mortgage, retirement, travel, wealth, fund,
# insurance, credit_card, deposit and news.
TOPICS = ("子女教育", "房贷", "养老", "旅游", "理财", "基金", "保险", "信用卡", "存款", "资讯")
_BASE_TOPIC_WEIGHTS = np.array([0, 0, 0, 0, 3, 2, 1, 2, 1, 4], dtype=float)
# Topic weight for customers with the interest, and without it.
_INTEREST_TOPICS = {"education": (0, 4.0, 0.08), "mortgage": (1, 4.0, 0.08), "retirement": (2, 4.0, 0.08),
                    "travel": (3, 4.0, 0.12)}
# The planted take-up products and the topic each one's takers browse more before buying.
TAKEUP_TOPIC = {"education_wealth": 0, "mortgage": 1, "retirement_insurance": 2, "travel_card": 3}
EVENT_CHANNELS = ("手机银行App", "网上银行", "微信银行")
EVENTS_PER_TRANSACTION = 0.6
# Share of customers who change their phone at some point, without any risk meaning.
PHONE_CHANGE_SHARE = 0.06


@dataclass
class Events:
    """Events as parallel arrays plus the device ids they refer to."""

    customer: np.ndarray
    day: np.ndarray
    second: np.ndarray
    event_type: np.ndarray
    topic: np.ndarray  # -1 for logins
    channel: np.ndarray
    device: np.ndarray  # index into device_ids
    device_ids: np.ndarray


def make_events(
    rng: np.random.Generator,
    customers: pd.DataFrame,
    holdings: Holdings,
    risk: Risk,
    rings: Rings,
    n_events: int,
    calendar: Calendar,
) -> Events:
    """Build about ``n_events`` events (exactly that many unless the planted ones alone exceed it).

    Customers browse the topics of their interests far more than other
    customers do. Takers of a planted product browse its topic three to eight
    more times in the 90 days before buying. Each customer uses one or two own
    devices; planted ``new_device`` defaulters switch to a new device on their
    behaviour day, as do the ``new_device`` false alarms and about 6 % of other
    customers who simply buy a new phone. Fraud-ring members log in mostly from
    the ring's shared devices, and some households share a tablet.
    """
    n = len(customers)
    devices = _DeviceBook(rng, customers, risk, rings, calendar)
    open_day = np.maximum(calendar.day_index(customers["open_date"].to_numpy().astype("datetime64[D]")), 0)

    purchases = holdings.takeup[holdings.takeup["taken"]]
    extra = rng.integers(3, 9, len(purchases))
    boost_customer = np.repeat(purchases["customer"].to_numpy(), extra)
    boost_day = np.repeat(purchases["day"].to_numpy(), extra) - rng.integers(1, 91, int(extra.sum()))
    boost_topic = np.repeat(purchases["product"].map(TAKEUP_TOPIC).to_numpy(), extra)
    keep = boost_day >= open_day[boost_customer]
    boost_customer, boost_day, boost_topic = boost_customer[keep], boost_day[keep], boost_topic[keep]

    switched = risk.defaults[risk.defaults["new_device"]]
    logins = rng.integers(2, 6, len(switched))
    login_customer = np.repeat(switched["customer"].to_numpy(), logins)
    login_day = np.minimum(np.repeat(switched["behaviour_day"].to_numpy(), logins) + rng.integers(0, 31, int(logins.sum())),
                           calendar.n_days - 1)

    planted = len(boost_customer) + len(login_customer)
    everyday = max(n_events - planted, 0)
    active_months = (calendar.n_days - open_day) / 30.44
    weight = customers["app_rate"].to_numpy() * active_months
    customer = np.repeat(np.arange(n), rng.multinomial(everyday, weight / weight.sum()))
    day = open_day[customer] + np.floor(rng.random(len(customer)) * (calendar.n_days - open_day[customer])).astype(np.int64)
    event_type = rng.choice(len(EVENT_TYPES), size=len(customer), p=_EVENT_TYPE_WEIGHTS)
    topic = _draw_topics(rng, customers, customer)
    topic[event_type == 0] = -1

    customer = np.concatenate([customer, boost_customer, login_customer])
    day = np.concatenate([day, boost_day, login_day])
    event_type = np.concatenate([event_type, np.ones(len(boost_customer), dtype=np.int64),
                                 np.zeros(len(login_customer), dtype=np.int64)])
    topic = np.concatenate([topic, boost_topic, np.full(len(login_customer), -1)])
    second = _app_seconds(rng, len(customer))
    channel = rng.choice(len(EVENT_CHANNELS), size=len(customer), p=[0.8, 0.15, 0.05])
    device = devices.device_for(rng, customer, day)

    order = np.lexsort((event_type, customer, second, day))
    return Events(customer[order], day[order], second[order], event_type[order], topic[order], channel[order],
                  device[order], devices.ids)


def _draw_topics(rng: np.random.Generator, customers: pd.DataFrame, customer: np.ndarray) -> np.ndarray:
    # One browsing profile per combination of the four interests (bit k = interest k).
    profiles = 2 ** len(_INTEREST_TOPICS)
    weight = np.tile(_BASE_TOPIC_WEIGHTS, (profiles, 1))
    profile = np.zeros(len(customers), dtype=np.int64)
    for bit, (interest, (column, with_interest, without)) in enumerate(_INTEREST_TOPICS.items()):
        has = (np.arange(profiles) >> bit) & 1 == 1
        weight[:, column] = np.where(has, with_interest, without)
        profile += customers[f"interest_{interest}"].to_numpy().astype(np.int64) << bit
    return draw_by_profile(rng, profile[customer], weight)


def _app_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    # App use peaks in the commute, at lunch and late in the evening.
    weight = np.array([0.4, 0.2, 0.1, 0.05, 0.05, 0.1, 0.5, 1.5, 2.0, 1.4, 1.2, 1.4,
                       2.0, 1.6, 1.2, 1.2, 1.3, 1.6, 2.0, 2.0, 2.4, 2.6, 2.0, 1.0])
    hour = rng.choice(24, size=n, p=weight / weight.sum())
    return hour * 3600 + rng.integers(0, 3600, n)


class _DeviceBook:
    """Device assignment: each customer's own, switched and shared devices, by day."""

    def __init__(self, rng: np.random.Generator, customers: pd.DataFrame, risk: Risk, rings: Rings,
                 calendar: Calendar) -> None:
        n = len(customers)
        next_id = 0
        # Own devices: everyone has one, a third of customers a second one.
        self.primary = np.arange(n)
        next_id += n
        has_second = rng.random(n) < 0.35
        self.secondary = np.full(n, -1)
        self.secondary[has_second] = next_id + np.arange(has_second.sum())
        next_id += int(has_second.sum())

        # A new device from a switch day on: planted defaulters, false alarms, phone changes.
        self.switch_day = np.full(n, calendar.n_days + 1)
        self.switched_device = np.full(n, -1)
        planted = risk.defaults[risk.defaults["new_device"]]
        alarms = risk.false_alarms[risk.false_alarms["kind"] == "new_device"]
        ordinary = np.flatnonzero(rng.random(n) < PHONE_CHANGE_SHARE)
        switchers = [
            (planted["customer"].to_numpy(), planted["behaviour_day"].to_numpy()),
            (alarms["customer"].to_numpy(), alarms["day"].to_numpy()),
            (ordinary, rng.integers(0, calendar.n_days, len(ordinary))),
        ]
        for switching, days in reversed(switchers):  # planted switches win over ordinary ones
            self.switch_day[switching] = days
            self.switched_device[switching] = next_id + np.arange(len(switching))
            next_id += len(switching)

        # Households with a shared tablet, and the fraud rings' shared devices.
        household = customers["household"].to_numpy()
        households = np.unique(household[household >= 0])
        tablet_households = households[rng.random(len(households)) < 0.1]
        self.shared = np.full(n, -1)
        self.shared_share = np.zeros(n)
        tablet = np.searchsorted(tablet_households, household)
        in_tablet = (household >= 0) & np.isin(household, tablet_households)
        self.shared[in_tablet] = next_id + tablet[in_tablet]
        self.shared_share[in_tablet] = 0.2
        next_id += len(tablet_households)
        ring_first = np.r_[0, np.cumsum(rings.rings["devices"].to_numpy())[:-1]]
        members = rings.members
        self.shared[members["customer"].to_numpy()] = (
            next_id + ring_first[members["ring"].to_numpy()] + members["device_slot"].to_numpy()
        )
        self.shared_share[members["customer"].to_numpy()] = 0.85
        next_id += int(rings.rings["devices"].sum())
        self.ids = _device_ids(rng, next_id)

    def device_for(self, rng: np.random.Generator, customer: np.ndarray, day: np.ndarray) -> np.ndarray:
        draw = rng.random(len(customer))
        device = self.primary[customer]
        second = self.secondary[customer]
        device = np.where((second >= 0) & (draw < 0.3), second, device)
        after_switch = day >= self.switch_day[customer]
        device = np.where(after_switch, self.switched_device[customer], device)
        shared = self.shared[customer]
        use_shared = (shared >= 0) & (rng.random(len(customer)) < self.shared_share[customer])
        return np.where(use_shared, shared, device)


def _device_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    # Android IDs are 16 lower-case hex digits; iOS vendor ids are upper-case UUIDs.
    high = rng.integers(0, 2**63, n, dtype=np.int64)
    low = rng.integers(0, 2**63, n, dtype=np.int64)
    ios = rng.random(n) < 0.4
    ids = np.empty(n, dtype=object)
    for i in range(n):
        if ios[i]:
            text = f"{int(high[i]):016X}{int(low[i]):016X}"
            ids[i] = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
        else:
            text = f"{int(high[i]):016x}"
            # Digits around a single "e" read as scientific notation (such as
            # 624969633448e829), which ingest reports as a damaged identifier.
            if text.replace("e", "").isdigit():
                text = "a" + text[1:]
            ids[i] = text
    return ids
