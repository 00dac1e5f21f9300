"""Loading stage 04 model files: damaged files and registry paths outside the stage folder get clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from relmap_utils.errors import StageError
from relmap_utils.propensity import storage


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stage folder with one small boosted-tree model and its models.json."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    folder = tmp_path_factory.mktemp("stage") / "04_propensity"
    folder.mkdir()
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 2))
    model = HistGradientBoostingClassifier(max_iter=3).fit(features, features[:, 0] > 0)
    digest = storage.save_model(model, folder / "model_card.skops")
    storage.write_registry(folder, {"card": {"files": {"boosted": {"path": "model_card.skops", "sha256": digest}}}})
    return folder


@pytest.fixture
def folder(saved: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "04_propensity"
    shutil.copytree(saved, copy)
    return copy


def _set_entry(folder: Path, item: dict) -> None:
    (folder / "models.json").write_text(json.dumps({"card": {"files": {"boosted": item}}}), encoding="utf-8")


def test_model_loads(folder):
    model = storage.load_product_model(folder, "card")

    assert model.predict_proba(np.zeros((1, 2))).shape == (1, 2)


def test_damaged_model_named(folder):
    target = folder / "model_card.skops"
    target.write_bytes(target.read_bytes()[:100])
    _set_entry(folder, {"path": "model_card.skops", "sha256": storage.sha256_file(target)})

    with pytest.raises(StageError, match=r"模型文件 .*model_card\.skops 已损坏.*BadZipFile.*--from propensity"):
        storage.load_product_model(folder, "card")


def test_damaged_model_in_english(folder, monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")
    target = folder / "model_card.skops"
    target.write_bytes(b"not a zip file")

    with pytest.raises(StageError, match=r"model file .*model_card\.skops is damaged"):
        storage.load_model(target)


def test_changed_model_rejected(folder):
    (folder / "model_card.skops").write_bytes(b"replaced")

    with pytest.raises(StageError, match="sha256"):
        storage.load_product_model(folder, "card")


@pytest.mark.parametrize("path", ["../outside.skops", "/etc/passwd", "sub/../../outside.skops"])
def test_path_outside_folder_rejected(folder, path):
    (folder.parent / "outside.skops").write_bytes((folder / "model_card.skops").read_bytes())
    _set_entry(folder, {"path": path, "sha256": storage.sha256_file(folder / "model_card.skops")})

    with pytest.raises(StageError, match=r"模型路径 .* 指向结果目录 .* 之外，已拒绝加载"):
        storage.load_product_model(folder, "card")


def test_symlink_outside_folder_rejected(folder):
    outside = folder.parent / "outside.skops"
    outside.write_bytes((folder / "model_card.skops").read_bytes())
    (folder / "link.skops").symlink_to(outside)
    _set_entry(folder, {"path": "link.skops", "sha256": storage.sha256_file(outside)})

    with pytest.raises(StageError, match="之外"):
        storage.load_product_model(folder, "card")


def test_missing_model_file(folder):
    (folder / "model_card.skops").unlink()

    with pytest.raises(StageError, match=r"模型文件 .*model_card\.skops 不存在"):
        storage.load_product_model(folder, "card")


def test_registry_problems(folder):
    (folder / "models.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(StageError, match=r"模型清单 .*models\.json 无法读取"):
        storage.load_product_model(folder, "card")

    _set_entry(folder, {"path": "model_card.skops"})
    with pytest.raises(StageError, match="缺少 path 或 sha256"):
        storage.load_product_model(folder, "card")

    (folder / "models.json").unlink()
    with pytest.raises(StageError, match=r"模型清单 .*models\.json 不存在"):
        storage.load_product_model(folder, "card")


def test_registry_is_strict_json(folder):
    storage.write_registry(folder, {"card": {"auc": float("nan")}})

    assert json.loads((folder / "models.json").read_text(encoding="utf-8")) == {"card": {"auc": None}}
