"""Checks on the input of the map stage, and the values the stage reads from the data.

These functions execute small aggregate queries (date ranges, distinct
values, orphan counts), so :func:`~relmap_utils.features.build_map` itself
stays a pure expression. Each problem is either a :class:`Notice` (a stated,
documented consequence in summary.json and the report) or a
:class:`~relmap_utils.errors.StageError` naming the table, column and value.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from relmap_utils.errors import ConfigError, StageError
from relmap_utils.features.spec import MapSpec, unique_codes
from relmap_utils.features.windows import is_month_end, month_end, parse_date, shift_months
from relmap_utils.i18n import bilingual

logger = logging.getLogger(__name__)

# The date column of each dated table, as the map reads it.
DATE_COLUMNS = {
    "transactions": "txn_time",
    "events": "event_time",
    "balances": "month",
    "repayments": "due_date",
    "accounts": "open_date",
    "relations": "start_date",
    "labels": "label_date",
    "customers": "open_date",
}
# Tables that record activity month by month; the data's first day is their earliest date.
ACTIVITY_TABLES = ("transactions", "events", "balances", "repayments")
# Most values discovered per value list; more would give too many sparse features.
MAX_DISCOVERED_VALUES = 20


@dataclass(frozen=True)
class DateRange:
    """First and last date of one table's date column."""

    table: str
    column: str
    first: dt.date | None
    last: dt.date | None
    rows: int


@dataclass(frozen=True)
class Notice:
    """A documented consequence of the input, stated in summary.json and the report."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        texts = bilingual(f"features.notice.{self.code}", **self.params)
        return {"code": self.code, "message_zh": texts["zh_CN"], "message_en": texts["en"]}


def date_ranges(tables: Mapping[str, ir.Table]) -> dict[str, DateRange]:
    """Return the date range of every dated table present (one aggregate query per table)."""
    ranges = {}
    for table, column in DATE_COLUMNS.items():
        if table not in tables or column not in tables[table].columns:
            continue
        data = tables[table]
        row = data.aggregate(first=data[column].min(), last=data[column].max(), rows=data.count()).execute()
        first, last = (_as_date(row["first"].iloc[0]), _as_date(row["last"].iloc[0]))
        ranges[table] = DateRange(table, column, first, last, int(row["rows"].iloc[0]))
    return ranges


def _as_date(value: Any) -> dt.date | None:
    if value is None or value != value:  # NULL arrives as None, NaN or NaT
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    return value.date() if isinstance(value, dt.datetime) else value


def data_span(ranges: Mapping[str, DateRange]) -> tuple[DateRange | None, DateRange | None]:
    """Return the ranges that contain the data's first day and its last day.

    The first day is the earliest date of the activity tables
    (:data:`ACTIVITY_TABLES`), or of every dated table but customers when no
    activity table is present. The last day is the latest date of every
    dated table but customers. With no dated table but customers, both come
    from ``customers.open_date``.
    """
    dated = [item for name, item in ranges.items() if name != "customers" and item.first is not None]
    if not dated:
        # A customer master alone: its opening dates are the only dates there are.
        dated = [item for item in ranges.values() if item.first is not None]
    activity = [item for item in dated if item.table in ACTIVITY_TABLES] or dated
    start = min(activity, key=lambda item: item.first, default=None)
    end = max(dated, key=lambda item: item.last, default=None)
    return start, end


def resolve_dates(
    as_of: Any, as_of_dates: Any, ranges: Mapping[str, DateRange]
) -> list[dt.date]:
    """Turn the stage's ``as_of`` and ``as_of_dates`` parameters into the list of map dates.

    Parameters
    ----------
    as_of : date, str or None
        The map date; empty or ``None`` means the latest month-end on or
        before the data's last day.
    as_of_dates : list, int or None
        A list of dates builds one partition each (``as_of`` is then not
        used); an integer ``n`` builds ``n`` monthly dates ending at ``as_of``.

    Returns
    -------
    list of date
        Sorted, without repeats.

    Raises
    ------
    ConfigError
        When a parameter is not a date, a list of dates or a positive integer.
    StageError
        When a date is before the data's first day or after the month-end of
        its last day, naming the table and column that set the limit and its date.
    """
    start, end = data_span(ranges)
    if as_of in (None, ""):
        if end is None:
            raise StageError("features.no_dated_data")
        last = end.last
        as_of_date = last if is_month_end(last) else shift_months(month_end(last), -1)
    else:
        as_of_date = parse_date(as_of, "as_of")

    if as_of_dates in (None, "", []):
        dates = [as_of_date]
    elif isinstance(as_of_dates, int) and not isinstance(as_of_dates, bool):
        if not 1 <= as_of_dates <= 120:
            raise ConfigError("features.bad_parameter", name="as_of_dates", value=repr(as_of_dates),
                              allowed="1..120 or a list of YYYY-MM-DD")
        dates = [shift_months(as_of_date, -offset) for offset in range(as_of_dates)]
    elif isinstance(as_of_dates, Sequence) and not isinstance(as_of_dates, str):
        dates = [parse_date(value, "as_of_dates") for value in as_of_dates]
    else:
        raise ConfigError("features.bad_parameter", name="as_of_dates", value=repr(as_of_dates),
                          allowed="1..120 or a list of YYYY-MM-DD")
    dates = sorted(set(dates))
    for day in dates:
        if start is not None and day < start.first:
            raise StageError("features.as_of_before_data", as_of=day.isoformat(), table=start.table,
                             column=start.column, first=start.first.isoformat())
        # Data extracted during a month covers that month, so its month-end is still inside the data.
        if end is not None and day > month_end(end.last):
            raise StageError("features.as_of_after_data", as_of=day.isoformat(), table=end.table,
                             column=end.column, last=end.last.isoformat())
    return dates


def check_customers(tables: Mapping[str, ir.Table]) -> list[Notice]:
    """Reject repeated customer ids; report empty ones.

    Raises
    ------
    StageError
        When the customers table is missing or repeats a ``customer_id``
        (the message gives the count and one pseudonymized example).
    """
    if "customers" not in tables:
        raise StageError("features.no_customers", tables=", ".join(sorted(tables)) or "-")
    customers = tables["customers"]
    if "customer_id" not in customers.columns:
        raise StageError("features.no_customer_id", columns=", ".join(customers.columns))
    ids = customers.filter(customers.customer_id.notnull())
    repeated = ids.group_by("customer_id").agg(rows=ids.count()).filter(lambda t: t.rows > 1)
    summary = repeated.aggregate(ids=repeated.count(), example=repeated.customer_id.min()).execute()
    if int(summary["ids"].iloc[0]):
        raise StageError("features.duplicate_customers", count=int(summary["ids"].iloc[0]),
                         example=str(summary["example"].iloc[0]))
    empty = int(customers.filter(customers.customer_id.isnull()).count().execute())
    return [Notice("empty_customer_ids", {"rows": empty})] if empty else []


def check_orphans(tables: Mapping[str, ir.Table], spec: MapSpec) -> list[Notice]:
    """Count rows whose customer is not in the customers table; such rows reach no customer.

    Relations are also checked on the other side: a relation to another
    customer (``related_type`` is ``spec.customer_related_type``) whose
    ``related_id`` is unknown.
    """
    customers = tables["customers"]
    known = customers.filter(customers.customer_id.notnull()).select(_known="customer_id").distinct()
    notices = []
    for name, table in tables.items():
        if name == "customers" or "customer_id" not in table.columns:
            continue
        orphans = table.filter(table.customer_id.notnull()).anti_join(known, table.customer_id == known._known)
        rows = int(orphans.count().execute())
        if rows:
            notices.append(Notice("orphan_rows", {"table": name, "column": "customer_id", "rows": rows}))
    relations = tables.get("relations")
    if relations is not None and {"related_id", "related_type"} <= set(relations.columns):
        to_customer = relations.related_type == spec.customer_related_type
        links = relations.filter(to_customer & relations.related_id.notnull())
        unknown = links.anti_join(known, links.related_id == known._known)
        rows = int(unknown.count().execute())
        if rows:
            notices.append(Notice("unknown_related_customers", {"rows": rows}))
    return notices


def window_notices(dates: Sequence[dt.date], ranges: Mapping[str, DateRange], spec: MapSpec) -> list[Notice]:
    """State where the history window of a map date begins before a table's first day."""
    notices = []
    for table in ("transactions", "events"):
        item = ranges.get(table)
        if item is None or item.first is None:
            continue
        short = [day for day in dates if shift_months(day, -spec.history_months) + dt.timedelta(days=1) < item.first]
        if short:
            notices.append(Notice("window_before_data", {
                "table": table, "column": item.column, "first": item.first.isoformat(),
                "months": spec.history_months, "dates": ", ".join(day.isoformat() for day in short),
            }))
    return notices


def discover_values(tables: Mapping[str, ir.Table], spec: MapSpec) -> tuple[MapSpec, list[Notice]]:
    """Fill the value lists left as ``None`` in ``spec`` from the data.

    Topics, channels, merchant categories and relation types become the most
    frequent values of their column (at most :data:`MAX_DISCOVERED_VALUES`,
    most rows first). Shared entity types and the phone and address
    relation types are narrowed to the values present, so no feature counts
    something the data cannot hold. Runs one small aggregate per list.

    Returns
    -------
    spec : MapSpec
        The completed settings.
    notices : list of Notice
        Values that were cut off, or listed values absent from the data.
    """
    changes: dict[str, Any] = {}
    notices: list[Notice] = []
    lists = {
        "topics": ("events", "topic"),
        "relation_types": ("relations", "relation_type"),
        "channels": ("transactions", "channel"),
        "merchant_categories": ("transactions", "merchant_category"),
    }
    for setting, (table, column) in lists.items():
        if getattr(spec, setting) is not None or table not in tables or column not in tables[table].columns:
            continue
        values, total = _frequent_values(tables[table], column)
        if total > len(values):
            notices.append(Notice("values_cut", {"table": table, "column": column, "kept": len(values),
                                                 "total": total, "setting": setting}))
        if setting in ("channels", "merchant_categories"):
            changes[setting] = {code: (value,) for code, value in unique_codes(values).items()}
        else:
            changes[setting] = tuple(values)
    relations = tables.get("relations")
    narrowed = {"shared_types": "related_type", "phone_relation_types": "relation_type",
                "address_relation_types": "relation_type"}
    for setting, column in narrowed.items():
        if relations is None or column not in relations.columns:
            continue
        present = set(_frequent_values(relations, column, limit=None)[0])
        wanted = getattr(spec, setting)
        absent = [value for value in wanted if value not in present]
        if absent:
            changes[setting] = tuple(value for value in wanted if value in present)
            notices.append(Notice("values_absent", {"table": "relations", "column": column,
                                                    "values": ", ".join(absent), "setting": setting}))
    return (spec.replace(**changes) if changes else spec), notices


def _frequent_values(table: ir.Table, column: str, limit: int | None = MAX_DISCOVERED_VALUES) -> tuple[list[str], int]:
    rows = table.filter(table[column].notnull())
    counts = rows.group_by(column).agg(_rows=rows.count()).order_by([ibis.desc("_rows"), column]).execute()
    values = [str(value) for value in counts[column].tolist()]
    return (values if limit is None else values[:limit]), len(values)
