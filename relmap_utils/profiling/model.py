"""Result types of the profiling stage: column, table and cross-table profiles.

Every field contains an aggregate computed by the database, never row data.
The only values copied from the data are the top values of category and
boolean columns, minimum, maximum and histogram edges of category, numeric
and date columns (none of them pseudonymized), and a few orphan keys, which
are pseudonyms after ingest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from relmap_utils.i18n import Msg

# Ordered from most to least severe; findings are sorted by this order.
SEVERITIES = ("critical", "high", "medium", "low", "info")

SEMANTIC_TYPES = ("identifier", "category", "numeric", "date", "text", "personal", "boolean")

# Quantile levels reported for numeric columns, with their column names.
QUANTILES: dict[str, float] = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.50,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}


@dataclass
class SemanticType:
    """The semantic type of a column and how it was decided.

    ``source`` is ``"role"`` (declared in engagement.yaml), ``"schema"`` (a
    canonical column), ``"pseudonymized"`` (replaced by a pseudonym at ingest)
    or ``"inferred"`` (rules over the column's statistics). ``reason`` names
    the rule that decided.
    """

    type: str
    ordinal: bool = False
    source: str = "inferred"
    reason: str = ""


@dataclass
class Histogram:
    """Equal-width bin counts of a numeric column.

    The bins span the 1st to 99th percentile (see
    :func:`relmap_utils.profiling.stats.histogram_range`); ``below`` and
    ``above`` count the values outside ``edges[0]..edges[-1]``.
    """

    edges: list[float]
    counts: list[int]
    below: int = 0
    above: int = 0


@dataclass
class ColumnProfile:
    """Statistics of one column. Fields that do not apply to the type are ``None``."""

    table: str
    name: str
    physical_type: str
    semantic: SemanticType
    rows: int
    count: int
    distinct: int | None = None
    distinct_exact: bool = True
    pseudonymized: bool = False
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] | None = None
    quantiles_exact: bool = True
    zeros: int | None = None
    negatives: int | None = None
    lower_fence: float | None = None
    upper_fence: float | None = None
    outliers_low: int | None = None
    outliers_high: int | None = None
    histogram: Histogram | None = None
    top_values: list[tuple[str, int]] | None = None
    # Distinct customers of each top value, in the same order; None when the
    # table has no customer_id column.
    top_value_customers: list[int] | None = None
    mean_length: float | None = None
    max_length: int | None = None
    pattern_matches: dict[str, int] = field(default_factory=dict)
    damaged_identifiers: int | None = None
    implausible_dates: int | None = None
    # NaN and infinite values of a float column; None where there are none.
    # Both count as missing, so ``count`` leaves them out.
    nan_values: int | None = None
    infinite_values: int | None = None

    @property
    def semantic_type(self) -> str:
        """Semantic type name, one of :data:`SEMANTIC_TYPES`."""
        return self.semantic.type

    @property
    def missing(self) -> int:
        """Number of rows where the column is null, NaN or infinite."""
        return self.rows - self.count

    @property
    def missing_share(self) -> float:
        """Share of rows where the column is missing (0 for an empty table)."""
        return self.missing / self.rows if self.rows else 0.0

    @property
    def unique_ratio(self) -> float | None:
        """Distinct values divided by non-null values (``None`` without values)."""
        if self.distinct is None or not self.count:
            return None
        return self.distinct / self.count

    @property
    def outliers(self) -> int | None:
        """Values outside the outlier fences, both sides together."""
        if self.outliers_low is None or self.outliers_high is None:
            return None
        return self.outliers_low + self.outliers_high


@dataclass
class TableProfile:
    """Statistics of one table and of each of its columns."""

    name: str
    rows: int
    columns: dict[str, ColumnProfile]
    key: tuple[str, ...] = ()
    duplicate_key_rows: int | None = None
    duplicate_keys: int | None = None
    key_null_rows: int | None = None
    date_column: str | None = None
    date_min: dt.date | None = None
    date_max: dt.date | None = None
    rows_per_month: list[tuple[str, int]] = field(default_factory=list)
    correlations: list[tuple[str, str, float]] = field(default_factory=list)
    required_columns: list[str] = field(default_factory=list)
    missing_required: list[str] = field(default_factory=list)
    exact: bool = True
    seconds: float = 0.0

    @property
    def column_count(self) -> int:
        """Number of columns."""
        return len(self.columns)

    @property
    def empty_months(self) -> list[str]:
        """Months inside the date range without a single row."""
        return [month for month, rows in self.rows_per_month if rows == 0]

    def correlation(self, first: str, second: str) -> float | None:
        """Return the Pearson correlation of two numeric columns, if computed."""
        for left, right, value in self.correlations:
            if {left, right} == {first, second}:
                return value
        return None


@dataclass
class ReferenceCheck:
    """Referential integrity of ``table.column`` against ``ref_table.ref_column``, both ways.

    Child to parent: ``orphan_rows`` of the ``checked_rows`` non-null references
    find no parent; ``orphan_keys`` distinct values, of which ``orphan_sample``
    lists a few. Parent to child: ``unreferenced_keys`` of the ``parent_keys``
    distinct parent keys have no child row (for example customers without
    accounts), which is often legitimate and reported for information.
    """

    table: str
    column: str
    ref_table: str
    ref_column: str
    checked_rows: int
    null_rows: int
    orphan_rows: int
    orphan_keys: int
    orphan_sample: list[str]
    parent_keys: int
    unreferenced_keys: int

    @property
    def orphan_share(self) -> float:
        """Orphan rows divided by the checked (non-null) references."""
        return self.orphan_rows / self.checked_rows if self.checked_rows else 0.0


@dataclass
class DateOverlap:
    """Overlap of the date ranges of two tables' date columns."""

    table: str
    column: str
    start: dt.date
    end: dt.date
    other_table: str
    other_column: str
    other_start: dt.date
    other_end: dt.date
    related: bool

    @property
    def overlap_start(self) -> dt.date:
        """First day covered by both ranges (after ``overlap_end`` when they do not overlap)."""
        return max(self.start, self.other_start)

    @property
    def overlap_end(self) -> dt.date:
        """Last day covered by both ranges."""
        return min(self.end, self.other_end)

    @property
    def overlap_days(self) -> int:
        """Days covered by both ranges, counting both ends; 0 without overlap."""
        return max(0, (self.overlap_end - self.overlap_start).days + 1)


@dataclass
class Finding:
    """One data-quality finding: a severity, where it is, and a catalog message."""

    severity: str
    table: str
    column: str | None
    message: Msg

    @property
    def code(self) -> str:
        """Catalog key of the message, stable across languages."""
        return self.message.key

    def text(self, locale: str | None = None) -> str:
        """Render the finding as a sentence in ``locale``."""
        return self.message.render(locale)


@dataclass
class QualityScore:
    """The overall quality score and the four dimensions it is computed from.

    ``score = 100 * (0.4 * completeness + 0.2 * uniqueness + 0.3 * integrity
    + 0.1 * validity)``, capped at :data:`CRITICAL_CAP` when any finding is
    critical. docs/profiling.md defines each dimension.
    """

    score: float
    completeness: float
    uniqueness: float
    integrity: float
    validity: float
    capped: bool = False


CRITICAL_CAP = 50.0
WEIGHTS = {"completeness": 0.4, "uniqueness": 0.2, "integrity": 0.3, "validity": 0.1}


@dataclass
class Profile:
    """Profiles of all tables of a run, cross-table checks, findings and the score."""

    tables: dict[str, TableProfile]
    references: list[ReferenceCheck] = field(default_factory=list)
    date_overlaps: list[DateOverlap] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    score: QualityScore | None = None

    def column(self, table: str, column: str) -> ColumnProfile:
        """Return the profile of ``table.column``."""
        return self.tables[table].columns[column]

    def severity_counts(self) -> dict[str, int]:
        """Return the number of findings per severity, every severity present."""
        counts = dict.fromkeys(SEVERITIES, 0)
        for finding in self.findings:
            counts[finding.severity] += 1
        return counts
