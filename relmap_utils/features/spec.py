"""MapSpec: the settings of the relationship map, with documented defaults.

A :class:`MapSpec` contains everything :func:`~relmap_utils.features.build_map`
needs besides the tables and the ``as_of`` date: look-back windows, what
counts as a purchase, the regular-income rule, and the lists of values that
become one feature each (topics, channel groups, merchant-category groups,
relation types, shared entity types). Value lists left as ``None`` are
discovered from the data by :func:`discover_values`, which
:func:`~relmap_utils.features.run_stage` calls before it builds the map.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relmap_utils.errors import ConfigError
from relmap_utils.i18n import Msg

PURCHASE_DIRECTIONS = ("out", "in", "any")

# Spec fields given as a list of values (one feature per value) or as groups
# of raw values under a feature code.
VALUE_LIST_FIELDS = (
    "topics",
    "interest_event_types",
    "relation_types",
    "shared_types",
    "purchase_txn_types",
    "salary_txn_types",
    "cash_txn_types",
    "married_values",
    "phone_relation_types",
    "address_relation_types",
    "default_label_types",
)
VALUE_GROUP_FIELDS = ("channels", "merchant_categories")


@dataclass(frozen=True)
class MapSpec:
    """Settings of the relationship map.

    Parameters
    ----------
    recent_months : int, default=3
        The recent window: the months ending at ``as_of`` that stability
        features compare with the customer's own history, and in which new
        devices, counterparties and phone or address changes are counted.
    history_months : int, default=12
        The history window of transaction totals, monthly averages, shares,
        volatility and the regular-income rule.
    trend_months : int, default=3
        Trend features compare the last ``trend_months`` months with the
        ``trend_months`` months before them.
    interest_months : int, default=3
        Window of the per-topic browsing counts.
    purchase_direction : {"out", "in", "any"}, default="out"
        Which transactions are purchases for RFM and the lifetime quartet:
        outflows (the bank's view of spending), inflows, or all rows. The
        purchase value is the absolute amount.
    purchase_txn_types : tuple of str, optional
        Restrict purchases to these ``transactions.txn_type`` values, for
        example ``("消费",)``; ``None`` keeps every transaction of the direction.
    salary_txn_types : tuple of str, optional
        Restrict regular-income candidates to these ``txn_type`` values;
        ``None`` considers every inflow.
    salary_min_amount : float, default=1000.0
        Smallest single inflow, in yuan, that can be regular income.
    salary_min_months : int, default=3
        A source must pay in at least this many months of the history window.
    salary_min_share : float, default=0.75
        ... and in at least this share of the customer's observed months.
    salary_tolerance : float, default=0.2
        Largest coefficient of variation (population standard deviation over
        mean) of the monthly amounts of a regular source.
    cash_txn_types : tuple of str, optional
        ``txn_type`` values that are cash withdrawals, for example ``("取现",)``;
        without them the cash-withdrawal features are left out.
    topics : tuple of str, optional
        ``events.topic`` values that get browsing-interest features.
    interest_event_types : tuple of str, optional
        ``events.event_type`` values that count as browsing; ``None`` counts
        every event with a topic.
    channels : mapping of str to tuple of str, optional
        Channel groups: feature code to ``transactions.channel`` values.
    merchant_categories : mapping of str to tuple of str, optional
        Merchant-category groups: feature code to
        ``transactions.merchant_category`` values.
    relation_types : tuple of str, optional
        ``relations.relation_type`` values that get a degree feature each.
    shared_types : tuple of str, default=("device", "phone", "address", "account")
        ``relations.related_type`` values whose entities customers can share;
        each gets a feature counting the other customers sharing one.
    customer_related_type : str, default="customer"
        ``relations.related_type`` of a relation to another customer.
    shared_entity_max_customers : int, default=50
        An entity used by more customers than this (a placeholder device id,
        a branch address) is not counted as shared.
    relations_active_only : bool, default=False
        Count only relations not ended by ``as_of``. By default every
        relation that started on or before ``as_of`` counts, because
        extracts often record the last use of a device or the last transfer
        as ``end_date``, and past sharing is what relation features look for.
    phone_relation_types, address_relation_types : tuple of str
        ``relation_type`` values of phone numbers and addresses, default
        ``("phone",)`` and ``("address",)``.
    default_label_types : tuple of str, default=("default",)
        ``labels.label_type`` values that mark a default (with value 1).
    married_values : tuple of str
        ``customers.marital_status`` values that mean married.
    """

    recent_months: int = 3
    history_months: int = 12
    trend_months: int = 3
    interest_months: int = 3
    purchase_direction: str = "out"
    purchase_txn_types: tuple[str, ...] | None = None
    salary_txn_types: tuple[str, ...] | None = None
    salary_min_amount: float = 1000.0
    salary_min_months: int = 3
    salary_min_share: float = 0.75
    salary_tolerance: float = 0.2
    cash_txn_types: tuple[str, ...] | None = None
    topics: tuple[str, ...] | None = None
    interest_event_types: tuple[str, ...] | None = None
    channels: Mapping[str, tuple[str, ...]] | None = None
    merchant_categories: Mapping[str, tuple[str, ...]] | None = None
    relation_types: tuple[str, ...] | None = None
    shared_types: tuple[str, ...] = ("device", "phone", "address", "account")
    customer_related_type: str = "customer"
    shared_entity_max_customers: int = 50
    relations_active_only: bool = False
    phone_relation_types: tuple[str, ...] = ("phone",)
    address_relation_types: tuple[str, ...] = ("address",)
    default_label_types: tuple[str, ...] = ("default",)
    married_values: tuple[str, ...] = ("已婚", "married", "Married", "MARRIED")

    def __post_init__(self) -> None:
        for name in VALUE_LIST_FIELDS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _as_tuple(name, value))
        for name in VALUE_GROUP_FIELDS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _as_groups(name, value))
        _check(self)

    @property
    def months_needed(self) -> int:
        """Number of month periods back from ``as_of`` that some feature reads."""
        return max(self.history_months, 2 * self.trend_months, self.recent_months, self.interest_months)

    def replace(self, **changes: Any) -> "MapSpec":
        """Return a copy with ``changes`` applied (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as plain JSON-ready values (lists, not tuples)."""
        result: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = {code: list(values) for code, values in value.items()}
            result[item.name] = value
        return result


def spec_fields() -> list[str]:
    """Return the names of the settings a caller may pass to :class:`MapSpec`."""
    return [item.name for item in dataclasses.fields(MapSpec)]


def make_spec(values: Mapping[str, Any] | None = None, base: MapSpec | None = None) -> MapSpec:
    """Build a :class:`MapSpec` from plain values, such as stage parameters.

    Parameters
    ----------
    values : mapping, optional
        Setting name to value; lists become tuples.
    base : MapSpec, optional
        Settings to start from; default ``MapSpec()``.

    Raises
    ------
    ConfigError
        When a name is not a setting or a value is invalid; the message names
        the setting, the value received and what is allowed.
    """
    values = dict(values or {})
    known = spec_fields()
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError("features.unknown_parameter", names=", ".join(unknown), allowed=", ".join(known))
    return (base or MapSpec()).replace(**values)


def feature_code(value: Any) -> str:
    """Turn a raw value into the part of a feature name that stands for it.

    Letters and digits are kept (Chinese characters included), ASCII letters
    are lower-cased, and every other run of characters becomes ``_``.

    Examples
    --------
    >>> feature_code("Credit Card")
    'credit_card'
    >>> feature_code("手机银行")
    '手机银行'
    """
    text = re.sub(r"[^0-9a-z\u4e00-\u9fff]+", "_", str(value).strip().lower()).strip("_")
    return text or "blank"


def unique_codes(values: Sequence[Any]) -> dict[str, Any]:
    """Map each value to a feature code, numbering codes that would collide."""
    codes: dict[str, Any] = {}
    for value in values:
        code = feature_code(value)
        candidate, number = code, 2
        while candidate in codes:
            candidate = f"{code}_{number}"
            number += 1
        codes[candidate] = value
    return codes


def _as_tuple(name: str, value: Any) -> tuple[str, ...]:
    """Return a list of text values as a tuple, or raise naming the setting or the item that is not text.

    A YAML number such as ``1`` is rejected rather than turned into ``"1"``,
    because the data may hold ``"01"`` or ``"1.0"`` and the match would fail silently.
    """
    if isinstance(value, str | Mapping) or not isinstance(value, Sequence | set | frozenset):
        raise ConfigError("features.bad_parameter", name=name, value=repr(value), allowed=Msg("config.allowed.text_list"))
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(
                "features.bad_parameter", name=f"{name}[{index}]", value=repr(item), allowed=Msg("config.allowed.text_list")
            )
    return tuple(value)


def _as_groups(name: str, value: Any) -> dict[str, tuple[str, ...]]:
    if isinstance(value, Mapping):
        groups: dict[str, tuple[str, ...]] = {}
        for code, members in value.items():
            if feature_code(code) != str(code):
                raise ConfigError(
                    "features.bad_parameter", name=f"{name}.{code}", value=repr(code),
                    allowed=Msg("config.allowed.feature_code"),
                )
            members = [members] if isinstance(members, str) else members
            groups[str(code)] = _as_tuple(f"{name}.{code}", members)
        return groups
    # A plain list of values: each value is its own group.
    return {code: (str(raw),) for code, raw in unique_codes(_as_tuple(name, value)).items()}


def _check(spec: MapSpec) -> None:
    """Validate the numeric settings and the purchase direction.

    Raises
    ------
    ConfigError
        Naming the setting, the value received and what is allowed.
    """
    months = ("recent_months", "history_months", "trend_months", "interest_months")
    for name in months:
        _require(name, getattr(spec, name), lambda v: _is_int(v) and 1 <= v <= 120, "1..120")
    _require(
        "recent_months", spec.recent_months, lambda v: v < spec.history_months,
        f"< history_months ({spec.history_months})",
    )
    _require("purchase_direction", spec.purchase_direction, lambda v: v in PURCHASE_DIRECTIONS,
             ", ".join(PURCHASE_DIRECTIONS))
    _require("salary_min_amount", spec.salary_min_amount, lambda v: _is_number(v) and v > 0, "> 0")
    _require("salary_min_months", spec.salary_min_months, lambda v: _is_int(v) and v >= 1, ">= 1")
    _require("salary_min_share", spec.salary_min_share, lambda v: _is_number(v) and 0 < v <= 1, "0 < share <= 1")
    _require("salary_tolerance", spec.salary_tolerance, lambda v: _is_number(v) and v >= 0, ">= 0")
    _require("shared_entity_max_customers", spec.shared_entity_max_customers, lambda v: _is_int(v) and v >= 2, ">= 2")
    _require("relations_active_only", spec.relations_active_only, lambda v: isinstance(v, bool), Msg("config.type.bool"))
    _require(
        "customer_related_type", spec.customer_related_type, lambda v: isinstance(v, str) and v != "", Msg("config.type.str")
    )


def _require(name: str, value: Any, test: Any, allowed: str | Msg) -> None:
    if not test(value):
        raise ConfigError("features.bad_parameter", name=name, value=repr(value), allowed=allowed)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
