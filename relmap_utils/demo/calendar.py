"""The demo bank's time axis: history window, Spring Festival, spending weights.

All dates are ``numpy.datetime64[D]``; arithmetic on them is in whole days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relmap_utils.errors import ConfigError

# Months of history before and including the as-of month.
HISTORY_MONTHS = 18
# Length of the take-up label window at the end of the history, in months.
TAKEUP_WINDOW_MONTHS = 6

# Lunar New Year's Day (春节, first day of the first lunar month) per Gregorian year.
SPRING_FESTIVAL = {
    2015: "2015-02-19",
    2016: "2016-02-08",
    2017: "2017-01-28",
    2018: "2018-02-16",
    2019: "2019-02-05",
    2020: "2020-01-25",
    2021: "2021-02-12",
    2022: "2022-02-01",
    2023: "2023-01-22",
    2024: "2024-02-10",
    2025: "2025-01-29",
    2026: "2026-02-17",
    2027: "2027-02-06",
    2028: "2028-01-26",
    2029: "2029-02-13",
    2030: "2030-02-03",
}

DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class Calendar:
    """History window of the demo bank and the day weights used to place activity in it.

    Attributes
    ----------
    start : numpy.datetime64
        First day of the history (the first day of the month ``HISTORY_MONTHS - 1``
        months before the as-of month).
    as_of : numpy.datetime64
        Last day of the history; nothing in the demo bank is dated later.
    month_starts, month_ends : numpy.ndarray
        First and last day of each history month, oldest first.
    festivals : numpy.ndarray
        Spring Festival days inside the history.
    spending_weight : numpy.ndarray
        Relative amount of consumer spending on each day of the history.
    """

    start: np.datetime64
    as_of: np.datetime64
    month_starts: np.ndarray
    month_ends: np.ndarray
    festivals: np.ndarray
    spending_weight: np.ndarray

    @property
    def n_days(self) -> int:
        return int((self.as_of - self.start) / DAY) + 1

    @property
    def takeup_window_start(self) -> np.datetime64:
        """First day of the take-up label window (the last ``TAKEUP_WINDOW_MONTHS`` months)."""
        return self.month_starts[HISTORY_MONTHS - TAKEUP_WINDOW_MONTHS]

    def day_index(self, dates: np.ndarray) -> np.ndarray:
        """Return the offset in days of ``dates`` from the history start."""
        return ((dates - self.start) / DAY).astype(np.int64)

    def month_index(self, dates: np.ndarray) -> np.ndarray:
        """Return the history month (0 = oldest) that each date falls in; dates before the start give -1."""
        return np.searchsorted(self.month_starts, dates, side="right") - 1

    def spending_cdf(self) -> np.ndarray:
        """Return the cumulative spending weight, with a leading 0, for inverse-CDF sampling."""
        return np.concatenate([[0.0], np.cumsum(self.spending_weight)])


def draw_by_profile(rng: np.random.Generator, profile: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Draw one category per row from the weights of the row's profile.

    ``weights`` has one row per profile and one column per category. Drawing
    per profile keeps memory at a few arrays of the row count, where a per-row
    table of cumulative weights would need rows x categories floats.
    """
    cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    draw = rng.random(len(profile))
    category = np.empty(len(profile), dtype=np.int64)
    for value in np.unique(profile):
        rows = np.flatnonzero(profile == value)
        category[rows] = np.searchsorted(cdf[value], draw[rows], side="right")
    return np.minimum(category, weights.shape[1] - 1)


def parse_as_of(as_of: str) -> np.datetime64:
    """Parse an ISO date such as ``2024-06-30``.

    Raises
    ------
    ConfigError
        When the text is not an ISO date.
    """
    try:
        return np.datetime64(str(as_of), "D")
    except ValueError:
        raise ConfigError("demo.as_of_invalid", value=as_of) from None


def make_calendar(as_of: str) -> Calendar:
    """Build the history window ending on ``as_of``.

    Raises
    ------
    ConfigError
        When ``as_of`` is not an ISO date, or when its history reaches into a
        year missing from ``SPRING_FESTIVAL`` (as-of dates from 2016-06-01 to
        2030-12-31 work).
    """
    end = parse_as_of(as_of)
    end_month = end.astype("datetime64[M]")
    months = end_month - np.arange(HISTORY_MONTHS - 1, -1, -1)
    month_starts = months.astype("datetime64[D]")
    month_ends = (months + 1).astype("datetime64[D]") - DAY
    month_ends[-1] = end

    first_year = int(str(month_starts[0])[:4])
    last_year = int(str(end)[:4])
    if first_year not in SPRING_FESTIVAL or last_year not in SPRING_FESTIVAL:
        # The history starts HISTORY_MONTHS - 1 months before the as-of month.
        raise ConfigError(
            "demo.as_of_out_of_range",
            value=str(end),
            first=str(np.datetime64(f"{min(SPRING_FESTIVAL)}-01", "M") + HISTORY_MONTHS - 1) + "-01",
            last=f"{max(SPRING_FESTIVAL)}-12-31",
        )
    festivals = np.array(
        [np.datetime64(SPRING_FESTIVAL[year], "D") for year in range(first_year, last_year + 1)]
    )
    festivals = festivals[(festivals >= month_starts[0]) & (festivals <= end)]

    days = np.arange(month_starts[0], end + DAY, DAY)
    return Calendar(month_starts[0], end, month_starts, month_ends, festivals, _spending_weight(days, festivals))


def _spending_weight(days: np.ndarray, festivals: np.ndarray) -> np.ndarray:
    weight = np.ones(len(days))
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    weight[weekday >= 5] *= 1.15

    # 双十一 (11 November) is the year's largest online shopping day.
    months = days.astype("datetime64[M]")
    day_of_month = ((days - months.astype("datetime64[D]")) / DAY).astype(np.int64) + 1
    month_of_year = months.astype(np.int64) % 12 + 1
    singles_day = (month_of_year == 11) & (day_of_month == 11)
    weight[singles_day] *= 2.0

    # Shopping for the Spring Festival builds up over the three weeks before it,
    # the holiday week itself is busy with red envelopes and family meals, and the
    # two weeks after it are quiet.
    for festival in festivals:
        offset = ((days - festival) / DAY).astype(np.int64)
        ramp = (offset >= -21) & (offset < 0)
        weight[ramp] *= 1.0 + 1.6 * (1.0 + offset[ramp] / 21.0)
        weight[(offset >= 0) & (offset < 7)] *= 1.4
        weight[(offset >= 7) & (offset < 21)] *= 0.85
    return weight
