"""build_map: the customer-level 360° table at one ``as_of``, as one Ibis expression.

Each feature family is one expression with a row per customer; the map
joins them onto the customers table by ``customer_id``. Nothing is executed
here, so the caller decides where the expression runs: DuckDB by default,
Spark through Ibis's PySpark backend, with the same result.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir

from relmap_utils.errors import ConfigError, StageError
from relmap_utils.features.base import BuildContext
from relmap_utils.features.dictionary import (
    FAMILY_MODULES, INCLUDED, PlannedFeature, available_columns, plan_features,
)
from relmap_utils.features.spec import MapSpec
from relmap_utils.features.windows import Windows, parse_date


def build_map(
    tables: Mapping[str, ir.Table],
    as_of: dt.date | str,
    spec: MapSpec | None = None,
    timezone: str = "Asia/Shanghai",
) -> ir.Table:
    """Build the relationship map at ``as_of`` as an Ibis expression.

    Parameters
    ----------
    tables : mapping of str to ibis Table
        Canonical tables by name (``customers`` is required, every other
        table is optional), all on one backend.
    as_of : date or str
        The map's date, ``YYYY-MM-DD``. It is the end of that day, inclusive:
        rows dated on it enter, rows dated later never do.
    spec : MapSpec, optional
        Windows, purchase and income rules, value lists; default ``MapSpec()``.
        Value lists left as ``None`` leave their features out (see
        :func:`~relmap_utils.features.stage.discover_values`).
    timezone : str, default="Asia/Shanghai"
        IANA time zone of the engagement. Timestamps must be naive wall-clock
        times in this zone, as ingest writes them; the end of ``as_of`` is
        midnight after it in that wall-clock time.

    Returns
    -------
    ibis Table
        One row per distinct non-empty ``customer_id`` of the customers
        table: ``customer_id``, ``as_of`` (date), then the included features
        in dictionary order (:func:`feature_dictionary`).

    Raises
    ------
    StageError
        When the customers table or its ``customer_id`` is missing, or a
        date column is not a date or a naive timestamp.
    ConfigError
        When ``as_of`` is not a date or ``timezone`` is not an IANA name.

    Notes
    -----
    The expression uses exact aggregates only (counts, sums, minimum,
    maximum, exact standard deviation), so DuckDB and Spark agree up to the
    order of floating-point summation. A customer id repeated in the
    customers table gives one row, with the largest value of each attribute;
    :func:`~relmap_utils.features.run_stage` rejects such a table instead.

    Examples
    --------
    >>> import ibis
    >>> from relmap_utils.features import build_map
    >>> customers = ibis.memtable({"customer_id": ["a", "b"], "birth_date": ["1990-07-01", "1980-01-15"]})
    >>> customers = customers.mutate(birth_date=customers.birth_date.cast("date"))
    >>> frame = build_map({"customers": customers}, "2024-06-30").order_by("customer_id").to_pandas()
    >>> frame[["customer_id", "age_years"]].values.tolist()
    [['a', 33], ['b', 44]]
    """
    spec = spec or MapSpec()
    day = parse_date(as_of)
    _check_timezone(timezone)
    _check_customers(tables)

    planned = plan_features(spec, available_columns(tables))
    ctx = BuildContext(tables, spec, Windows(day, spec.months_needed))
    table = ctx.customer_ids().mutate(as_of=ibis.date(day))
    names: list[str] = []
    for family, module in FAMILY_MODULES.items():
        included = {item.feature.name: item.feature for item in planned
                    if item.feature.family == family and item.status == INCLUDED}
        if not included:
            continue
        part = module.build(ctx, included)
        key = f"_{family}_customer"
        part = part.rename(**{key: "customer_id"})
        table = table.left_join(part, table.customer_id == part[key]).drop(key)
        names += list(included)
    return table.select("customer_id", "as_of", *names)


def included_features(spec: MapSpec, tables: Mapping[str, Any]) -> list[PlannedFeature]:
    """Return the features :func:`build_map` includes for these tables, in column order."""
    return [item for item in plan_features(spec, available_columns(tables)) if item.status == INCLUDED]


def _check_timezone(timezone: str) -> None:
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError("features.bad_parameter", name="timezone", value=repr(timezone),
                          allowed="an IANA time zone such as Asia/Shanghai") from None


def _check_customers(tables: Mapping[str, ir.Table]) -> None:
    if "customers" not in tables:
        raise StageError("features.no_customers", tables=", ".join(sorted(tables)) or "-")
    if "customer_id" not in tables["customers"].columns:
        raise StageError("features.no_customer_id", columns=", ".join(tables["customers"].columns))
