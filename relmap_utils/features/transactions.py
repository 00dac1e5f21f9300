"""Transactions: RFM, the customer-lifetime quartet, flows, regular income, mixes, trend, volatility.

Every transaction up to the end of ``as_of`` is read; later ones never
enter. The signed flow follows the canonical convention, inflow positive:
``direction`` 'in' or 'out' decides the sign when present, otherwise the
sign of ``amount`` does.

Monthly averages divide by the months observed: the month periods of the
history window that end on or after both the first transaction day in the
data and the customer's ``open_date``. A window longer than the data, or a
customer who joined within it, therefore gives the average over the months
that could hold transactions, never an average diluted by months before the
data began.

The lifetime quartet follows ``lifetimes.utils.summary_data_from_transaction_data``
with ``freq='D'`` and ``observation_period_end=as_of``, so purchases are
summed per day. ``frequency`` is the number of purchase days minus 1 and
``recency`` the days from the first to the last purchase day. ``T`` is the
days from the first purchase day to ``as_of``, and ``monetary_value`` the
mean of the daily sums after the first purchase day (0 when ``frequency`` is 0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ibis
import ibis.expr.types as ir

from relmap_utils.features.base import (
    DAY, PERIOD, BuildContext, Feature, change, check_date_column, finish, only, outer_parts, ratio,
)
from relmap_utils.features.spec import MapSpec
from relmap_utils.features.windows import day_of

FAMILY = "transactions"
_CORE = ("transactions.customer_id", "transactions.txn_time", "transactions.amount")
# Column names of the prepared transactions (see prepared()).
FLOW, PURCHASE, VALUE = "_flow", "_purchase", "_value"
SALARY_TYPE, CASH = "_salary_type", "_cash"
# Features that read the regular-income sources (this family's and stability's).
SALARY_FEATURES = ("salary_regular", "salary_monthly_amount", "regular_income_months", "regular_income_months_recent")


def _purchase_sources(spec: MapSpec) -> tuple[str, ...]:
    return (*_CORE, "transactions.txn_type") if spec.purchase_txn_types is not None else _CORE


def _salary_sources(spec: MapSpec) -> tuple[str, ...]:
    return (*_CORE, "transactions.txn_type") if spec.salary_txn_types is not None else _CORE


def features(spec: MapSpec) -> list[Feature]:
    """Return the candidate features of the transactions family."""
    history, trend = {"months": spec.history_months}, {"months": spec.trend_months}
    purchase = _purchase_sources(spec)
    result = [
        Feature("transactions_covered", FAMILY, "flag", "a transaction dated on or before as_of", _CORE,
                "features.feature.transactions_covered", fill=False),
        Feature("days_since_last_transaction", FAMILY, "days", "as_of - day of the latest transaction", _CORE,
                "features.feature.days_since_last_transaction"),
        Feature("months_observed", FAMILY, "months",
                "month periods of the history window ending on or after the first transaction day of the data "
                "and the customer's open_date", _CORE, "features.feature.months_observed", history),
        Feature("txn_count", FAMILY, "count", "transactions in the observed months of the history window", _CORE,
                "features.feature.txn_count", history, fill=0),
        Feature("inflow_monthly_avg", FAMILY, "yuan_per_month", "sum of inflows / months_observed", _CORE,
                "features.feature.inflow_monthly_avg", history),
        Feature("outflow_monthly_avg", FAMILY, "yuan_per_month", "sum of outflows (positive) / months_observed",
                _CORE, "features.feature.outflow_monthly_avg", history),
        Feature("net_flow_monthly_avg", FAMILY, "yuan_per_month", "(inflows - outflows) / months_observed", _CORE,
                "features.feature.net_flow_monthly_avg", history),
        Feature("net_flow_monthly_std", FAMILY, "yuan",
                "sample standard deviation of the monthly net flow over the observed months (0 for a month "
                "without transactions); NULL with fewer than 2 months", _CORE,
                "features.feature.net_flow_monthly_std", history),
        Feature("inflow_trend", FAMILY, "ratio",
                "inflows of the last n months / inflows of the n months before - 1; NULL unless 2n months "
                "are observed and the earlier sum is positive", _CORE, "features.feature.inflow_trend", trend),
        Feature("outflow_trend", FAMILY, "ratio",
                "outflows of the last n months / outflows of the n months before - 1; NULL unless 2n months "
                "are observed and the earlier sum is positive", _CORE, "features.feature.outflow_trend", trend),
        Feature("purchase_count", FAMILY, "count", "purchases in the observed months of the history window",
                purchase, "features.feature.purchase_count", _purchase_params(spec), fill=0),
        Feature("purchase_amount", FAMILY, "yuan", "sum of abs(amount) of the purchases in the history window",
                purchase, "features.feature.purchase_amount", _purchase_params(spec), fill=0.0),
        Feature("days_since_last_purchase", FAMILY, "days", "as_of - day of the latest purchase", purchase,
                "features.feature.days_since_last_purchase"),
        Feature("frequency", FAMILY, "count", "purchase days - 1 (lifetimes, freq D)", purchase,
                "features.feature.frequency"),
        Feature("recency", FAMILY, "days", "last purchase day - first purchase day (lifetimes, freq D)", purchase,
                "features.feature.recency"),
        Feature("T", FAMILY, "days", "as_of - first purchase day (lifetimes, freq D)", purchase,
                "features.feature.btyd_t"),
        Feature("monetary_value", FAMILY, "yuan",
                "mean daily purchase sum over the days after the first purchase day; 0 when frequency = 0",
                purchase, "features.feature.monetary_value"),
        Feature("salary_regular", FAMILY, "flag", _SALARY_RULE, _salary_sources(spec),
                "features.feature.salary_regular", _salary_params(spec), fill=False),
        Feature("salary_monthly_amount", FAMILY, "yuan_per_month",
                "sum over the regular sources of their mean monthly amount", _salary_sources(spec),
                "features.feature.salary_monthly_amount", _salary_params(spec), fill=0.0),
        Feature("cash_withdrawals_recent", FAMILY, "count",
                "transactions with txn_type in MapSpec.cash_txn_types in the recent window",
                (*_CORE, "transactions.txn_type"), "features.feature.cash_withdrawals_recent",
                {"months": spec.recent_months}, needs=("cash_txn_types",), fill=0),
        Feature("cash_withdrawals_monthly_avg", FAMILY, "count_per_month",
                "cash withdrawals in the observed months of the history window / months_observed",
                (*_CORE, "transactions.txn_type"), "features.feature.cash_withdrawals_monthly_avg", history,
                needs=("cash_txn_types",)),
        Feature("channels_used", FAMILY, "count", "distinct channel values in the history window",
                (*_CORE, "transactions.channel"), "features.feature.channels_used", history, fill=0),
    ]
    result += _group_features(spec, "channels", "channel_share", "transactions.channel",
                              "features.feature.channel_share",
                              "transactions with channel in the group / transactions, history window")
    result += _group_features(spec, "merchant_categories", "merchant_share", "transactions.merchant_category",
                              "features.feature.merchant_share",
                              "purchase amount with merchant_category in the group / purchase amount, history window")
    return result


_SALARY_RULE = (
    "a source (counterparty) pays an inflow >= salary_min_amount in at least "
    "max(salary_min_months, ceil(salary_min_share * months_observed)) months of the history window, "
    "and the population std of its monthly amounts (the smallest qualifying inflow of each month) "
    "is at most salary_tolerance * their mean"
)


def _purchase_params(spec: MapSpec) -> dict[str, object]:
    return {"months": spec.history_months}


def _salary_params(spec: MapSpec) -> dict[str, object]:
    return {
        "months": spec.history_months,
        "amount": f"{spec.salary_min_amount:g}",
        "min_months": spec.salary_min_months,
        "share": f"{spec.salary_min_share:.0%}",
        "tolerance": f"{spec.salary_tolerance:.0%}",
    }


def _group_features(
    spec: MapSpec, setting: str, prefix: str, column: str, description: str, formula: str
) -> list[Feature]:
    groups = getattr(spec, setting)
    sources = (*_CORE, column)
    if setting == "merchant_categories":
        sources = (*_purchase_sources(spec), column)
    if groups is None:
        return [Feature(f"{prefix}_*", FAMILY, "share", formula, sources, description,
                        {"group": "*", "values": "-", "months": spec.history_months}, needs=(setting,))]
    return [
        Feature(f"{prefix}_{code}", FAMILY, "share", formula, sources, description,
                {"group": code, "values": ", ".join(values), "months": spec.history_months})
        for code, values in groups.items()
    ]


def prepared(ctx: BuildContext) -> ir.Table:
    """Return the transactions up to ``as_of`` with the signed flow, purchase flag and period.

    Columns: ``customer_id``, ``_day`` (day number), ``_flow`` (signed
    amount, inflow positive), ``_purchase`` (bool), ``_value`` (absolute
    amount), ``_k`` (month period, NULL before the periods), ``_salary_type``
    and ``_cash`` (bool, when the spec lists those transaction types), and
    ``channel``, ``merchant_category`` and ``counterparty_id`` when present.
    """

    def build() -> ir.Table:
        spec = ctx.spec
        data = ctx.tables["transactions"]
        check_date_column("transactions", "txn_time", data.txn_time)
        rows = data.filter((data.txn_time < ibis.timestamp(ctx.windows.end_timestamp)) & data.customer_id.notnull())
        day = day_of(rows.txn_time)
        amount = rows.amount.cast("float64")
        flow = amount
        if "direction" in rows.columns:
            flow = ibis.cases((rows.direction == "out", -amount.abs()), (rows.direction == "in", amount.abs()),
                              else_=amount)
        if spec.purchase_direction == "out":
            purchase = flow < 0
        elif spec.purchase_direction == "in":
            purchase = flow > 0
        else:
            purchase = flow.notnull()
        typed = "txn_type" in rows.columns
        if spec.purchase_txn_types is not None and typed:
            purchase = purchase & rows.txn_type.isin(spec.purchase_txn_types)

        # One projection straight from the table, with only what the features
        # read: DuckDB materializes a table that several features share, so
        # every extra column and every intermediate step costs memory.
        columns: dict[str, ir.Value] = {
            "customer_id": rows.customer_id,
            DAY: day,
            FLOW: flow,
            PURCHASE: purchase.fill_null(False),
            VALUE: amount.abs(),
            PERIOD: ctx.windows.period_of(rows.txn_time),
        }
        salary = ctx.wants(*SALARY_FEATURES)
        if spec.salary_txn_types is not None and typed and salary:
            columns[SALARY_TYPE] = rows.txn_type.isin(spec.salary_txn_types).fill_null(False)
        if spec.cash_txn_types is not None and typed and ctx.wants(prefix="cash_withdrawals_"):
            columns[CASH] = rows.txn_type.isin(spec.cash_txn_types).fill_null(False)
        readers = {
            "channel": ctx.wants("channels_used", prefix="channel_share_"),
            "merchant_category": ctx.wants(prefix="merchant_share_"),
            "counterparty_id": salary or ctx.wants("counterparties", "new_counterparties_recent"),
        }
        for name, read in readers.items():
            if name in rows.columns and read:
                columns[name] = rows[name]
        return rows.select(**columns)

    return ctx.cached("transactions_prepared", build, rows=True)


def observed(ctx: BuildContext) -> ir.Table:
    """Return ``customer_id`` and ``months_observed`` (all month periods laid out) for transactions."""
    prepared(ctx)  # checks txn_time
    data = ctx.tables["transactions"]
    # The first day from the table's own two columns, not from prepared(): a
    # second reader of prepared() makes DuckDB store all its rows first. The
    # latest timestamp's day is the latest day, so the day is taken once.
    rows = data.select("customer_id", "txn_time")
    rows = rows.filter(rows.txn_time < ibis.timestamp(ctx.windows.end_timestamp), rows.customer_id.notnull())
    return ctx.observed_months("transactions", rows.aggregate(first_day=day_of(rows.txn_time.min())))


def monthly(ctx: BuildContext) -> ir.Table:
    """Return per customer and observed month period: count, inflow, outflow, purchases, cash withdrawals."""

    def build() -> ir.Table:
        rows = prepared(ctx)
        rows = rows.filter(rows[PERIOD].notnull())
        flow = rows[FLOW]
        values = {
            "n": rows.count(),
            "inflow": (flow > 0).ifelse(flow, 0.0).sum(),
            "outflow": (flow < 0).ifelse(-flow, 0.0).sum(),
            "purchases": rows[PURCHASE].ifelse(1, 0).sum(),
            "purchase_amount": rows[PURCHASE].ifelse(rows[VALUE], 0.0).sum(),
        }
        if CASH in rows.columns:
            values["cash"] = rows[CASH].ifelse(1, 0).sum()
        per_month = rows.group_by(["customer_id", PERIOD]).agg(**values)
        months = observed(ctx).rename(_obs_customer="customer_id")
        joined = per_month.join(months, per_month.customer_id == months._obs_customer)
        return joined.filter(joined[PERIOD] < joined.months_observed).drop("_obs_customer", "months_observed")

    return ctx.cached("transactions_monthly", build)


# The window sums each feature reads: (measure, window) pairs of window_sums().
_WINDOW_SUMS = {
    "txn_count": [("n", "history")],
    "inflow_monthly_avg": [("inflow", "history")],
    "outflow_monthly_avg": [("outflow", "history")],
    "net_flow_monthly_avg": [("inflow", "history"), ("outflow", "history")],
    "purchase_count": [("purchases", "history")],
    "purchase_amount": [("purchase_amount", "history")],
    "inflow_trend": [("inflow", "trend_last"), ("inflow", "trend_prev")],
    "outflow_trend": [("outflow", "trend_last"), ("outflow", "trend_prev")],
    "cash_withdrawals_recent": [("cash", "recent")],
    "cash_withdrawals_monthly_avg": [("cash", "history")],
    # Stability's changes of recent behaviour against the customer's own history.
    "inflow_change": [("inflow", "recent"), ("inflow", "base")],
    "outflow_change": [("outflow", "recent"), ("outflow", "base")],
    "txn_count_change": [("n", "recent"), ("n", "base")],
}
_MEASURES = ("n", "inflow", "outflow", "purchases", "purchase_amount", "cash")
_WINDOWS = ("history", "recent", "base", "trend_last", "trend_prev")


def window_sums(ctx: BuildContext) -> ir.Table:
    """Return per customer the sums over the observed month periods of the windows the features use.

    Columns: ``<measure>_<window>`` for measures n, inflow, outflow,
    purchases, purchase_amount (and cash) and windows ``history`` (k < H),
    ``recent`` (k < R), ``base`` (R <= k < H), ``trend_last`` (k < T) and
    ``trend_prev`` (T <= k < 2T), where k is the month period. When only some
    features are built (:attr:`BuildContext.features`), only the sums they
    read are computed.

    The sums come from :func:`monthly` when another feature reads it anyway
    (the monthly net-flow volatility). Otherwise they are summed straight
    from the transactions, which spares the engine a grouping by customer
    and month: that grouping has about ten times as many groups as customers.
    """

    def build() -> ir.Table:
        if not _monthly_wanted(ctx):
            per_customer = _per_customer(ctx)
            per_customer = per_customer.filter(per_customer._observed_rows > 0)
            return per_customer.select("customer_id", *[name for name in _sum_names() if name in per_customer.columns])
        rows = monthly(ctx)
        measures = {measure: rows[measure] for measure in _MEASURES if measure in rows.columns}
        return rows.group_by("customer_id").agg(**_window_values(ctx, rows[PERIOD], measures))

    return ctx.cached("transactions_window_sums", build)


def _monthly_wanted(ctx: BuildContext) -> bool:
    """Return True when a feature reads :func:`monthly` itself (then window_sums() sums its rows)."""
    return ctx.wants("net_flow_monthly_std")


def _sum_pairs(ctx: BuildContext) -> set[tuple[str, str]]:
    if ctx.features is None:
        return {(measure, window) for measure in _MEASURES for window in _WINDOWS}
    return {pair for name, read in _WINDOW_SUMS.items() if ctx.wants(name) for pair in read}


def _window_values(
    ctx: BuildContext, k: ir.IntegerValue, measures: Mapping[str, ir.Value], observed: ir.BooleanValue | None = None
) -> dict[str, ir.Value]:
    """Return the aggregates ``<measure>_<window>`` of window_sums(), for the pairs the features read.

    ``k`` is the month period; ``observed``, when given, is the row's
    condition of being in an observed period.
    """
    spec = ctx.spec
    windows = {
        "history": k < spec.history_months,
        "recent": k < spec.recent_months,
        "base": (k >= spec.recent_months) & (k < spec.history_months),
        "trend_last": k < spec.trend_months,
        "trend_prev": (k >= spec.trend_months) & (k < 2 * spec.trend_months),
    }
    if observed is not None:
        windows = {name: observed & condition for name, condition in windows.items()}
    pairs = _sum_pairs(ctx) or {("n", "history")}
    return {
        f"{measure}_{window}": condition.ifelse(measures[measure], 0).sum()
        for measure in _MEASURES if measure in measures
        for window, condition in windows.items()
        if (measure, window) in pairs
    }


def _sum_names() -> list[str]:
    return [f"{measure}_{window}" for measure in _MEASURES for window in _WINDOWS]


def _per_customer(ctx: BuildContext) -> ir.Table:
    """Return window_sums() and activity() of every customer from one pass over the transactions.

    Used when no feature reads :func:`monthly`. The prepared transactions are
    joined with the months observed of the few customers who do not observe
    every period (who opened their relationship within the periods), and
    one grouping by customer computes the window sums (of the rows in
    observed periods), the count of those rows as ``_observed_rows``, and
    the activity columns (of all rows). Customers without transactions have
    no row. Joining every transaction with every customer's months instead
    cost about as much as the grouping on a large bank: the engine probes a
    hash table of all customers once per transaction.
    """

    def build() -> ir.Table:
        rows = prepared(ctx)
        months = observed(ctx)
        partial = months.filter(months.months_observed < ctx.windows.months).rename(_obs_customer="customer_id")
        joined = rows.left_join(partial, rows.customer_id == partial._obs_customer)
        k = joined[PERIOD]
        # A customer without a row in partial observes every period.
        in_observed = k.notnull() & (joined.months_observed.isnull() | (k < joined.months_observed))
        flow = joined[FLOW]
        measures = {
            "n": ibis.literal(1),
            "inflow": (flow > 0).ifelse(flow, 0.0),
            "outflow": (flow < 0).ifelse(-flow, 0.0),
            "purchases": joined[PURCHASE].ifelse(1, 0),
            "purchase_amount": joined[PURCHASE].ifelse(joined[VALUE], 0.0),
        }
        if CASH in joined.columns:
            measures["cash"] = joined[CASH].ifelse(1, 0)
        values = _window_values(ctx, k, measures, in_observed)
        values["_observed_rows"] = in_observed.ifelse(1, 0).sum()
        values.update(_activity_values(ctx, joined, None if ctx.features is None else set(ctx.features)))
        return joined.group_by("customer_id").agg(**values)

    return ctx.cached("transactions_per_customer", build)


def net_flow_std(ctx: BuildContext) -> ir.Table:
    """Return per customer the sample std of the monthly net flow over the observed history months.

    Months without transactions count as 0, so the grid of customers and
    observed months is built first and the monthly sums are joined onto it.
    """
    history = ctx.spec.history_months
    periods = ibis.memtable({"_grid_k": list(range(history))})
    months = observed(ctx)
    grid = months.cross_join(periods)
    grid = grid.filter(grid._grid_k < grid.months_observed)
    sums = monthly(ctx).rename(_sum_customer="customer_id")
    joined = grid.left_join(
        sums, (grid.customer_id == sums._sum_customer) & (grid._grid_k == sums[PERIOD])
    )
    net = joined.inflow.fill_null(0.0) - joined.outflow.fill_null(0.0)
    return joined.group_by("customer_id").agg(net_flow_monthly_std=net.std(how="sample"))


def activity(ctx: BuildContext, names: set[str] | None = None) -> ir.Table | None:
    """Return per customer the first and last transaction and purchase day, and channel and merchant counts.

    Channel and merchant counts are of the history window. With ``names``
    (the included features), only the columns they read are computed, and
    ``None`` is returned when they read none.
    """
    values = _activity_values(ctx, prepared(ctx), names)
    if not values:
        return None
    if not _monthly_wanted(ctx):
        return _per_customer(ctx).select("customer_id", *values)
    rows = prepared(ctx)
    return rows.group_by("customer_id").agg(**values)


def _activity_values(ctx: BuildContext, rows: ir.Table, names: set[str] | None) -> dict[str, ir.Value]:
    """Return the aggregates of :func:`activity` over ``rows`` (prepared transactions)."""
    spec = ctx.spec

    def wanted(*features: str) -> bool:
        return names is None or bool(names.intersection(features))

    in_history = rows[PERIOD].notnull() & (rows[PERIOD] < spec.history_months)
    values: dict[str, ir.Value] = {}
    if wanted("transactions_covered"):
        values["_first_day"] = rows[DAY].min()
    if wanted("days_since_last_transaction"):
        values["_last_day"] = rows[DAY].max()
    if wanted("days_since_last_purchase"):
        values["_last_purchase_day"] = only(rows[PURCHASE], rows[DAY]).max()
    channel_shares = {f"channel_share_{code}" for code in spec.channels or {}}
    if "channel" in rows.columns and wanted("channels_used", *channel_shares):
        values["_window_rows"] = in_history.ifelse(1, 0).sum()
        if wanted("channels_used"):
            values["channels_used"] = only(in_history, rows.channel).nunique()
        for code, members in (spec.channels or {}).items():
            if wanted(f"channel_share_{code}"):
                values[f"_channel_{code}"] = (in_history & rows.channel.isin(members)).ifelse(1, 0).sum()
    merchant_shares = {f"merchant_share_{code}" for code in spec.merchant_categories or {}}
    if "merchant_category" in rows.columns and wanted(*merchant_shares):
        spent = in_history & rows[PURCHASE]
        values["_window_spend"] = spent.ifelse(rows[VALUE], 0.0).sum()
        for code, members in (spec.merchant_categories or {}).items():
            if wanted(f"merchant_share_{code}"):
                member = spent & rows.merchant_category.isin(members)
                values[f"_merchant_{code}"] = member.ifelse(rows[VALUE], 0.0).sum()
    return values


def purchase_summary(ctx: BuildContext) -> ir.Table:
    """Return per customer the lifetime quartet inputs: first and last purchase day, purchase days, repeat mean."""

    def build() -> ir.Table:
        rows = prepared(ctx)
        rows = rows.filter(rows[PURCHASE])
        days = rows.group_by(["customer_id", DAY]).agg(_day_value=rows[VALUE].sum())
        per_customer = days.group_by("customer_id").agg(
            _first_purchase=days[DAY].min(), _last_purchase=days[DAY].max(), _purchase_days=days.count()
        )
        firsts = per_customer.select(_repeat_customer="customer_id", _repeat_first="_first_purchase")
        later = days.join(firsts, (days.customer_id == firsts._repeat_customer) & (days[DAY] > firsts._repeat_first))
        repeats = later.group_by("customer_id").agg(_repeat_mean=later._day_value.mean())
        repeats = repeats.rename(_mean_customer="customer_id")
        joined = per_customer.left_join(repeats, per_customer.customer_id == repeats._mean_customer)
        return joined.drop("_mean_customer")

    return ctx.cached("transactions_purchases", build)


def salary_sources(ctx: BuildContext) -> ir.Table:
    """Return per customer the regular-income summary (see the salary_regular formula).

    Columns: ``salary_sources`` (regular sources), ``salary_monthly_amount``,
    ``regular_income_months`` (most months any regular source paid in the
    history window) and ``regular_income_months_recent`` (the same for the
    recent window). Customers without a regular source have no row.
    """

    def build() -> ir.Table:
        spec = ctx.spec
        rows = prepared(ctx)
        candidate = rows[PERIOD].notnull() & (rows[PERIOD] < spec.history_months) & (rows[FLOW] >= spec.salary_min_amount)
        if SALARY_TYPE in rows.columns:
            candidate = candidate & rows[SALARY_TYPE]
        rows = rows.filter(candidate)
        source = rows.counterparty_id.fill_null("") if "counterparty_id" in rows.columns else ibis.literal("")
        rows = rows.mutate(_source=source)
        # The smallest qualifying inflow of a month is its regular payment: a
        # bonus from the same employer lands in a month that also has the salary.
        per_month = rows.group_by(["customer_id", "_source", PERIOD]).agg(_amount=rows[FLOW].min())
        months = observed(ctx).rename(_obs_customer="customer_id")
        per_month = per_month.join(months, per_month.customer_id == months._obs_customer)
        per_month = per_month.filter(per_month[PERIOD] < per_month.months_observed)
        per_source = per_month.group_by(["customer_id", "_source"]).agg(
            _months=per_month.count(),
            _months_recent=(per_month[PERIOD] < spec.recent_months).ifelse(1, 0).sum(),
            _mean=per_month._amount.mean(),
            _std=per_month._amount.std(how="pop"),
            _observed=per_month.months_observed.max(),
        )
        observed_history = ibis.least(per_source._observed, spec.history_months)
        needed = ibis.greatest((observed_history * spec.salary_min_share).ceil(), spec.salary_min_months)
        regular = per_source.filter(
            (per_source._months >= needed) & (per_source._std <= spec.salary_tolerance * per_source._mean)
        )
        return regular.group_by("customer_id").agg(
            salary_sources=regular.count(),
            salary_monthly_amount=regular._mean.sum(),
            regular_income_months=regular._months.max(),
            regular_income_months_recent=regular._months_recent.max(),
        )

    return ctx.cached("transactions_salary", build)


def counterparties(ctx: BuildContext) -> ir.Table:
    """Return per customer and counterparty the first and last transaction day up to ``as_of``."""

    def build() -> ir.Table:
        rows = prepared(ctx)
        rows = rows.filter(rows.counterparty_id.notnull())
        return rows.group_by(["customer_id", "counterparty_id"]).agg(_first=rows[DAY].min(), _last=rows[DAY].max())

    return ctx.cached("transactions_counterparties", build)


def build(ctx: BuildContext, included: Mapping[str, Feature]) -> ir.Table:
    """Return ``customer_id`` and the included transaction features, one row per customer."""
    spec = ctx.spec
    as_of_day = ctx.windows.as_of_day
    months = observed(ctx).mutate(_obs_history=ibis.least(observed(ctx).months_observed, spec.history_months))
    parts = [months.drop("months_observed")]
    if any(name in _WINDOW_SUMS for name in included):
        parts.append(window_sums(ctx))
    per_customer = activity(ctx, set(included))
    if per_customer is not None:
        parts.append(per_customer)
    purchase_names = {"frequency", "recency", "T", "monetary_value"}
    if purchase_names & set(included):
        parts.append(purchase_summary(ctx))
    if "net_flow_monthly_std" in included:
        parts.append(net_flow_std(ctx))
    if {"salary_regular", "salary_monthly_amount"} & set(included):
        parts.append(salary_sources(ctx).select("customer_id", "salary_sources", "salary_monthly_amount"))
    table = outer_parts(ctx, parts)

    observed_months = table._obs_history
    history_sum = lambda measure: table[f"{measure}_history"].fill_null(0)  # noqa: E731
    # Each value is built only when included: window_sums() computes only the sums the included features read.
    formulas: dict[str, Callable[[], ir.Value]] = {
        "months_observed": lambda: observed_months,
        "txn_count": lambda: table.n_history,
        "inflow_monthly_avg": lambda: ratio(history_sum("inflow"), observed_months),
        "outflow_monthly_avg": lambda: ratio(history_sum("outflow"), observed_months),
        "net_flow_monthly_avg": lambda: ratio(history_sum("inflow") - history_sum("outflow"), observed_months),
        "purchase_count": lambda: table.purchases_history,
        "purchase_amount": lambda: table.purchase_amount_history,
    }
    values: dict[str, ir.Value] = {name: formula() for name, formula in formulas.items() if name in included}
    trend_ready = table._obs_history.fill_null(0) >= 2 * spec.trend_months
    for measure in ("inflow", "outflow"):
        if f"{measure}_trend" not in included:
            continue
        trend = change(table[f"{measure}_trend_last"].fill_null(0.0), table[f"{measure}_trend_prev"].fill_null(0.0))
        values[f"{measure}_trend"] = ibis.ifelse(trend_ready, trend, ibis.null("float64"))
    if "transactions_covered" in included:
        values["transactions_covered"] = table._first_day.notnull()
    if "days_since_last_transaction" in included:
        values["days_since_last_transaction"] = as_of_day - table._last_day
    if "days_since_last_purchase" in included:
        # The latest purchase day; purchase_summary's _last_purchase is the same day.
        values["days_since_last_purchase"] = as_of_day - table._last_purchase_day
    if purchase_names & set(included):
        values.update(
            frequency=table._purchase_days - 1,
            recency=table._last_purchase - table._first_purchase,
            T=as_of_day - table._first_purchase,
            monetary_value=ibis.ifelse(
                table._purchase_days.isnull(), ibis.null("float64"), table._repeat_mean.fill_null(0.0)
            ),
        )
    if "net_flow_monthly_std" in included:
        values["net_flow_monthly_std"] = table.net_flow_monthly_std
    if "salary_regular" in included:
        values["salary_regular"] = table.salary_sources.fill_null(0) > 0
    if "salary_monthly_amount" in included:
        values["salary_monthly_amount"] = table.salary_monthly_amount
    if "cash_withdrawals_recent" in included:
        values["cash_withdrawals_recent"] = table.cash_recent
    if "cash_withdrawals_monthly_avg" in included:
        values["cash_withdrawals_monthly_avg"] = ratio(table.cash_history.fill_null(0), observed_months)
    if "channels_used" in included:
        values["channels_used"] = table.channels_used
    for name in included:
        if name.startswith("channel_share_"):
            values[name] = ratio(table[f"_channel_{name.removeprefix('channel_share_')}"], table._window_rows)
        elif name.startswith("merchant_share_"):
            values[name] = ratio(table[f"_merchant_{name.removeprefix('merchant_share_')}"], table._window_spend)
    values = {name: value for name, value in values.items() if name in included}
    return finish(table.mutate(**values), included)
