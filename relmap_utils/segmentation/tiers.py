"""Rule tiers: the bank's own ordered rules, evaluated in the database.

Each rule of ``stages.segmentation.params.tiers.rules`` is a set of
conditions on map columns. Rules are evaluated in the order written and the
first rule a customer matches is their tier, so every customer is in exactly
one tier. The last rule should be a catch-all (empty ``when``); without one,
the customers no rule matches go to the tier ``unassigned`` and a notice
names how many. Customers matched by several rules are counted per pair of
rules (``overlaps``), and rules that match nobody are named in a notice.

A condition on a column that is NULL for a customer is false for that
customer, as in SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import pandas as pd

from relmap_utils.errors import ConfigError
from relmap_utils.segmentation.notices import Notice
from relmap_utils.segmentation.params import Condition, TierParams, TierRule, amount_to_yuan

logger = logging.getLogger(__name__)

UNASSIGNED = "unassigned"
# Units of the feature dictionary whose thresholds are amounts of money.
AMOUNT_UNITS = ("yuan", "yuan_per_month")


@dataclass
class TierResult:
    """What :func:`assign_tiers` adds to the map and what it found about the rules.

    Attributes
    ----------
    expression : ibis Table
        The input table with the columns ``tier`` (code) and ``tier_rule``
        (1-based position of the rule that placed the customer; 0 for
        ``unassigned``).
    rules : list of TierRule
        The rules in evaluation order, with the automatic ``unassigned``
        rule appended when no rule is a catch-all.
    counts : pandas.DataFrame
        Per rule: ``tier``, ``rule``, ``matched`` (customers meeting the
        rule's conditions, whatever earlier rules said) and ``assigned``
        (customers placed by it), per ``as_of`` when the input has dates.
    overlaps : pandas.DataFrame
        ``tier``, ``other_tier``, ``customers``: customers meeting both
        rules, who go to the earlier rule ``tier``.
    notices : list of Notice
    """

    expression: Any
    rules: list[TierRule]
    counts: pd.DataFrame
    overlaps: pd.DataFrame
    notices: list[Notice] = field(default_factory=list)


def tier_order(rules: Sequence[TierRule]) -> dict[str, int]:
    """Return each tier code's rank, 1 for the first (highest) rule."""
    return {rule.code: position for position, rule in enumerate(rules, start=1)}


def condition_expression(table: Any, column: str, condition: Condition, *, amount_unit: str, is_amount: bool) -> Any:
    """Return the Ibis boolean expression of one condition on ``table[column]``.

    Thresholds of amount columns are converted to yuan (``amount_unit`` for
    bare numbers). The result is NULL-safe: a NULL value fails every test
    except ``missing: true``.
    """
    value = table[column]
    tests = []
    for bound, compare in (("min", value.__ge__), ("max", value.__le__)):
        threshold = getattr(condition, bound)
        if threshold is None:
            continue
        if is_amount:
            threshold = amount_to_yuan(threshold, amount_unit)
        elif isinstance(threshold, str):
            threshold = amount_to_yuan(threshold, "元")
        tests.append(compare(threshold))
    if condition.equals is not None:
        tests.append(value == condition.equals)
    if condition.in_ is not None:
        tests.append(value.isin(condition.in_))
    if condition.missing is not None:
        tests.append(value.isnull() if condition.missing else value.notnull())
    combined = tests[0]
    for test in tests[1:]:
        combined = combined & test
    return combined.fill_null(False)


def rule_expression(table: Any, rule: TierRule, *, amount_unit: str, amount_columns: set[str]) -> Any:
    """Return the boolean expression of one rule: any clause, each clause all its conditions."""
    if rule.catch_all:
        return ibis.literal(True)
    clauses = []
    for clause in rule.clauses():
        parts = [
            condition_expression(table, column, condition, amount_unit=amount_unit, is_amount=column in amount_columns)
            for column, condition in clause.items()
        ]
        combined = parts[0]
        for part in parts[1:]:
            combined = combined & part
        clauses.append(combined)
    result = clauses[0]
    for clause in clauses[1:]:
        result = result | clause
    return result


def check_rules(params: TierParams, columns: Sequence[str], column_types: Mapping[str, str]) -> None:
    """Check that every rule names existing columns with tests that fit their type.

    Raises
    ------
    ConfigError
        Naming the rule, the column and the map's columns, or the rule and
        the test that does not fit the column's type.
    """
    known = set(columns)
    for position, rule in enumerate(params.rules, start=1):
        for clause in rule.clauses():
            for column, condition in clause.items():
                if column not in known:
                    raise ConfigError(
                        "segmentation.tier_unknown_column", rule=rule.code, position=position, column=column,
                        columns=", ".join(sorted(known)),
                    )
                kind = column_types.get(column, "")
                numeric = kind.startswith(("int", "uint", "float", "decimal"))
                if (condition.min is not None or condition.max is not None) and not numeric:
                    raise ConfigError(
                        "segmentation.tier_bad_test", rule=rule.code, column=column, type=kind, test="min/max"
                    )


def assign_tiers(
    table: Any,
    params: TierParams,
    amount_columns: set[str] | None = None,
) -> TierResult:
    """Add the tier of every customer to ``table`` and count matches and overlaps.

    Parameters
    ----------
    table : ibis Table
        The map (one partition, or several with an ``as_of`` column).
    params : TierParams
        The ordered rules.
    amount_columns : set of str, optional
        Columns whose thresholds are amounts (converted from ``amount_unit``
        to yuan); by default none.

    Returns
    -------
    TierResult

    Raises
    ------
    ConfigError
        When there are no rules, or a rule names a missing column or a
        test that does not fit the column.
    """
    if not params.rules:
        raise ConfigError("segmentation.no_tier_rules")
    schema = table.schema()
    check_rules(params, list(schema.names), {name: str(dtype).lower() for name, dtype in schema.items()})
    amount_columns = amount_columns or set()

    rules = list(params.rules)
    notices: list[Notice] = []
    first_catch_all = next((position for position, rule in enumerate(rules) if rule.catch_all), None)
    if first_catch_all is None:
        rules.append(TierRule(code=UNASSIGNED, otherwise=True))
    matches = {
        f"_match_{position}": rule_expression(table, rule, amount_unit=params.amount_unit, amount_columns=amount_columns)
        for position, rule in enumerate(rules, start=1)
    }
    flagged = table.mutate(**matches)
    branches = [(flagged[f"_match_{position}"], position) for position in range(1, len(rules) + 1)]
    rule_number = ibis.cases(*branches, else_=len(rules))
    tier_code = ibis.cases(*[(flagged[f"_match_{position}"], rule.code) for position, rule in enumerate(rules, 1)])
    assigned = flagged.mutate(tier=tier_code, tier_rule=rule_number)
    if first_catch_all is None:
        assigned = assigned.mutate(tier_rule=(assigned.tier_rule == len(rules)).ifelse(0, assigned.tier_rule))

    counts, overlaps = _count_matches(assigned, rules)
    notices += _rule_notices(counts, rules, first_catch_all is None)
    expression = assigned.drop(*matches)
    return TierResult(expression, rules, counts, overlaps, notices)


def _count_matches(flagged: Any, rules: Sequence[TierRule]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Count per rule the customers it matches and places, and per pair of rules the overlap."""
    metrics: dict[str, Any] = {}
    for position in range(1, len(rules) + 1):
        match = flagged[f"_match_{position}"]
        metrics[f"matched_{position}"] = match.ifelse(1, 0).sum()
        metrics[f"assigned_{position}"] = (flagged.tier == rules[position - 1].code).ifelse(1, 0).sum()
        for other in range(position + 1, len(rules) + 1):
            if rules[other - 1].catch_all:
                continue
            both = match & flagged[f"_match_{other}"]
            metrics[f"both_{position}_{other}"] = both.ifelse(1, 0).sum()
    group = ["as_of"] if "as_of" in flagged.columns else []
    query = flagged.group_by(group).aggregate(**metrics) if group else flagged.aggregate(**metrics)
    totals = query.to_pandas()

    count_rows, overlap_rows = [], []
    for _, row in totals.iterrows():
        as_of = row["as_of"] if group else None
        for position, rule in enumerate(rules, start=1):
            count_rows.append({"as_of": as_of, "tier": rule.code, "rule": position if rule.code != UNASSIGNED else 0,
                               "matched": int(row[f"matched_{position}"] or 0),
                               "assigned": int(row[f"assigned_{position}"] or 0)})
            for other in range(position + 1, len(rules) + 1):
                name = f"both_{position}_{other}"
                if name in row and int(row[name] or 0) > 0:
                    overlap_rows.append({"as_of": as_of, "tier": rule.code, "other_tier": rules[other - 1].code,
                                         "customers": int(row[name])})
    counts = pd.DataFrame(count_rows, columns=["as_of", "tier", "rule", "matched", "assigned"])
    overlaps = pd.DataFrame(overlap_rows, columns=["as_of", "tier", "other_tier", "customers"])
    if not group:
        counts = counts.drop(columns="as_of")
        overlaps = overlaps.drop(columns="as_of")
    return counts, overlaps


def _rule_notices(counts: pd.DataFrame, rules: Sequence[TierRule], added_catch_all: bool) -> list[Notice]:
    """Name the rules that place nobody, and the customers no rule matched, at the latest date."""
    latest = counts
    if "as_of" in counts.columns and len(counts):
        latest = counts[counts["as_of"] == counts["as_of"].max()]
    notices = []
    for rule, row in zip(rules, latest.itertuples()):
        if rule.code == UNASSIGNED:
            if added_catch_all and row.assigned > 0:
                notices.append(Notice("medium", "segmentation.notice.tier_left_out", customers=int(row.assigned),
                                      rules=len(rules) - 1))
            continue
        if row.assigned == 0:
            reason = "segmentation.notice.tier_empty" if row.matched == 0 else "segmentation.notice.tier_shadowed"
            notices.append(Notice("medium", reason, tier=rule.code, rule=int(row.rule), matched=int(row.matched)))
    return notices
