"""Parameter parsing and single-notebook execution (relmap_utils.notebook_exec)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import nbformat
import pytest

from relmap_utils.errors import ConfigError, RunError
from relmap_utils.notebook_exec import (
    NotebookFailedError,
    check_parameters_cell,
    execute_notebook,
    load_params_file,
    normalize_parameters,
    parse_param_pair,
    parse_param_value,
)
from test_runner_support import write_notebook


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('["0101", "0203"]', ["0101", "0203"]),
        ('{"psi_warn": 0.1, "psi_alert": 0.25}', {"psi_warn": 0.1, "psi_alert": 0.25}),
        ("None", None),
        ("null", None),
        ("True", True),
        ("false", False),
        ("600", 600),
        ("0.25", 0.25),
        ("0101", "0101"),
        ("2023-12-31", "2023-12-31"),
        ("2023年四季度 客户分群报告", "2023年四季度 客户分群报告"),
        ("('a', 'b')", ("a", "b")),
        ("['0101', '0203']", ["0101", "0203"]),
        ("", ""),
        (" ", " "),
    ],
    ids=[
        "json-list", "json-dict", "python-none", "json-null", "python-true", "json-false", "int", "float",
        "leading-zero-text", "date-text", "chinese-text", "python-tuple", "python-list", "empty", "single-space",
    ],  # fmt: skip
)
def test_parse_param_value(text, expected):
    value = parse_param_value(text)

    assert value == expected
    assert type(value) is type(expected)


def test_parse_param_pair_splits_first_equals():
    assert parse_param_pair("a.filter=x=1") == ("a.filter", "x=1")
    assert parse_param_pair(" title =季度") == ("title", "季度")


@pytest.mark.parametrize("pair", ["novalue", "=5", " =5"])
def test_parse_param_pair_invalid(pair):
    with pytest.raises(ConfigError, match="键=值"):
        parse_param_pair(pair)


def test_normalize_parameters_converts_types():
    values = {
        "as_of": dt.date(2023, 12, 31),
        "stamp": dt.datetime(2023, 12, 31, 8, 30),
        "codes": ("0101", "0203"),
        "by_code": {101: [dt.date(2024, 1, 1)]},
        "folder": Path("/data/银行"),
        "title": "四季度",
        "cutoff": None,
    }

    normalized = normalize_parameters(values)

    assert normalized == {
        "as_of": "2023-12-31",
        "stamp": "2023-12-31T08:30:00",
        "codes": ["0101", "0203"],
        "by_code": {"101": ["2024-01-01"]},
        "folder": "/data/银行",
        "title": "四季度",
        "cutoff": None,
    }
    assert json.loads(json.dumps(normalized)) == normalized


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"codes": {"0101", "0203"}}, "参数 codes 的类型 set"),
        ({"blob": b"raw"}, "参数 blob 的类型 bytes"),
        ({"nested": {"inner": object()}}, "参数 nested 的类型 object"),
        ({"1st": 1}, "参数名 1st 无效"),
        ({"class": 1}, "参数名 class 无效"),
    ],
    ids=["set", "bytes", "nested-object", "digit-first", "keyword"],
)
def test_normalize_parameters_rejects(parameters, message):
    with pytest.raises(ConfigError, match=message):
        normalize_parameters(parameters)


def test_load_params_file_keeps_yaml_types(tmp_path):
    file = tmp_path / "params.yaml"
    file.write_text('codes: ["0101"]\nas_of: 2023-12-31\ncutoff: null\ntitle: 四季度\n', encoding="utf-8")

    loaded = normalize_parameters(load_params_file(file))

    assert loaded == {"codes": ["0101"], "as_of": "2023-12-31", "cutoff": None, "title": "四季度"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: [1, 2\n", "第 2 行 YAML 语法错误"),
        ("- 1\n- 2\n", "顶层必须是键值映射"),
    ],
    ids=["syntax", "not-mapping"],
)
def test_load_params_file_errors(tmp_path, content, message):
    file = tmp_path / "params.yaml"
    file.write_text(content, encoding="utf-8")

    with pytest.raises(ConfigError, match=message):
        load_params_file(file)


def test_load_params_file_missing(tmp_path):
    with pytest.raises(ConfigError, match="找不到参数文件"):
        load_params_file(tmp_path / "absent.yaml")


def test_check_parameters_cell_lists_undeclared(tmp_path):
    notebook = write_notebook(tmp_path / "n.ipynb", ['run_dir = ""\nlimit = 5  # int: rows', "print(limit)"])

    assert check_parameters_cell(notebook, {"run_dir": "x", "limit": 1, "extra": 2}) == ["extra"]
    assert check_parameters_cell(notebook, {}) == []


def test_check_parameters_cell_untagged_without_parameters(tmp_path):
    notebook = write_notebook(tmp_path / "n.ipynb", ["x = 1"], tag_first=False)

    assert check_parameters_cell(notebook, None) == []
    with pytest.raises(RunError, match="n.ipynb.*parameters.*x"):
        check_parameters_cell(notebook, {"x": 2})


def test_unreadable_notebook_rejected(tmp_path):
    notebook = tmp_path / "broken.ipynb"
    notebook.write_text("{not json", encoding="utf-8")

    with pytest.raises(RunError, match="无法读取笔记本"):
        execute_notebook(notebook, tmp_path / "out.ipynb", {"x": 1})


def test_execute_warns_about_undeclared_parameters(tmp_path, caplog):
    from papermill.translators import PythonTranslator, papermill_translators

    notebook = write_notebook(tmp_path / "n.ipynb", ['title = "默认"', "print(title)"])

    with caplog.at_level(logging.WARNING, logger="relmap_utils.notebook_exec"):
        run = execute_notebook(notebook, tmp_path / "out.ipynb", {"title": "标题", "extra": 1}, cwd=tmp_path)

    assert run.undeclared_parameters == ["extra"]
    assert "does not declare the parameters extra" in caplog.text
    assert run.duration_seconds > 0
    assert "标题" in (tmp_path / "out.ipynb").read_text(encoding="utf-8")
    # the readable translator is only registered while a notebook runs
    assert papermill_translators.find_translator(None, "python") is PythonTranslator


def test_execute_cell_timeout(tmp_path):
    notebook = write_notebook(tmp_path / "slow.ipynb", ['run_dir = ""', "import time\ntime.sleep(60)", "print(1)"])
    output = tmp_path / "out.ipynb"

    with pytest.raises(NotebookFailedError, match="超过 2 秒") as excinfo:
        execute_notebook(notebook, output, {"run_dir": str(tmp_path)}, cwd=tmp_path, timeout=2)

    assert excinfo.value.kind == "timeout"
    assert excinfo.value.cell_index == 2
    assert excinfo.value.exit_code == 1
    cells = nbformat.read(output, as_version=4).cells
    assert cells[2].metadata.papermill.status == "failed"
    assert cells[2].outputs[-1].ename == "CellTimeoutError"
    assert cells[3].metadata.papermill.status == "pending"
    assert cells[3].execution_count is None


def test_kernels_wait_passively_unless_told_otherwise(tmp_path, monkeypatch):
    import os

    notebook = write_notebook(tmp_path / "n.ipynb", ['run_dir = ""', "import os\nprint('policy=' + os.environ.get('OMP_WAIT_POLICY', '-'))"])

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    execute_notebook(notebook, tmp_path / "passive.ipynb", {"run_dir": str(tmp_path)}, cwd=tmp_path)
    assert "policy=PASSIVE" in (tmp_path / "passive.ipynb").read_text(encoding="utf-8")
    assert "OMP_WAIT_POLICY" not in os.environ

    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    execute_notebook(notebook, tmp_path / "active.ipynb", {"run_dir": str(tmp_path)}, cwd=tmp_path)
    assert "policy=ACTIVE" in (tmp_path / "active.ipynb").read_text(encoding="utf-8")
