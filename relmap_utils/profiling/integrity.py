"""Checks across tables: referential integrity both ways and overlap of date ranges.

References come from the canonical schema (``Table.references``, for example
``accounts.customer_id -> customers.customer_id``). Key uniqueness is counted per
table by :func:`relmap_utils.profiling.stats.duplicate_keys`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from types import ModuleType

import ibis
import ibis.expr.types as ir

from relmap_utils.profiling.model import DateOverlap, ReferenceCheck, TableProfile

logger = logging.getLogger(__name__)


def check_reference(
    child: ir.Table,
    column: str,
    parent: ir.Table,
    parent_column: str,
    *,
    table: str,
    ref_table: str,
    max_samples: int = 5,
) -> ReferenceCheck:
    """Check ``table.column`` against ``ref_table.parent_column`` in both directions.

    Both sides are compared as text, so an integer key in one table still
    matches the same key stored as text in the other.

    Parameters
    ----------
    child, parent : ibis.Table
        The referencing and the referenced table.
    column, parent_column : str
        The referencing and the referenced column.
    table, ref_table : str
        Table names for the result.
    max_samples : int, default=5
        Orphan keys to list, smallest first. After ingest the keys are
        pseudonyms, so the sample shows no bank identifier.

    Returns
    -------
    ReferenceCheck
    """
    references = child.select(ref=child[column].cast("string"))
    parent_keys = parent.select(key=parent[parent_column].cast("string")).filter(ibis._.key.notnull()).distinct()
    checked = references.filter(references.ref.notnull())
    orphans = checked.anti_join(parent_keys, checked.ref == parent_keys.key)
    child_keys = checked.select(key=checked.ref).distinct()
    unreferenced = parent_keys.anti_join(child_keys, parent_keys.key == child_keys.key)

    counts = references.aggregate(
        rows=ibis._.count(),
        checked=ibis._.ref.count(),
    ).to_pyarrow().to_pylist()[0]
    orphan_counts = orphans.aggregate(rows=ibis._.count(), keys=ibis._.ref.nunique()).to_pyarrow().to_pylist()[0]
    parent_counts = parent_keys.aggregate(keys=ibis._.count()).to_pyarrow().to_pylist()[0]
    unreferenced_keys = unreferenced.count().to_pyarrow().as_py()
    sample: list[str] = []
    if max_samples > 0 and orphan_counts["rows"]:
        rows = orphans.select("ref").distinct().order_by("ref").limit(max_samples).to_pyarrow().to_pylist()
        sample = [row["ref"] for row in rows]

    return ReferenceCheck(
        table=table,
        column=column,
        ref_table=ref_table,
        ref_column=parent_column,
        checked_rows=int(counts["checked"]),
        null_rows=int(counts["rows"] - counts["checked"]),
        orphan_rows=int(orphan_counts["rows"]),
        orphan_keys=int(orphan_counts["keys"] or 0),
        orphan_sample=sample,
        parent_keys=int(parent_counts["keys"]),
        unreferenced_keys=int(unreferenced_keys),
    )


def check_references(
    tables: Mapping[str, ir.Table],
    profiles: Mapping[str, TableProfile],
    schema: ModuleType,
    *,
    max_samples: int = 5,
) -> list[ReferenceCheck]:
    """Check every schema reference whose two tables and columns are present.

    A reference is skipped (with a debug log line) when either table or
    column is absent, because canonical columns are optional.
    """
    checks = []
    for name in sorted(tables):
        definition = schema.TABLES.get(name)
        if definition is None:
            continue
        for column, target in definition.references.items():
            ref_table, ref_column = target.split(".", 1)
            present = (
                ref_table in tables
                and column in profiles[name].columns
                and ref_table in profiles
                and ref_column in profiles[ref_table].columns
            )
            if not present:
                logger.debug("reference %s.%s -> %s skipped: not present", name, column, target)
                continue
            checks.append(
                check_reference(
                    tables[name],
                    column,
                    tables[ref_table],
                    ref_column,
                    table=name,
                    ref_table=ref_table,
                    max_samples=max_samples,
                )
            )
    return checks


def date_overlaps(profiles: Mapping[str, TableProfile], schema: ModuleType) -> list[DateOverlap]:
    """Compare the date ranges of every pair of tables that have a date column.

    ``related`` marks pairs where one table references the other in the schema:
    for those, ranges that do not overlap usually mean one extract covers
    another period than the other.
    """
    dated = sorted(name for name, profile in profiles.items() if profile.date_min and profile.date_max)
    overlaps = []
    for first, second in itertools.combinations(dated, 2):
        first_profile, second_profile = profiles[first], profiles[second]
        overlaps.append(
            DateOverlap(
                table=first,
                column=first_profile.date_column or "",
                start=first_profile.date_min,
                end=first_profile.date_max,
                other_table=second,
                other_column=second_profile.date_column or "",
                other_start=second_profile.date_min,
                other_end=second_profile.date_max,
                related=_references_each_other(first, second, schema),
            )
        )
    return overlaps


def _references_each_other(first: str, second: str, schema: ModuleType) -> bool:
    for child, parent in ((first, second), (second, first)):
        definition = schema.TABLES.get(child)
        if definition and any(target.split(".", 1)[0] == parent for target in definition.references.values()):
            return True
    return False
