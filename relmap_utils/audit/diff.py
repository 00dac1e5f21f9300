"""``relmap audit diff RUN_A RUN_B``: what changed between two runs.

Compared, from the two manifests and run folders:

- parameters of each stage (``run_dir`` left out, it always differs);
- the configuration apart from stage parameters (sources, mapping, privacy);
- inputs: added, removed, or with another sha256 or size;
- code version (relmap version, source hash, git commit) and package versions;
- headline metrics: the numbers in each stage's ``artifacts/<stage>/summary.json``;
- executed notebooks, cell by cell, with nbdime.

Executed notebooks always differ in the run folder path, timestamps, elapsed
times and the random ids of chart containers. Those are replaced by
placeholders before the comparison, so a notebook is reported as changed only
when its code or what it printed changed otherwise. Personal data in any
value shown is masked.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from relmap_utils.audit.notebooks import read_notebook_json
from relmap_utils.audit.pii_scan import mask_personal
from relmap_utils.audit.run_folder import open_run

logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
RUN_DIR_PARAMETER = "run_dir"
MAX_LINES_PER_PART = 8
MAX_CELLS_PER_NOTEBOOK = 10
MAX_LINE_WIDTH = 120
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
# Elapsed times in log lines ("profiled table x in 0.3 s", "（16.3 秒）").
_DURATION = re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]+)? ?(?:ms|s|秒)(?![A-Za-z])")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PLOTLY_JSON = "application/vnd.plotly.v1+json"


@dataclass
class Change:
    """One value that differs: ``name`` in section ``group`` went from ``before`` to ``after``.

    ``before`` or ``after`` is None when the value exists in one run only.
    """

    group: str
    name: str
    before: Any
    after: Any


@dataclass
class MetricRow:
    """A headline metric of a stage in both runs; ``delta`` is set for numbers present in both."""

    stage: str
    metric: str
    before: float | None
    after: float | None
    delta: float | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass
class CellChange:
    """A cell that differs: ``kind`` is ``changed``, ``added`` or ``removed``; ``lines`` are ``-``/``+`` lines."""

    cell_a: int | None
    cell_b: int | None
    kind: str
    lines: list[str] = field(default_factory=list)


@dataclass
class NotebookDiff:
    """Comparison of one stage's executed notebooks.

    ``status`` is ``same``, ``changed``, ``only_a``, ``only_b``,
    ``unreadable`` or ``not_compared`` (nbdime is not installed).
    """

    stage: str
    status: str
    cells: list[CellChange] = field(default_factory=list)
    more_cells: int = 0


@dataclass
class RunDiff:
    """Outcome of :func:`diff_runs`."""

    run_a: str
    run_b: str
    path_a: str
    path_b: str
    parameters: list[Change] = field(default_factory=list)
    config: list[Change] = field(default_factory=list)
    inputs: list[Change] = field(default_factory=list)
    code: list[Change] = field(default_factory=list)
    packages: list[Change] = field(default_factory=list)
    metrics: list[MetricRow] = field(default_factory=list)
    notebooks: list[NotebookDiff] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the comparison for ``--json``."""
        return asdict(self)


def diff_runs(path_a: str | Path, path_b: str | Path) -> RunDiff:
    """Compare two run folders.

    Parameters
    ----------
    path_a, path_b : str or Path
        Run folders; A is the earlier or reference run.

    Returns
    -------
    RunDiff

    Raises
    ------
    RunError
        When either folder is not a run or its manifest cannot be read.
    """
    dir_a, manifest_a = open_run(path_a)
    dir_b, manifest_b = open_run(path_b)
    logger.info("comparing runs %s and %s", dir_a, dir_b)
    result = RunDiff(str(manifest_a.get("run_id")), str(manifest_b.get("run_id")), str(dir_a), str(dir_b))

    result.parameters = _compare_parameters(manifest_a, manifest_b)
    config_a = {key: value for key, value in (manifest_a.get("config") or {}).items() if key != "stages"}
    config_b = {key: value for key, value in (manifest_b.get("config") or {}).items() if key != "stages"}
    result.config = _compare_flat("config", _flatten(config_a), _flatten(config_b))
    result.inputs = _compare_inputs(manifest_a.get("inputs") or [], manifest_b.get("inputs") or [])
    result.code = _compare_flat("code", _flatten(manifest_a.get("code") or {}), _flatten(manifest_b.get("code") or {}))
    result.packages = _compare_packages(manifest_a.get("environment") or {}, manifest_b.get("environment") or {})
    result.metrics = _compare_metrics(dir_a, manifest_a, dir_b, manifest_b)
    result.notebooks = _compare_notebooks(dir_a, manifest_a, dir_b, manifest_b)
    return result


# --------------------------------------------------------------------------- values


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys; lists stay whole values."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value} if prefix else {}


def _compare_flat(group: str, before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    return [
        Change(group, name, before.get(name), after.get(name))
        for name in sorted(set(before) | set(after))
        if _same_json(before.get(name), after.get(name)) is False
    ]


def _same_json(left: Any, right: Any) -> bool:
    return json.dumps(left, sort_keys=True, default=str) == json.dumps(right, sort_keys=True, default=str)


def _stages_by_id(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(stage.get("id") or stage.get("key")): stage for stage in manifest.get("stages") or []}


def _compare_parameters(manifest_a: dict[str, Any], manifest_b: dict[str, Any]) -> list[Change]:
    stages_a, stages_b = _stages_by_id(manifest_a), _stages_by_id(manifest_b)
    changes: list[Change] = []
    for stage in _ordered_union(stages_a, stages_b):
        params_a = dict((stages_a.get(stage) or {}).get("params") or {})
        params_b = dict((stages_b.get(stage) or {}).get("params") or {})
        params_a.pop(RUN_DIR_PARAMETER, None)
        params_b.pop(RUN_DIR_PARAMETER, None)
        changes.extend(_compare_flat(stage, params_a, params_b))
    return changes


def _ordered_union(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    return list(first) + [key for key in second if key not in first]


def _compare_inputs(inputs_a: list[dict[str, Any]], inputs_b: list[dict[str, Any]]) -> list[Change]:
    def fingerprint(entry: dict[str, Any]) -> dict[str, Any]:
        if "sql" in entry and not entry.get("path"):
            return {"sql": entry.get("sql")}
        if "files" in entry:
            return {"path": entry.get("path"), "files": {f["path"]: f.get("sha256") for f in entry["files"]}}
        return {"path": entry.get("path"), "size": entry.get("size"), "sha256": entry.get("sha256"),
                "missing": entry.get("missing", False)}  # fmt: skip

    by_source_a = {str(entry.get("source")): fingerprint(entry) for entry in inputs_a}
    by_source_b = {str(entry.get("source")): fingerprint(entry) for entry in inputs_b}
    return [
        Change("inputs", source, by_source_a.get(source), by_source_b.get(source))
        for source in _ordered_union(by_source_a, by_source_b)
        if not _same_json(by_source_a.get(source), by_source_b.get(source))
    ]


def _compare_packages(environment_a: dict[str, Any], environment_b: dict[str, Any]) -> list[Change]:
    versions_a = {"python": environment_a.get("python"), **(environment_a.get("packages") or {})}
    versions_b = {"python": environment_b.get("python"), **(environment_b.get("packages") or {})}
    return _compare_flat("packages", versions_a, versions_b)


# --------------------------------------------------------------------------- metrics


def read_summary(run_dir: Path, stage_id: str) -> dict[str, Any] | None:
    """Return a stage's ``artifacts/<stage>/summary.json``, or None when it is absent or not a JSON object."""
    path = run_dir / "artifacts" / stage_id / SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return content if isinstance(content, dict) else None


def headline_metrics(summary: dict[str, Any] | None) -> dict[str, float]:
    """Return the numbers of a summary.json as dotted names, leaving out its ``parameters``.

    Lists (such as headline findings) and text are not metrics. Booleans are
    left out as well.
    """
    if not summary:
        return {}
    flat = _flatten({key: value for key, value in summary.items() if key != "parameters"})
    return {
        name: value
        for name, value in flat.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def _compare_metrics(
    dir_a: Path, manifest_a: dict[str, Any], dir_b: Path, manifest_b: dict[str, Any]
) -> list[MetricRow]:
    rows: list[MetricRow] = []
    for stage in _ordered_union(_stages_by_id(manifest_a), _stages_by_id(manifest_b)):
        metrics_a = headline_metrics(read_summary(dir_a, stage))
        metrics_b = headline_metrics(read_summary(dir_b, stage))
        for name in _ordered_union(metrics_a, metrics_b):
            before, after = metrics_a.get(name), metrics_b.get(name)
            delta = None if before is None or after is None else round(after - before, 10)
            rows.append(MetricRow(stage, name, before, after, delta))
    return rows


# --------------------------------------------------------------------------- notebooks


def _normalize_text(text: str, replacements: list[tuple[str, str]]) -> str:
    for old, new in replacements:
        if old:
            text = text.replace(old, new)
    text = _TIMESTAMP.sub("<time>", text)
    text = _DURATION.sub("<seconds>", text)
    return _UUID.sub("<uuid>", text)


def _joined(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _normalize_output(output: dict[str, Any], replacements: list[tuple[str, str]]) -> dict[str, Any]:
    kept: dict[str, Any] = {"output_type": output.get("output_type")}
    if output.get("output_type") == "stream":
        kept["name"] = output.get("name")
        kept["text"] = _normalize_text(_joined(output.get("text")), replacements)
    elif output.get("output_type") == "error":
        kept["ename"] = output.get("ename")
        kept["evalue"] = _normalize_text(str(output.get("evalue", "")), replacements)
        kept["traceback"] = []
    data = dict(output.get("data") or {})
    if _PLOTLY_JSON in data:
        # The HTML of a Plotly figure repeats its JSON with a random container id.
        data.pop("text/html", None)
    if data:
        kept["data"] = {
            mime: (_normalize_text(json.dumps(value, sort_keys=True, ensure_ascii=False), replacements)
                   if isinstance(value, (dict, list)) else _normalize_text(_joined(value), replacements))
            for mime, value in sorted(data.items())
        }  # fmt: skip
    return kept


def normalized_notebook(notebook: dict[str, Any], replacements: list[tuple[str, str]]) -> Any:
    """Return the notebook reduced to cell types, sources and outputs, with run-specific text replaced.

    Metadata (timings, Papermill status, cell ids) is dropped. The run folder
    path becomes ``<run_dir>`` and the run id ``<run_id>``. Timestamps become
    ``<time>``, elapsed times such as ``0.3 s`` become ``<seconds>``, and
    UUIDs become ``<uuid>``.
    """
    import nbformat

    cells = []
    for cell in notebook.get("cells", []):
        kept: dict[str, Any] = {
            "cell_type": cell.get("cell_type"),
            "metadata": {},
            "source": _normalize_text(_joined(cell.get("source")), replacements),
        }
        if cell.get("cell_type") == "code":
            kept["execution_count"] = None
            kept["outputs"] = [_normalize_output(output, replacements) for output in cell.get("outputs") or []]
        cells.append(kept)
    return nbformat.from_dict({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


def _replacements(run_dir: Path, manifest: dict[str, Any], stage: dict[str, Any]) -> list[tuple[str, str]]:
    folders = {str(run_dir), str((stage.get("params") or {}).get(RUN_DIR_PARAMETER) or "")}
    origin = str(stage.get("origin_run") or "")
    pairs = [(folder, "<run_dir>") for folder in sorted(folders, key=len, reverse=True) if folder]
    pairs += [(str(manifest.get("run_id") or ""), "<run_id>"), (origin, "<run_id>")]
    return pairs


def _compare_notebooks(
    dir_a: Path, manifest_a: dict[str, Any], dir_b: Path, manifest_b: dict[str, Any]
) -> list[NotebookDiff]:
    stages_a, stages_b = _stages_by_id(manifest_a), _stages_by_id(manifest_b)
    try:
        import nbdime  # noqa: F401
    except ImportError:
        logger.info("nbdime is not installed; executed notebooks are not compared")
        return [NotebookDiff(stage, "not_compared") for stage in _ordered_union(stages_a, stages_b)]

    results = []
    for stage in _ordered_union(stages_a, stages_b):
        notebook_a = _load_stage_notebook(dir_a, stages_a.get(stage))
        notebook_b = _load_stage_notebook(dir_b, stages_b.get(stage))
        if notebook_a is None and notebook_b is None:
            continue
        if notebook_a is None or notebook_b is None:
            results.append(NotebookDiff(stage, "only_b" if notebook_a is None else "only_a"))
            continue
        if notebook_a is False or notebook_b is False:
            results.append(NotebookDiff(stage, "unreadable"))
            continue
        base = normalized_notebook(notebook_a, _replacements(dir_a, manifest_a, stages_a[stage]))
        remote = normalized_notebook(notebook_b, _replacements(dir_b, manifest_b, stages_b[stage]))
        results.append(diff_notebook_cells(stage, base, remote))
    return results


def _load_stage_notebook(run_dir: Path, stage: dict[str, Any] | None) -> Any:
    """Return the parsed notebook, None when the stage has none, False when it cannot be read."""
    record = (stage or {}).get("executed_notebook")
    if not isinstance(record, dict) or not (run_dir / str(record.get("path"))).is_file():
        return None
    notebook = read_notebook_json(run_dir / record["path"])
    return False if notebook is None else notebook


def diff_notebook_cells(stage: str, base: Any, remote: Any) -> NotebookDiff:
    """Compare two normalized notebooks with nbdime and describe the changed cells briefly.

    Each changed cell lists at most :data:`MAX_LINES_PER_PART` changed lines
    of its source and of its outputs, each cut at :data:`MAX_LINE_WIDTH`
    characters, and at most :data:`MAX_CELLS_PER_NOTEBOOK` cells are listed.
    """
    from nbdime import diff_notebooks
    from nbdime.patching import patch

    cell_ops = next((entry["diff"] for entry in diff_notebooks(base, remote) if entry["key"] == "cells"), [])
    if not cell_ops:
        return NotebookDiff(stage, "same")

    changes: list[CellChange] = []
    offset = 0
    for entry in sorted(cell_ops, key=lambda item: (item["key"], item["op"] != "removerange")):
        index = entry["key"]
        if entry["op"] == "addrange":
            for position, cell in enumerate(entry["valuelist"]):
                changes.append(CellChange(None, index + offset + position + 1, "added", _cell_lines(None, cell)))
            offset += len(entry["valuelist"])
        elif entry["op"] == "removerange":
            for position in range(entry["length"]):
                cell = base.cells[index + position]
                changes.append(CellChange(index + position + 1, None, "removed", _cell_lines(cell, None)))
            offset -= entry["length"]
        elif entry["op"] == "patch":
            before = base.cells[index]
            after = patch(before, entry["diff"])
            changes.append(CellChange(index + 1, index + offset + 1, "changed", _cell_lines(before, after)))
    listed = changes[:MAX_CELLS_PER_NOTEBOOK]
    return NotebookDiff(stage, "changed", listed, len(changes) - len(listed))


def _cell_text(cell: Any) -> tuple[list[str], list[str]]:
    if cell is None:
        return [], []
    source = str(cell.get("source", "")).splitlines()
    outputs: list[str] = []
    for output in cell.get("outputs", []) or []:
        if "text" in output:
            outputs.extend(str(output["text"]).splitlines())
        elif "evalue" in output:
            outputs.append(f"{output.get('ename')}: {output.get('evalue')}")
        data = output.get("data") or {}
        for mime in ("text/plain", _PLOTLY_JSON, "text/html", "text/markdown"):
            if mime in data:
                outputs.extend(str(data[mime]).splitlines())
                break
    return source, outputs


def _cell_lines(before: Any, after: Any) -> list[str]:
    """Return ``-``/``+`` lines for the source, then the outputs, that differ between two cells."""
    from nbdime import diff

    lines: list[str] = []
    source_a, outputs_a = _cell_text(before)
    source_b, outputs_b = _cell_text(after)
    for old, new, marker in ((source_a, source_b, ""), (outputs_a, outputs_b, "out")):
        part = _line_changes(old, diff(old, new))
        if marker and part:
            part = [f"{line[0]} [out] {line[2:]}" for line in part]
        if len(part) > MAX_LINES_PER_PART:
            part = part[:MAX_LINES_PER_PART] + [f"  … (+{len(part) - MAX_LINES_PER_PART})"]
        lines.extend(part)
    return lines


def _line_changes(old: list[str], entries: list[Any]) -> list[str]:
    from nbdime.patching import patch

    lines: list[str] = []
    for entry in sorted(entries, key=lambda item: (item["key"], item["op"] != "removerange")):
        if entry["op"] == "removerange":
            lines.extend("- " + _shown(line) for line in old[entry["key"] : entry["key"] + entry["length"]])
        elif entry["op"] == "addrange":
            lines.extend("+ " + _shown(line) for line in entry["valuelist"])
        elif entry["op"] == "patch":
            lines.append("- " + _shown(old[entry["key"]]))
            lines.append("+ " + _shown(patch(old[entry["key"]], entry["diff"])))
    return lines


def _shown(line: str) -> str:
    line = mask_personal(str(line).rstrip("\n"))
    return line if len(line) <= MAX_LINE_WIDTH else line[: MAX_LINE_WIDTH - 1] + "…"
