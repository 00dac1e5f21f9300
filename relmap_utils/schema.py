"""The canonical schema: the tables every stage reads, defined once.

Ingest maps each source onto one of these tables. Required columns must be
mapped; optional ones may be absent, and a stage that needs an absent column
skips the work that depends on it with a stated reason. Columns a source
brings beyond the schema are kept (when ``keep_unmapped`` is on) with a
guessed type. docs/schema.md is generated from this module by
``python -m relmap_utils.schema``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Canonical types. "id" is exact text (leading zeros, 18-digit ID numbers, card
# numbers); "amount" is a decimal money value in yuan after unit conversion.
CANONICAL_TYPES = ("id", "category", "text", "amount", "number", "integer", "date", "datetime", "boolean")

# Columns that identify a person or an account. They are pseudonymized at ingest
# with the engagement's keyed hash, so tables still join on them but no run
# folder holds the bank's own numbers. Declared personal data is handled the same
# way (see privacy.personal_data in engagement.yaml).
PSEUDONYMIZED_KEYS = frozenset(
    {"customer_id", "account_id", "related_id", "counterparty_id", "device_id", "card_id", "loan_id"}
)

PRODUCT_FAMILIES = ("deposit", "wealth", "loan", "card", "insurance")


@dataclass(frozen=True)
class Column:
    """One canonical column."""

    name: str
    type: str
    required: bool = False
    description_zh: str = ""
    description_en: str = ""
    personal: bool = False


@dataclass(frozen=True)
class Table:
    """One canonical table."""

    name: str
    description_zh: str
    description_en: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    date_column: str | None = None
    references: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> Column | None:
        """Return the column called ``name``, or ``None``."""
        return next((col for col in self.columns if col.name == name), None)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(col.name for col in self.columns if col.required)


def _c(name: str, type_: str, required: bool = False, zh: str = "", en: str = "", personal: bool = False) -> Column:
    return Column(name, type_, required, zh, en, personal)


TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        Table(
            "customers",
            "客户：每位客户一行，含画像与人生阶段属性",
            "Customers: one row per customer with profile and life-stage attributes",
            (
                _c("customer_id", "id", True, "客户号", "customer number"),
                _c("customer_type", "category", False, "客户类型（个人/企业）", "customer type (person/company)"),
                _c("gender", "category", False, "性别", "gender"),
                _c("birth_date", "date", False, "出生日期", "birth date"),
                _c("open_date", "date", False, "成为客户日期", "date the customer relationship began"),
                _c("region_id", "id", False, "地区代码", "region code"),
                _c("region", "category", False, "地区", "region"),
                _c("city", "category", False, "城市", "city"),
                _c("city_tier", "category", False, "城市等级", "city tier"),
                _c("occupation", "category", False, "职业", "occupation"),
                _c("education", "category", False, "学历", "education"),
                _c("marital_status", "category", False, "婚姻状况", "marital status"),
                _c("income", "amount", False, "年收入（元）", "annual income (yuan)"),
                _c("risk_tolerance", "category", False, "风险承受能力等级", "risk tolerance level"),
                _c("branch_id", "id", False, "所属网点", "branch"),
                _c("name", "text", False, "姓名", "name", personal=True),
                _c("id_number", "id", False, "证件号码", "resident ID number", personal=True),
                _c("phone", "id", False, "手机号", "mobile number", personal=True),
                _c("email", "text", False, "电子邮箱", "e-mail", personal=True),
                _c("address", "text", False, "地址", "address", personal=True),
            ),
            key=("customer_id",),
            date_column="open_date",
            references={"region_id": "regions.region_id"},
        ),
        Table(
            "regions",
            "地区属性：每个地区一行（人口、收入、失业率等）",
            "Region attributes: one row per region (population, income, unemployment, ...)",
            (
                _c("region_id", "id", True, "地区代码", "region code"),
                _c("region_name", "category", False, "地区名称", "region name"),
                _c("parent_region", "category", False, "上级区域", "parent region"),
                _c("city_tier", "category", False, "城市等级", "city tier"),
                _c("population", "integer", False, "人口", "population"),
                _c("urban_share", "number", False, "城镇人口占比（%）", "urban population share (%)"),
                _c("avg_salary", "amount", False, "平均工资", "average salary"),
                _c("unemployment_rate", "number", False, "失业率（%）", "unemployment rate (%)"),
            ),
            key=("region_id",),
        ),
        Table(
            "accounts",
            "账户与产品持有：每个账户或产品合约一行",
            "Accounts and product holdings: one row per account or contract",
            (
                _c("account_id", "id", True, "账号", "account number"),
                _c("customer_id", "id", True, "客户号", "customer number"),
                _c("product_family", "category", True, "产品大类（存款/理财/贷款/卡/保险）",
                   "product family (deposit/wealth/loan/card/insurance)"),
                _c("product_code", "id", False, "产品代码", "product code"),
                _c("product_name", "category", False, "产品名称", "product name"),
                _c("open_date", "date", False, "开户日期", "opening date"),
                _c("close_date", "date", False, "销户日期", "closing date"),
                _c("status", "category", False, "账户状态", "account status"),
                _c("risk_level", "category", False, "产品风险等级", "product risk level"),
                _c("limit_amount", "amount", False, "授信额度或合同金额（元）", "credit limit or contract amount (yuan)"),
                _c("role", "category", False, "客户对账户的角色（持有人/授权人）", "customer's role on the account (owner/disponent)"),
            ),
            key=("account_id", "customer_id"),
            date_column="open_date",
            references={"customer_id": "customers.customer_id"},
        ),
        Table(
            "balances",
            "月末余额快照",
            "Month-end balance snapshots",
            (
                _c("account_id", "id", True, "账号", "account number"),
                _c("customer_id", "id", False, "客户号", "customer number"),
                _c("month", "date", True, "快照月份（月末日）", "snapshot month (month-end date)"),
                _c("balance", "amount", True, "余额（元）", "balance (yuan)"),
            ),
            key=("account_id", "month"),
            date_column="month",
            references={"account_id": "accounts.account_id", "customer_id": "customers.customer_id"},
        ),
        Table(
            "transactions",
            "交易流水",
            "Transactions",
            (
                _c("txn_id", "id", False, "流水号", "transaction id"),
                _c("customer_id", "id", True, "客户号", "customer number"),
                _c("account_id", "id", False, "账号", "account number"),
                _c("txn_time", "datetime", True, "交易时间", "transaction time"),
                _c("amount", "amount", True, "金额（元，流入为正）", "amount (yuan, inflow positive)"),
                _c("direction", "category", False, "方向（流入/流出）", "direction (in/out)"),
                _c("channel", "category", False, "渠道", "channel"),
                _c("merchant_category", "category", False, "商户类别", "merchant category"),
                _c("txn_type", "category", False, "交易类型", "transaction type"),
                _c("counterparty_id", "id", False, "对手方", "counterparty"),
                _c("balance_after", "amount", False, "交易后余额（元）", "balance after the transaction (yuan)"),
            ),
            key=("txn_id",),
            date_column="txn_time",
            references={"customer_id": "customers.customer_id", "account_id": "accounts.account_id"},
        ),
        Table(
            "events",
            "渠道行为事件（App、网银、网点）",
            "Channel events (app, web, branch)",
            (
                _c("customer_id", "id", True, "客户号", "customer number"),
                _c("event_time", "datetime", True, "事件时间", "event time"),
                _c("event_type", "category", True, "事件类型", "event type"),
                _c("topic", "category", False, "浏览主题", "topic browsed"),
                _c("channel", "category", False, "渠道", "channel"),
                _c("device_id", "id", False, "设备号", "device id"),
            ),
            date_column="event_time",
            references={"customer_id": "customers.customer_id"},
        ),
        Table(
            "relations",
            "关系：客户与客户、设备、手机、地址、企业、担保等",
            "Relations: customer to customer, device, phone, address, company, guarantor, ...",
            (
                _c("customer_id", "id", True, "客户号", "customer number"),
                _c("related_id", "id", True, "关联对象", "related entity"),
                _c("relation_type", "category", True, "关系类型", "relation type"),
                _c("related_type", "category", False, "关联对象类型（客户/设备/手机/地址/企业/账户）",
                   "related entity type (customer/device/phone/address/company/account)"),
                _c("start_date", "date", False, "关系开始日期", "relation start date"),
                _c("end_date", "date", False, "关系结束日期", "relation end date"),
                _c("amount", "amount", False, "关联金额（元）", "amount on the relation (yuan)"),
            ),
            date_column="start_date",
            references={"customer_id": "customers.customer_id"},
        ),
        Table(
            "repayments",
            "还款计划与实际还款",
            "Repayment schedule and payments",
            (
                _c("loan_id", "id", True, "贷款号", "loan id"),
                _c("customer_id", "id", True, "客户号", "customer number"),
                _c("due_date", "date", True, "应还日期", "due date"),
                _c("paid_date", "date", False, "实还日期", "paid date"),
                _c("amount_due", "amount", False, "应还金额（元）", "amount due (yuan)"),
                _c("amount_paid", "amount", False, "实还金额（元）", "amount paid (yuan)"),
                _c("days_past_due", "integer", False, "逾期天数", "days past due"),
            ),
            key=("loan_id", "due_date"),
            date_column="due_date",
            references={"customer_id": "customers.customer_id"},
        ),
        Table(
            "labels",
            "标签：产品购买、违约/逾期、欺诈确认，各带观察日期",
            "Labels: product take-up, default or delinquency, confirmed fraud, each dated",
            (
                _c("customer_id", "id", True, "客户号", "customer number"),
                _c("label_type", "category", True, "标签类型（takeup/default/fraud）", "label type (takeup/default/fraud)"),
                _c("label_date", "date", True, "标签日期", "label date"),
                _c("value", "integer", True, "标签值（0/1）", "label value (0/1)"),
                _c("product", "category", False, "产品（购买标签）", "product (take-up labels)"),
                _c("detail", "category", False, "原始标签值", "raw label value"),
            ),
            date_column="label_date",
            references={"customer_id": "customers.customer_id"},
        ),
    )
}


def table(name: str) -> Table:
    """Return the canonical table ``name``.

    Raises
    ------
    KeyError
        With the list of known tables.
    """
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown canonical table {name!r}; known tables: {', '.join(sorted(TABLES))}") from None


def render_markdown() -> str:
    """Return the schema as a Markdown document (docs/schema.md)."""
    lines = [
        "# Canonical schema",
        "",
        "Generated from `relmap_utils/schema.py` by `python -m relmap_utils.schema > docs/schema.md`.",
        "Required columns must be mapped by some source of the table; the others are optional.",
        "Columns of type `id` stay exact text. Key columns "
        f"({', '.join(f'`{name}`' for name in sorted(PSEUDONYMIZED_KEYS))}) and columns marked personal",
        "are pseudonymized at ingest with the engagement's keyed hash.",
        "",
    ]
    for item in TABLES.values():
        lines += [f"## {item.name}", "", f"{item.description_en}. {item.description_zh}", ""]
        if item.key:
            lines.append(f"Key: {', '.join(item.key)}. ")
        if item.date_column:
            lines.append(f"Dated by: `{item.date_column}`. ")
        if item.references:
            refs = ", ".join(f"`{col}` → `{ref}`" for col, ref in item.references.items())
            lines.append(f"References: {refs}.")
        lines += ["", "| column | type | required | personal | description | 说明 |", "|---|---|---|---|---|---|"]
        for col in item.columns:
            lines.append(
                f"| `{col.name}` | {col.type} | {'yes' if col.required else ''} | {'yes' if col.personal else ''} "
                f"| {col.description_en} | {col.description_zh} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown())
