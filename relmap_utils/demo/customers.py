"""The demo bank's customer master: profile, latent traits and fake personal data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from relmap_utils.demo import people
from relmap_utils.demo.calendar import Calendar, DAY
from relmap_utils.demo.segments import (
    EDUCATIONS,
    RISK_TOLERANCES,
    SEGMENT_CODES,
    SEGMENT_SHARES,
    SEGMENTS,
)

# Probability of each browsing interest: (if the life-stage condition holds, otherwise).
INTEREST_RATES = {
    "education": (0.45, 0.03),  # married, aged 30-48: school-age children
    "mortgage": (0.30, 0.04),  # aged 25-40 with a salary
    "retirement": (0.45, 0.04),  # aged 50 and over
    "travel": (0.35, 0.10),  # young professionals and affluent seniors
}
SALARY_DAYS = np.array([5, 8, 10, 15, 20, 25, 28])
_SALARY_DAY_WEIGHTS = np.array([0.12, 0.1, 0.25, 0.2, 0.08, 0.15, 0.1])
PENSION_DAY = 10


def _choose(rng: np.random.Generator, options: tuple | list, weights: np.ndarray, size: int) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    return rng.choice(np.array(options, dtype=object), size=size, p=weights / weights.sum())


def make_customers(rng: np.random.Generator, n: int, calendar: Calendar) -> pd.DataFrame:
    """Draw ``n`` customers with segment, profile, traits and personal data.

    Returns one row per customer. The frame contains both the columns of the
    customer file and internal traits (segment, interests, activity rates).
    :mod:`relmap_utils.demo.files` chooses what is written.
    """
    segment = rng.choice(len(SEGMENT_CODES), size=n, p=np.array(SEGMENT_SHARES) / sum(SEGMENT_SHARES))
    frame = pd.DataFrame({"segment": np.array(SEGMENT_CODES, dtype=object)[segment]})
    frame["customer_no"] = _customer_numbers(rng, n)

    age = np.empty(n)
    male = rng.random(n) < 0.5
    city_index = np.empty(n, dtype=np.int64)
    occupation = np.empty(n, dtype=object)
    education = np.empty(n, dtype=object)
    risk = np.empty(n, dtype=object)
    tenure = np.empty(n)
    income = np.empty(n)
    aum = np.empty(n)
    liquid = np.empty(n)
    salaried = np.empty(n, dtype=bool)
    activity = np.empty(n)
    app_rate = np.empty(n)
    for code, params in SEGMENTS.items():
        rows = np.flatnonzero(frame["segment"].to_numpy() == code)
        size = len(rows)
        age[rows] = rng.uniform(params.age[0], params.age[1] + 1, size)
        tier = rng.choice(len(people.TIERS), size=size, p=np.array(params.tier_weights) / sum(params.tier_weights))
        city_index[rows] = _city_in_tier(rng, tier)
        occupation[rows] = _choose(rng, list(params.occupation_weights), list(params.occupation_weights.values()), size)
        education[rows] = _choose(rng, EDUCATIONS, params.education_weights, size)
        risk[rows] = _choose(rng, RISK_TOLERANCES, params.risk_weights, size)
        tenure[rows] = rng.uniform(*params.tenure_years, size)
        income[rows] = params.income_median_wan * rng.lognormal(0.0, 0.45, size)
        aum[rows] = params.aum_median * rng.lognormal(0.0, params.aum_sigma, size)
        liquid[rows] = np.minimum(params.liquid_median * rng.lognormal(0.0, 0.5, size), aum[rows])
        salaried[rows] = rng.random(size) < params.salaried
        activity[rows] = params.activity_per_month * rng.lognormal(-0.08, 0.4, size)
        app_rate[rows] = params.app_events_per_month * rng.lognormal(-0.1, 0.45, size)

    # Retired customers draw a pension, which arrives like a salary; students,
    # the unemployed and business owners draw none.
    retired = occupation == "退休人员"
    salaried = (salaried & ~np.isin(occupation, ["学生", "无业", "个体工商户", "私营企业主"])) | retired
    frame["age"] = np.floor(age).astype(np.int64)
    frame["birth_date"] = calendar.as_of - (age * 365.25).astype(np.int64) * DAY
    frame["male"] = male
    frame["city_index"] = city_index
    frame["city"] = people.CITY_NAMES[city_index]
    frame["city_tier"] = people.CITY_TIERS[city_index]
    frame["occupation"] = occupation
    frame["education"] = education
    frame["marital"] = _marital_status(rng, frame["age"].to_numpy())
    frame["risk_tolerance"] = risk
    frame["open_date"] = calendar.as_of - (tenure * 365.25).astype(np.int64) * DAY
    frame["branch_no"] = np.char.add(
        np.char.zfill((city_index + 1).astype(str), 2), np.char.zfill(rng.integers(1, 8, n).astype(str), 2)
    ).astype(object)
    frame["income_wan"] = np.round(income, 1)
    frame["aum_level"] = aum
    frame["liquid_level"] = liquid
    frame["salaried"] = salaried
    frame["retired"] = retired
    # Salaries run at 75-90 % of gross annual income over twelve months, after tax
    # and social insurance; pensions at about 90 %.
    monthly = income * 10_000 / 12
    frame["salary"] = np.round(np.where(retired, monthly * 0.9, monthly * rng.uniform(0.75, 0.9, n)), 2)
    frame["salary_day"] = np.where(
        retired, PENSION_DAY, rng.choice(SALARY_DAYS, size=n, p=_SALARY_DAY_WEIGHTS / _SALARY_DAY_WEIGHTS.sum())
    )
    frame["employer"] = rng.integers(0, max(n // 25, 10), n)
    frame["activity_rate"] = activity
    frame["app_rate"] = app_rate
    _draw_interests(rng, frame)

    frame["name"] = people.make_names(rng, male)
    frame["id_number"] = people.make_id_numbers(rng, city_index, frame["birth_date"].to_numpy(), male)
    frame["phone"] = people.make_mobile_numbers(rng, n)
    frame["address"] = people.make_addresses(rng, city_index)
    frame["household"] = -1
    frame["ring"] = -1
    return frame


def _customer_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    # 12-digit numbers with leading zeros and small gaps, as core systems issue them.
    numbers = 10_000_000 + np.cumsum(rng.integers(1, 6, n))
    return np.char.zfill(numbers.astype(str), 12).astype(object)


def _city_in_tier(rng: np.random.Generator, tier: np.ndarray) -> np.ndarray:
    city = np.empty(len(tier), dtype=np.int64)
    for index, name in enumerate(people.TIERS):
        rows = np.flatnonzero(tier == index)
        candidates = np.flatnonzero(people.CITY_TIERS == name)
        city[rows] = rng.choice(candidates, size=len(rows))
    return city


def _marital_status(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    married = np.clip((age - 22) / 10, 0.0, 0.85)
    divorced = np.where(age > 30, 0.06, 0.0)
    widowed = np.clip((age - 60) / 60, 0.0, 0.3)
    draw = rng.random(len(age))
    status = np.full(len(age), "未婚", dtype=object)
    status[draw < married + divorced + widowed] = "离异"
    status[draw < married + widowed] = "丧偶"
    status[draw < married] = "已婚"
    return status


def _draw_interests(rng: np.random.Generator, frame: pd.DataFrame) -> None:
    age = frame["age"].to_numpy()
    segment = frame["segment"].to_numpy()
    condition = {
        "education": (frame["marital"].to_numpy() == "已婚") & (age >= 30) & (age <= 48),
        "mortgage": (age >= 25) & (age <= 40) & frame["salaried"].to_numpy(),
        "retirement": age >= 50,
        "travel": np.isin(segment, ["young_professional", "affluent_senior"]),
    }
    for topic, (rate_if, rate_else) in INTEREST_RATES.items():
        probability = np.where(condition[topic], rate_if, rate_else)
        frame[f"interest_{topic}"] = rng.random(len(frame)) < probability


def assign_households(rng: np.random.Generator, frame: pd.DataFrame, head_share: float = 0.12) -> pd.DataFrame:
    """Group some customers into households that share an address.

    Customers are visited city by city in random order. Each one not yet
    placed starts a household with probability ``head_share`` and takes the
    next one to three customers of the same city as members. With the default
    share about a quarter of customers end up in a household.

    Returns the family pairs (one row per member and head) with the kind of
    relation seen from the member: 配偶 (spouse, age gap under 12 years), 父母
    or 子女.
    """
    n = len(frame)
    city = frame["city_index"].to_numpy()
    age = frame["age"].to_numpy()
    order = np.lexsort((rng.random(n), city))
    household = np.full(n, -1)
    pairs: list[tuple[int, int]] = []
    position = 0
    household_id = 0
    while position < n:
        head = order[position]
        if rng.random() >= head_share:
            position += 1
            continue
        size = 1 + rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1])
        members = [m for m in order[position : position + size] if city[m] == city[head]]
        if len(members) > 1:
            household[members] = household_id
            pairs += [(head, member) for member in members[1:]]
            household_id += 1
        position += len(members)
    frame["household"] = household
    address = frame["address"].to_numpy().copy()
    for head, member in pairs:
        address[member] = address[head]
    frame["address"] = address

    heads = np.array([p[0] for p in pairs], dtype=np.int64)
    members = np.array([p[1] for p in pairs], dtype=np.int64)
    gap = age[members] - age[heads]
    kind = np.where(np.abs(gap) < 12, "配偶", np.where(gap > 0, "父母", "子女"))
    return pd.DataFrame({"member": members, "head": heads, "kind": kind})
