"""Behaviour consistency and stability: recent behaviour against the customer's own history.

The recent window is the last ``recent_months`` months; the baseline is the
rest of the history window before it, over the months observed (see
:mod:`~relmap_utils.features.transactions`). Change ratios are
``recent monthly average / baseline monthly average - 1``: 0 means no
change, -0.5 half the usual level, 1 double.

New devices and counterparties are those first seen in the recent window.
When the data itself starts inside the recent window there is no earlier
behaviour to compare with, so these counts are NULL rather than counting
everything as new.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import ibis.expr.types as ir

from relmap_utils.features import holdings, transactions
from relmap_utils.features.base import (
    DAY, BuildContext, Feature, change, check_date_column, finish, only, outer_parts, ratio,
)
from relmap_utils.features.spec import MapSpec
from relmap_utils.features.windows import day_of

FAMILY = "stability"
_TXN = ("transactions.customer_id", "transactions.txn_time", "transactions.amount")
_EVENTS = ("events.customer_id", "events.event_time")
_RELATIONS = ("relations.customer_id", "relations.relation_type", "relations.start_date")
_REPAYMENTS = ("repayments.customer_id", "repayments.due_date", "repayments.paid_date")
_BALANCES = ("balances.account_id", "balances.month", "balances.balance", "accounts.account_id",
             "accounts.product_family")


def features(spec: MapSpec) -> list[Feature]:
    """Return the candidate features of the stability family."""
    windows = {"recent": spec.recent_months, "history": spec.history_months}
    recent = {"months": spec.recent_months}
    salary = (*_TXN, "transactions.txn_type") if spec.salary_txn_types is not None else _TXN
    return [
        Feature("inflow_change", FAMILY, "ratio", _CHANGE.format(measure="inflows"), _TXN,
                "features.feature.inflow_change", windows),
        Feature("outflow_change", FAMILY, "ratio", _CHANGE.format(measure="outflows"), _TXN,
                "features.feature.outflow_change", windows),
        Feature("txn_count_change", FAMILY, "ratio", _CHANGE.format(measure="transaction count"), _TXN,
                "features.feature.txn_count_change", windows),
        Feature("event_count_change", FAMILY, "ratio", _CHANGE.format(measure="event count"), _EVENTS,
                "features.feature.event_count_change", windows),
        Feature("regular_income_months", FAMILY, "months",
                "months of the history window in which a regular income source paid (see salary_regular)",
                salary, "features.feature.regular_income_months", windows, fill=0),
        Feature("regular_income_months_recent", FAMILY, "months",
                "months of the recent window in which a regular income source paid", salary,
                "features.feature.regular_income_months_recent", windows, fill=0),
        Feature("new_devices_recent", FAMILY, "count",
                "event device_id values first seen in the recent window; NULL when the events start inside it",
                (*_EVENTS, "events.device_id"), "features.feature.new_devices_recent", recent),
        Feature("devices_recent", FAMILY, "count", "distinct event device_id values in the recent window",
                (*_EVENTS, "events.device_id"), "features.feature.devices_recent", recent, fill=0),
        Feature("new_counterparties_recent", FAMILY, "count",
                "counterparty_id values first seen in the recent window; NULL when the transactions start "
                "inside it", (*_TXN, "transactions.counterparty_id"), "features.feature.new_counterparties_recent",
                recent),
        Feature("phone_changes_recent", FAMILY, "count",
                "phone relations starting in the recent window that are not the customer's first",
                _RELATIONS, "features.feature.phone_changes_recent", recent, needs=("phone_relation_types",), fill=0),
        Feature("address_changes_recent", FAMILY, "count",
                "address relations starting in the recent window that are not the customer's first",
                _RELATIONS, "features.feature.address_changes_recent", recent, needs=("address_relation_types",),
                fill=0),
        Feature("aum_change_recent", FAMILY, "ratio",
                "aum at the balance month <= as_of / aum at the balance month <= as_of minus the recent "
                "window - 1; NULL when the earlier aum is not positive", _BALANCES,
                "features.feature.aum_change_recent", recent),
        Feature("instalments_due_recent", FAMILY, "count", "instalments due in the recent window", _REPAYMENTS,
                "features.feature.instalments_due_recent", recent, fill=0),
        Feature("late_instalments_recent", FAMILY, "count",
                "instalments due in the recent window and paid after the due date, or due before as_of and "
                "unpaid at as_of", _REPAYMENTS, "features.feature.late_instalments_recent", recent, fill=0),
        Feature("days_past_due", FAMILY, "days",
                "max of as_of - due_date over instalments due on or before as_of and unpaid at as_of; 0 when "
                "all are paid; NULL without instalments due", _REPAYMENTS, "features.feature.days_past_due"),
        Feature("stability_covered", FAMILY, "flag",
                "a transaction, event, relation, balance or instalment of the customer on or before as_of",
                ("customers",), "features.feature.stability_covered", fill=False),
    ]


_CHANGE = (
    "monthly {measure} of the recent window / monthly {measure} of the earlier observed months of the history "
    "window - 1; NULL unless the recent window is observed and the baseline is positive"
)


def build(ctx: BuildContext, included: Mapping[str, Feature]) -> ir.Table:
    """Return ``customer_id`` and the included stability features, one row per customer."""
    spec = ctx.spec
    names = set(included)
    parts: list[ir.Table] = []
    # Columns that are not NULL exactly when the customer has rows in a source.
    presence: list[str] = []

    flow_changes = names & {"inflow_change", "outflow_change", "txn_count_change"}
    if flow_changes:
        months = transactions.observed(ctx).select("customer_id", _txn_observed="months_observed")
        # window_sums() computes only the sums the features being built read.
        sums = [f"{_FLOW_MEASURES[name]}_{window}" for name in sorted(flow_changes) for window in ("recent", "base")]
        parts += [months, transactions.window_sums(ctx).select("customer_id", *sums)]
        # A window-sum row exists exactly when the customer has transactions in the observed months.
        presence.append(sums[0])
    if names & {"regular_income_months", "regular_income_months_recent"}:
        parts.append(transactions.salary_sources(ctx).select(
            "customer_id", "regular_income_months", "regular_income_months_recent"
        ))
    if "new_counterparties_recent" in names:
        parts.append(_new_counterparties(ctx))
        presence.append("_new_counterparties")
    events = names & {"event_count_change", "new_devices_recent", "devices_recent"}
    if events:
        parts.append(_event_summary(ctx, names))
        presence.append("_events_all")
    if names & {"phone_changes_recent", "address_changes_recent"}:
        parts.append(_contact_changes(ctx))
        presence.append("_contact_rows")
    if "aum_change_recent" in names:
        parts += [
            holdings.balances_at(ctx, 0).select("customer_id", _aum_now="aum"),
            holdings.balances_at(ctx, spec.recent_months).select("customer_id", _aum_then="aum"),
        ]
        presence += ["_aum_now", "_aum_then"]
    if names & {"instalments_due_recent", "late_instalments_recent", "days_past_due"}:
        parts.append(_repayment_summary(ctx))
        presence.append("_instalments")
    table = outer_parts(ctx, parts)

    values: dict[str, ir.Value] = {}
    if flow_changes:
        values.update(_flow_changes(spec, table))
    if "new_counterparties_recent" in names:
        values["new_counterparties_recent"] = ibis.ifelse(
            table._counterparty_history_ok, table._new_counterparties.fill_null(0), ibis.null("int64")
        ).cast("int64")
    if "aum_change_recent" in names:
        values["aum_change_recent"] = ibis.ifelse(
            table._aum_then > 0, change(table._aum_now.fill_null(0.0), table._aum_then), ibis.null("float64")
        )
    if events:
        values.update(_event_values(ctx, table, names))
    for name in ("regular_income_months", "regular_income_months_recent", "phone_changes_recent",
                 "address_changes_recent", "instalments_due_recent", "late_instalments_recent", "days_past_due"):
        if name in names:
            values[name] = table[name]
    if "stability_covered" in names:
        covered = ibis.literal(False)
        for column in presence:
            covered = covered | table[column].notnull()
        values["stability_covered"] = covered
    values = {name: value for name, value in values.items() if name in names}
    return finish(table.mutate(**values), included)


# The measure of window_sums() that each change compares.
_FLOW_MEASURES = {"inflow_change": "inflow", "outflow_change": "outflow", "txn_count_change": "n"}


def _flow_changes(spec: MapSpec, table: ir.Table) -> dict[str, ir.Value]:
    observed_months = table._txn_observed.fill_null(0)
    recent_ready = observed_months >= spec.recent_months
    base_months = ibis.least(observed_months, spec.history_months) - spec.recent_months
    values = {}
    for name, measure in _FLOW_MEASURES.items():
        if f"{measure}_recent" not in table.columns:
            continue
        recent = table[f"{measure}_recent"].fill_null(0) / spec.recent_months
        base = ratio(table[f"{measure}_base"].fill_null(0), base_months)
        values[name] = ibis.ifelse(recent_ready & (base_months > 0), change(recent, base), ibis.null("float64"))
    return values


def _new_counterparties(ctx: BuildContext) -> ir.Table:
    recent_start = ctx.windows.start_day(ctx.spec.recent_months)
    pairs = transactions.counterparties(ctx)
    rows = transactions.prepared(ctx)
    history_ok = rows.aggregate(_counterparty_history_ok=rows[DAY].min() <= recent_start)
    counts = pairs.group_by("customer_id").agg(_new_counterparties=(pairs._first > recent_start).ifelse(1, 0).sum())
    base = ctx.customer_ids().cross_join(history_ok).select("customer_id", "_counterparty_history_ok")
    counts = counts.rename(_pair_customer="customer_id")
    return base.left_join(counts, base.customer_id == counts._pair_customer).drop("_pair_customer")


def _event_summary(ctx: BuildContext, names: set[str]) -> ir.Table:
    """Return per customer the event counts by window and the device counts, with the data-start flags."""
    spec = ctx.spec
    windows = ctx.windows
    recent_start = windows.start_day(spec.recent_months)
    columns = ["customer_id", "device_id"] if "device_id" in ctx.tables["events"].columns else ["customer_id"]
    events = ctx.dated("events", "event_time", columns=columns, period=True)
    events = events.filter(events.customer_id.notnull())
    first = events.aggregate(first_day=events[DAY].min())
    months = ctx.observed_months("events", first).rename(_obs_customer="customer_id")
    joined = events.left_join(months, events.customer_id == months._obs_customer)
    in_observed = joined._k.notnull() & (joined._k < joined.months_observed)
    values: dict[str, ir.Value] = {
        "_events_all": joined.count(),
        "_events_recent": (in_observed & (joined._k < spec.recent_months)).ifelse(1, 0).sum(),
        "_events_base": (
            in_observed & (joined._k >= spec.recent_months) & (joined._k < spec.history_months)
        ).ifelse(1, 0).sum(),
    }
    per_customer = joined.group_by("customer_id").agg(**values)
    observed_months = months.rename(_events_observed="months_observed")
    per_customer = per_customer.rename(_event_customer="customer_id")
    per_customer = observed_months.left_join(
        per_customer, observed_months._obs_customer == per_customer._event_customer
    ).select("_events_observed", *values, customer_id="_obs_customer")

    if names & {"new_devices_recent", "devices_recent"}:
        with_device = events.filter(events.device_id.notnull())
        devices = with_device.group_by(["customer_id", "device_id"]).agg(_first=with_device[DAY].min(),
                                                                        _last=with_device[DAY].max())
        counts = devices.group_by("customer_id").agg(
            _new_devices=(devices._first > recent_start).ifelse(1, 0).sum(),
            _devices_recent=(devices._last > recent_start).ifelse(1, 0).sum(),
        )
        history_ok = events.aggregate(_event_history_ok=events[DAY].min() <= recent_start)
        counts = counts.rename(_device_customer="customer_id")
        per_customer = per_customer.left_join(counts, per_customer.customer_id == counts._device_customer)
        per_customer = per_customer.drop("_device_customer").cross_join(history_ok)
    return per_customer


def _event_values(ctx: BuildContext, table: ir.Table, names: set[str]) -> dict[str, ir.Value]:
    spec = ctx.spec
    values: dict[str, ir.Value] = {}
    if "event_count_change" in names:
        observed_months = table._events_observed.fill_null(0)
        base_months = ibis.least(observed_months, spec.history_months) - spec.recent_months
        recent = table._events_recent.fill_null(0) / spec.recent_months
        base = ratio(table._events_base.fill_null(0), base_months)
        ready = (observed_months >= spec.recent_months) & (base_months > 0)
        values["event_count_change"] = ibis.ifelse(ready, change(recent, base), ibis.null("float64"))
    if "new_devices_recent" in names:
        values["new_devices_recent"] = ibis.ifelse(
            table._event_history_ok, table._new_devices.fill_null(0), ibis.null("int64")
        ).cast("int64")
    if "devices_recent" in names:
        values["devices_recent"] = table._devices_recent
    return values


def _contact_changes(ctx: BuildContext) -> ir.Table:
    """Return per customer the phone and address changes in the recent window."""
    spec = ctx.spec
    recent_start = ctx.windows.start_day(spec.recent_months)
    relations = ctx.dated("relations", "start_date", keep_undated=True)
    relations = relations.filter(relations.customer_id.notnull())
    # A relation without start_date is known from the start, so it is never a recent change.
    known_since = relations[DAY].fill_null(-(10**7))
    values: dict[str, ir.Value] = {"_contact_rows": relations.count()}
    for name, types in (("phone_changes_recent", spec.phone_relation_types),
                        ("address_changes_recent", spec.address_relation_types)):
        of_type = relations.relation_type.isin(types)
        values[f"_{name}_first"] = only(of_type, known_since).min()
        values[f"_{name}_recent"] = (of_type & (known_since > recent_start)).ifelse(1, 0).sum()
    per_customer = relations.group_by("customer_id").agg(**values)
    changes = {}
    for name in ("phone_changes_recent", "address_changes_recent"):
        first_is_recent = (per_customer[f"_{name}_first"] > recent_start).ifelse(1, 0)
        changes[name] = ibis.greatest(per_customer[f"_{name}_recent"] - first_is_recent, 0).cast("int64")
    return per_customer.select("customer_id", "_contact_rows", **changes)


def _repayment_summary(ctx: BuildContext) -> ir.Table:
    """Return per customer the instalments due in the recent window, the late ones and the days past due."""
    windows = ctx.windows
    recent_start = windows.start_day(ctx.spec.recent_months)
    as_of_day = windows.as_of_day
    due = ctx.dated("repayments", "due_date")
    due = due.filter(due.customer_id.notnull())
    check_date_column("repayments", "paid_date", due.paid_date)
    paid_day = day_of(due.paid_date)
    # A payment dated after as_of was not known at as_of: the instalment was still open then.
    paid = due.paid_date.notnull() & (paid_day <= as_of_day)
    recent = due[DAY] > recent_start
    late = (paid & (paid_day > due[DAY])) | (~paid & (due[DAY] < as_of_day))
    overdue_days = ibis.ifelse(paid, 0, as_of_day - due[DAY])
    return due.group_by("customer_id").agg(
        _instalments=due.count(),
        instalments_due_recent=recent.ifelse(1, 0).sum(),
        late_instalments_recent=(recent & late).ifelse(1, 0).sum(),
        days_past_due=overdue_days.max(),
    )
