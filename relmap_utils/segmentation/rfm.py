"""RFM scores and cells, computed in the database.

Scoring rule (quantile scores that never fail on ties)::

    score = ceil(bins * minrank / n)
    minrank = 1 + number of scored customers with a strictly worse value

Higher frequency and monetary value are better; for recency (days since the
last purchase) fewer days are better. Equal values have the same minrank,
so they always share a score, and a score never depends on row order. When
many customers tie at the worst value (for example seven of ten bought
once), they all get the lowest score and the next value jumps to the score
its rank gives: no cut point is dropped or merged. With ``n`` customers and
no ties the scores are the usual quintiles (for ``bins`` = 5).

Customers are scored when their recency is known (they bought at least
once by ``as_of``); a missing frequency or monetary value counts as 0. The
others get no scores and the cell ``no_purchase``. With several map dates
the ranks are taken within each ``as_of``.

The eight cells split each of R, F and M into high (score at least
``high_score``) and low, the usual Chinese bank RFM model (重要价值客户 ...
一般挽留客户).
"""

from __future__ import annotations

from typing import Any

import ibis

from relmap_utils.errors import ConfigError
from relmap_utils.i18n import bilingual
from relmap_utils.segmentation.params import RfmParams

NO_PURCHASE = "no_purchase"
# (R high, F high, M high) -> cell code.
CELLS: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "important_value",
    (True, False, True): "important_development",
    (False, True, True): "important_retention",
    (False, False, True): "important_winback",
    (True, True, False): "general_value",
    (True, False, False): "general_development",
    (False, True, False): "general_retention",
    (False, False, False): "general_winback",
}
CELL_ORDER = (*CELLS.values(), NO_PURCHASE)
SCORE_COLUMNS = ("r_score", "f_score", "m_score", "rfm_code", "rfm_cell")


def cell_names() -> dict[str, dict[str, str]]:
    """Return the bilingual name of every RFM cell, keyed by cell code."""
    return {code: bilingual(f"segmentation.rfm_cell.{code}") for code in CELL_ORDER}


def check_columns(table: Any, params: RfmParams) -> None:
    """Raise a ConfigError naming the RFM parameter whose column the map lacks."""
    for role in ("recency", "frequency", "monetary"):
        column = getattr(params, role)
        if column not in table.columns:
            raise ConfigError("segmentation.rfm_unknown_column", parameter=f"rfm.{role}", column=column,
                              columns=", ".join(sorted(table.columns)))


def quantile_score(value: Any, n: Any, bins: int, *, higher_is_better: bool, group: list[Any]) -> Any:
    """Return the Ibis expression ``ceil(bins * minrank / n)`` of ``value``.

    ``minrank`` is one plus the number of rows of the same ``group`` with a
    strictly worse value. Integer arithmetic keeps the ceiling exact.
    """
    order = value if higher_is_better else value.desc()
    # ibis.rank() is SQL's RANK() minus one: the number of rows ordered strictly before.
    minrank = ibis.rank().over(group_by=group, order_by=order) + 1
    return ((minrank * bins + n - 1) // n).cast("int64")


def score_rfm(table: Any, params: RfmParams | None = None) -> Any:
    """Add R, F and M scores, the RFM code and the RFM cell to ``table``.

    Parameters
    ----------
    table : ibis Table
        One row per customer (and ``as_of`` when present), with the columns
        named by ``params.recency``, ``params.frequency`` and
        ``params.monetary``.
    params : RfmParams, optional
        Columns and scoring settings; defaults to the map's purchase columns
        and five scores.

    Returns
    -------
    ibis Table
        ``table`` with ``r_score``, ``f_score``, ``m_score`` (1 to ``bins``,
        NULL when not scored), ``rfm_code`` (for example ``"545"``) and
        ``rfm_cell`` (see :data:`CELLS`).

    Raises
    ------
    ConfigError
        When a column named in ``params`` is missing.

    Examples
    --------
    >>> import ibis
    >>> t = ibis.memtable({"customer_id": ["a", "b", "c", "d"], "days_since_last_purchase": [3, 40, 40, None],
    ...                    "purchase_count": [5, 1, 1, 0], "purchase_amount": [900.0, 20.0, 50.0, 0.0]})
    >>> scored = score_rfm(t, RfmParams(bins=3)).order_by("customer_id").to_pandas()
    >>> scored[["r_score", "f_score", "m_score"]].to_numpy().tolist()
    [[3, 3, 3], [1, 1, 1], [1, 1, 2], [None, None, None]]
    """
    params = params or RfmParams()
    check_columns(table, params)

    group = ["as_of"] if "as_of" in table.columns else []
    recency = table[params.recency]
    scored_rows = table.filter(recency.notnull())
    other_rows = table.filter(recency.isnull())
    frequency = scored_rows[params.frequency].fill_null(0)
    monetary = scored_rows[params.monetary].fill_null(0)
    n = scored_rows.count().over(group_by=group) if group else scored_rows.count().over()
    scored = scored_rows.mutate(
        r_score=quantile_score(scored_rows[params.recency], n, params.bins, higher_is_better=False, group=group),
        f_score=quantile_score(frequency, n, params.bins, higher_is_better=True, group=group),
        m_score=quantile_score(monetary, n, params.bins, higher_is_better=True, group=group),
    )
    high = params.high_score
    cell = ibis.cases(
        *[
            (
                ((scored.r_score >= high) == r_high)
                & ((scored.f_score >= high) == f_high)
                & ((scored.m_score >= high) == m_high),
                code,
            )
            for (r_high, f_high, m_high), code in CELLS.items()
        ]
    )
    code = scored.r_score.cast("string") + scored.f_score.cast("string") + scored.m_score.cast("string")
    scored = scored.mutate(rfm_code=code, rfm_cell=cell)
    unscored = other_rows.mutate(
        r_score=ibis.null("int64"),
        f_score=ibis.null("int64"),
        m_score=ibis.null("int64"),
        rfm_code=ibis.null("string"),
        rfm_cell=ibis.literal(NO_PURCHASE),
    )
    return scored.union(unscored.select(*scored.columns))


def rfm_values_from_transactions(
    transactions: Any,
    as_of: str,
    *,
    customer: str = "customer_id",
    time: str = "txn_time",
    amount: str = "amount",
) -> Any:
    """Compute recency, frequency and monetary value per customer from a purchase log.

    Every row is one purchase. Recency is ``as_of`` minus the day of the
    latest purchase on or before ``as_of``, frequency the number of
    purchases and monetary value the sum of their amounts (absolute values,
    so outflows stored as negative numbers count as spending).

    Returns
    -------
    ibis Table
        ``customer_id``, ``days_since_last_purchase``, ``purchase_count``,
        ``purchase_amount``; the column names the map uses, so that
        :func:`score_rfm` scores it with its defaults.
    """
    day = ibis.date(as_of)
    log = transactions.filter(transactions[time].cast("date") <= day)
    grouped = log.group_by(customer_id=log[customer]).aggregate(
        last_day=log[time].cast("date").max(),
        purchase_count=log.count(),
        purchase_amount=log[amount].abs().sum(),
    )
    return grouped.select(
        "customer_id",
        days_since_last_purchase=(day - grouped.last_day).cast("int64"),
        purchase_count="purchase_count",
        purchase_amount="purchase_amount",
    )
