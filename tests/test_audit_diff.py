"""relmap audit diff on two real small demo runs that differ in one profiling parameter."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import nbformat
import pytest

from relmap_utils.audit import diff_runs
from relmap_utils.audit.diff import diff_notebook_cells, headline_metrics
from relmap_utils.audit.pii_scan import mask_personal
from relmap_utils.cli import main

from tests.conftest import make_small_demo_engagement


@pytest.fixture(scope="module")
def nbdime_installed() -> None:
    """nbdime compares the notebooks; outside CI a missing nbdime skips those tests."""
    try:
        import nbdime  # noqa: F401
    except ImportError:
        message = "nbdime is not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Run A: ingest and profiling. Run B: profiling again with top_n=5, reusing A's ingest."""
    from relmap_utils.runner import run_engagement

    folder = make_small_demo_engagement(tmp_path_factory.mktemp("diff_engagement"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_PSEUDONYM_KEY", secrets.token_hex(32))
        first = run_engagement(folder, stages=["ingest", "profiling"])
        second = run_engagement(folder, stages=["profiling"], overrides={"profiling": {"top_n": 5}})
    assert first.ok and second.ok
    return first.run_dir, second.run_dir


def test_changed_parameter_is_shown(two_runs):
    result = diff_runs(*two_runs)

    changes = [(change.group, change.name, change.before, change.after) for change in result.parameters]
    assert changes == [("01_profiling", "top_n", None, 5)]
    assert result.inputs == []
    assert result.config == []
    assert result.packages == []


def test_metrics_come_from_summary(two_runs):
    result = diff_runs(*two_runs)

    names = {row.metric for row in result.metrics if row.stage == "01_profiling"}
    assert {"quality_score", "severity_counts.medium", "rows.customers"} <= names
    customers = next(row for row in result.metrics if row.metric == "rows.customers")
    assert (customers.before, customers.after, customers.delta) == (500, 500, 0)


def test_notebooks_differ_only_in_parameters(two_runs, nbdime_installed):
    result = diff_runs(*two_runs)

    statuses = {item.stage: item.status for item in result.notebooks}
    assert statuses == {"00_ingest": "same", "01_profiling": "changed"}
    profiling = next(item for item in result.notebooks if item.stage == "01_profiling")
    assert [(cell.kind, cell.lines) for cell in profiling.cells] == [("changed", ["+ top_n = 5"])]


def test_cli_text_in_chinese(two_runs, nbdime_installed, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "diff", str(two_runs[0]), str(two_runs[1])])
    output = capsys.readouterr().out

    assert (exit_info.value.code or 0) == 0
    assert "阶段参数（1 处不同）" in output
    assert "01_profiling.top_n: - → 5" in output
    assert "00_ingest：相同" in output
    assert "+ top_n = 5" in output


def test_cli_json(two_runs, capsys, monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")

    with pytest.raises(SystemExit):
        main(["audit", "diff", str(two_runs[0]), str(two_runs[1]), "--json"])
    document = json.loads(capsys.readouterr().out)

    assert document["run_a"] == two_runs[0].name
    assert document["parameters"] == [{"group": "01_profiling", "name": "top_n", "before": None, "after": 5}]


def test_diff_of_a_non_run_exits_2(two_runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "diff", str(two_runs[0]), str(tmp_path)])

    assert exit_info.value.code == 2
    assert "manifest.json" in capsys.readouterr().err


# --------------------------------------------------------------------------- units


def _notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=list(cells))
    for cell in notebook.cells:
        cell.pop("id", None)
    return notebook


def test_cell_diff_lists_changes(nbdime_installed):
    base = _notebook(
        nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output("stream", text="a\nb\n")]),
        nbformat.v4.new_markdown_cell("说明"),
    )
    remote = _notebook(
        nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output("stream", text="a\nc\n")]),
        nbformat.v4.new_code_cell("y = 2"),
    )

    result = diff_notebook_cells("s", base, remote)

    assert result.status == "changed"
    kinds = [(cell.kind, cell.cell_a, cell.cell_b) for cell in result.cells]
    assert ("changed", 1, 1) in kinds
    changed = next(cell for cell in result.cells if cell.kind == "changed")
    assert changed.lines == ["- [out] b", "+ [out] c"]
    assert {kind for kind, _, _ in kinds} == {"changed", "removed", "added"}


def test_headline_metrics_skip_parameters_and_lists():
    summary = {"score": 1.5, "counts": {"a": 2}, "flag": True, "parameters": {"top_n": 10}, "items": [1, 2]}

    assert headline_metrics(summary) == {"score": 1.5, "counts.a": 2}


def test_shown_values_are_masked():
    assert mask_personal("phone 13812345678 ok") == "phone 138****5678 ok"
