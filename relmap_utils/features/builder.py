"""build_map: the customer-level 360° table at one ``as_of``, as one Ibis expression.

Each feature family is one expression with a row per customer; the map
joins them onto the customers table by ``customer_id``. By default nothing
is executed here, so the caller decides where the expression runs: DuckDB
by default, Spark through Ibis's PySpark backend, with the same result.

On a large bank one query for the whole map keeps many hash tables in
memory at once. :class:`TemporaryTables` lets :func:`build_map` compute each shared
intermediate table and each family into a DuckDB temporary table as it
builds them, so every query is small and the peak memory is that of the
largest step. The expressions, and so the values, are the same either way.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import re
import time
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from relmap_utils.errors import ConfigError, StageError
from relmap_utils.features.base import BuildContext
from relmap_utils.features.dictionary import (
    FAMILY_MODULES, INCLUDED, PlannedFeature, available_columns, plan_features,
)
from relmap_utils.features.spec import MapSpec
from relmap_utils.features.windows import Windows, parse_date

logger = logging.getLogger(__name__)
_TABLE_NUMBERS = itertools.count()


def build_map(
    tables: Mapping[str, ir.Table],
    as_of: dt.date | str,
    spec: MapSpec | None = None,
    timezone: str = "Asia/Shanghai",
    *,
    features: Iterable[str] | None = None,
    materialize: Callable[[ir.Table, str], ir.Table] | None = None,
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
    features : iterable of str, optional
        Build only these features (names of included features); the
        families and intermediate tables no one of them reads are not built.
        Default: every included feature.
    materialize : callable, optional
        Called on every shared intermediate table and on every family's
        table as they are built, with the table and a short name of it
        (``transactions_monthly``, ``family:holdings``, ...); it computes the
        table and returns a table that reads the result. A
        :class:`TemporaryTables` does that on DuckDB. Default: nothing is
        computed here and the result is one lazy expression.

    Returns
    -------
    ibis Table
        One row per distinct non-empty ``customer_id`` of the customers
        table: ``customer_id``, ``as_of`` (date), then the included features
        (or those of ``features``) in dictionary order (:func:`feature_dictionary`).

    Raises
    ------
    StageError
        When the customers table or its ``customer_id`` is missing, or a
        date column is not a date or a naive timestamp.
    ConfigError
        When ``as_of`` is not a date, ``timezone`` is not an IANA name, or
        ``features`` names a feature that is not included.

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

    planned = [item for item in plan_features(spec, available_columns(tables)) if item.status == INCLUDED]
    if features is not None:
        planned = _chosen(planned, features)
    chosen = None if features is None else frozenset(item.feature.name for item in planned)
    ctx = BuildContext(tables, spec, Windows(day, spec.months_needed), materialize=materialize, features=chosen)
    table = ctx.customer_ids().mutate(as_of=ibis.date(day))
    joined = table
    names: list[str] = []
    for family, module in FAMILY_MODULES.items():
        included = {item.feature.name: item.feature for item in planned if item.feature.family == family}
        if not included:
            continue
        part = module.build(ctx, included)
        if materialize is not None:
            part = materialize(part, f"family:{family}")
        key = f"_{family}_customer"
        part = part.rename(**{key: "customer_id"})
        # One chain of joins and one projection at the end, which Ibis compiles faster.
        joined = joined.left_join(part, table.customer_id == part[key])
        names += list(included)
    return joined.select("customer_id", "as_of", *names)


def _chosen(planned: list[PlannedFeature], features: Iterable[str]) -> list[PlannedFeature]:
    requested = [features] if isinstance(features, str) else list(features)
    known = {item.feature.name for item in planned}
    unknown = [name for name in requested if name not in known]
    if unknown or not requested:
        raise ConfigError("features.bad_parameter", name="features", value=", ".join(map(str, unknown)) or "[]",
                          allowed="names of included features (feature_dictionary, status included)")
    return [item for item in planned if item.feature.name in set(requested)]


class TemporaryTables:
    """Compute tables into DuckDB temporary tables, for :func:`build_map`'s ``materialize``.

    Use it as a context manager around building and writing one map. On
    entry it sets DuckDB's ``preserve_insertion_order`` to false, because
    the map sorts its output and unordered inserts need less memory. On
    exit it drops the tables it created and restores the setting.

    Parameters
    ----------
    backend : ibis DuckDB backend

    Examples
    --------
    >>> from relmap_utils.features import build_map
    >>> from relmap_utils.features.builder import TemporaryTables
    >>> with TemporaryTables(backend) as materialize:  # doctest: +SKIP
    ...     frame = build_map(tables, "2024-06-30", materialize=materialize).to_pandas()
    """

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.names: list[str] = []
        self._order: Any = None

    def __call__(self, table: ir.Table, label: str = "") -> ir.Table:
        """Compute ``table`` into a new temporary table and return a table that reads it.

        ``label`` (letters, digits and ``_`` are kept) ends the table's name,
        so that DuckDB's profiles and :attr:`names` name the step.

        The rows are stored with the types DuckDB gives the query (a sum of
        integers is a HUGEINT, for example), and the returned table keeps
        the Ibis schema of ``table``. Later steps therefore compile to the
        same SQL and compute the same types as the whole map in one query,
        and the map's Parquet file has the same column types either way.
        """
        name = f"_relmap_map_{next(_TABLE_NUMBERS)}_{re.sub(r'[^0-9A-Za-z_]+', '_', label)}".rstrip("_")
        started = time.perf_counter()
        # Registers the in-memory tables the expression reads, as execute() does.
        self.backend._run_pre_execute_hooks(table)
        sql = self.backend.compile(table)
        self.backend.raw_sql(f'CREATE TEMPORARY TABLE "{name}" AS {sql}')
        self.names.append(name)
        logger.debug("map step %s computed in %.2f s", name, time.perf_counter() - started)
        namespace = ops.Namespace(catalog="temp", database="main")
        return ops.DatabaseTable(name, schema=table.schema(), source=self.backend, namespace=namespace).to_expr()

    def __enter__(self) -> TemporaryTables:
        self._order = self._setting("preserve_insertion_order")
        self.backend.raw_sql("SET preserve_insertion_order = false")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the tables created so far and restore ``preserve_insertion_order``."""
        for name in self.names:
            self.backend.raw_sql(f'DROP TABLE IF EXISTS temp.main."{name}"')
        self.names.clear()
        if self._order is not None:
            self.backend.raw_sql(f"SET preserve_insertion_order = {str(self._order).lower()}")
            self._order = None

    def _setting(self, name: str) -> Any:
        # DuckDB's raw_sql returns the connection itself, which must stay open.
        return self.backend.raw_sql(f"SELECT current_setting('{name}')").fetchone()[0]


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
