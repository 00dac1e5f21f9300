"""Well-known locations: the repository, the shared data folder, engagements."""

from __future__ import annotations

import os
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
TEMPLATE_DIR = REPO_ROOT / "templates"
ENGAGEMENTS_DIR = REPO_ROOT / "engagements"

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")


def shared_dir() -> Path:
    """Return the folder with the public datasets.

    ``RELMAP_SHARED_DIR`` wins; the default is ``../shared`` next to the
    repository root, where a developer checkout keeps it.
    """
    configured = os.environ.get("RELMAP_SHARED_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return (REPO_ROOT.parent / "shared").resolve()


def expand_path(raw: str, base: Path) -> Path:
    """Expand ``${VAR}`` references and resolve ``raw`` against ``base``.

    ``${RELMAP_SHARED_DIR}`` falls back to :func:`shared_dir` when the variable
    is unset, so engagement files can point at the public datasets portably.
    An unknown variable is left in place so the missing-file error shows it.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group("name")
        if name == "RELMAP_SHARED_DIR":
            return str(shared_dir())
        return os.environ.get(name, match.group(0))

    expanded = Path(_VARIABLE.sub(substitute, raw)).expanduser()
    if not expanded.is_absolute():
        expanded = base / expanded
    return expanded
