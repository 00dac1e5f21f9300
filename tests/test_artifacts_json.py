"""write_json: strict JSON that any reader accepts, whatever floats a stage puts in its summary."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from relmap_utils.artifacts import json_value, write_json


def _strict(text: str):
    def reject(word: str):
        raise ValueError(f"not JSON: {word}")

    return json.loads(text, parse_constant=reject)


def test_nan_and_infinity_become_null(tmp_path):
    content = {"auc": float("nan"), "ks": np.float64("nan"), "lift": [float("inf"), np.float32("-inf"), 0.5],
               "nested": {"brier": (1, float("nan"))}}

    path = write_json(content, tmp_path / "summary.json")

    assert _strict(path.read_text(encoding="utf-8")) == {
        "auc": None, "ks": None, "lift": [None, None, 0.5], "nested": {"brier": [1, None]},
    }


def test_numpy_pandas_and_dates(tmp_path):
    content = {"n": np.int64(7), "flag": np.bool_(True), "day": dt.date(2024, 6, 30), "missing": pd.NA,
               "no_time": pd.NaT, "array": np.array([1.5, np.nan]), np.int64(3): "key"}

    path = write_json(content, tmp_path / "summary.json")

    assert _strict(path.read_text(encoding="utf-8")) == {
        "n": 7, "flag": True, "day": "2024-06-30", "missing": None, "no_time": None, "array": [1.5, None],
        "3": "key",
    }


def test_chinese_text_stays_readable(tmp_path):
    path = write_json({"message_zh": "没有标签"}, tmp_path / "summary.json")

    assert "没有标签" in path.read_text(encoding="utf-8")
    assert not (tmp_path / "summary.json.tmp").exists()


@pytest.mark.parametrize(("value", "expected"), [(np.float64("nan"), None), (float("inf"), None),
                                                 (np.float32(0.25), 0.25), (np.int8(4), 4)])
def test_json_value(value, expected):
    assert json_value(value) == expected
