"""Migration: how customers moved between tiers, RFM cells and segments.

Two states are compared: two map dates of this run (by default the earliest
and the latest), or this run's latest date against the latest date of a
baseline run of the same engagement (``migration.baseline_run``). Both are
rows of ``customer_segments.parquet``, joined on ``customer_id`` in the
database. A tier move is an upgrade when the customer lands in a tier of an
earlier rule (a higher tier), a downgrade when in a later one. Segments
and RFM cells have no order, so their moves are transitions only.

Segment numbers of a baseline run come from another fit; compare segments
across runs only when both runs used the same features and data.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ibis
import pandas as pd

from relmap_utils.errors import ConfigError, StageError

KINDS = ("tier", "rfm_cell", "segment")
SEGMENTS_FILE = "customer_segments.parquet"
STAGE_ID = "03_segmentation"


def baseline_table(backend: Any, run_dir: Path, baseline_run: str) -> tuple[Any, str]:
    """Open the customer segments of a baseline run of the same engagement.

    Returns
    -------
    (ibis Table, str)
        The baseline's rows at its latest ``as_of`` and that date.

    Raises
    ------
    ConfigError
        When the run id is not a plain folder name, or no such run exists.
    StageError
        When the baseline run has no segmentation stage artifacts.
    """
    if not baseline_run or "/" in baseline_run or "\\" in baseline_run or baseline_run in (".", ".."):
        raise ConfigError("segmentation.baseline_invalid", parameter="migration.baseline_run", value=baseline_run)
    folder = run_dir.parent / baseline_run
    if not folder.is_dir():
        raise ConfigError("segmentation.baseline_missing", parameter="migration.baseline_run", value=baseline_run,
                          folder=str(run_dir.parent))
    path = folder / "artifacts" / STAGE_ID / SEGMENTS_FILE
    if not path.is_file():
        raise StageError("segmentation.baseline_without_stage", run=baseline_run, path=str(path))
    table = backend.read_parquet(path, table_name=f"baseline_{abs(hash(str(path)))}")
    latest = table.as_of.max().to_pandas()
    return table.filter(table.as_of == latest), str(pd.Timestamp(latest).date())


def compare_states(
    before: Any,
    after: Any,
    tier_rank: Mapping[str, int],
    *,
    top_movers: int = 20,
    amount_column: str | None = "aum",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Count transitions between two states and list the customers who moved most.

    Parameters
    ----------
    before, after : ibis Table
        One row per customer with ``customer_id`` and the columns of
        :data:`KINDS` that exist (``tier`` at least).
    tier_rank : mapping
        Tier code to rank, 1 for the highest tier.
    top_movers : int, default=20
        Customers to list, by tiers moved and then by change of ``amount_column``.

    Returns
    -------
    (transitions, movers) : pandas.DataFrame
        ``transitions``: ``kind``, ``from_group``, ``to_group``,
        ``customers``, ``share`` (of the ``from_group``), ``direction``
        (``up``, ``down``, ``same``, or ``moved`` for unordered kinds).
        ``movers``: ``customer_id`` (pseudonym), ``from_tier``,
        ``to_tier``, ``steps`` (positive = upgrade) and the amount change.
    """
    kinds = [kind for kind in KINDS if kind in before.columns and kind in after.columns]
    left = before.select("customer_id", *[before[kind].name(f"from_{kind}") for kind in kinds],
                         *([before[amount_column].name("from_amount")] if amount_column in before.columns else []))
    right = after.select("customer_id", *[after[kind].name(f"to_{kind}") for kind in kinds],
                         *([after[amount_column].name("to_amount")] if amount_column in after.columns else []))
    joined = left.join(right, "customer_id")
    frames = []
    for kind in kinds:
        counts = joined.group_by(from_group=joined[f"from_{kind}"], to_group=joined[f"to_{kind}"]).aggregate(
            customers=joined.count()
        ).to_pandas()
        counts.insert(0, "kind", kind)
        counts["share"] = counts["customers"] / counts.groupby("from_group")["customers"].transform("sum")
        if kind == "tier":
            counts["direction"] = [_direction(tier_rank, a, b) for a, b in zip(counts.from_group, counts.to_group)]
        else:
            counts["direction"] = ["same" if a == b else "moved" for a, b in zip(counts.from_group, counts.to_group)]
        frames.append(counts)
    transitions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    movers = pd.DataFrame(columns=["customer_id", "from_tier", "to_tier", "steps", "amount_change"])
    if "tier" in kinds and top_movers > 0 and tier_rank:
        rank = ibis.cases(*[(joined.from_tier == code, value) for code, value in tier_rank.items()], else_=None)
        rank_after = ibis.cases(*[(joined.to_tier == code, value) for code, value in tier_rank.items()], else_=None)
        steps = (rank - rank_after).name("steps")
        change = (joined.to_amount - joined.from_amount) if "from_amount" in joined.columns else ibis.literal(None)
        moved = joined.mutate(steps=steps, amount_change=change).filter(lambda t: t.steps != 0)
        moved = moved.order_by([moved.steps.abs().desc(), moved.amount_change.abs().desc(), moved.customer_id])
        movers = moved.select("customer_id", "from_tier", "to_tier", "steps", "amount_change").limit(top_movers)
        movers = movers.to_pandas()
    return transitions, movers


def _direction(rank: Mapping[str, int], before: Any, after: Any) -> str:
    if before == after:
        return "same"
    if before not in rank or after not in rank:
        return "moved"
    return "up" if rank[after] < rank[before] else "down"


def movement_summary(transitions: pd.DataFrame) -> dict[str, int]:
    """Return the customers who moved up, down or stayed in their tier."""
    tiers = transitions[transitions["kind"] == "tier"] if not transitions.empty else transitions
    if tiers.empty:
        return {"up": 0, "down": 0, "same": 0, "moved": 0}
    totals = tiers.groupby("direction")["customers"].sum()
    return {name: int(totals.get(name, 0)) for name in ("up", "down", "same", "moved")}
