"""Customer base aggregates from the run's canonical tables, for the overview page.

Counts are computed in the database (Ibis on DuckDB by default) from
``artifacts/00_ingest/tables/customers.parquet`` and ``accounts.parquet``;
only one row per group reaches Python. Groups smaller than the engagement's
``privacy.min_group_size`` are merged (see
:func:`~relmap_utils.dashboard.privacy.merge_small_groups`), and a filter
offers only values held by at least that many customers.

The filter dimensions are fixed by column names, first match wins:

- region: ``customers.region``, else ``customers.city``;
- segment: ``customers.segment`` (written by a segmentation stage or mapped
  from the bank's data), else ``customers.city_tier``;
- product: ``accounts.product_family`` (customers holding that product).

Each filter is labelled with the column it uses, so a city-tier filter is
called 城市等级, never "segment".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
import pandas as pd

from relmap_utils import schema
from relmap_utils.context import INGEST_STAGE
from relmap_utils.dashboard.privacy import GroupedCounts, merge_small_groups, visible_values
from relmap_utils.dashboard.run import DashboardRun
from relmap_utils.dashboard.widgets import Filters, FilterSpec
from relmap_utils.i18n import get_locale, tr

CUSTOMERS_FILE = "tables/customers.parquet"
ACCOUNTS_FILE = "tables/accounts.parquet"
# Filter key -> candidate columns of the customers table, first present wins.
CUSTOMER_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "region": ("region", "city"),
    "segment": ("segment", "city_tier"),
}
PRODUCT_COLUMN = "product_family"


@dataclass(frozen=True)
class Dimension:
    """A filter dimension: its key and the table column that contains it."""

    key: str
    table: str
    column: str

    def label(self, locale: str | None = None) -> str:
        """Return the column's name in ``locale``, from the canonical schema when it is a canonical column."""
        chosen = locale or get_locale()
        column = schema.TABLES[self.table].column(self.column) if self.table in schema.TABLES else None
        if column is not None:
            text = column.description_zh if chosen == "zh_CN" else column.description_en
            return text or self.column
        return tr(f"dashboard.dimension.{self.key}", locale=chosen)


class CustomerBase:
    """Customer counts by region, segment and product for one run."""

    def __init__(self, run: DashboardRun) -> None:
        self.run = run
        self.customers = run.table(INGEST_STAGE, CUSTOMERS_FILE)
        self.accounts = run.table(INGEST_STAGE, ACCOUNTS_FILE)
        self.dimensions = self._dimensions()

    @property
    def available(self) -> bool:
        """True when the run has a customers table with a ``customer_id`` column."""
        return self.customers is not None and "customer_id" in self.customers.columns

    def _dimensions(self) -> dict[str, Dimension]:
        found: dict[str, Dimension] = {}
        if self.customers is None:
            return found
        for key, candidates in CUSTOMER_DIMENSIONS.items():
            column = next((name for name in candidates if name in self.customers.columns), None)
            if column is not None:
                found[key] = Dimension(key, "customers", column)
        if self.accounts is not None and {PRODUCT_COLUMN, "customer_id"} <= set(self.accounts.columns):
            found["product"] = Dimension("product", "accounts", PRODUCT_COLUMN)
        return found

    def product_label(self, code: Any) -> str:
        """Return the display name of a product family code (存款 for ``deposit``)."""
        key = f"dashboard.product.{code}"
        text = tr(key)
        return str(code) if text == key else text

    def filter_specs(self) -> list[FilterSpec]:
        """Return one filter per available dimension, offering values held by enough customers."""
        specs = []
        for key, dimension in self.dimensions.items():
            counts = self._value_counts(dimension)
            values = visible_values(counts, self.run.min_group_size)
            if not values:
                continue
            labels = [self.product_label(value) if key == "product" else str(value) for value in values]
            specs.append(FilterSpec(key, dimension.label(), list(zip(labels, values))))
        return specs

    def _value_counts(self, dimension: Dimension) -> list[tuple[Any, int]]:
        if dimension.table == "accounts":
            table = self.accounts.filter(self.accounts[dimension.column].notnull())
            grouped = table.group_by(dimension.column).aggregate(n=table.customer_id.nunique())
        else:
            table = self.customers.filter(self.customers[dimension.column].notnull())
            grouped = table.group_by(dimension.column).aggregate(n=table.count())
        frame = grouped.order_by([ibis.desc("n"), dimension.column]).to_pandas()
        return list(zip(frame[dimension.column], frame["n"].astype(int)))

    def filtered(self, filters: Filters) -> Any:
        """Return the customers matching ``filters`` as an Ibis table (not yet executed)."""
        table = self.customers
        for key, value in filters.items():
            dimension = self.dimensions.get(key)
            if value is None or dimension is None:
                continue
            if dimension.table == "customers":
                table = table.filter(table[dimension.column] == value)
            else:
                holders = self.accounts.filter(self.accounts[dimension.column] == value).select("customer_id")
                table = table.filter(table.customer_id.isin(holders.customer_id))
        return table

    def total(self, filters: Filters) -> int:
        """Return the number of customers matching ``filters``."""
        return int(self.filtered(filters).count().to_pandas())

    def by_dimension(self, key: str, filters: Filters) -> GroupedCounts | None:
        """Return customers per value of dimension ``key``, small groups merged, or ``None`` without it.

        For the product dimension a customer counts once per product family
        held, so the counts add up to more than the customers.
        """
        dimension = self.dimensions.get(key)
        if dimension is None:
            return None
        customers = self.filtered(filters)
        if dimension.table == "accounts":
            accounts = self.accounts.filter(self.accounts.customer_id.isin(customers.customer_id))
            accounts = accounts.filter(accounts[dimension.column].notnull())
            grouped = accounts.group_by(dimension.column).aggregate(customers=accounts.customer_id.nunique())
            frame = grouped.to_pandas()
            frame[dimension.column] = [self.product_label(code) for code in frame[dimension.column]]
            additive: list[str] = []
        else:
            customers = customers.filter(customers[dimension.column].notnull())
            metrics: dict[str, Any] = {"customers": customers.count()}
            if "income" in customers.columns:
                metrics["income_sum"] = customers.income.sum()
                metrics["income_count"] = customers.income.count()
            frame = customers.group_by(dimension.column).aggregate(**metrics).to_pandas()
            additive = [name for name in ("income_sum", "income_count") if name in frame.columns]
        frame = frame.rename(columns={dimension.column: "group"})
        return merge_small_groups(frame, "group", "customers", self.run.min_group_size, additive_columns=additive)


def mean_income(grouped: GroupedCounts) -> pd.Series | None:
    """Return the mean annual income of each group shown, or ``None`` when income is absent."""
    frame = grouped.frame
    if "income_sum" not in frame.columns:
        return None
    counts = frame["income_count"].astype(float).where(frame["income_count"] > 0)
    return frame["income_sum"].astype(float) / counts
