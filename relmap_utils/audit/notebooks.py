"""Check that an executed notebook ran top to bottom, without errors, with the manifest's parameters.

The evidence is what Papermill and the kernel write into the notebook:
``metadata.papermill`` (parameters, exception flag), each cell's
``metadata.papermill.status`` and the execution counts. A fresh kernel numbers
the cells it executes 1, 2, 3, ... in order, so a gap, a repeat or a missing
count means that cells were run out of order, again, or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from relmap_utils.audit.findings import Finding
from relmap_utils.i18n import Msg

COMPLETED = "completed"


def read_notebook_json(path: Path) -> dict[str, Any] | None:
    """Return the notebook as parsed JSON, or None when it is not a JSON object."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return content if isinstance(content, dict) else None


def check_notebook(notebook: dict[str, Any] | None, name: str, params: dict[str, Any] | None) -> list[Finding]:
    """Check one executed notebook.

    Parameters
    ----------
    notebook : dict or None
        The parsed ``.ipynb`` (None when it could not be read).
    name : str
        Its path relative to the run folder, for the findings.
    params : dict or None
        The stage's parameters in the manifest; None skips that comparison.

    Returns
    -------
    list of Finding
        Empty when the notebook ran every code cell in order, each completed,
        without error outputs, with exactly the manifest's parameters.
    """
    if notebook is None:
        return [Finding("notebook_unreadable", name)]
    papermill = notebook.get("metadata", {}).get("papermill")
    if not isinstance(papermill, dict):
        return [Finding("notebook_not_papermill", name)]

    findings: list[Finding] = []
    if papermill.get("exception"):
        findings.append(Finding("notebook_exception", name))
    if params is not None:
        findings.extend(_check_parameters(papermill.get("parameters"), params, name))
    findings.extend(_check_cells(notebook.get("cells", []), name))
    return findings


def _check_parameters(recorded: Any, expected: dict[str, Any], name: str) -> list[Finding]:
    recorded = recorded if isinstance(recorded, dict) else {}
    differing = sorted(
        key
        for key in set(recorded) | set(expected)
        if _canonical(recorded.get(key, _ABSENT)) != _canonical(expected.get(key, _ABSENT))
    )
    if not differing:
        return []
    return [Finding("parameters_mismatch", name, params={"names": ", ".join(differing)})]


_ABSENT = object()


def _canonical(value: Any) -> str:
    # Compare as JSON, so a tuple and a list, or 1 and 1.0 written by YAML, agree.
    if value is _ABSENT:
        return "<absent>"
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _check_cells(cells: list[dict[str, Any]], name: str) -> list[Finding]:
    findings: list[Finding] = []
    not_executed: list[int] = []
    expected_count = 1
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        where = Msg("audit.where.cell", cell=number)
        count = cell.get("execution_count")
        source = cell.get("source", "")
        blank = not ("".join(source) if isinstance(source, list) else str(source)).strip()
        if count is None:
            # The kernel is never asked to run a blank cell, so it gets no count.
            if not blank:
                not_executed.append(number)
            continue

        status = (cell.get("metadata", {}).get("papermill") or {}).get("status")
        if status != COMPLETED:
            findings.append(Finding("cell_not_completed", name, where, {"status": status or "-"}))
        for output in cell.get("outputs", []) or []:
            if output.get("output_type") == "error":
                findings.append(Finding("cell_error_output", name, where, {"ename": str(output.get("ename", "?"))}))
        if count != expected_count:
            findings.append(Finding("execution_order", name, where, {"count": count, "expected": expected_count}))
        expected_count = count + 1 if isinstance(count, int) else expected_count + 1

    if not_executed:
        # After a failure every later cell is unexecuted; one finding lists them all.
        cells_text = ", ".join(str(number) for number in not_executed)
        findings.append(Finding("cell_not_executed", name, params={"cells": cells_text, "count": len(not_executed)}))
    return findings
