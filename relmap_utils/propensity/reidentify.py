"""Map a campaign list's pseudonyms back to the bank's customer numbers, inside the bank.

The run folder holds only keyed pseudonyms. A bank employee who has the key
(in the environment variable the engagement names) and the bank's customer
master recomputes the pseudonym of every customer number in the master and
joins the list on it. Nothing in relmap stores the reverse mapping; this is
the only place it is built, in memory, from the bank's own file.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from relmap_utils.config import Privacy
from relmap_utils.errors import RelmapError
from relmap_utils.i18n import SUPPORTED_LOCALES, tr

logger = logging.getLogger(__name__)

PSEUDONYM_HEADERS = ("customer_id",)
# Catalog key of the header of the added column: 银行客户号 in Chinese, the default language.
OUTPUT_COLUMN_KEY = "propensity.reidentify.column"
# Separators between several pseudonyms in one cell (the members of a household, say).
# The output cell lists their customer numbers with the same separators.
LIST_SEPARATORS = re.compile(r"(\s*[;,|，；、]\s*)")


class ReidentifyError(RelmapError):
    """A list cannot be mapped back: missing key, file or column, or pseudonyms not in the master."""


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ReidentifyError("propensity.reidentify.no_file", file=str(path))
    try:
        if path.suffix.lower() in {".xlsx", ".xls"}:
            return pd.read_excel(path, dtype=str)
        head = path.read_bytes()[:2]
        encodings = ["utf-16"] if head in (b"\xff\xfe", b"\xfe\xff") else ["utf-8-sig", "gb18030"]
        for encoding in encodings:
            try:
                return pd.read_csv(path, dtype=str, encoding=encoding)
            except UnicodeDecodeError:
                continue
        raise ReidentifyError("propensity.reidentify.unreadable", file=str(path),
                              reason="not UTF-8, UTF-16, GBK or GB18030 text")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError, OSError) as error:
        raise ReidentifyError("propensity.reidentify.unreadable", file=str(path), reason=str(error)) from None


def _inside_run(target: Path) -> Path | None:
    """Return the run folder that contains ``target``, or ``None``."""
    for folder in Path(target).resolve().parents:
        if (folder / "manifest.json").is_file() and (folder / "artifacts").is_dir():
            return folder
    return None


def _pseudonym_column(frame: pd.DataFrame, path: Path, column: str | None) -> str:
    candidates = [column] if column else [*(tr("propensity.column.customer_id", locale=loc) for loc in SUPPORTED_LOCALES),
                                          *PSEUDONYM_HEADERS]
    for name in candidates:
        if name in frame.columns:
            return name
    raise ReidentifyError("propensity.reidentify.no_list_column", file=str(path), column=column or candidates[0],
                          columns=", ".join(map(str, frame.columns)))


def _map_cell(cell: object, lookup: dict[str, str], unknown: list[str]) -> object:
    """Return the customer numbers of the pseudonyms in ``cell``, keeping its separators; collect misses in ``unknown``."""
    if cell is None or (isinstance(cell, float) and pd.isna(cell)):
        return cell
    parts = LIST_SEPARATORS.split(str(cell).strip())
    mapped = []
    for index, part in enumerate(parts):
        if index % 2 or not part:
            mapped.append(part)  # a separator, or nothing before or after one
        elif part in lookup:
            mapped.append(lookup[part])
        else:
            unknown.append(part)
            mapped.append(part)
    return "".join(mapped)


def reidentify(list_path: Path, master_path: Path, *, id_column: str | None = None, list_column: str | None = None,
               key_env: str = "RELMAP_PSEUDONYM_KEY", out: Path | None = None) -> tuple[Path, int]:
    """Write the list with the bank's customer number beside each pseudonym.

    The added column is headed 银行客户号 (``bank customer number`` when
    ``RELMAP_LANG`` is en) and stands right after the pseudonym column.

    Parameters
    ----------
    list_path : Path
        A campaign list (CSV or Excel) from ``artifacts/04_propensity/campaign/``.
    master_path : Path
        The bank's customer master (CSV or Excel).
    id_column : str, optional
        Customer-number column of the master; default its first column.
    list_column : str, optional
        Pseudonym column of the list; default the campaign list's own header
        (客户号（假名）, or its English form, or ``customer_id``). A cell
        may hold several pseudonyms separated by ``;``, ``,``, ``|``, ``、``
        or their full-width forms; each is mapped and the separators kept.
    key_env : str, default="RELMAP_PSEUDONYM_KEY"
        Environment variable holding the pseudonym key.
    out : Path, optional
        Output CSV (UTF-8 with BOM); default ``<list>_reidentified.csv``
        beside the list. An existing file is never overwritten.

    Returns
    -------
    (Path, int)
        The output file and the number of customers mapped.

    Raises
    ------
    PrivacyError
        When the key is missing or too short.
    ReidentifyError
        When a file or column is missing, the output exists, or some
        pseudonyms are not in the master (count and an example named).
    """
    from relmap_utils.ingest.privacy import get_key, pseudonymize_value

    key = get_key(Privacy(key_env=key_env))
    listing = _read(Path(list_path))
    pseudonyms = _pseudonym_column(listing, Path(list_path), list_column)
    master = _read(Path(master_path))
    column = id_column or str(master.columns[0])
    if column not in master.columns:
        raise ReidentifyError("propensity.reidentify.no_column", file=str(master_path), column=column,
                              columns=", ".join(map(str, master.columns)))
    target = Path(out) if out else Path(list_path).with_name(Path(list_path).stem + "_reidentified.csv")
    if target.exists():
        raise ReidentifyError("propensity.reidentify.exists", path=str(target))
    # Real customer numbers must never land in a run folder, whose files are audited and shared.
    run_folder = _inside_run(target)
    if run_folder is not None:
        raise ReidentifyError("propensity.reidentify.inside_run", path=str(target), run=str(run_folder))
    if not target.parent.is_dir():
        raise ReidentifyError("propensity.reidentify.no_folder", folder=str(target.parent))

    numbers = master[column].dropna().astype(str).str.strip().unique()
    lookup = {pseudonymize_value(number, key): number for number in numbers}
    unknown: list[str] = []
    mapped = listing[pseudonyms].map(lambda cell: _map_cell(cell, lookup, unknown))
    cells = listing[pseudonyms]
    empty = listing.index[cells.isna() | cells.astype(str).str.strip().eq("")]
    if len(empty):
        # Data row numbers as a spreadsheet shows them: the header is row 1.
        raise ReidentifyError("propensity.reidentify.empty_cells", file=str(list_path), column=pseudonyms,
                              count=len(empty), row=int(empty[0]) + 2)
    if unknown:
        raise ReidentifyError("propensity.reidentify.unknown", count=len(unknown), example=unknown[0])
    output_column = tr(OUTPUT_COLUMN_KEY)
    # A list re-identified under either language already has the column.
    for header in dict.fromkeys([output_column, *(tr(OUTPUT_COLUMN_KEY, locale=loc) for loc in SUPPORTED_LOCALES)]):
        if header in listing.columns:
            raise ReidentifyError("propensity.reidentify.column_taken", file=str(list_path), column=header)
    result = listing.copy()
    result.insert(list(listing.columns).index(pseudonyms) + 1, output_column, mapped)
    temporary = target.with_name(target.name + ".tmp")
    result.to_csv(temporary, index=False, encoding="utf-8-sig")
    temporary.replace(target)
    logger.info("re-identified %d customers of %s", len(result), list_path)
    return target, len(result)
