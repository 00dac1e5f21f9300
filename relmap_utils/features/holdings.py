"""Holdings: products held and balances by product family, assets, liabilities, leverage.

An account is held at ``as_of`` when it was opened on or before ``as_of``
and is not closed by then (no ``close_date``, or a ``close_date`` after
``as_of``). Balances come from the latest balance month on or before
``as_of`` (one month for the whole bank), so every customer's balances are
from the same snapshot. Loan and card balances are taken as absolute
values: the amount owed, whatever sign the bank stores.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import ibis.expr.types as ir

from relmap_utils.features.base import BuildContext, Feature, check_date_column, finish, outer_parts, ratio
from relmap_utils.features.spec import MapSpec
from relmap_utils.features.windows import whole_months
from relmap_utils.schema import PRODUCT_FAMILIES

FAMILY = "holdings"
ASSET_FAMILIES = ("deposit", "wealth", "insurance")
LIABILITY_FAMILIES = ("loan", "card")
_ACCOUNT = ("accounts.customer_id", "accounts.product_family", "accounts.open_date")
_BALANCE = ("balances.account_id", "balances.month", "balances.balance", "accounts.account_id",
            "accounts.product_family")


def features(spec: MapSpec) -> list[Feature]:
    """Return the candidate features of the holdings family."""
    result = [
        Feature("accounts_held", FAMILY, "count", "accounts open at as_of", _ACCOUNT,
                "features.feature.accounts_held", fill=0),
    ]
    for family in PRODUCT_FAMILIES:
        result.append(
            Feature(f"{family}_accounts", FAMILY, "count", f"accounts open at as_of with product_family = '{family}'",
                    _ACCOUNT, "features.feature.family_accounts", {"family": family_label(family)}, fill=0)
        )
    result += [
        Feature("product_families_held", FAMILY, "count", "distinct product_family of the accounts open at as_of",
                _ACCOUNT, "features.feature.product_families_held", fill=0),
        Feature("products_held", FAMILY, "count", "distinct product_code of the accounts open at as_of",
                (*_ACCOUNT, "accounts.product_code"), "features.feature.products_held", fill=0),
        Feature("months_since_last_opening", FAMILY, "months",
                "whole months from the latest open_date of the accounts open at as_of to as_of",
                _ACCOUNT, "features.feature.months_since_last_opening"),
        Feature("credit_limit", FAMILY, "yuan", "sum of limit_amount of open loan and card accounts",
                (*_ACCOUNT, "accounts.limit_amount"), "features.feature.credit_limit", fill=0.0),
    ]
    for family in PRODUCT_FAMILIES:
        sign = "abs(balance)" if family in LIABILITY_FAMILIES else "balance"
        result.append(
            Feature(f"{family}_balance", FAMILY, "yuan",
                    f"sum of {sign} of '{family}' accounts at the latest balance month <= as_of",
                    _BALANCE, "features.feature.family_balance", {"family": family_label(family)}, fill=0.0)
        )
    result += [
        Feature("aum", FAMILY, "yuan", "deposit_balance + wealth_balance + insurance_balance", _BALANCE,
                "features.feature.aum", fill=0.0),
        Feature("liabilities", FAMILY, "yuan", "loan_balance + card_balance", _BALANCE,
                "features.feature.liabilities", fill=0.0),
        Feature("leverage", FAMILY, "ratio", "liabilities / aum; NULL when aum <= 0", _BALANCE,
                "features.feature.leverage"),
        Feature("card_utilization", FAMILY, "share",
                "card_balance / limit_amount of open cards; NULL without a card limit",
                (*_BALANCE, *_ACCOUNT, "accounts.limit_amount"), "features.feature.card_utilization"),
        Feature("holdings_covered", FAMILY, "flag", "an account open at as_of or a balance at the balance month",
                _ACCOUNT, "features.feature.holdings_covered", fill=False),
    ]
    return result


def family_label(family: str) -> dict[str, str]:
    zh = {"deposit": "存款", "wealth": "理财", "loan": "贷款", "card": "卡", "insurance": "保险"}
    return {"zh_CN": zh[family], "en": family}


def open_accounts(ctx: BuildContext) -> ir.Table:
    """Return the accounts held at ``as_of`` (see the module docstring)."""

    def build() -> ir.Table:
        accounts = ctx.dated("accounts", "open_date", keep_undated=True)
        if "close_date" in accounts.columns:
            accounts = accounts.filter(accounts.close_date.isnull() | (accounts.close_date > ibis.date(ctx.as_of)))
        return accounts.filter(accounts.customer_id.notnull())

    return ctx.cached("open_accounts", build)


def balances_at(ctx: BuildContext, months_back: int) -> ir.Table:
    """Return family balances per customer at the latest balance month <= ``as_of`` shifted back.

    Parameters
    ----------
    months_back : int
        0 for the snapshot at ``as_of``; ``n`` for the latest month on or
        before ``shift_months(as_of, -n)``.

    Returns
    -------
    ibis Table
        ``customer_id``, ``<family>_balance`` for each product family, ``aum``,
        ``liabilities``. Customers without a balance row have no row.
    """

    def build() -> ir.Table:
        data = ctx.tables["balances"]
        check_date_column("balances", "month", data.month)
        cutoff = ctx.windows.start(months_back) if months_back else ctx.as_of
        # The month is found first and the rows of that month read second, so
        # the engine never holds all balance rows up to as_of at once.
        months = data.filter(data.month <= ibis.date(cutoff))
        latest = months.aggregate(_latest=months.month.max())
        columns = [name for name in ("account_id", "customer_id", "month", "balance") if name in data.columns]
        rows = data.select(*columns)
        snapshot = rows.join(latest, rows.month == latest._latest).select(*columns)

        accounts = ctx.tables["accounts"]
        # max() keeps one family per account even if accounts repeats an account_id.
        families = accounts.filter(accounts.account_id.notnull()).group_by("account_id").agg(
            _family=accounts.product_family.max()
        )
        if "customer_id" in accounts.columns and "customer_id" not in snapshot.columns:
            # Without balances.customer_id the balance goes to every holder of the account.
            holders = accounts.filter(accounts.customer_id.notnull()).select("account_id", "customer_id").distinct()
            snapshot = snapshot.join(holders, "account_id")
        snapshot = snapshot.filter(snapshot.customer_id.notnull())
        joined = snapshot.left_join(families, snapshot.account_id == families.account_id)
        amount = joined.balance.cast("float64")
        sums = {}
        for family in PRODUCT_FAMILIES:
            value = amount.abs() if family in LIABILITY_FAMILIES else amount
            sums[f"{family}_balance"] = (joined._family == family).ifelse(value, 0.0).sum()
        per_customer = joined.group_by("customer_id").agg(**sums)
        assets = sum((per_customer[f"{family}_balance"] for family in ASSET_FAMILIES[1:]),
                     per_customer[f"{ASSET_FAMILIES[0]}_balance"])
        debts = per_customer.loan_balance + per_customer.card_balance
        return per_customer.mutate(aum=assets, liabilities=debts)

    return ctx.cached(f"balances_at:{months_back}", build)


def build(ctx: BuildContext, included: Mapping[str, Feature]) -> ir.Table:
    """Return ``customer_id`` and the included holdings features, one row per customer."""
    parts: list[ir.Table] = []
    held = open_accounts(ctx)  # accounts held at as_of
    account_values: dict[str, ir.Value] = {}
    if "accounts_held" in included or "holdings_covered" in included:
        account_values["_accounts"] = held.count()
    for family in PRODUCT_FAMILIES:
        if f"{family}_accounts" in included:
            account_values[f"{family}_accounts"] = (held.product_family == family).ifelse(1, 0).sum()
    if "product_families_held" in included:
        account_values["product_families_held"] = held.product_family.nunique()
    if "products_held" in included:
        account_values["products_held"] = held.product_code.nunique()
    if "credit_limit" in included:
        credit = held.product_family.isin(LIABILITY_FAMILIES)
        account_values["credit_limit"] = credit.ifelse(held.limit_amount.cast("float64"), 0.0).sum()
    if "card_utilization" in included:
        card = held.product_family == "card"
        account_values["_card_limit"] = card.ifelse(held.limit_amount.cast("float64"), 0.0).sum()
    if "months_since_last_opening" in included:
        account_values["_last_opening"] = held.open_date.max()
    if account_values:
        parts.append(held.group_by("customer_id").agg(**account_values))

    balance_names = {f"{family}_balance" for family in PRODUCT_FAMILIES} | {"aum", "liabilities", "leverage",
                                                                              "card_utilization"}
    with_balances = bool(balance_names & set(included)) or ("holdings_covered" in included and ctx.has("balances"))
    if with_balances:
        parts.append(balances_at(ctx, 0).mutate(_balance_rows=1))

    table = outer_parts(ctx, parts)
    values: dict[str, ir.Value] = {}
    if "accounts_held" in included:
        values["accounts_held"] = table._accounts
    if "months_since_last_opening" in included:
        values["months_since_last_opening"] = whole_months(table._last_opening, ctx.as_of)
    if "leverage" in included:
        aum, debts = table.aum.fill_null(0.0), table.liabilities.fill_null(0.0)
        values["leverage"] = ibis.ifelse(aum > 0, debts / aum, ibis.null("float64"))
    if "card_utilization" in included:
        values["card_utilization"] = ratio(table.card_balance.fill_null(0.0), table._card_limit)
    if "holdings_covered" in included:
        covered = table._accounts.fill_null(0) > 0
        if with_balances:
            covered = covered | table._balance_rows.notnull()
        values["holdings_covered"] = covered
    return finish(table.mutate(**values), included)
