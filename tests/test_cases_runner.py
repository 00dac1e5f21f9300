"""Hard runner cases from the shared case folder: parameter types, untagged notebooks, a killed kernel.

Each case runs through the public API (``execute_notebook``) or the
``relmap notebook`` console script, and its expectations are read from the
case's expected.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from relmap_utils.errors import RunError
from relmap_utils.notebook_exec import execute_notebook, load_params_file

RELMAP = Path(sys.executable).parent / "relmap"


def run_relmap(*args: str, cwd: Path, lang: str | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "RELMAP_LANG"}
    if lang:
        env["RELMAP_LANG"] = lang
    return subprocess.run(
        [str(RELMAP), *args], cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8", timeout=300
    )


def cli_pairs(path: Path) -> list[str]:
    """Read key=value lines as an analyst would type them, skipping comments and blank lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def expected_params(case: Path) -> dict:
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))["expected"]
    return next(value for key, value in expected.items() if key.startswith("params_seen.json"))


# --------------------------------------------------------------------------- typed parameters


@pytest.fixture
def typed_case(cases: Path) -> Path:
    return cases / "B24"


def _run_typed_api(case: Path, workdir: Path) -> Path:
    parameters = load_params_file(case / "run_params.yaml")
    output = workdir / "out.ipynb"
    execute_notebook(case / "segment_report.ipynb", output, parameters, cwd=workdir)
    return output


def _run_typed_cli(case: Path, workdir: Path) -> Path:
    output = workdir / "out.ipynb"
    pairs = [arg for pair in cli_pairs(case / "run_params_cli.txt") for arg in ("-p", pair)]
    completed = run_relmap("notebook", str(case / "segment_report.ipynb"), str(output), *pairs, cwd=workdir)
    assert completed.returncode == 0, completed.stderr
    return output


@pytest.mark.slow
@pytest.mark.parametrize("run", [_run_typed_api, _run_typed_cli], ids=["yaml-file-api", "cli-pairs-console-script"])
def test_typed_parameters_survive(typed_case, tmp_path, run):
    run(typed_case, tmp_path)

    seen = json.loads((tmp_path / "params_seen.json").read_text(encoding="utf-8"))
    for name, rule in expected_params(typed_case).items():
        allowed = rule.get("type_one_of", [rule.get("type")])
        assert seen[name]["type"] in allowed, name
        assert seen[name]["value"] == rule["value"], name


@pytest.mark.slow
def test_typed_output_notebook_readable(typed_case, tmp_path):
    expected = json.loads((typed_case / "expected.json").read_text(encoding="utf-8"))["expected"]

    output = _run_typed_api(typed_case, tmp_path)

    text = output.read_bytes().decode("utf-8")
    injected = next(
        cell for cell in nbformat.reads(text, as_version=4).cells if "injected-parameters" in cell.metadata.get("tags", [])
    )
    assert expected["report_title_in_output_notebook"] in injected.source
    assert "\\u" not in text


# --------------------------------------------------------------------------- untagged parameters cell


def test_untagged_case_rejected(cases, tmp_path):
    case = cases / "B26"
    notebook = case / "untagged_report.ipynb"
    output = tmp_path / "out.ipynb"

    with pytest.raises(RunError, match=r"untagged_report\.ipynb.*parameters.*as_of"):
        execute_notebook(notebook, output, load_params_file(case / "run_params.yaml"), cwd=tmp_path)

    assert not output.exists()
    assert not (tmp_path / "as_of_seen.txt").exists()


@pytest.mark.parametrize(
    ("lang", "message"),
    [(None, "没有标记为 parameters 的单元格"), ("en", "no cell is tagged parameters")],
    ids=["zh_CN", "en"],
)
def test_untagged_case_rejected_by_cli(cases, tmp_path, lang, message):
    case = cases / "B26"

    completed = run_relmap(
        "notebook", str(case / "untagged_report.ipynb"), str(tmp_path / "out.ipynb"),
        "--params", str(case / "run_params.yaml"), cwd=tmp_path, lang=lang,
    )  # fmt: skip

    assert completed.returncode == 2
    assert message in completed.stderr
    assert "as_of" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "as_of_seen.txt").exists()


def test_untagged_case_tagged_copy_runs(cases, tmp_path):
    # The same notebook with its first cell tagged must take the requested date.
    notebook = nbformat.read(cases / "B26" / "untagged_report.ipynb", as_version=4)
    notebook.cells[0].metadata["tags"] = ["parameters"]
    tagged = tmp_path / "tagged.ipynb"
    nbformat.write(notebook, tagged)
    expected = json.loads((cases / "B26" / "expected.json").read_text(encoding="utf-8"))["expected"]

    execute_notebook(tagged, tmp_path / "out.ipynb", load_params_file(cases / "B26" / "run_params.yaml"), cwd=tmp_path)

    assert (tmp_path / "as_of_seen.txt").read_text(encoding="utf-8") == expected["effective_as_of_if_run"]


# --------------------------------------------------------------------------- killed kernel


@pytest.mark.slow
def test_killed_kernel_case_reported(cases, tmp_path):
    case = cases / "B27"
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))["expected"]
    notebook = tmp_path / "oom_report.ipynb"
    shutil.copy(case / "oom_report.ipynb", notebook)
    output = tmp_path / "out.ipynb"

    started = time.monotonic()
    completed = run_relmap("notebook", str(notebook), str(output), cwd=tmp_path, lang="en")
    elapsed = time.monotonic() - started

    assert elapsed < expected["seconds_from_kill_to_runner_exit_max"]
    assert completed.returncode != 0
    assert "kernel died" in completed.stderr
    assert str(output) in completed.stderr
    assert "Traceback" not in completed.stderr
    cells = nbformat.read(output, as_version=4).cells
    assert "".join(cells[0].outputs[0].text).strip() == expected["cell_1_output"]
    assert cells[1].metadata.papermill.status == "failed"
    assert cells[1].outputs[-1].ename == "DeadKernelError"
    assert cells[2].execution_count is None
    assert cells[2].outputs == []
