"""Atomic writes of stage artifacts: a reader never sees half a file.

Each function writes under a temporary name beside the target and renames it
into place, so an interrupted stage leaves either the old file or the new one.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def write_parquet(frame: pd.DataFrame, target: Path) -> Path:
    """Write ``frame`` to ``target`` as Parquet without its index, atomically; return ``target``."""
    temporary = target.with_name(target.name + ".tmp")
    frame.to_parquet(temporary, index=False)
    temporary.replace(target)
    return target


def write_text(text: str, target: Path) -> Path:
    """Write ``text`` to ``target`` as UTF-8, creating its folder, atomically; return ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)
    return target


def write_json(content: Any, target: Path) -> Path:
    """Write ``content`` to ``target`` as indented UTF-8 JSON, atomically; return ``target``.

    The file is strict JSON that any reader accepts: NaN and infinity, as
    Python or NumPy floats and at any depth, become ``null`` (``json.dumps``
    would write the bare words ``NaN`` and ``Infinity``, which are not JSON).
    NumPy numbers become JSON numbers, dates ISO text, missing pandas values
    ``null``, and any other value its ``str`` (see :func:`json_value`).

    Parameters
    ----------
    content : Any
        Dicts, lists and tuples of JSON values, NumPy scalars, dates.
    target : Path
        File to write; its folder must exist.

    Returns
    -------
    Path
        ``target``.
    """
    temporary = target.with_name(target.name + ".tmp")
    text = json.dumps(finite_json(content), ensure_ascii=False, indent=2, default=json_value, allow_nan=False)
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)
    return target


def finite_json(content: Any) -> Any:
    """Return ``content`` with every value made JSON-ready by :func:`json_value`, recursively.

    Dict keys become text. Python floats pass through ``json.dumps``
    without its ``default`` hook, so they are converted here: a non-finite
    float becomes ``None``.
    """
    if isinstance(content, dict):
        return {_json_key(key): finite_json(value) for key, value in content.items()}
    if isinstance(content, (list, tuple)):
        return [finite_json(value) for value in content]
    if isinstance(content, (str, bool, int)) or content is None:
        return content
    value = json_value(content)
    return finite_json(value) if isinstance(value, (dict, list)) else value


def _json_key(key: Any) -> Any:
    if isinstance(key, (str, int, bool)) or key is None:
        return key
    if isinstance(key, float):
        return key if math.isfinite(key) else str(key)
    value = json_value(key)
    return value if isinstance(value, (str, int, float, bool)) and value is not None else str(key)


def json_value(value: Any) -> Any:
    """Return a JSON-ready form of ``value``, for ``json.dumps(default=...)``.

    Non-finite floats (NaN, infinity), ``pd.NA`` and ``NaT`` become ``None``.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (dt.date, dt.time, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
