"""Execute one parameterized notebook with Papermill, and parse the parameters given to it.

Parameters reach the notebook with their types: lists, dicts, ``None``,
numbers, booleans and text (Chinese included) are written into the injected
cell as Python literals, and dates become ISO text. The injected cell and the
executed notebook stay readable UTF-8, so a reviewer reads ``"2023年四季度"``
and not ``"2023\\u5e74..."``.

A notebook that would receive parameters but has no cell tagged
``parameters`` is rejected before it runs: Papermill would put the values at
the top, and the notebook's own assignments further down would silently
overwrite them.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import keyword
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePath
from typing import Any

import nbformat
import yaml

from relmap_utils.errors import ConfigError, RunError

logger = logging.getLogger(__name__)

PARAMETERS_TAG = "parameters"
KERNEL_NAME = "python3"
# The limit ends a hung cell, so that it cannot hold the engagement lock for
# ever. A stage that needs longer in one cell is better split.
DEFAULT_CELL_TIMEOUT = 4 * 3600
KERNEL_START_TIMEOUT = 120
_MAX_ERROR_TEXT = 1000


class NotebookFailedError(RunError):
    """A notebook stopped: a cell raised, the kernel died, or a cell timed out.

    The executed notebook is kept at ``output`` up to the failing cell.

    Attributes
    ----------
    notebook, output : Path
        The notebook that was run and its executed copy.
    kind : {"error", "kernel_died", "timeout"}
    cell_index : int or None
        0-based position of the failing cell in the executed notebook,
        counting the injected parameters cell.
    cell_id : str or None
    execution_count : int or None
    ename, evalue : str
        Exception name and message (truncated to 1000 characters).
    """

    exit_code = 1

    def __init__(
        self,
        *,
        notebook: Path,
        output: Path,
        kind: str,
        cell_index: int | None,
        cell_id: str | None,
        execution_count: int | None,
        ename: str,
        evalue: str,
        timeout: float | None = None,
    ) -> None:
        self.notebook = notebook
        self.output = output
        self.kind = kind
        self.cell_index = cell_index
        self.cell_id = cell_id
        self.execution_count = execution_count
        self.ename = ename
        self.evalue = evalue
        cell = "?" if cell_index is None else cell_index + 1
        super().__init__(
            f"runner.notebook_{kind}",
            notebook=str(notebook),
            output=str(output),
            cell=cell,
            cell_id=cell_id or "-",
            ename=ename,
            evalue=evalue,
            timeout=timeout,
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the failure as stored in the manifest."""
        return {
            "kind": self.kind,
            "cell_index": self.cell_index,
            "cell_id": self.cell_id,
            "execution_count": self.execution_count,
            "ename": self.ename,
            "evalue": self.evalue,
        }


@dataclass
class NotebookRun:
    """Record of one successful notebook execution."""

    notebook: Path
    output: Path
    parameters: dict[str, Any]
    started_at: dt.datetime
    ended_at: dt.datetime
    undeclared_parameters: list[str] = field(default_factory=list)

    @property
    def duration_seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


# --------------------------------------------------------------------------- parameters


def parse_param_value(text: str) -> Any:
    """Parse a value typed on the command line.

    JSON is tried first, then a Python literal (``None``, ``True``,
    ``('a', 'b')``); anything else stays text. So ``0101`` stays the text
    ``"0101"`` (neither JSON nor Python accepts a leading zero), ``2023-12-31``
    stays text, ``600`` becomes an int and ``["0101", "0203"]`` a list.

    Examples
    --------
    >>> parse_param_value('["0101", "0203"]')
    ['0101', '0203']
    >>> parse_param_value("None") is None
    True
    >>> parse_param_value("0101")
    '0101'
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_param_pair(pair: str) -> tuple[str, Any]:
    """Split ``key=value`` at the first ``=`` and parse the value with :func:`parse_param_value`.

    Raises
    ------
    ConfigError
        When there is no ``=`` or the key is empty.
    """
    key, separator, value = pair.partition("=")
    key = key.strip()
    if not separator or not key:
        raise ConfigError("runner.param_pair_invalid", pair=pair)
    return key, parse_param_value(value)


def load_params_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML parameters file; dates in it become ISO text.

    Raises
    ------
    ConfigError
        When the file is missing, is not valid YAML, or its top level is not a mapping.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError("runner.params_file_missing", file=str(file))
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else "?"
        raise ConfigError("runner.params_file_syntax", file=str(file), line=line) from None
    except UnicodeDecodeError:
        raise ConfigError("runner.params_file_not_utf8", file=str(file)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("runner.params_file_not_mapping", file=str(file))
    return data


def _normalize_value(value: Any, name: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    # datetime is a subclass of date, so one check covers both
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_normalize_value(item, name) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _normalize_value(item, name) for key, item in value.items()}
    raise ConfigError("runner.param_type", name=name, type=type(value).__name__)


def normalize_parameters(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a copy of ``parameters`` that both JSON and a Python literal can hold.

    Dates, datetimes and times become ISO text, tuples become lists, paths
    become text, and dict keys become text. Everything else must already be
    None, bool, int, float, str, list or dict.

    Raises
    ------
    ConfigError
        When a name is not a Python identifier or a value has another type.
    """
    normalized: dict[str, Any] = {}
    for name, value in (parameters or {}).items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ConfigError("runner.param_name_invalid", name=str(name))
        normalized[name] = _normalize_value(value, name)
    return normalized


# --------------------------------------------------------------------------- notebooks


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """Read a notebook file as nbformat 4.

    Raises
    ------
    RunError
        When the file is missing or is not a valid notebook.
    """
    notebook = Path(path)
    if not notebook.is_file():
        raise RunError("runner.notebook_missing", notebook=str(notebook))
    try:
        return nbformat.read(notebook, as_version=4)
    except (ValueError, nbformat.ValidationError, UnicodeDecodeError) as exc:
        raise RunError("runner.notebook_unreadable", notebook=str(notebook), detail=str(exc)[:200]) from None


def declared_parameters(notebook: nbformat.NotebookNode) -> list[str] | None:
    """Return the names assigned in the cell tagged ``parameters``, or None without such a cell."""
    from papermill.translators import PythonTranslator

    for cell in notebook.cells:
        if cell.cell_type == "code" and PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            return [parameter.name for parameter in PythonTranslator.inspect(cell)]
    return None


def check_parameters_cell(path: str | Path, parameters: Mapping[str, Any] | None) -> list[str]:
    """Reject a notebook that would receive parameters but has no ``parameters`` cell.

    Returns
    -------
    list of str
        The given parameter names that the parameters cell does not assign.
        Papermill still injects them; the runner logs them as a warning.

    Raises
    ------
    RunError
        When ``parameters`` is not empty and no code cell is tagged
        ``parameters``. The message names the notebook and the parameters.
    """
    notebook = read_notebook(path)
    declared = declared_parameters(notebook)
    names = sorted(parameters or {})
    if not names:
        return []
    if declared is None:
        raise RunError("runner.no_parameters_cell", notebook=str(path), names=", ".join(names))
    return [name for name in names if name not in declared]


@lru_cache(maxsize=1)
def _readable_translator() -> type:
    from papermill.translators import PythonTranslator

    class ReadablePythonTranslator(PythonTranslator):
        @classmethod
        def translate_str(cls, val: Any) -> str:
            return repr(val) if isinstance(val, str) else super().translate_str(val)

    return ReadablePythonTranslator


_translator_lock = threading.Lock()
_translator_users = 0
_original_translator: Any = None


# OpenMP threads (scikit-learn's boosted trees, LightGBM) spin while they wait
# for work by default; on a machine shared with other jobs the spinning costs
# more CPU than the work. Kernels wait passively unless the user set a policy.
KERNEL_ENVIRONMENT_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


@contextmanager
def _kernel_environment() -> Iterator[None]:
    """Set :data:`KERNEL_ENVIRONMENT_DEFAULTS` the user left unset, for the kernels started inside."""
    added = [name for name in KERNEL_ENVIRONMENT_DEFAULTS if name not in os.environ]
    for name in added:
        os.environ[name] = KERNEL_ENVIRONMENT_DEFAULTS[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextmanager
def _readable_python_parameters() -> Iterator[None]:
    """Let Papermill write the injected cell with readable (unescaped) text.

    Papermill 2.7's Python translator escapes every non-ASCII character
    (``"\\u5e74"``). ``repr`` gives an equal Python literal that keeps Chinese
    readable. Papermill looks translators up in a process-wide registry, so
    the readable one is registered while at least one execution is running
    and the original is put back after the last one.
    """
    from papermill.translators import papermill_translators

    global _translator_users, _original_translator
    with _translator_lock:
        if _translator_users == 0:
            _original_translator = papermill_translators.find_translator(None, "python")
            papermill_translators.register("python", _readable_translator())
        _translator_users += 1
    try:
        yield
    finally:
        with _translator_lock:
            _translator_users -= 1
            if _translator_users == 0:
                papermill_translators.register("python", _original_translator)


def _kernel_config() -> Any:
    import zmq
    from traitlets.config import Config

    config = Config()
    # jupyter_client 8.10 provisions CurveZMQ keys for kernels whose spec
    # supports them; without keys the kernel talks plain TCP on localhost and
    # warns on every start. "auto" is rejected when libzmq lacks Curve.
    if zmq.has("curve"):
        config.KernelManager.transport_encryption = "auto"
    return config


def _error_text(value: Any) -> str:
    text = str(value or "")
    # NOTE: the message comes from stage code. Stages only see pseudonymized
    # tables, but a message quoting a raw value would carry it into the manifest.
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 3] + "..."


def _mark_interrupted_cell(output: Path, ename: str, evalue: str) -> tuple[int | None, str | None]:
    """Mark the cell that was running when the kernel died or timed out.

    Papermill saves the notebook but marks every cell "completed" in that
    case, so the saved copy would look clean. The last cell that started gets
    an error output and a failed status; the cells after it go back to
    "pending". Returns the cell's index and id.
    """
    if not output.is_file():
        return None, None
    notebook = nbformat.read(output, as_version=4)
    running = None
    for index, cell in enumerate(notebook.cells):
        if cell.get("metadata", {}).get("papermill", {}).get("start_time"):
            running = index
    if running is None:
        return None, None
    for index, cell in enumerate(notebook.cells):
        status = cell.setdefault("metadata", {}).setdefault("papermill", {})
        if index == running:
            status["status"] = "failed"
            status["exception"] = True
            if cell.cell_type == "code":
                cell.outputs.append(nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[]))
        elif index > running:
            status["status"] = "pending"
    notebook.metadata.setdefault("papermill", {})["exception"] = True
    temporary = output.with_name(output.name + ".tmp")
    nbformat.write(notebook, temporary)
    os.replace(temporary, output)
    return running, notebook.cells[running].get("id")


def execute_notebook(
    notebook: str | Path,
    output: str | Path,
    parameters: Mapping[str, Any] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = DEFAULT_CELL_TIMEOUT,
    *,
    kernel_name: str = KERNEL_NAME,
    progress_bar: bool = False,
) -> NotebookRun:
    """Execute ``notebook`` with Papermill and write the executed copy to ``output``.

    Parameters
    ----------
    notebook : str or Path
        Notebook to run. It must have a cell tagged ``parameters`` when
        ``parameters`` is not empty.
    output : str or Path
        Executed notebook (UTF-8, readable Chinese). It is written after every
        cell, so it survives a failure up to the failing cell.
    parameters : mapping, optional
        Values injected after the parameters cell; see :func:`normalize_parameters`.
    cwd : str or Path, optional
        Working directory of the kernel; default the current directory.
    timeout : float or None, default=4 hours
        Seconds one cell may run; None waits for ever.
    kernel_name : str, default="python3"
        Jupyter kernel. ``python3`` runs in the Python environment of this
        process (jupyter_client replaces ``python`` in the kernel command
        with the running interpreter).
    progress_bar : bool, default=False
        Show Papermill's per-cell progress bar on stderr.

    Returns
    -------
    NotebookRun

    Raises
    ------
    RunError
        Before execution: the notebook is missing or unreadable, or it has
        no ``parameters`` cell while parameters were given.
    ConfigError
        A parameter has a name or type that cannot be injected.
    NotebookFailedError
        A cell raised, the kernel died (for example killed for lack of
        memory), or a cell ran longer than ``timeout``.
    """
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    notebook = Path(notebook)
    output = Path(output)
    values = normalize_parameters(parameters)
    undeclared = check_parameters_cell(notebook, values)
    if undeclared:
        logger.warning("%s does not declare the parameters %s", notebook.name, ", ".join(undeclared))
    output.parent.mkdir(parents=True, exist_ok=True)

    logger.info("executing %s into %s", notebook, output)
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.monotonic()
    try:
        with _readable_python_parameters(), _kernel_environment():
            papermill.execute_notebook(
                str(notebook),
                str(output),
                parameters=values or None,
                cwd=str(cwd) if cwd is not None else None,
                kernel_name=kernel_name,
                progress_bar=progress_bar,
                start_timeout=KERNEL_START_TIMEOUT,
                execution_timeout=timeout,
                config=_kernel_config(),
            )
    except PapermillExecutionError as exc:
        cell = _cell_at(output, exc.cell_index)
        raise NotebookFailedError(
            notebook=notebook,
            output=output,
            kind="error",
            cell_index=exc.cell_index,
            cell_id=cell.get("id") if cell else None,
            execution_count=exc.exec_count,
            ename=exc.ename,
            evalue=_error_text(exc.evalue),
        ) from None
    except DeadKernelError:
        elapsed = time.monotonic() - clock
        logger.info("kernel died while executing %s after %.1f s", notebook, elapsed)
        index, cell_id = _mark_interrupted_cell(output, "DeadKernelError", "kernel died")
        raise NotebookFailedError(
            notebook=notebook,
            output=output,
            kind="kernel_died",
            cell_index=index,
            cell_id=cell_id,
            execution_count=None,
            ename="DeadKernelError",
            evalue="kernel died",
        ) from None
    except CellTimeoutError:
        evalue = f"cell timed out after {timeout} s"
        index, cell_id = _mark_interrupted_cell(output, "CellTimeoutError", evalue)
        raise NotebookFailedError(
            notebook=notebook,
            output=output,
            kind="timeout",
            cell_index=index,
            cell_id=cell_id,
            execution_count=None,
            ename="CellTimeoutError",
            evalue=evalue,
            timeout=timeout,
        ) from None
    except NoSuchKernel:
        raise RunError("runner.no_kernel", kernel=kernel_name) from None
    ended = dt.datetime.now(dt.timezone.utc)
    return NotebookRun(notebook, output, values, started, ended, undeclared)


def _cell_at(output: Path, index: int) -> dict[str, Any] | None:
    """Return cell ``index`` of the executed notebook, skipping Papermill's error banners."""
    if not output.is_file():
        return None
    from papermill.execute import ERROR_MARKER_TAG

    cells = [
        cell
        for cell in nbformat.read(output, as_version=4).cells
        if ERROR_MARKER_TAG not in cell.get("metadata", {}).get("tags", [])
    ]
    return cells[index] if 0 <= index < len(cells) else None
