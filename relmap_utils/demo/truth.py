"""Labels a bank would hand over, and the ground truth of everything planted.

The labels file is what a bank would hand over: product take-up, default and
confirmed fraud. The ground truth goes further (segments, drivers, warning
behaviour, every fraud ring whether confirmed or not) and exists so that the
later stages' tests can check what they recover.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from relmap_utils.demo import calendar as calendar_module
from relmap_utils.demo import fraud, risk as risk_module
from relmap_utils.demo.calendar import DAY, Calendar
from relmap_utils.demo.events import EVENTS_PER_TRANSACTION, PHONE_CHANGE_SHARE
from relmap_utils.demo.fraud import Rings
from relmap_utils.demo.products import CATALOG, TAKEUP_PRODUCTS, Holdings
from relmap_utils.demo.risk import SIGNALS, Risk
from relmap_utils.demo.segments import SEGMENT_CODES, SEGMENT_SHARES, SEGMENTS

LABEL_TYPES = {"takeup": "产品购买", "default": "违约", "fraud": "欺诈"}
# Evidence of each planted product's driver in the canonical tables after ingest.
TAKEUP_DRIVERS = {
    "education_wealth": {
        "zh": "浏览子女教育类资讯",
        "en": "browses children's-education content",
        "evidence": "events.topic = education (raw 子女教育); also transactions.merchant_category 教育培训",
    },
    "mortgage": {
        "zh": "浏览房贷资讯且有代发工资",
        "en": "browses mortgage content and receives a salary",
        "evidence": "events.topic = mortgage (raw 房贷) and monthly 代发工资 inflows in transactions",
    },
    "retirement_insurance": {
        "zh": "年龄50岁及以上且资产50万元及以上",
        "en": "aged 50 or over with assets of 500,000 yuan or more",
        "evidence": "customers.birth_date and deposit plus wealth balances; events.topic = retirement adds a little",
    },
    "travel_card": {
        "zh": "浏览旅游资讯",
        "en": "browses travel content",
        "evidence": "events.topic = travel (raw 旅游); also transactions.merchant_category 旅游酒店",
    },
}


def make_labels(
    rng: np.random.Generator, customers: pd.DataFrame, holdings: Holdings, risk: Risk, rings: Rings,
    calendar: Calendar,
) -> pd.DataFrame:
    """Return the labels: ``customer`` (row), ``label_type`` (raw name), ``product``, ``day``, ``value``, ``detail``.

    - take-up: one row per customer eligible for a planted product (see
      :class:`~relmap_utils.demo.products.Holdings`): 1 dated on the purchase,
      0 dated on the as-of date;
    - default: one row per borrower: 1 dated on the default day (90 days past
      due), 0 dated on the as-of date;
    - fraud: members of confirmed rings, 1 dated on confirmation; and customers
      investigated and cleared, 0, drawn from households that share an address.
    """
    takeup = holdings.takeup
    product_names = {key: CATALOG[code].name for key, code in TAKEUP_PRODUCTS.items()}
    as_of_day = calendar.n_days - 1
    frames = [
        pd.DataFrame(
            {
                "customer": takeup["customer"].to_numpy(),
                "label_type": LABEL_TYPES["takeup"],
                "product": takeup["product"].map(product_names).to_numpy(),
                "day": np.where(takeup["taken"], takeup["day"], as_of_day),
                "value": takeup["taken"].astype(np.int64).to_numpy(),
                "detail": np.where(takeup["taken"], "已购买", "未购买"),
            }
        )
    ]

    defaults = risk.defaults.set_index("customer")
    borrowers = risk.borrowers
    defaulted = np.isin(borrowers, defaults.index.to_numpy())
    default_day = defaults["default_day"].reindex(borrowers).to_numpy()
    frames.append(
        pd.DataFrame(
            {
                "customer": borrowers,
                "label_type": LABEL_TYPES["default"],
                "product": None,
                "day": np.where(defaulted, np.nan_to_num(default_day, nan=as_of_day), as_of_day).astype(np.int64),
                "value": defaulted.astype(np.int64),
                "detail": np.where(defaulted, "逾期90天以上", "正常"),
            }
        )
    )

    confirmed = rings.rings.set_index("ring")
    members = rings.members[confirmed.loc[rings.members["ring"], "confirmed"].to_numpy()]
    households = np.flatnonzero(customers["household"].to_numpy() >= 0)
    cleared = rng.choice(households, size=min(len(households), 2 * len(members) + 5), replace=False)
    frames.append(
        pd.DataFrame(
            {
                "customer": np.r_[members["customer"].to_numpy(), cleared],
                "label_type": LABEL_TYPES["fraud"],
                "product": None,
                "day": np.r_[confirmed.loc[members["ring"], "confirmed_day"].to_numpy(),
                             rng.integers(calendar.n_days - 180, calendar.n_days, len(cleared))],
                "value": np.r_[np.ones(len(members), dtype=np.int64), np.zeros(len(cleared), dtype=np.int64)],
                "detail": np.r_[np.full(len(members), "确认欺诈"), np.full(len(cleared), "排查后排除")],
            }
        )
    )
    labels = pd.concat(frames, ignore_index=True)
    return labels.sort_values(["customer", "label_type", "product", "day"], kind="stable", ignore_index=True)


def make_truth(customers: pd.DataFrame, holdings: Holdings, risk: Risk, rings: Rings, calendar: Calendar) -> pd.DataFrame:
    """Return the ground truth, one row per customer, keyed by the demo's own customer number."""
    n = len(customers)
    truth = pd.DataFrame(
        {
            "customer_no": customers["customer_no"].to_numpy(),
            "segment": customers["segment"].to_numpy(),
            "segment_zh": customers["segment"].map({code: s.name_zh for code, s in SEGMENTS.items()}).to_numpy(),
            "age": customers["age"].to_numpy(),
            "salaried": customers["salaried"].to_numpy(),
            "aum_level": np.round(customers["aum_level"].to_numpy(), 2),
            **{f"interest_{topic}": customers[f"interest_{topic}"].to_numpy()
               for topic in ("education", "mortgage", "retirement", "travel")},
        }
    )
    for key in TAKEUP_PRODUCTS:
        outcome = holdings.takeup[holdings.takeup["product"] == key].set_index("customer")
        taken = outcome["taken"].reindex(np.arange(n))
        truth[f"takeup_{key}"] = pd.array(np.where(taken.isna(), pd.NA, taken.fillna(False).astype(int)), dtype="Int8")
        day = outcome["day"].where(outcome["taken"]).reindex(np.arange(n)).to_numpy()
        truth[f"takeup_{key}_date"] = _optional_dates(calendar, day)

    borrower = np.zeros(n, dtype=bool)
    borrower[risk.borrowers] = True
    truth["borrower"] = borrower
    defaults = risk.defaults.set_index("customer").reindex(np.arange(n))
    truth["defaulted"] = defaults["default_day"].notna().to_numpy()
    truth["delinquency_date"] = _optional_dates(calendar, defaults["delinquency_day"].to_numpy())
    truth["default_date"] = _optional_dates(calendar, defaults["default_day"].to_numpy())
    truth["pre_default_behaviour"] = defaults["planted"].fillna(False).astype(bool).to_numpy()
    behaviour_day = defaults["behaviour_day"].where(defaults["planted"].fillna(False).astype(bool))
    truth["behaviour_date"] = _optional_dates(calendar, behaviour_day.to_numpy())
    truth["lead_days"] = pd.array(
        (defaults["delinquency_day"] - behaviour_day).to_numpy(), dtype="Int64"
    )
    for signal in SIGNALS:
        truth[f"signal_{signal}"] = defaults[signal].fillna(False).astype(bool).to_numpy()
    alarms = risk.false_alarms.set_index("customer").reindex(np.arange(n))
    truth["false_alarm"] = alarms["kind"].to_numpy()
    truth["false_alarm_date"] = _optional_dates(calendar, alarms["day"].to_numpy())

    ring = customers["ring"].to_numpy()
    truth["fraud_ring"] = pd.array(np.where(ring >= 0, ring, pd.NA), dtype="Int64")
    confirmed = rings.rings["confirmed"].to_numpy()
    truth["fraud_confirmed"] = (ring >= 0) & confirmed[np.maximum(ring, 0)]
    household = customers["household"].to_numpy()
    truth["household"] = pd.array(np.where(household >= 0, household, pd.NA), dtype="Int64")
    return truth


def _optional_dates(calendar: Calendar, days: np.ndarray) -> pd.Series:
    days = np.asarray(days, dtype=float)
    valid = ~np.isnan(days) & (days >= 0)
    dates = np.full(len(days), np.datetime64("NaT"), dtype="datetime64[D]")
    dates[valid] = calendar.start + days[valid].astype(np.int64) * DAY
    return pd.Series(dates)


def describe_signals(
    customers: pd.DataFrame, holdings: Holdings, risk: Risk, rings: Rings, calendar: Calendar
) -> dict[str, Any]:
    """Return the planted signals' definitions and counts (written as planted_signals.json)."""
    takeup = holdings.takeup
    defaults = risk.defaults
    return {
        "as_of": str(calendar.as_of),
        "history": {"start": str(calendar.start), "end": str(calendar.as_of),
                    "months": calendar_module.HISTORY_MONTHS,
                    "spring_festivals": [str(day) for day in calendar.festivals]},
        "segments": {
            code: {"name_zh": SEGMENTS[code].name_zh, "name_en": SEGMENTS[code].name_en, "share": share,
                   "customers": int((customers["segment"] == code).sum())}
            for code, share in zip(SEGMENT_CODES, SEGMENT_SHARES)
        },
        "takeup": {
            "window": {"start": str(calendar.takeup_window_start), "end": str(calendar.as_of)},
            "products": {
                key: {
                    "product_code": code,
                    "product_name": CATALOG[code].name,
                    "family": CATALOG[code].family,
                    "driver_zh": TAKEUP_DRIVERS[key]["zh"],
                    "driver_en": TAKEUP_DRIVERS[key]["en"],
                    "evidence": TAKEUP_DRIVERS[key]["evidence"],
                    "eligible": int((takeup["product"] == key).sum()),
                    "taken": int(takeup.loc[takeup["product"] == key, "taken"].sum()),
                }
                for key, code in TAKEUP_PRODUCTS.items()
            },
        },
        "default": {
            "definition": f"{risk_module.DEFAULT_DAYS_PAST_DUE} days past due on a loan or credit card",
            "borrowers": int(len(risk.borrowers)),
            "defaulters": int(len(defaults)),
            "pre_default_share": risk_module.PRE_DEFAULT_SHARE,
            "with_pre_default_behaviour": int(defaults["planted"].sum()),
            "lead_days": list(risk_module.LEAD_DAYS),
            "signals": {signal: int(defaults[signal].sum()) for signal in SIGNALS},
            "false_alarm_share": risk_module.FALSE_ALARM_SHARE,
            "false_alarms": {kind: int((risk.false_alarms["kind"] == kind).sum())
                             for kind in risk_module.FALSE_ALARM_KINDS},
            "phone_change_share": PHONE_CHANGE_SHARE,
        },
        "fraud": {
            "rings": int(len(rings.rings)),
            "members": int(len(rings.members)),
            "ring_size": list(fraud.RING_SIZE),
            "confirmed_rings": int(rings.rings["confirmed"].sum()),
            "transfers_per_ring": rings.hops.groupby("ring").size().astype(int).tolist(),
        },
        "events_per_transaction": EVENTS_PER_TRANSACTION,
    }
