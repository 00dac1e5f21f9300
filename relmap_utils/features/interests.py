"""Interests from channel events: topics browsed, with intensity and recency.

Each topic of ``MapSpec.topics`` gets the number of browsing events in the
interest window and the days since the latest one. Browsing events are the
events with that topic, restricted to ``MapSpec.interest_event_types`` when
it is set (for example view, search and click, but not login).
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis.expr.types as ir

from relmap_utils.features.base import DAY, BuildContext, Feature, finish, only, outer_parts
from relmap_utils.features.labels import code_labels
from relmap_utils.features.spec import MapSpec, unique_codes

FAMILY = "interests"
_EVENTS = ("events.customer_id", "events.event_time")


def topic_codes(spec: MapSpec) -> dict[str, str]:
    """Map the feature code of each topic to the topic value."""
    return unique_codes(spec.topics or ())


def features(spec: MapSpec) -> list[Feature]:
    """Return the candidate features of the interests family."""
    history = {"months": spec.history_months}
    window = {"months": spec.interest_months}
    topic_sources = (*_EVENTS, "events.topic")
    if spec.interest_event_types is not None:
        topic_sources = (*topic_sources, "events.event_type")
    result = [
        Feature("interests_covered", FAMILY, "flag", "an event dated on or before as_of", _EVENTS,
                "features.feature.interests_covered", fill=False),
        Feature("event_count", FAMILY, "count", "events in the history window", _EVENTS,
                "features.feature.event_count", history, fill=0),
        Feature("days_since_last_event", FAMILY, "days", "as_of - day of the latest event", _EVENTS,
                "features.feature.days_since_last_event"),
        Feature("topics_browsed", FAMILY, "count", "distinct topics browsed in the interest window",
                topic_sources, "features.feature.topics_browsed", window, fill=0),
    ]
    if spec.topics is None:
        params = {"topic": "*", "months": spec.interest_months}
        return result + [
            Feature("interest_*_count", FAMILY, "count", "browsing events of the topic in the interest window",
                    topic_sources, "features.feature.interest_count", params, needs=("topics",), fill=0),
            Feature("interest_*_days_since", FAMILY, "days", "as_of - day of the latest browsing event of the topic",
                    topic_sources, "features.feature.interest_days_since", params, needs=("topics",)),
        ]
    for code, topic in topic_codes(spec).items():
        params = {"topic": code_labels("topic", code, topic), "months": spec.interest_months}
        result += [
            Feature(f"interest_{code}_count", FAMILY, "count",
                    f"browsing events with topic '{topic}' in the interest window", topic_sources,
                    "features.feature.interest_count", params, fill=0),
            Feature(f"interest_{code}_days_since", FAMILY, "days",
                    f"as_of - day of the latest browsing event with topic '{topic}'", topic_sources,
                    "features.feature.interest_days_since", params),
        ]
    return result


def build(ctx: BuildContext, included: Mapping[str, Feature]) -> ir.Table:
    """Return ``customer_id`` and the included interest features, one row per customer."""
    spec = ctx.spec
    windows = ctx.windows
    wanted = ("customer_id", "topic", "event_type")
    events = ctx.dated("events", "event_time", columns=[name for name in wanted if name in ctx.tables["events"].columns])
    events = events.filter(events.customer_id.notnull())
    day = events[DAY]
    in_history = day > windows.start_day(spec.history_months)
    in_window = day > windows.start_day(spec.interest_months)
    values: dict[str, ir.Value] = {
        "_events": events.count(),
        "event_count": in_history.ifelse(1, 0).sum(),
        "_last_event": day.max(),
    }
    if any(name == "topics_browsed" or name.startswith("interest_") for name in included):
        browsing = events.topic.notnull()
        if spec.interest_event_types is not None:
            browsing = browsing & events.event_type.isin(spec.interest_event_types)
        values["topics_browsed"] = only(browsing & in_window, events.topic).nunique()
        for code, topic in topic_codes(spec).items():
            of_topic = browsing & (events.topic == topic)
            if f"interest_{code}_count" in included:
                values[f"interest_{code}_count"] = (of_topic & in_window).ifelse(1, 0).sum()
            if f"interest_{code}_days_since" in included:
                values[f"_last_{code}"] = only(of_topic, day).max()
    per_customer = events.group_by("customer_id").agg(**values)
    table = outer_parts(ctx, [per_customer])

    as_of_day = windows.as_of_day
    derived: dict[str, ir.Value] = {
        "interests_covered": table._events.notnull(),
        "days_since_last_event": as_of_day - table._last_event,
    }
    for code in topic_codes(spec):
        name = f"interest_{code}_days_since"
        if name in included:
            derived[name] = as_of_day - table[f"_last_{code}"]
    derived = {name: value for name, value in derived.items() if name in included}
    return finish(table.mutate(**derived), included)
