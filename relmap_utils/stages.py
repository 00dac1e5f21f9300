"""The stage registry: which notebooks make up a run, in which order.

Each stage is one parameterized notebook under ``notebooks/``. Stages run in
registry order, and ``depends_on`` names the stages whose artifacts a stage
reads. Adding a stage is one line in :data:`STAGES`; a stage whose notebook
does not exist yet is left out of :func:`available_stages`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relmap_utils.config import Engagement
from relmap_utils.errors import ConfigError
from relmap_utils.paths import NOTEBOOK_DIR


@dataclass(frozen=True)
class Stage:
    """One step of a run.

    Parameters
    ----------
    key : str
        Name used in engagement.yaml (``stages.<key>``) and on the command line.
    id : str
        Folder and notebook name inside the run folder, for example ``00_ingest``.
    notebook : Path
        Notebook to execute; a relative path is taken from ``notebooks/``.
    depends_on : tuple of str, default=()
        Keys of the stages whose artifacts this stage reads.
    """

    key: str
    id: str
    notebook: Path
    depends_on: tuple[str, ...] = field(default=())

    @property
    def notebook_path(self) -> Path:
        """Absolute path of the stage notebook."""
        path = Path(self.notebook)
        return path if path.is_absolute() else NOTEBOOK_DIR / path


STAGES: tuple[Stage, ...] = (
    Stage("ingest", "00_ingest", Path("00_ingest.ipynb")),
    Stage("profiling", "01_profiling", Path("01_profiling.ipynb"), ("ingest",)),
    Stage("map", "02_map", Path("02_map.ipynb"), ("ingest",)),
    Stage("segmentation", "03_segmentation", Path("03_segmentation.ipynb"), ("map",)),
    Stage("propensity", "04_propensity", Path("04_propensity.ipynb"), ("map",)),
    Stage("risk", "05_risk", Path("05_risk.ipynb"), ("map",)),
)


def registered_stages() -> list[Stage]:
    """Return every registered stage, with or without a notebook, in run order."""
    return list(STAGES)


def available_stages(registry: Sequence[Stage] | None = None) -> list[Stage]:
    """Return the registered stages whose notebook exists, in run order.

    Parameters
    ----------
    registry : sequence of Stage, optional
        Stages to consider; default :data:`STAGES`.

    Returns
    -------
    list of Stage
    """
    stages = STAGES if registry is None else registry
    return [stage for stage in stages if stage.notebook_path.is_file()]


def find_stage(stages: Sequence[Stage], name: str) -> Stage:
    """Return the stage called ``name`` (its key or its id).

    Raises
    ------
    ConfigError
        When no stage has that key or id; the message lists the known keys.
    """
    for stage in stages:
        if name in (stage.key, stage.id):
            return stage
    raise ConfigError("runner.unknown_stage", stage=name, known=", ".join(s.key for s in stages) or "-")


def upstream_keys(stages: Sequence[Stage], keys: Iterable[str]) -> set[str]:
    """Return every stage key that the stages ``keys`` depend on, directly or not."""
    by_key = {stage.key: stage for stage in stages}
    found: set[str] = set()
    pending = list(keys)
    while pending:
        stage = by_key.get(pending.pop())
        if stage is None:
            continue
        for dependency in stage.depends_on:
            if dependency not in found:
                found.add(dependency)
                pending.append(dependency)
    return found


@dataclass
class StagePlan:
    """Stages a run executes (``run``) and stages whose results it copies from an earlier run (``reuse``)."""

    run: list[Stage]
    reuse: list[Stage]


def plan_stages(
    available: Sequence[Stage],
    engagement: Engagement,
    stages: Sequence[str] | None = None,
    from_stage: str | None = None,
) -> StagePlan:
    """Choose the stages to execute and those whose artifacts come from an earlier run.

    Without ``stages`` and ``from_stage`` every stage enabled in
    engagement.yaml runs. ``stages`` runs exactly the stages named, also
    disabled ones. ``from_stage`` runs that stage and the enabled stages after
    it, and reuses the enabled stages before it. When both are given, only the
    named stages run, and none of them may come before ``from_stage``. A
    stage that a running stage depends on but that does not run itself is
    always reused.

    Raises
    ------
    ConfigError
        When a stage name is unknown, a named stage comes before
        ``from_stage``, or a dependency has no notebook.
    """
    enabled = [stage for stage in available if engagement.stage(stage.key).enabled]
    later = list(available)
    reuse_keys: set[str] = set()
    start = None
    if from_stage:
        start = find_stage(available, from_stage)
        position = available.index(start)
        later = list(available[position:])
        reuse_keys = {stage.key for stage in available[:position] if stage in enabled}

    if stages:
        chosen = {find_stage(available, name).key for name in stages}
        too_early = sorted(chosen - {stage.key for stage in later})
        if too_early:
            raise ConfigError("runner.stage_before_from", stages=", ".join(too_early), start=from_stage)
        run = [stage for stage in later if stage.key in chosen]
    elif start is not None:
        run = [stage for stage in later if stage is start or stage in enabled]
    else:
        run = enabled

    run_keys = {stage.key for stage in run}
    needed = upstream_keys(available, run_keys)
    missing = sorted(needed - {stage.key for stage in available})
    if missing:
        raise ConfigError("runner.dependency_missing", stages=", ".join(missing))
    reuse_keys |= needed - run_keys
    return StagePlan(run, [stage for stage in available if stage.key in reuse_keys])


def merge_overrides(
    registry: Sequence[Stage], *layers: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    """Merge stage parameter overrides, later layers winning, keyed by stage key.

    Each layer maps a stage key or id to ``{parameter: value}``.

    Raises
    ------
    ConfigError
        When a stage is unknown or a layer's entry is not a mapping.
    """
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for name, values in (layer or {}).items():
            stage = find_stage(registry, str(name))
            if not isinstance(values, Mapping):
                raise ConfigError("runner.override_not_mapping", stage=str(name))
            merged.setdefault(stage.key, {}).update(values)
    return merged


def pairs_to_overrides(pairs: Sequence[tuple[str, Any]]) -> dict[str, dict[str, Any]]:
    """Turn ``("stage.key", value)`` pairs into ``{stage: {key: value}}``.

    Raises
    ------
    ConfigError
        When a key has no ``stage.`` prefix.
    """
    overrides: dict[str, dict[str, Any]] = {}
    for qualified, value in pairs:
        stage, dot, name = qualified.partition(".")
        if not dot or not stage or not name:
            raise ConfigError("runner.param_needs_stage", key=qualified)
        overrides.setdefault(stage, {})[name] = value
    return overrides
