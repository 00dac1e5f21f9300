"""Privacy rules of client pages: escaped values and no aggregate over a small group.

Two rules apply to every value a dashboard shows:

- Every value that comes from the data (a category, a table or column name, a
  finding's text) is HTML-escaped before it enters HTML, so a value such as
  ``<img src=x onerror=alert(1)>`` is shown as text and never runs.
- An aggregate over fewer customers (or rows) than the engagement's
  ``privacy.min_group_size`` is not shown on its own. :func:`merge_small_groups`
  merges such groups into one "other" group, and suppresses that group too
  when it is still too small. The returned :class:`GroupedCounts` carries a
  note for the page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from relmap_utils.i18n import tr

# Key of the merged group in a GroupedCounts frame. It starts with a NUL
# character, which no text value read by ingest contains.
OTHER_GROUP = "\u0000other"


def escape(value: Any) -> str:
    """Return ``value`` as text that HTML shows literally.

    ``None`` and NaN become an empty string. Quotes are escaped too, so the
    result is also safe inside an attribute value.

    Examples
    --------
    >>> escape("<img src=x onerror=alert(1)>")
    '&lt;img src=x onerror=alert(1)&gt;'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return html.escape(str(value), quote=True)


@dataclass
class GroupedCounts:
    """Group counts after small groups were merged or suppressed.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per group shown: the group column, the count column and any
        additive columns (sums). The merged group has the key
        :data:`OTHER_GROUP`; use :meth:`labels` for display.
    merged : list of str
        Groups that were merged into the "other" group.
    suppressed : bool
        True when nothing can be shown because the total is below the
        minimum group size.
    min_size : int
    """

    frame: pd.DataFrame
    group_column: str
    count_column: str
    merged: list[str] = field(default_factory=list)
    suppressed: bool = False
    min_size: int = 1

    def labels(self, locale: str | None = None) -> list[str]:
        """Return the display label of each row; the merged group gets "其他"/"Other"."""
        other = tr("dashboard.privacy.other_group", locale=locale)
        return [other if key == OTHER_GROUP else str(key) for key in self.frame[self.group_column]]

    def note(self, locale: str | None = None) -> str | None:
        """Return the sentence that tells the reader what was merged or suppressed, or ``None``."""
        if self.suppressed:
            return tr("dashboard.privacy.suppressed", locale=locale, min_size=self.min_size)
        if self.merged:
            return tr(
                "dashboard.privacy.merged", locale=locale, groups=len(self.merged), min_size=self.min_size
            )
        return None


def merge_small_groups(
    frame: pd.DataFrame,
    group_column: str,
    count_column: str,
    min_size: int,
    *,
    additive_columns: Sequence[str] = (),
    rest: int = 0,
) -> GroupedCounts:
    """Merge groups with fewer than ``min_size`` members into one "other" group.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per group with its member count; small (it holds aggregates,
        not members).
    group_column, count_column : str
        Columns with the group key and the number of members.
    min_size : int
        The engagement's ``privacy.min_group_size``.
    additive_columns : sequence of str, default=()
        Columns that add up when groups merge (sums, not means). Compute
        means after merging, from a sum and the count.
    rest : int, default=0
        Members outside the listed groups (for example values beyond a top-N
        list). They always go into the "other" group.

    Returns
    -------
    GroupedCounts
        Groups of at least ``min_size`` members, largest first, then the
        merged group. When the merged group is still smaller than
        ``min_size``, the smallest shown groups join it until it is large
        enough, because the total minus the shown groups would otherwise
        reveal its size. When the total is below ``min_size`` nothing is
        shown (``suppressed``).

    Raises
    ------
    ValueError
        When ``min_size`` is below 1, a column is missing, or ``rest`` comes
        with additive columns (their sums over the rest are unknown).

    Examples
    --------
    >>> import pandas as pd
    >>> counts = pd.DataFrame({"city": ["上海", "北京", "拉萨"], "n": [40, 25, 3]})
    >>> merged = merge_small_groups(counts, "city", "n", 10)
    >>> merged.frame["n"].tolist(), merged.merged
    ([40, 28], ['北京', '拉萨'])
    """
    if min_size < 1:
        raise ValueError(f"min_size must be at least 1; got {min_size}")
    missing = [name for name in (group_column, count_column, *additive_columns) if name not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} not found; frame has {list(frame.columns)}")
    if rest and additive_columns:
        raise ValueError("rest cannot be combined with additive_columns: their sums over the rest are unknown")

    columns = [group_column, count_column, *additive_columns]
    data = frame[columns].copy()
    data = data[data[count_column].fillna(0) > 0]
    data = data.sort_values([count_column, group_column], ascending=[False, True], kind="stable")
    total = int(data[count_column].sum()) + rest
    if total < min_size:
        empty = data.iloc[0:0]
        return GroupedCounts(empty, group_column, count_column, list(map(str, data[group_column])), True, min_size)

    large = data[data[count_column] >= min_size]
    small = data[data[count_column] < min_size]

    def other_size() -> int:
        return int(small[count_column].sum()) + rest

    # Secondary suppression: a merged group below the minimum could be worked
    # out from the total, so the smallest shown groups join it.
    while (len(small) or rest) and other_size() < min_size and len(large) > 1:
        small = pd.concat([large.iloc[[-1]], small])
        large = large.iloc[:-1]
    if (len(small) or rest) and other_size() < min_size:
        # Only one large group is left: the other group alone would reveal
        # the small groups, so they are merged into it as well.
        small = pd.concat([large, small])
        large = large.iloc[0:0]

    merged_names = sorted(str(name) for name in small[group_column])
    shown = large
    if len(small) or rest:
        other = {group_column: OTHER_GROUP, count_column: other_size()}
        other.update({name: small[name].sum(min_count=1) for name in additive_columns})
        shown = pd.concat([large, pd.DataFrame([other])], ignore_index=True)
    return GroupedCounts(shown.reset_index(drop=True), group_column, count_column, merged_names, False, min_size)


def visible_values(values: Iterable[tuple[Any, int]], min_size: int) -> list[Any]:
    """Return the values whose count reaches ``min_size``, in the given order.

    Filter widgets offer only these, so choosing a filter never narrows a
    page to a group smaller than the minimum.
    """
    return [value for value, count in values if count >= min_size]
