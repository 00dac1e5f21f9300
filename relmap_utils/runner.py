"""Run an engagement: execute its stage notebooks into a new run folder.

A run folder ``engagements/<name>/runs/<run-id>/`` holds::

    manifest.json        audit record (see relmap_utils.manifest and docs/runs.md)
    engagement.yaml      the configuration snapshot the stages read
    executed/<stage>.ipynb
    artifacts/<stage>/
    reports/
    run.log

The run id is the start time in the engagement's time zone
(``20261204-203000``), with ``-01``, ``-02``, ... appended when that second is
taken. A run never writes into another run's folder, and an engagement runs
one run at a time (see :class:`EngagementLock`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from relmap_utils.config import CONFIG_FILE, Engagement, engagement_file, load_engagement
from relmap_utils.errors import ConfigError, RelmapError, RunError
from relmap_utils.i18n import get_locale, set_locale, tr
from relmap_utils.manifest import (
    COMPLETED_STATUSES,
    MANIFEST_FILE,
    NOTHING_TO_DO,
    SCHEMA_VERSION,
    code_record,
    describe_files,
    describe_inputs,
    environment_record,
    pseudonym_key_record,
    read_manifest,
    sha256_file,
    skip_reason_text,
    stage_counts,
    stage_skip_reason,
    write_manifest,
)
from relmap_utils.notebook_exec import (
    DEFAULT_CELL_TIMEOUT,
    KERNEL_NAME,
    NotebookFailedError,
    check_parameters_cell,
    execute_notebook,
    normalize_parameters,
)
from relmap_utils.stages import Stage, StagePlan, available_stages, merge_overrides, plan_stages, registered_stages

logger = logging.getLogger(__name__)

RUNS_FOLDER = "runs"
LOCK_FILE = ".relmap.lock"
RUN_LOG = "run.log"
RUN_DIR_PARAMETER = "run_dir"
_RUN_ID = re.compile(r"^(?P<base>\d{8}-\d{6})(?:-(?P<suffix>\d{2,}))?$")
_MAX_SUFFIX = 99
# Stage statuses whose artifacts a downstream stage may read and a later run may reuse.
USABLE = COMPLETED_STATUSES


# --------------------------------------------------------------------------- results


@dataclass
class StageEvent:
    """Progress of one stage, passed to the ``progress`` callback of :func:`run_engagement`.

    ``kind`` is ``"start"`` or ``"end"``; ``status`` and ``elapsed`` are set at the end.
    ``reason`` is set when the stage had nothing to do (status ``nothing_to_do``):
    the stage's explanation in the run's language.
    """

    kind: str
    index: int
    total: int
    stage: Stage
    status: str | None = None
    elapsed: float | None = None
    reason: str | None = None


@dataclass
class RunResult:
    """Outcome of :func:`run_engagement`.

    Attributes
    ----------
    run_id, run_dir : str, Path
    status : {"succeeded", "failed"}
    manifest_path : Path
    manifest_sha256 : str
        Hash of the final manifest.json, for the reviewer to record.
    stages : list of dict
        The per-stage entries of the manifest.
    failure : RelmapError or None
        The first stage failure (a :class:`NotebookFailedError` when a
        notebook failed); its message names the executed notebook.
    """

    run_id: str
    run_dir: Path
    status: str
    manifest_path: Path
    manifest_sha256: str
    stages: list[dict[str, Any]]
    failure: RelmapError | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def stage(self, key: str) -> dict[str, Any]:
        """Return the manifest entry of stage ``key`` (its key or id)."""
        for entry in self.stages:
            if key in (entry["key"], entry["id"]):
                return entry
        raise KeyError(key)


@dataclass
class RunSummary:
    """One line of ``relmap runs``: a run folder and the status and stages from its manifest."""

    run_id: str
    run_dir: Path
    status: str
    started_at: str | None
    duration_seconds: float | None
    counts: dict[str, int] = field(default_factory=dict)
    nothing_to_do: list[str] = field(default_factory=list)
    """Ids of the stages that had nothing to do (also when reused from such a run)."""


# --------------------------------------------------------------------------- lock and folders


class EngagementLock:
    """Exclusive lock on ``<engagement>/.relmap.lock`` for the length of a run.

    The lock is an OS file lock (``flock``), so it is released when the
    process ends, also when it is killed. The file stores the holder's
    process id and start time so that the second run can name them. The
    start time is in ``timezone`` (the engagement's), or in the machine's
    local zone when it is not given.
    """

    def __init__(self, engagement_dir: Path, engagement_name: str, timezone: Any = None) -> None:
        self.path = engagement_dir / LOCK_FILE
        self.engagement_name = engagement_name
        self.timezone = timezone
        self._fd: int | None = None

    def __enter__(self) -> "EngagementLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunError(
                "runner.lock_unwritable", lock=str(self.path), reason=exc.strerror or type(exc).__name__
            ) from None
        try:
            _lock_file(fd)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunError(
                "runner.locked",
                engagement=self.engagement_name,
                lock=str(self.path),
                pid=holder.get("pid", "?"),
                since=holder.get("since", "?"),
            ) from None
        os.ftruncate(fd, 0)
        since = dt.datetime.now(self.timezone) if self.timezone else dt.datetime.now().astimezone()
        holder = {"pid": os.getpid(), "since": since.isoformat(timespec="seconds")}
        os.write(fd, json.dumps(holder).encode("utf-8"))
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            _unlock_file(self._fd)
        finally:
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}


if os.name == "nt":  # pragma: no cover
    import msvcrt

    # NOTE: the Windows branch has not been run; CI runs on Linux.
    def _lock_file(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock_file(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def run_sort_key(run_id: str) -> tuple[str, int, str]:
    """Sort run ids by start time, then by their numeric suffix (``-02`` before ``-10``)."""
    match = _RUN_ID.match(run_id)
    if not match:
        return ("", 0, run_id)
    return (match.group("base"), int(match.group("suffix") or 0), run_id)


def run_dirs(engagement_dir: Path) -> list[Path]:
    """Return the run folders of an engagement, oldest first."""
    folder = engagement_dir / RUNS_FOLDER
    if not folder.is_dir():
        return []
    return sorted((path for path in folder.iterdir() if path.is_dir()), key=lambda path: run_sort_key(path.name))


def create_run_dir(engagement_dir: Path, timezone: Any, now: dt.datetime | None = None) -> Path:
    """Create a new, empty run folder named after the current time in ``timezone``.

    The folder is created with ``exist_ok=False``, so an existing run is never
    reused; a taken name gets the next suffix.

    Raises
    ------
    RunError
        When runs/ is a file or cannot be written, or all suffixes up to -99
        of this second are taken.
    """
    runs = engagement_dir / RUNS_FOLDER
    if runs.exists() and not runs.is_dir():
        raise RunError("runner.runs_not_folder", folder=str(runs))
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError("runner.runs_unwritable", folder=str(runs), reason=exc.strerror or type(exc).__name__) from None
    base = (now or dt.datetime.now(timezone)).astimezone(timezone).strftime("%Y%m%d-%H%M%S")
    for suffix in range(_MAX_SUFFIX + 1):
        candidate = runs / (base if suffix == 0 else f"{base}-{suffix:02d}")
        try:
            candidate.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        except OSError as exc:
            # A read-only or immutable runs/ folder.
            raise RunError("runner.runs_unwritable", folder=str(runs), reason=exc.strerror or type(exc).__name__) from None
        return candidate
    raise RunError("runner.run_id_exhausted", folder=str(runs), run_id=base)


class RunLog:
    """Timestamped lines in run.log, mirrored to the module logger at INFO.

    Stage progress and failures reach the caller through the ``progress``
    callback and :class:`RunResult`, so the logger repeats them only at INFO.
    A line written with ``alert=True`` keeps its level in the logger too, for
    warnings that nothing else reports.

    Lines carry stage names, statuses, durations and error messages. Never
    pass parameter values or data to it, because run.log must stay free of
    personal data and of the pseudonym key.
    """

    def __init__(self, path: Path, timezone: Any) -> None:
        self.path = path
        self.timezone = timezone
        self._handle: TextIO = path.open("a", encoding="utf-8")

    def write(self, level: int, key: str, *, alert: bool = False, **params: Any) -> None:
        message = tr(key, **params)
        stamp = dt.datetime.now(self.timezone).isoformat(timespec="milliseconds")
        self._handle.write(f"{stamp} {logging.getLevelName(level)} {message}\n")
        self._handle.flush()
        logger.log(level if alert else logging.INFO, message)

    def close(self) -> None:
        self._handle.close()


# --------------------------------------------------------------------------- selection and parameters


def _stage_parameters(engagement: Engagement, stage: Stage, overrides: Mapping[str, Any]) -> dict[str, Any]:
    params = {**engagement.stage(stage.key).params, **overrides}
    if RUN_DIR_PARAMETER in params:
        raise ConfigError("runner.param_reserved", stage=stage.key, name=RUN_DIR_PARAMETER)
    return normalize_parameters(params)


# --------------------------------------------------------------------------- reuse


def find_reusable_run(engagement_dir: Path, keys: Sequence[str]) -> tuple[Path, dict[str, Any]] | None:
    """Return the latest succeeded run whose stages ``keys`` all completed (see ``USABLE``)."""
    for run_dir in reversed(run_dirs(engagement_dir)):
        try:
            manifest = read_manifest(run_dir)
        except RunError:
            continue
        if manifest.get("status") != "succeeded":
            continue
        entries = {entry.get("key"): entry for entry in manifest.get("stages", [])}
        if all(entries.get(key, {}).get("status") in USABLE for key in keys):
            return run_dir, manifest
    return None


def _stage_files(source_manifest: dict[str, Any], key: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    entry = next(item for item in source_manifest["stages"] if item["key"] == key)
    records = [entry["executed_notebook"], *entry.get("artifacts", []), *entry.get("reports", [])]
    return entry, [record for record in records if record]


def verify_reusable(source_run: Path, source_manifest: dict[str, Any], keys: Sequence[str]) -> None:
    """Check that the files of stages ``keys`` in ``source_run`` still match its manifest.

    Raises
    ------
    RunError
        When a file is missing or its sha256 differs from the manifest.
    """
    for key in keys:
        for record in _stage_files(source_manifest, key)[1]:
            source = source_run / record["path"]
            if not source.is_file() or sha256_file(source) != record["sha256"]:
                raise RunError("runner.reuse_hash_mismatch", file=str(source), run=source_run.name)


def _reuse_stage(stage: Stage, source_run: Path, source_manifest: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    # The files were checked against the source manifest by verify_reusable before the run began.
    entry, records = _stage_files(source_manifest, stage.key)
    for record in records:
        target = run_dir / record["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source_run / record["path"], target)
    reused = {
        "key": stage.key,
        "id": stage.id,
        "notebook": entry.get("notebook"),
        "depends_on": list(stage.depends_on),
        "status": "reused",
        "reused_from": source_run.name,
        "origin_run": entry.get("origin_run") or entry.get("reused_from") or source_run.name,
        "params": entry.get("params"),
        "started_at": entry.get("started_at"),
        "ended_at": entry.get("ended_at"),
        "duration_seconds": entry.get("duration_seconds"),
        "executed_notebook": entry["executed_notebook"],
        "artifacts": entry.get("artifacts", []),
        "reports": entry.get("reports", []),
        "error": None,
    }
    if entry.get("skip_reason"):
        # The stage had nothing to do in the run it comes from; keep saying why.
        reused["skip_reason"] = entry["skip_reason"]
    return reused


def _comparable_inputs(inputs: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (item.get("source"), item.get("sha256"), json.dumps(item.get("files")), item.get("sql")) for item in inputs
    )


# --------------------------------------------------------------------------- the run


def _now(timezone: Any) -> dt.datetime:
    return dt.datetime.now(timezone)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _pending_entry(stage: Stage, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": stage.key,
        "id": stage.id,
        "notebook": str(stage.notebook_path),
        "depends_on": list(stage.depends_on),
        "status": "pending",
        "params": params,
        "started_at": None,
        "ended_at": None,
        "duration_seconds": None,
        "executed_notebook": None,
        "artifacts": [],
        "reports": [],
        "error": None,
    }


def _file_record(path: Path, root: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    return {"path": _relative(path, root), "size": path.stat().st_size, "sha256": sha256_file(path)}


def run_engagement(
    path: str | Path,
    stages: Sequence[str] | None = None,
    from_stage: str | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    registry: Sequence[Stage] | None = None,
    cell_timeout: float | None = DEFAULT_CELL_TIMEOUT,
    progress: Callable[[StageEvent], None] | None = None,
    progress_bar: bool = False,
) -> RunResult:
    """Run an engagement's stages into a new run folder and write its manifest.

    Parameters
    ----------
    path : str or Path
        Engagement folder (or its engagement.yaml).
    stages : sequence of str, optional
        Stage keys or ids to run; default every stage enabled in engagement.yaml.
    from_stage : str, optional
        Run this stage and the enabled ones after it; the earlier stages'
        artifacts and executed notebooks are copied from the latest
        succeeded run.
    overrides : mapping, optional
        ``{stage: {parameter: value}}``, applied over ``stages.<key>.params``
        of engagement.yaml.
    registry : sequence of Stage, optional
        Stage registry; default :data:`relmap_utils.stages.STAGES`.
    cell_timeout : float or None, default=4 hours
        Seconds one notebook cell may run.
    progress : callable, optional
        Called with a :class:`StageEvent` when a stage starts and ends.
    progress_bar : bool, default=False
        Show Papermill's per-cell progress bar.

    Returns
    -------
    RunResult
        ``status`` is ``"failed"`` when a stage failed; the failed stage's
        executed notebook is kept and its downstream stages are skipped.

    Raises
    ------
    ConfigError
        engagement.yaml, a stage name or a parameter is invalid.
    PrivacyError
        The pseudonym key variable is not set.
    RunError
        Another run of the engagement holds the lock, a stage notebook has
        no ``parameters`` cell, or stages to reuse have no succeeded run.
        None of these creates a run folder.
    """
    config_path = engagement_file(path)
    engagement = load_engagement(config_path)
    engagement_dir = config_path.parent
    set_locale(engagement.locale)
    timezone = engagement.tz

    stage_list = list(available_stages(registry))
    if not stage_list:
        raise RunError("runner.no_stages")
    plan = plan_stages(stage_list, engagement, stages, from_stage)
    extra = merge_overrides(list(registry) if registry is not None else registered_stages(), overrides)
    for key in sorted(set(extra) - {stage.key for stage in plan.run}):
        logger.warning("parameters given for stage %s, which this run does not execute", key)
    params = {stage.key: _stage_parameters(engagement, stage, extra.get(stage.key, {})) for stage in plan.run}
    for stage in plan.run:
        check_parameters_cell(stage.notebook_path, {RUN_DIR_PARAMETER: "", **params[stage.key]})
    key_record = pseudonym_key_record(engagement)

    with EngagementLock(engagement_dir, engagement.name, timezone):
        source: tuple[Path, dict[str, Any]] | None = None
        if plan.reuse:
            source = find_reusable_run(engagement_dir, [stage.key for stage in plan.reuse])
            if source is None:
                raise RunError(
                    "runner.no_reusable_run",
                    engagement=engagement.name,
                    stages=", ".join(stage.key for stage in plan.reuse),
                )
            verify_reusable(*source, [stage.key for stage in plan.reuse])
            # Pseudonyms made with another key would not join with this run's.
            source_key = source[1].get("pseudonym_key", {}).get("fingerprint")
            if source_key != key_record["fingerprint"]:
                raise RunError(
                    "runner.reuse_key_mismatch",
                    run=source[0].name,
                    variable=key_record["env"],
                    source_fingerprint=source_key or "-",
                    fingerprint=key_record["fingerprint"],
                )
        run_dir = create_run_dir(engagement_dir, timezone)
        return _execute_run(
            engagement, engagement_dir, config_path, run_dir, plan, params, source, key_record,
            stages=stages, from_stage=from_stage, overrides=extra, cell_timeout=cell_timeout,
            progress=progress, progress_bar=progress_bar,
        )  # fmt: skip


def _execute_run(
    engagement: Engagement,
    engagement_dir: Path,
    config_path: Path,
    run_dir: Path,
    plan: StagePlan,
    params: dict[str, dict[str, Any]],
    source: tuple[Path, dict[str, Any]] | None,
    key_record: dict[str, Any],
    *,
    stages: Sequence[str] | None,
    from_stage: str | None,
    overrides: dict[str, dict[str, Any]],
    cell_timeout: float | None,
    progress: Callable[[StageEvent], None] | None,
    progress_bar: bool,
) -> RunResult:
    timezone = engagement.tz
    started = _now(timezone)
    clock = time.monotonic()
    shutil.copy2(config_path, run_dir / CONFIG_FILE)
    for folder in ("executed", "artifacts", "reports"):
        (run_dir / folder).mkdir()
    log = RunLog(run_dir / RUN_LOG, timezone)
    log.write(logging.INFO, "runner.log.run_start", run_id=run_dir.name, engagement=engagement.name)

    inputs = describe_inputs(engagement, engagement_dir)
    entries: dict[str, dict[str, Any]] = {}
    for stage in plan.reuse:
        entries[stage.key] = _pending_entry(stage, {})
    for stage in plan.run:
        entries[stage.key] = _pending_entry(stage, {RUN_DIR_PARAMETER: str(run_dir), **params[stage.key]})
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_dir.name,
        "status": "running",
        "engagement": {"name": engagement.name, "client": engagement.client, "path": str(engagement_dir)},
        "started_at": started.isoformat(timespec="seconds"),
        "ended_at": None,
        "duration_seconds": None,
        "timezone": engagement.timezone,
        # config.locale is the language engagement.yaml sets, but RELMAP_LANG overrides it
        # for messages and reports (relmap_utils.i18n). The reviewer needs to know which applied.
        "locale_effective": get_locale(),
        "request": {"stages": list(stages) if stages else None, "from_stage": from_stage, "overrides": overrides},
        "config_file": {"path": CONFIG_FILE, "sha256": sha256_file(run_dir / CONFIG_FILE)},
        "config": engagement.model_dump(mode="json"),
        "inputs": inputs,
        "pseudonym_key": key_record,
        "environment": environment_record(),
        "code": code_record(),
        "kernel": KERNEL_NAME,
        "cell_timeout_seconds": cell_timeout,
        "stages": list(entries.values()),
    }
    write_manifest(run_dir, manifest)

    failure: RelmapError | None = None
    try:
        if source is not None:
            _reuse_all(plan.reuse, source, run_dir, manifest, entries, log)
        failure = _run_all(plan, run_dir, timezone, entries, manifest, log, cell_timeout, progress, progress_bar)
    except BaseException as exc:
        # A bug or Ctrl-C: record the abort in the manifest, then re-raise.
        for entry in entries.values():
            if entry["status"] in ("pending", "running"):
                entry["status"] = "failed" if entry["status"] == "running" else "skipped"
                entry["error"] = entry["error"] or {"kind": "interrupted", "ename": type(exc).__name__, "evalue": ""}
        _finish(manifest, run_dir, "failed", started, clock, timezone)
        log.write(logging.ERROR, "runner.log.run_aborted", error=type(exc).__name__)
        log.close()
        raise

    status = "failed" if failure is not None else "succeeded"
    _finish(manifest, run_dir, status, started, clock, timezone)
    digest = sha256_file(run_dir / MANIFEST_FILE)
    seconds = f"{manifest['duration_seconds']:.1f}"
    log.write(logging.INFO, "runner.log.run_end", status=tr(f"runner.status.{status}"), seconds=seconds)
    log.write(logging.INFO, "runner.log.manifest_sha256", sha256=digest)
    log.close()
    return RunResult(run_dir.name, run_dir, status, run_dir / MANIFEST_FILE, digest, manifest["stages"], failure)


def _finish(
    manifest: dict[str, Any], run_dir: Path, status: str, started: dt.datetime, clock: float, timezone: Any
) -> None:
    manifest["status"] = status
    manifest["ended_at"] = _now(timezone).isoformat(timespec="seconds")
    manifest["duration_seconds"] = round(time.monotonic() - clock, 3)
    write_manifest(run_dir, manifest)


def _reuse_all(
    reuse: Sequence[Stage],
    source: tuple[Path, dict[str, Any]],
    run_dir: Path,
    manifest: dict[str, Any],
    entries: dict[str, dict[str, Any]],
    log: RunLog,
) -> None:
    source_run, source_manifest = source
    if _comparable_inputs(source_manifest.get("inputs", [])) != _comparable_inputs(manifest["inputs"]):
        log.write(logging.WARNING, "runner.log.reuse_inputs_changed", alert=True, run_id=source_run.name)
    for stage in reuse:
        entries[stage.key].update(_reuse_stage(stage, source_run, source_manifest, run_dir))
        log.write(logging.INFO, "runner.log.stage_reused", stage=stage.id, run_id=source_run.name)
    manifest["stages"] = list(entries.values())
    write_manifest(run_dir, manifest)


def _run_all(
    plan: StagePlan,
    run_dir: Path,
    timezone: Any,
    entries: dict[str, dict[str, Any]],
    manifest: dict[str, Any],
    log: RunLog,
    cell_timeout: float | None,
    progress: Callable[[StageEvent], None] | None,
    progress_bar: bool,
) -> RelmapError | None:
    """Execute the planned stages in order; return the first failure."""
    failure: RelmapError | None = None
    total = len(plan.run)
    for index, stage in enumerate(plan.run, start=1):
        entry = entries[stage.key]
        blocked = [key for key in stage.depends_on if entries.get(key, {}).get("status") not in USABLE]
        if blocked:
            entry["status"] = "skipped"
            entry["skipped_because"] = blocked
            log.write(logging.WARNING, "runner.log.stage_skipped", stage=stage.id, upstream=", ".join(blocked))
            _notify(progress, StageEvent("end", index, total, stage, "skipped", 0.0))
            write_manifest(run_dir, manifest)
            continue

        _notify(progress, StageEvent("start", index, total, stage))
        log.write(logging.INFO, "runner.log.stage_start", stage=stage.id, index=index, total=total)
        entry["status"] = "running"
        entry["started_at"] = _now(timezone).isoformat(timespec="seconds")
        write_manifest(run_dir, manifest)
        reports_before = _snapshot(run_dir / "reports")
        output = run_dir / "executed" / f"{stage.id}.ipynb"
        clock = time.monotonic()
        error: RelmapError | None = None
        try:
            with filter_kernel_shutdown_noise():
                execute_notebook(
                    stage.notebook_path, output, entry["params"], cwd=run_dir, timeout=cell_timeout,
                    progress_bar=progress_bar,
                )  # fmt: skip
        except NotebookFailedError as exc:
            error = exc
            entry["error"] = exc.as_dict()
        except RelmapError as exc:
            error = exc
            entry["error"] = {"kind": "error", "ename": type(exc).__name__, "evalue": exc.render("en"), "key": exc.key}
        elapsed = time.monotonic() - clock

        skip_reason = None if error else stage_skip_reason(run_dir, stage.id)
        entry["status"] = "failed" if error else NOTHING_TO_DO if skip_reason else "succeeded"
        if skip_reason:
            entry["skip_reason"] = skip_reason
        entry["ended_at"] = _now(timezone).isoformat(timespec="seconds")
        entry["duration_seconds"] = round(elapsed, 3)
        entry["executed_notebook"] = _file_record(output, run_dir)
        entry["artifacts"] = describe_files(run_dir, run_dir / "artifacts" / stage.id)
        entry["reports"] = [
            _file_record(run_dir / "reports" / name, run_dir)
            for name, stamp in sorted(_snapshot(run_dir / "reports").items())
            if reports_before.get(name) != stamp
        ]
        write_manifest(run_dir, manifest)
        reason_text = skip_reason_text(skip_reason, get_locale()) if skip_reason else None
        if skip_reason:
            log.write(logging.INFO, "runner.log.stage_nothing_to_do", stage=stage.id, seconds=f"{elapsed:.1f}",
                      reason=reason_text)
        elif error is None:
            log.write(logging.INFO, "runner.log.stage_end", stage=stage.id, seconds=f"{elapsed:.1f}")
        else:
            failure = failure or error
            log.write(
                logging.ERROR, "runner.log.stage_failed", stage=stage.id, seconds=f"{elapsed:.1f}", error=str(error)
            )
        _notify(progress, StageEvent("end", index, total, stage, entry["status"], elapsed, reason_text))
    return failure


# --------------------------------------------------------------------------- kernel stderr

# jupyter_client 8.10 sends the kernel SIGINT before every shutdown request
# (KernelManager._async_shutdown_kernel), also after a notebook finished
# normally. When the signal lands while ipykernel 7 handles a message, the
# kernel logs this line to the stderr it shares with relmap. It reports the
# shutdown, not a problem of the stage, so it is kept from the user.
_KERNEL_SHUTDOWN_NOISE = re.compile(rb"^\[IPKernelApp\][^\n]*KeyboardInterrupt caught in kernel\.?\s*$")
_ANSI_ESCAPE = re.compile(rb"\x1b\[[0-9;]*m")
_NOISE_PREFIX = b"[IPKernelApp]"
_READ_SIZE = 4096
_FORWARD_JOIN_SECONDS = 2.0


def is_kernel_shutdown_noise(line: bytes) -> bool:
    """Return True for the kernel's "KeyboardInterrupt caught in kernel" log line, with or without colour codes."""
    return bool(_KERNEL_SHUTDOWN_NOISE.match(_ANSI_ESCAPE.sub(b"", line).strip()))


class _StderrFilter:
    """Copy bytes from a pipe to a file descriptor, leaving out kernel shutdown noise lines.

    Complete lines are checked one by one. A partial line (a progress bar
    redrawn with ``\r``) is passed on at once unless it may still become a
    noise line, so progress output is not delayed.
    """

    def __init__(self, read_fd: int, target_fd: int) -> None:
        self.read_fd = read_fd
        self.target_fd = target_fd
        self.hidden = 0

    def run(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.read_fd, _READ_SIZE)
            except OSError:
                break
            if not chunk:
                break
            pending = self._forward(pending + chunk)
        if pending:
            self._write(self._without_noise(pending))
        os.close(self.read_fd)

    def _forward(self, data: bytes) -> bytes:
        # A progress bar ends its updates with "\r", so a kernel line can follow one on the same line.
        lines = data.split(b"\n")
        tail = lines.pop()
        shown = []
        for line in lines:
            kept = self._without_noise(line)
            if kept or not line:
                shown.append(kept + b"\n")
        head, separator, last = tail.rpartition(b"\r")
        start = _ANSI_ESCAPE.sub(b"", last).lstrip()
        if _NOISE_PREFIX.startswith(start[: len(_NOISE_PREFIX)]) or start.startswith(_NOISE_PREFIX):
            # The last segment may still become a noise line: hold it back until more arrives.
            shown.append(self._without_noise(head + separator) if separator else b"")
            tail = last
        else:
            shown.append(self._without_noise(tail))
            tail = b""
        text = b"".join(shown)
        if text:
            self._write(text)
        return tail

    def _without_noise(self, line: bytes) -> bytes:
        segments = line.split(b"\r")
        kept = [segment for segment in segments if not is_kernel_shutdown_noise(segment)]
        self.hidden += len(segments) - len(kept)
        return b"\r".join(kept)

    def _write(self, data: bytes) -> None:
        while data:
            try:
                written = os.write(self.target_fd, data)
            except OSError:
                return
            data = data[written:]


@contextlib.contextmanager
def filter_kernel_shutdown_noise() -> Iterator[None]:
    """Route file descriptor 2 through a filter that drops the kernel's shutdown KeyboardInterrupt line.

    The kernel process inherits descriptor 2 when it starts, so its own
    stderr passes through the filter too. Every other line, real kernel
    errors included, reaches the original stderr unchanged, and a dead kernel
    is still reported by nbclient, which does not read stderr.
    """
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (OSError, ValueError):
        # No usable stderr (a closed descriptor): nothing to filter.
        yield
        return
    read_fd, write_fd = os.pipe()
    forward_fd = os.dup(original)
    stream = _StderrFilter(read_fd, forward_fd)
    thread = threading.Thread(target=stream.run, name="relmap-kernel-stderr", daemon=True)
    thread.start()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            sys.stderr.flush()
        os.dup2(original, 2)
        os.close(original)
        # The pipe ends once no process holds its write end; a kernel child
        # that outlives the run keeps it open, so do not wait for ever.
        thread.join(_FORWARD_JOIN_SECONDS)
        if not thread.is_alive():
            os.close(forward_fd)
        if stream.hidden:
            logger.debug("hid %d kernel shutdown KeyboardInterrupt line(s)", stream.hidden)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    if not folder.is_dir():
        return {}
    return {
        path.relative_to(folder).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file()
    }


def _notify(progress: Callable[[StageEvent], None] | None, event: StageEvent) -> None:
    if progress is not None:
        progress(event)


# --------------------------------------------------------------------------- history


def list_runs(path: str | Path) -> list[RunSummary]:
    """Summarize every run folder of an engagement, oldest first.

    A run whose manifest still has status ``running`` while no process holds
    the engagement lock was interrupted, and is reported as ``interrupted``.
    A folder whose manifest cannot be read is reported as ``unreadable``.
    """
    engagement_dir = engagement_file(path).parent
    lock_free = _lock_is_free(engagement_dir)
    summaries = []
    for run_dir in run_dirs(engagement_dir):
        try:
            manifest = read_manifest(run_dir)
        except RunError:
            summaries.append(RunSummary(run_dir.name, run_dir, "unreadable", None, None))
            continue
        status = str(manifest.get("status", "unknown"))
        if status == "running" and lock_free:
            status = "interrupted"
        summaries.append(
            RunSummary(
                run_dir.name,
                run_dir,
                status,
                manifest.get("started_at"),
                manifest.get("duration_seconds"),
                stage_counts(manifest.get("stages", [])),
                [
                    str(entry.get("id") or entry.get("key"))
                    for entry in manifest.get("stages", [])
                    if isinstance(entry, dict) and (entry.get("status") == NOTHING_TO_DO or entry.get("skip_reason"))
                ],
            )
        )
    return summaries


def _lock_is_free(engagement_dir: Path) -> bool:
    if not (engagement_dir / LOCK_FILE).exists():
        return True
    try:
        with EngagementLock(engagement_dir, engagement_dir.name):
            return True
    except RunError:
        return False
