"""Calendar arithmetic of the map: ``as_of``, month periods and day numbers.

Dates enter the SQL as day numbers (days since 1970-01-01, an integer), so
window tests and day differences are integer comparisons that DuckDB and
Spark evaluate identically.

A window of ``n`` months ending at ``as_of`` contains the days ``d`` with
``shift_months(as_of, -n) < d <= as_of``. When ``as_of`` is a month-end the
shift lands on month-ends too, so the window is ``n`` whole calendar months;
a 3-month window at 2024-06-30 runs from 2024-04-01 to 2024-06-30.
Month period ``k`` (0 = the latest) is the 1-month window ending at
``shift_months(as_of, -k)``.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import ibis
import ibis.expr.types as ir

EPOCH = dt.date(1970, 1, 1)


def parse_date(value: Any, name: str = "as_of") -> dt.date:
    """Read a date given as a ``date``, a ``datetime`` or ISO text ``YYYY-MM-DD``.

    Raises
    ------
    ConfigError
        When the value is neither, naming the parameter.
    """
    from relmap_utils.errors import ConfigError

    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError("features.bad_parameter", name=name, value=repr(value), allowed="YYYY-MM-DD")


def is_month_end(day: dt.date) -> bool:
    """Return True when ``day`` is the last day of its month."""
    return day.day == calendar.monthrange(day.year, day.month)[1]


def shift_months(day: dt.date, months: int) -> dt.date:
    """Move ``day`` by ``months`` calendar months, keeping month-ends at month-ends.

    Examples
    --------
    >>> shift_months(dt.date(2024, 6, 30), -3)
    datetime.date(2024, 3, 31)
    >>> shift_months(dt.date(2024, 5, 31), -3)
    datetime.date(2024, 2, 29)
    >>> shift_months(dt.date(2024, 6, 15), -1)
    datetime.date(2024, 5, 15)
    """
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, last if is_month_end(day) else min(day.day, last))


def month_end(day: dt.date) -> dt.date:
    """Return the last day of the month of ``day``."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def month_ends(last: dt.date, count: int) -> list[dt.date]:
    """Return ``count`` month-ends ending at ``last`` (a month-end), oldest first."""
    return [shift_months(last, -offset) for offset in reversed(range(count))]


def day_number(day: dt.date) -> int:
    """Return the days since 1970-01-01 of ``day``."""
    return (day - EPOCH).days


def day_of(column: ir.Value) -> ir.IntegerValue:
    """Return the day number of a date or timestamp column (its calendar day)."""
    if column.type().is_timestamp():
        return column.date().epoch_days()
    return column.epoch_days()


def _midnight_after(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


def whole_years(start: ir.DateValue, as_of: dt.date) -> ir.IntegerValue:
    """Return the whole years from ``start`` to ``as_of``; NULL when ``start`` is after ``as_of``."""
    not_yet = (start.month() * 100 + start.day()) > (as_of.month * 100 + as_of.day)
    years = as_of.year - start.year() - not_yet.ifelse(1, 0)
    return ibis.ifelse(start > ibis.date(as_of), ibis.null("int64"), years.cast("int64"))


def whole_months(start: ir.DateValue, as_of: dt.date) -> ir.IntegerValue:
    """Return the whole months from ``start`` to ``as_of``; NULL when ``start`` is after ``as_of``.

    A month is complete when the day of month is reached again, so
    2024-01-31 to 2024-02-29 is 0 months and to 2024-03-31 is 2 months.
    """
    months = (as_of.year - start.year()) * 12 + (as_of.month - start.month()) - (start.day() > as_of.day).ifelse(1, 0)
    return ibis.ifelse(start > ibis.date(as_of), ibis.null("int64"), months.cast("int64"))


@dataclass(frozen=True)
class Windows:
    """The month periods before one ``as_of`` date.

    Parameters
    ----------
    as_of : date
        Last day of the data that enters the map (inclusive).
    months : int
        Number of month periods to lay out back from ``as_of``.
    """

    as_of: dt.date
    months: int

    @cached_property
    def boundaries(self) -> tuple[dt.date, ...]:
        """``shift_months(as_of, -k)`` for ``k = 0 .. months``; period ``k`` ends at boundary ``k``."""
        return tuple(shift_months(self.as_of, -k) for k in range(self.months + 1))

    @property
    def as_of_day(self) -> int:
        """Day number of ``as_of``."""
        return day_number(self.as_of)

    @property
    def end_timestamp(self) -> dt.datetime:
        """Midnight after ``as_of``: timestamps before it belong to the data of ``as_of``."""
        return _midnight_after(self.as_of)

    def start(self, months: int) -> dt.date:
        """Return the day before the first day of the ``months``-month window (exclusive start)."""
        return self.boundaries[months]

    def start_day(self, months: int) -> int:
        """Day number of :meth:`start`: a day ``d`` is in the window when ``d > start_day``."""
        return day_number(self.start(months))

    def period_index(self, day: ir.IntegerValue) -> ir.IntegerValue:
        """Return the month period (0 = latest) of a day number, NULL outside the periods.

        The day must already be at most ``as_of``.
        """
        branches = [(day > day_number(self.boundaries[k + 1]), k) for k in range(self.months)]
        return ibis.cases(*branches, else_=ibis.null("int64"))

    def period_of(self, column: ir.Value) -> ir.IntegerValue:
        """Return the month period of a date or naive timestamp column, like :meth:`period_index`.

        The column is compared with the periods' first instants (midnight
        after each boundary, or the boundary date), so no row's value is
        converted to a day number first. The value must already be at most
        ``as_of``.
        """
        if column.type().is_timestamp():
            branches = [(column >= ibis.timestamp(_midnight_after(self.boundaries[k + 1])), k)
                        for k in range(self.months)]
        else:
            branches = [(column > ibis.date(self.boundaries[k + 1]), k) for k in range(self.months)]
        return ibis.cases(*branches, else_=ibis.null("int64"))

    def periods_observed(self, first_day: ir.IntegerValue, months: int | None = None) -> ir.IntegerValue:
        """Count the periods, of the first ``months``, that end on or after ``first_day``.

        Periods are contiguous from ``as_of`` backwards, so the periods
        observed are ``0 .. count - 1``. A NULL ``first_day`` gives 0.
        """
        months = self.months if months is None else months
        terms = [ibis.ifelse(first_day <= day_number(self.boundaries[k]), 1, 0) for k in range(months)]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return first_day.isnull().ifelse(0, total).cast("int64")
