"""Saving and loading fitted models without ever executing code from a run folder.

Boosted-tree models are written with skops. skops refuses every type that
is not on the trusted list given at load time, and this module passes an
explicit list (:data:`TRUSTED_TYPES`) instead of trusting whatever the file
names. The logistic baseline, the calibrator and the category codes are
parameter tables (Parquet and JSON), which hold numbers and text only.

Every file's sha256 goes into ``models.json``; :func:`load_model` checks the
hash before reading, so a replaced file is refused as well.
"""

from __future__ import annotations

import json
import logging
import zipfile
import zlib
from pathlib import Path
from typing import Any

from relmap_utils.artifacts import write_json
from relmap_utils.errors import StageError
from relmap_utils.manifest import sha256_file

logger = logging.getLogger(__name__)

# Types a HistGradientBoostingClassifier file needs beyond skops' defaults.
# Anything else in a file (a function, a custom class) stops the load.
TRUSTED_TYPES = (
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval",
)
REGISTRY_FILE = "models.json"


def save_model(model: Any, target: Path) -> str:
    """Write ``model`` with skops under a temporary name, rename it, and return its sha256."""
    import skops.io as sio

    target = Path(target)
    temporary = target.with_name(target.name + ".tmp")
    sio.dump(model, temporary)
    temporary.replace(target)
    return sha256_file(target)


def load_model(path: Path, expected_sha256: str | None = None) -> Any:
    """Load a skops model file, trusting only :data:`TRUSTED_TYPES`.

    Parameters
    ----------
    path : Path
    expected_sha256 : str, optional
        Hash recorded when the file was written; a mismatch refuses the file.

    Raises
    ------
    StageError
        When the file is missing or damaged (not a readable skops archive),
        the hash differs, or the file names a type outside the trusted list
        (the message lists the types).
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise StageError("propensity.model_missing", path=str(path))
    if expected_sha256 is not None and sha256_file(path) != expected_sha256:
        raise StageError("propensity.model_hash", path=str(path))
    try:
        untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
    except _DAMAGED_ERRORS as error:
        raise StageError("propensity.model_damaged", path=str(path), detail=_detail(error)) from None
    if untrusted:
        raise StageError("propensity.untrusted_types", path=str(path), types=", ".join(untrusted))
    try:
        return sio.load(path, trusted=list(TRUSTED_TYPES))
    except _DAMAGED_ERRORS as error:
        raise StageError("propensity.model_damaged", path=str(path), detail=_detail(error)) from None


# Errors that skops 0.16 raises for a file that is not a complete skops archive: a
# truncated or overwritten zip, a zip without schema.json, or a broken schema.
_DAMAGED_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, ValueError, EOFError, zlib.error)


def _detail(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error)[:200]}"


def write_registry(folder: Path, entries: dict[str, Any]) -> Path:
    """Write ``models.json``: per product the model files with their sha256."""
    return write_json(entries, Path(folder) / REGISTRY_FILE)


def read_registry(folder: Path) -> dict[str, Any]:
    """Read ``models.json`` of a stage folder.

    Raises
    ------
    StageError
        When the file is missing, is not valid JSON, or is not an object.
    """
    path = Path(folder) / REGISTRY_FILE
    if not path.is_file():
        raise StageError("propensity.registry_missing", path=str(path))
    try:
        registry = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise StageError("propensity.registry_unreadable", path=str(path), detail=_detail(error)) from None
    if not isinstance(registry, dict):
        raise StageError("propensity.registry_unreadable", path=str(path), detail="not a JSON object")
    return registry


def registered_file(folder: Path, item: Any, product: str) -> tuple[Path, str]:
    """Return the path and sha256 of a file entry of ``models.json``, refusing a path outside ``folder``.

    A registry entry is a relative path inside the stage folder. An absolute
    path, ``..`` or a symbolic link that leads out of the folder would make
    the loader read a file that the run did not write, so it is refused.

    Raises
    ------
    StageError
        When the entry has no ``path`` or ``sha256``, or its path resolves
        outside ``folder``.
    """
    folder = Path(folder)
    registry = folder / REGISTRY_FILE
    if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not isinstance(item.get("sha256"), str):
        raise StageError("propensity.registry_entry_invalid", path=str(registry), product=product)
    target = (folder / item["path"]).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise StageError("propensity.model_path_outside", path=str(registry), product=product, file=item["path"],
                         folder=str(folder))
    return target, item["sha256"]


def load_product_model(folder: Path, product: str) -> Any:
    """Load one product's boosted-tree model from a stage folder, checking the registry path and hash.

    Raises
    ------
    StageError
        When ``models.json`` is missing or unreadable, the product has no
        model in it, its path leads outside ``folder``, or the model file is
        missing, damaged, changed or untrusted (see :func:`load_model`).
    """
    folder = Path(folder)
    registry = read_registry(folder)
    entry = registry.get(product)
    files = entry.get("files") if isinstance(entry, dict) else None
    if not isinstance(files, dict) or "boosted" not in files:
        raise StageError("propensity.no_model", product=product, products=", ".join(sorted(registry)) or "-")
    path, digest = registered_file(folder, files["boosted"], product)
    return load_model(path, digest)
