"""Findings ranked by severity, and the overall quality score.

Each finding is a catalog message (``profiling.finding.*``), so it reads as a
plain sentence in either language. The rules that set each severity and the
score formula are documented in docs/profiling.md; the thresholds are the
constants below.
"""

from __future__ import annotations

from collections.abc import Iterator

from relmap_utils.i18n import Msg
from relmap_utils.plural import counted
from relmap_utils.profiling import stats
from relmap_utils.profiling.model import (
    CRITICAL_CAP,
    SEVERITIES,
    WEIGHTS,
    ColumnProfile,
    Finding,
    Profile,
    QualityScore,
    TableProfile,
)
from relmap_utils.profiling.semantic import PERSONAL_MATCH_SHARE

# Optional columns missing on at least this share of rows are a medium finding,
# on at least MISSING_LOW_SHARE a low one.
MISSING_MEDIUM_SHARE = 0.5
MISSING_LOW_SHARE = 0.05
# Orphan references on at least this share of the checked rows are high, fewer are medium.
ORPHAN_HIGH_SHARE = 0.01
# Outliers beyond Tukey's fences on at least this share of values are reported.
# Skewed amounts (log-normal balances) put about 8 % of values beyond the upper
# fence, so a lower threshold would flag every amount column.
OUTLIER_SHARE = 0.10
# Pearson correlations at least this strong mark two columns as near duplicates.
CORRELATION_LIMIT = 0.95
# Months listed by name in the empty-months finding.
MONTHS_LISTED = 6

_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


def collect_findings(profile: Profile) -> list[Finding]:
    """Return all findings of ``profile``, most severe first.

    Within one severity, findings are ordered by table, column and message key,
    so two runs on the same data list them identically.
    """
    findings: list[Finding] = []
    for table in profile.tables.values():
        findings.extend(_table_findings(table))
        for column in table.columns.values():
            findings.extend(_column_findings(table, column))
    findings.extend(_integrity_findings(profile))
    findings.sort(key=lambda item: (_RANK[item.severity], item.table, item.column or "", item.code))
    return findings


def quality_score(profile: Profile) -> QualityScore:
    """Compute the quality score, 0 to 100, from four dimensions in [0, 1].

    completeness
        Mean over all columns of tables with rows of the non-missing share.
    uniqueness
        1 - (extra rows of duplicated keys + rows with a null key part) / rows,
        over tables with a key; 1 when no table has a key.
    integrity
        1 - orphan rows / checked references, over all schema references; 1
        when none was checked.
    validity
        1 - invalid cells / checked cells, where invalid cells are implausible
        dates, identifiers damaged into scientific notation and values of
        undeclared text columns matching a personal-data pattern; 1 when no
        cell was checked.

    ``score = 100 * (0.4 completeness + 0.2 uniqueness + 0.3 integrity + 0.1 validity)``,
    rounded to one decimal, and at most 50 when any finding is critical.

    Returns
    -------
    QualityScore
    """
    shares = [
        column.count / table.rows
        for table in profile.tables.values()
        if table.rows
        for column in table.columns.values()
    ]
    completeness = sum(shares) / len(shares) if shares else 1.0

    keyed = [table for table in profile.tables.values() if table.key and table.rows]
    key_rows = sum(table.rows for table in keyed)
    key_failures = sum(
        (table.duplicate_key_rows or 0) - (table.duplicate_keys or 0) + (table.key_null_rows or 0) for table in keyed
    )
    uniqueness = 1.0 - key_failures / key_rows if key_rows else 1.0

    checked = sum(check.checked_rows for check in profile.references)
    orphans = sum(check.orphan_rows for check in profile.references)
    integrity = 1.0 - orphans / checked if checked else 1.0

    invalid, cells = _validity_counts(profile)
    validity = 1.0 - invalid / cells if cells else 1.0

    dimensions = {
        "completeness": completeness,
        "uniqueness": uniqueness,
        "integrity": integrity,
        "validity": validity,
    }
    score = 100.0 * sum(WEIGHTS[name] * value for name, value in dimensions.items())
    capped = any(finding.severity == "critical" for finding in profile.findings) and score > CRITICAL_CAP
    if capped:
        score = CRITICAL_CAP
    return QualityScore(score=round(score, 1), capped=capped, **{k: round(v, 4) for k, v in dimensions.items()})


def _validity_counts(profile: Profile) -> tuple[int, int]:
    invalid = cells = 0
    for table in profile.tables.values():
        for column in table.columns.values():
            counts = [column.implausible_dates, column.damaged_identifiers]
            if column.pattern_matches and not column.pseudonymized:
                counts.append(max(column.pattern_matches.values()))
            checked = [count for count in counts if count is not None]
            if checked:
                # A cell failing two checks would count twice, so the cap keeps
                # validity within [0, 1]; the checks rarely overlap in practice.
                invalid += min(sum(checked), column.count)
                cells += column.count
    return invalid, cells


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "0%"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}"


def _counted(noun: str, count: int | None) -> Msg:
    """Return a count with its noun in the form the count needs ("1 row", "2 rows")."""
    return counted(f"profiling.count.{noun}", count, _number(count))


def _table_findings(table: TableProfile) -> Iterator[Finding]:
    name = table.name
    if table.rows == 0:
        yield Finding("critical", name, None, Msg("profiling.finding.empty_table", table=name))
    for column in table.missing_required:
        yield Finding("critical", name, column, Msg("profiling.finding.missing_required", table=name, column=column))

    key = ", ".join(table.key)
    if table.duplicate_keys:
        yield Finding("high", name, key, Msg(
            "profiling.finding.duplicate_keys",
            table=name, key=key, keys=_counted("key_values", table.duplicate_keys), rows=_counted("rows", table.duplicate_key_rows),
        ))
    if table.key_null_rows:
        yield Finding("high", name, key, Msg(
            "profiling.finding.key_nulls", table=name, key=key, rows=_counted("rows", table.key_null_rows),
        ))

    empty = table.empty_months
    if empty:
        listed = ", ".join(empty[:MONTHS_LISTED]) + (" …" if len(empty) > MONTHS_LISTED else "")
        yield Finding("medium", name, table.date_column, Msg(
            "profiling.finding.empty_months",
            table=name, column=table.date_column, count=_counted("months", len(empty)),
            first=table.rows_per_month[0][0], last=table.rows_per_month[-1][0], months=listed,
        ))

    for first, second, value in table.correlations:
        if abs(value) >= CORRELATION_LIMIT:
            yield Finding("low", name, first, Msg(
                "profiling.finding.high_correlation", table=name, column=first, other=second, r=f"{value:.3f}",
            ))
    if not table.exact:
        yield Finding("info", name, None, Msg("profiling.finding.approximate", table=name, rows=_counted("rows", table.rows)))


def _column_findings(table: TableProfile, column: ColumnProfile) -> Iterator[Finding]:
    name, col = table.name, column.name
    if table.rows == 0:
        return
    yield from _missing_findings(table, column)
    yield from _privacy_findings(table, column)

    if column.count and column.distinct == 1 and column.semantic_type != "personal":
        yield Finding("low", name, col, Msg("profiling.finding.constant", table=name, column=col))
    if column.damaged_identifiers:
        yield Finding("high", name, col, Msg(
            "profiling.finding.damaged_identifiers", table=name, column=col, rows=_counted("values", column.damaged_identifiers),
        ))
    if column.infinite_values:
        yield Finding("medium", name, col, Msg(
            "profiling.finding.infinite_values", table=name, column=col, rows=_counted("values", column.infinite_values),
        ))
    if column.nan_values:
        yield Finding("low", name, col, Msg(
            "profiling.finding.nan_values", table=name, column=col, rows=_counted("values", column.nan_values),
        ))
    if column.implausible_dates:
        yield Finding("medium", name, col, Msg(
            "profiling.finding.implausible_dates", table=name, column=col, rows=_counted("dates", column.implausible_dates),
            earliest=stats.EARLIEST_PLAUSIBLE_DATE.isoformat(),
        ))
    outliers = column.outliers
    if outliers and column.count and outliers / column.count >= OUTLIER_SHARE:
        yield Finding("low", name, col, Msg(
            "profiling.finding.outliers", table=name, column=col, rows=_counted("values", outliers),
            share=_share(outliers, column.count),
            low=_number(column.lower_fence), high=_number(column.upper_fence),
        ))


def _missing_findings(table: TableProfile, column: ColumnProfile) -> Iterator[Finding]:
    name, col = table.name, column.name
    if not column.missing:
        return
    share = _share(column.missing, column.rows)
    required = col in table.required_columns
    if column.count == 0:
        severity = "high" if required else "medium"
        yield Finding(severity, name, col, Msg("profiling.finding.all_missing", table=name, column=col))
    elif required:
        yield Finding("high", name, col, Msg(
            "profiling.finding.required_missing_values",
            table=name, column=col, rows=_counted("rows", column.missing), share=share,
        ))
    elif column.missing_share >= MISSING_MEDIUM_SHARE:
        yield Finding("medium", name, col, Msg(
            "profiling.finding.mostly_missing", table=name, column=col, rows=_counted("rows", column.missing), share=share,
        ))
    elif column.missing_share >= MISSING_LOW_SHARE:
        yield Finding("low", name, col, Msg(
            "profiling.finding.some_missing", table=name, column=col, rows=_counted("rows", column.missing), share=share,
        ))


def _privacy_findings(table: TableProfile, column: ColumnProfile) -> Iterator[Finding]:
    name, col = table.name, column.name
    if column.pseudonymized or column.semantic.source in ("role", "schema", "pseudonymized"):
        return
    if column.semantic.reason == "personal_name":
        yield Finding("critical", name, col, Msg("profiling.finding.personal_name", table=name, column=col))
        return
    if not column.pattern_matches or not column.count:
        return
    pattern, matches = max(column.pattern_matches.items(), key=lambda item: item[1])
    if not matches:
        return
    severity = "critical" if matches / column.count >= PERSONAL_MATCH_SHARE else "high"
    yield Finding(severity, name, col, Msg(
        "profiling.finding.personal_pattern",
        table=name, column=col, rows=_counted("values", matches), share=_share(matches, column.count),
        pattern=Msg(f"profiling.pattern.{pattern}"),
    ))


def _integrity_findings(profile: Profile) -> Iterator[Finding]:
    for check in profile.references:
        if check.orphan_rows:
            severity = "high" if check.orphan_share >= ORPHAN_HIGH_SHARE else "medium"
            yield Finding(severity, check.table, check.column, Msg(
                "profiling.finding.orphans",
                table=check.table, column=check.column, ref_table=check.ref_table,
                rows=_counted("rows", check.orphan_rows), keys=_counted("distinct_values", check.orphan_keys),
                share=_share(check.orphan_rows, check.checked_rows),
            ))
        if check.unreferenced_keys:
            yield Finding("info", check.ref_table, check.ref_column, Msg(
                "profiling.finding.unreferenced",
                table=check.table, ref_table=check.ref_table, ref_column=check.ref_column,
                keys=_counted("values", check.unreferenced_keys), share=_share(check.unreferenced_keys, check.parent_keys),
            ))
    for overlap in profile.date_overlaps:
        if overlap.related and overlap.overlap_days == 0:
            yield Finding("low", overlap.table, overlap.column, Msg(
                "profiling.finding.no_date_overlap",
                table=overlap.table, start=overlap.start.isoformat(), end=overlap.end.isoformat(),
                other=overlap.other_table, other_start=overlap.other_start.isoformat(),
                other_end=overlap.other_end.isoformat(),
            ))
