"""Check the label values of a ``labels`` source before they are typed.

``labels.value`` is 0 or 1. A value such as ``maybe`` would become NULL
when the column is cast to an integer, and the stages would then count that
customer as unlabelled. So every other value stops ingest (and ``relmap
validate``) with the file, the column, the bad values with their counts and
the first rows. A value declared in the source's ``missing_values`` is
already NULL here and passes, and ``columns.<column>.values`` recodes text
such as 是/否 to 1/0 before this check.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from relmap_utils.config import Source
from relmap_utils.errors import SourceError
from relmap_utils.ingest import parsing
from relmap_utils.ingest.layout import ROW

LABEL_TABLE = "labels"
LABEL_COLUMN = "value"
ALLOWED_LABELS = (0, 1)
# Bad values and row numbers listed in the message; the counts cover all of them.
SHOWN_VALUES = 10
SHOWN_ROWS = 5
VALUE_WIDTH = 40


def bad_label_filter(value: ir.Value) -> ir.BooleanValue | None:
    """Return the test that flags a present label value other than 0 or 1, or None for a boolean column."""
    if value.type().is_string():
        number = parsing.parse_integer(value)
        return value.notnull() & (number.isnull() | ~number.isin(ALLOWED_LABELS))
    if value.type().is_numeric():
        return value.notnull() & ~value.isin(ALLOWED_LABELS)
    if value.type().is_boolean():
        return None
    return value.notnull()


def check_label_values(source: Source, clean: ir.Table, header: str) -> None:
    """Raise when the label column of a labels source holds values other than 0 and 1.

    Parameters
    ----------
    source : Source
        The source; only a source filling the ``labels`` table is checked.
    clean : ibis Table
        The source's cleaned cells: trimmed, missing-value markers NULL,
        ``values`` recodings applied, with the raw row number in ``__row``.
    header : str
        The source column mapped to ``labels.value``.

    Raises
    ------
    SourceError
        ``ingest.label_values_invalid``, naming the file, the column, each
        bad value with its count, the first rows and the allowed values.
    """
    if source.table != LABEL_TABLE:
        return
    value = clean[header]
    flagged = bad_label_filter(value)
    if flagged is None:
        return
    bad = clean.filter(flagged)
    count = int(bad.count().execute())
    if count == 0:
        return

    # execute() rather than to_pyarrow(), because the same check runs on DuckDB and on Spark.
    text = value.cast(dt.string).name("bad_value") if not value.type().is_string() else value.name("bad_value")
    per_value = (
        bad.select(text)
        .group_by("bad_value")
        .agg(rows=ibis._.count())
        .order_by([ibis.desc("rows"), "bad_value"])
        .limit(SHOWN_VALUES)
        .execute()
        .to_dict("records")
    )
    values = ", ".join(f"{_shorten(item['bad_value'])} ×{item['rows']}" for item in per_value)
    if len(per_value) == SHOWN_VALUES:
        values += ", ..."
    # Warehouse tables have no row numbers.
    first: list[str] = []
    if ROW in bad.columns:
        numbers = bad.filter(bad[ROW].notnull()).order_by(ROW).limit(SHOWN_ROWS).select(ROW).execute()[ROW]
        first = [str(int(number)) for number in numbers]
    raise SourceError(
        "ingest.label_values_invalid",
        source=source.name,
        file=source.path or source.name,
        column=header,
        count=count,
        values=values,
        rows=", ".join(first) or "-",
        allowed=", ".join(str(item) for item in ALLOWED_LABELS),
    )


def _shorten(value: str) -> str:
    text = repr(value)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."
