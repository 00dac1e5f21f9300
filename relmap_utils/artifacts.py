"""Atomic writes of stage artifacts: a reader never sees half a file.

Each function writes under a temporary name beside the target and renames it
into place, so an interrupted stage leaves either the old file or the new one.
"""

from __future__ import annotations

import datetime as dt
import json
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

    NumPy numbers become JSON numbers (NaN becomes null), dates ISO text, and
    any other value its ``str``.
    """
    temporary = target.with_name(target.name + ".tmp")
    text = json.dumps(content, ensure_ascii=False, indent=2, default=json_value)
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)
    return target


def json_value(value: Any) -> Any:
    """Return a JSON-ready form of ``value``, for ``json.dumps(default=...)``."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (dt.date, pd.Timestamp)):
        return value.isoformat()
    return str(value)
