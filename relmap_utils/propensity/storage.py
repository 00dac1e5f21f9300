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
from pathlib import Path
from typing import Any

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
        When the hash differs or the file names a type outside the trusted
        list (the message lists the types).
    """
    import skops.io as sio

    path = Path(path)
    if expected_sha256 is not None and sha256_file(path) != expected_sha256:
        raise StageError("propensity.model_hash", path=str(path))
    untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
    if untrusted:
        raise StageError("propensity.untrusted_types", path=str(path), types=", ".join(untrusted))
    return sio.load(path, trusted=list(TRUSTED_TYPES))


def write_registry(folder: Path, entries: dict[str, Any]) -> Path:
    """Write ``models.json``: per product the model files with their sha256."""
    target = Path(folder) / REGISTRY_FILE
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(entries, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    temporary.replace(target)
    return target


def load_product_model(folder: Path, product: str) -> Any:
    """Load one product's boosted-tree model from a stage folder, checking the registry hash.

    Raises
    ------
    StageError
        When the product has no model in ``models.json``.
    """
    folder = Path(folder)
    registry = json.loads((folder / REGISTRY_FILE).read_text(encoding="utf-8"))
    entry = registry.get(product)
    if not entry or "boosted" not in entry.get("files", {}):
        raise StageError("propensity.no_model", product=product, products=", ".join(sorted(registry)) or "-")
    item = entry["files"]["boosted"]
    return load_model(folder / item["path"], item["sha256"])
