"""The feature dictionary: every candidate feature, included or left out, and why.

A feature is included when every table and column it reads is present and
every MapSpec setting it needs is set. Otherwise it is left out, with the
reason in both languages; it is never filled with zeros.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from relmap_utils.features import holdings, interests, profile, relations, stability, transactions
from relmap_utils.features.base import Feature
from relmap_utils.features.spec import MapSpec
from relmap_utils.i18n import Msg

FAMILY_MODULES = {
    "profile": profile,
    "holdings": holdings,
    "transactions": transactions,
    "stability": stability,
    "interests": interests,
    "relations": relations,
}

DICTIONARY_COLUMNS = (
    "name", "family", "description_zh", "description_en", "unit", "formula", "source_tables", "status",
    "reason_zh", "reason_en", "no_data_value",
)
INCLUDED, LEFT_OUT = "included", "left_out"


@dataclass(frozen=True)
class PlannedFeature:
    """A candidate feature with its status and, when left out, the reasons."""

    feature: Feature
    status: str
    reasons: tuple[Msg, ...] = ()

    def reason(self, locale: str) -> str:
        """Return the reasons joined into one text in ``locale``."""
        separator = "；" if locale == "zh_CN" else "; "
        return separator.join(reason.render(locale) for reason in self.reasons)


def candidate_features(spec: MapSpec) -> list[Feature]:
    """Return every feature the map can have under ``spec``, family by family."""
    result: list[Feature] = []
    for module in FAMILY_MODULES.values():
        result.extend(module.features(spec))
    return result


def available_columns(tables: Mapping[str, Any]) -> dict[str, list[str]]:
    """Return the column names of each table (Ibis tables, DataFrames or column lists)."""
    available: dict[str, list[str]] = {}
    for name, table in tables.items():
        columns = table if isinstance(table, Sequence) and not isinstance(table, str) else table.columns
        available[name] = [str(column) for column in columns]
    return available


def plan_features(spec: MapSpec, available: Mapping[str, Sequence[str]]) -> list[PlannedFeature]:
    """Decide for each candidate feature whether it is included or left out.

    Parameters
    ----------
    spec : MapSpec
    available : mapping of str to sequence of str
        Columns of each canonical table present; an absent key is an absent table.

    Returns
    -------
    list of PlannedFeature
        In dictionary order (family, then the family's own order).
    """
    planned = []
    for feature in candidate_features(spec):
        reasons = _missing_sources(feature, available) + _unset_settings(feature, spec)
        planned.append(PlannedFeature(feature, LEFT_OUT if reasons else INCLUDED, tuple(reasons)))
    return [_without_lone_flag(item, planned) for item in planned]


def _without_lone_flag(item: PlannedFeature, planned: list[PlannedFeature]) -> PlannedFeature:
    # A coverage flag alone carries no information when the rest of its family is left out.
    feature = item.feature
    if item.status != INCLUDED or feature.name != f"{feature.family}_covered":
        return item
    others = [other for other in planned if other.feature.family == feature.family and other.feature is not feature]
    if any(other.status == INCLUDED for other in others):
        return item
    return PlannedFeature(feature, LEFT_OUT, (Msg("features.reason.family_empty", family=feature.family),))


def _missing_sources(feature: Feature, available: Mapping[str, Sequence[str]]) -> list[Msg]:
    reasons: list[Msg] = []
    missing_tables: set[str] = set()
    for source in feature.sources:
        table, _, column = source.partition(".")
        if table not in available:
            if table not in missing_tables:
                reasons.append(Msg("features.reason.table_missing", table=table))
                missing_tables.add(table)
        elif column and column not in available[table]:
            reasons.append(Msg("features.reason.column_missing", table=table, column=column))
    return reasons


def _unset_settings(feature: Feature, spec: MapSpec) -> list[Msg]:
    return [Msg("features.reason.setting_not_set", setting=name) for name in feature.needs
            if not getattr(spec, name)]


def feature_dictionary(
    spec: MapSpec | None = None, available: Mapping[str, Sequence[str]] | None = None
) -> pd.DataFrame:
    """Return the feature dictionary: one row per candidate feature.

    Parameters
    ----------
    spec : MapSpec, optional
        Settings of the map; default ``MapSpec()``.
    available : mapping of str to sequence of str, optional
        Columns of each canonical table present (see :func:`available_columns`).
        The default is every table and column of the canonical schema.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``family``, ``description_zh``, ``description_en``,
        ``unit``, ``formula``, ``source_tables`` (comma-separated),
        ``status`` (``included`` or ``left_out``), ``reason_zh``,
        ``reason_en`` (empty when included) and ``no_data_value`` (the value
        of a customer without rows in the sources: ``0``, ``false``, or
        ``NULL`` for a missing value).

    Examples
    --------
    >>> from relmap_utils.features import MapSpec, feature_dictionary
    >>> frame = feature_dictionary(MapSpec(), {"customers": ["customer_id", "birth_date"]})
    >>> frame.set_index("name").loc["age_years", "status"]
    'included'
    >>> frame.set_index("name").loc["aum", "reason_en"]
    'table balances is missing; table accounts is missing'
    """
    from relmap_utils.schema import TABLES

    spec = spec or MapSpec()
    if available is None:
        available = {name: [column.name for column in table.columns] for name, table in TABLES.items()}
    rows = []
    for item in plan_features(spec, available):
        feature = item.feature
        rows.append(
            {
                "name": feature.name,
                "family": feature.family,
                "description_zh": feature.description_in("zh_CN"),
                "description_en": feature.description_in("en"),
                "unit": feature.unit,
                "formula": feature.formula,
                "source_tables": ", ".join(feature.source_tables),
                "status": item.status,
                "reason_zh": item.reason("zh_CN"),
                "reason_en": item.reason("en"),
                "no_data_value": _no_data_text(feature.fill),
            }
        )
    return pd.DataFrame(rows, columns=list(DICTIONARY_COLUMNS))


def _no_data_text(fill: Any) -> str:
    if fill is None:
        return "NULL"
    if isinstance(fill, bool):
        return "false" if not fill else "true"
    return "0"
