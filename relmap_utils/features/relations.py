"""Relations: degree by relation type, shared devices, phones and addresses, related customers' defaults.

A relation counts at ``as_of`` when it started on or before ``as_of`` (or has
no ``start_date``). With ``MapSpec.relations_active_only`` it must also not
have ended by then: no ``end_date``, or an ``end_date`` after ``as_of``. An
end date later than ``as_of`` was unknown at ``as_of``, so it is treated like
no end date.

Related customers are the union of two sets: customers linked directly (a
relation whose ``related_type`` is ``MapSpec.customer_related_type``, in
either direction) and customers sharing an entity (a device, phone, address
or account of ``MapSpec.shared_types``) with the customer. A relation to a
customer number that is not in the customers table counts in ``degree`` but
not among the related customers. Entities shared by more than
``MapSpec.shared_entity_max_customers`` customers are placeholders or public
places and link nobody.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import ibis.expr.types as ir

from relmap_utils.features import transactions
from relmap_utils.features.base import BuildContext, Feature, finish, only, outer_parts, ratio
from relmap_utils.features.labels import code_labels
from relmap_utils.features.spec import MapSpec, unique_codes

FAMILY = "relations"
_RELATIONS = ("relations.customer_id", "relations.related_id", "relations.relation_type")
_LABELS = ("labels.customer_id", "labels.label_type", "labels.label_date", "labels.value")


def relation_codes(spec: MapSpec) -> dict[str, str]:
    """Map the feature code of each relation type to the type."""
    return unique_codes(spec.relation_types or ())


def shared_codes(spec: MapSpec) -> dict[str, str]:
    """Map the feature code of each shared entity type to the ``related_type`` value."""
    return unique_codes(spec.shared_types)


def features(spec: MapSpec) -> list[Feature]:
    """Return the candidate features of the relations family."""
    cap = {"cap": spec.shared_entity_max_customers}
    result = [
        Feature("relations_covered", FAMILY, "flag", "a relation counted at as_of, or a related customer", _RELATIONS,
                "features.feature.relations_covered", fill=False),
        Feature("degree", FAMILY, "count", "distinct related_id of the relations counted at as_of", _RELATIONS,
                "features.feature.degree", fill=0),
    ]
    if spec.relation_types is None:
        result.append(Feature("rel_*_count", FAMILY, "count", "distinct related_id of the counted relations of the type",
                              _RELATIONS, "features.feature.relation_count", {"type": "*"}, needs=("relation_types",),
                              fill=0))
    for code, relation_type in relation_codes(spec).items():
        result.append(
            Feature(f"rel_{code}_count", FAMILY, "count",
                    f"distinct related_id of the counted relations with relation_type '{relation_type}'",
                    _RELATIONS, "features.feature.relation_count",
                    {"type": code_labels("relation", code, relation_type)}, fill=0)
        )
    for code, related_type in shared_codes(spec).items():
        result.append(
            Feature(f"shared_{code}_customers", FAMILY, "count",
                    f"distinct other customers with a counted relation to the same related_id of related_type "
                    f"'{related_type}' (entities of at most {spec.shared_entity_max_customers} customers)",
                    (*_RELATIONS, "relations.related_type"), "features.feature.shared_customers",
                    {"type": code_labels("relation", code, related_type), **cap}, fill=0)
        )
    result += [
        Feature("related_customers", FAMILY, "count",
                "distinct known customers linked directly or through a shared entity", _RELATIONS,
                "features.feature.related_customers", cap, fill=0),
        Feature("related_defaulted", FAMILY, "count",
                "related customers with a default label (value 1) dated on or before as_of",
                (*_RELATIONS, *_LABELS), "features.feature.related_defaulted", fill=0),
        Feature("related_default_rate", FAMILY, "share", "related_defaulted / related_customers; NULL when 0",
                (*_RELATIONS, *_LABELS), "features.feature.related_default_rate"),
        Feature("counterparties", FAMILY, "count", "distinct counterparty_id of the transactions in the history window",
                ("transactions.customer_id", "transactions.txn_time", "transactions.amount",
                 "transactions.counterparty_id"), "features.feature.counterparties",
                {"months": spec.history_months}, fill=0),
    ]
    return result


def counted_relations(ctx: BuildContext) -> ir.Table:
    """Return the relations that count at ``as_of`` (see the module docstring)."""

    def build() -> ir.Table:
        relations = ctx.tables["relations"]
        if "start_date" in relations.columns:
            relations = ctx.dated("relations", "start_date", keep_undated=True)
        if ctx.spec.relations_active_only and "end_date" in relations.columns:
            relations = relations.filter(relations.end_date.isnull() | (relations.end_date > ibis.date(ctx.as_of)))
        return relations.filter(relations.customer_id.notnull() & relations.related_id.notnull())

    return ctx.cached("relations_counted", build)


def shared_pairs(ctx: BuildContext) -> ir.Table:
    """Return ``customer_id``, ``other_id``, ``related_type``: two customers sharing an entity."""

    def build() -> ir.Table:
        spec = ctx.spec
        counted = counted_relations(ctx)
        entities = counted.filter(counted.related_type.isin(spec.shared_types))
        entities = entities.select("customer_id", "related_id", "related_type").distinct()
        sizes = entities.group_by(["related_type", "related_id"]).agg(_members=entities.count())
        sizes = sizes.filter((sizes._members >= 2) & (sizes._members <= spec.shared_entity_max_customers))
        sizes = sizes.rename(_size_type="related_type", _size_id="related_id")
        members = entities.join(
            sizes, (entities.related_type == sizes._size_type) & (entities.related_id == sizes._size_id)
        ).select("customer_id", "related_id", "related_type")
        others = members.view()
        pairs = members.join(
            others,
            (members.related_type == others.related_type)
            & (members.related_id == others.related_id)
            & (members.customer_id != others.customer_id),
        )
        return pairs.select(
            customer_id=members.customer_id, other_id=others.customer_id, related_type=members.related_type
        ).distinct()

    return ctx.cached("relations_shared_pairs", build)


def related_customers(ctx: BuildContext, with_shared: bool) -> ir.Table:
    """Return ``customer_id``, ``other_id``: distinct known customers related to each customer."""
    spec = ctx.spec
    counted = counted_relations(ctx)
    if "related_type" in counted.columns:
        links = counted.filter(counted.related_type == spec.customer_related_type)
    else:
        links = counted
    forward = links.select("customer_id", other_id="related_id")
    backward = links.select(customer_id="related_id", other_id="customer_id")
    linked = forward.union(backward)
    if with_shared:
        linked = linked.union(shared_pairs(ctx).select("customer_id", "other_id"))
    known = ctx.customer_ids().rename(_known_id="customer_id")
    linked = linked.filter(linked.customer_id != linked.other_id)
    linked = linked.join(known, linked.other_id == known._known_id).select("customer_id", "other_id")
    return linked.distinct()


def build(ctx: BuildContext, included: Mapping[str, Feature]) -> ir.Table:
    """Return ``customer_id`` and the included relation features, one row per customer."""
    spec = ctx.spec
    names = set(included)
    parts: list[ir.Table] = []
    # Without a relations table only the counterparties (read from transactions) are
    # included; plan_features leaves every other feature out and says why.
    reads_relations = any("relations" in feature.source_tables for feature in included.values())
    if reads_relations:
        counted = counted_relations(ctx)
        values: dict[str, ir.Value] = {"_relations": counted.count(), "degree": counted.related_id.nunique()}
        for code, relation_type in relation_codes(spec).items():
            if f"rel_{code}_count" in names:
                values[f"rel_{code}_count"] = only(counted.relation_type == relation_type, counted.related_id).nunique()
        parts.append(counted.group_by("customer_id").agg(**values))

    shared = {code: related_type for code, related_type in shared_codes(spec).items()
              if f"shared_{code}_customers" in names}
    if shared:
        pairs = shared_pairs(ctx)
        parts.append(pairs.group_by("customer_id").agg(**{
            f"shared_{code}_customers": only(pairs.related_type == related_type, pairs.other_id).nunique()
            for code, related_type in shared.items()
        }))

    if names & {"related_customers", "related_defaulted", "related_default_rate"}:
        with_shared = "related_type" in counted.columns
        with_labels = bool(names & {"related_defaulted", "related_default_rate"})
        parts.append(_related_defaults(ctx, with_shared, with_labels))

    if "counterparties" in names:
        pairs = transactions.counterparties(ctx)
        in_history = pairs._last > ctx.windows.start_day(spec.history_months)
        parts.append(pairs.group_by("customer_id").agg(counterparties=in_history.ifelse(1, 0).sum()))

    table = outer_parts(ctx, parts)
    derived: dict[str, ir.Value] = {}
    if "related_default_rate" in names:
        derived["related_default_rate"] = ratio(table.related_defaulted, table.related_customers)
    if "relations_covered" in names:
        covered = table._relations.notnull()
        if "related_customers" in table.columns:
            covered = covered | (table.related_customers.fill_null(0) > 0)
        derived["relations_covered"] = covered
    return finish(table.mutate(**derived), included)


def _related_defaults(ctx: BuildContext, with_shared: bool, with_labels: bool) -> ir.Table:
    neighbours = related_customers(ctx, with_shared)
    if not with_labels:
        return neighbours.group_by("customer_id").agg(related_customers=neighbours.count())
    spec = ctx.spec
    labels = ctx.dated("labels", "label_date")
    defaulted = labels.filter(
        labels.customer_id.notnull() & labels.label_type.isin(spec.default_label_types) & (labels.value == 1)
    ).select(_defaulted_id="customer_id").distinct()
    joined = neighbours.left_join(defaulted, neighbours.other_id == defaulted._defaulted_id)
    return joined.group_by("customer_id").agg(
        related_customers=joined.count(),
        related_defaulted=joined._defaulted_id.notnull().ifelse(1, 0).sum(),
    )
