"""The demo bank's planted signals can be found in its files.

Each test measures a signal from the source files the way a later stage
would (browsing, salaries, withdrawals, devices, transfers) and compares it
with the ground truth in planted_truth.parquet.
"""

from __future__ import annotations

from math import comb
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from relmap_utils.demo import generate_demo_bank

CUSTOMERS = 3000
TRANSACTIONS = 100_000
WINDOW_START = "2024-01-01"  # first day of the take-up label window (the last six months)
# Raw product names in labels.csv of the four planted products.
PRODUCT_NAMES = {
    "education_wealth": "子女教育金理财计划",
    "mortgage": "个人住房贷款",
    "retirement_insurance": "养老年金保险",
    "travel_card": "旅行白金信用卡",
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo_signals")
    generate_demo_bank(path, n_customers=CUSTOMERS, n_transactions=TRANSACTIONS)
    return path


@pytest.fixture(scope="module")
def con(folder: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    for name in ("transactions", "events", "balances", "planted_truth"):
        connection.execute(f"create view {name} as select * from '{folder / name}.parquet'")
    for name in ("relations", "repayments", "labels"):
        connection.execute(f"create view {name} as select * from read_csv('{folder / name}.csv', all_varchar = true)")
    accounts = pd.read_csv(folder / "accounts.csv", encoding="utf-8-sig", dtype=str)
    customers = pd.read_csv(folder / "customers.csv", encoding="gbk", dtype=str)
    connection.register("accounts", accounts)
    connection.register("customers", customers)
    return connection


@pytest.fixture(scope="module")
def truth(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "planted_truth.parquet")


def _flags(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per customer, the drivers as a later stage would see them before the label window."""
    return con.sql(
        f"""
        with browsing as (
            select cust_no,
                   count(*) filter (where page_cat = '子女教育') > 0 as education,
                   count(*) filter (where page_cat = '房贷') > 0 as mortgage,
                   count(*) filter (where page_cat = '养老') > 0 as retirement,
                   count(*) filter (where page_cat = '旅游') > 0 as travel
            from events where evt_tm < '{WINDOW_START}' group by 1
        ),
        salary as (
            select distinct cust_no from transactions where txn_type = '代发工资' and txn_tm < '{WINDOW_START}'
        ),
        assets as (
            select b.cust_no, sum(b.bal) as aum
            from balances b join accounts a on a.账号 = b.acct_no
            where a.产品大类 in ('存款', '理财') and b.stat_month = date '2023-12-31'
            group by 1
        )
        select c.客户号 as customer_no,
               coalesce(w.education, false) as education,
               coalesce(w.mortgage, false) as mortgage_browsing,
               coalesce(w.mortgage, false) and s.cust_no is not null as mortgage,
               s.cust_no is not null as salaried,
               coalesce(w.retirement, false) as retirement_browsing,
               coalesce(w.travel, false) as travel,
               date_diff('year', p.birth_date, date '2023-12-31') >= 50 as aged_50,
               coalesce(a.aum, 0) >= 500000 as wealthy,
               date_diff('year', p.birth_date, date '2023-12-31') >= 50 and coalesce(a.aum, 0) >= 500000
                   as senior_wealthy,
               c.性别 = '男' as male,
               c.城市等级 = '一线' as first_tier
        from customers c
        join (select 客户号, coalesce(try_strptime(出生日期, '%Y%m%d'), try_strptime(出生日期, '%Y年%-m月%-d日'))
                  as birth_date from customers) p on p.客户号 = c.客户号
        left join browsing w on w.cust_no = c.客户号
        left join salary s on s.cust_no = c.客户号
        left join assets a on a.cust_no = c.客户号
        """
    ).df()


@pytest.mark.parametrize(
    ("product", "driver"),
    [
        ("education_wealth", "education"),
        ("mortgage", "mortgage"),
        ("retirement_insurance", "senior_wealthy"),
        ("travel_card", "travel"),
    ],
)
def test_takeup_driver_is_strongest_flag(con, product, driver):
    flags = _flags(con)
    labels = con.sql(
        f"""
        select 客户号 as customer_no, cast(标签值 as integer) as taken from labels
        where 标签类型 = '产品购买' and 产品 = '{PRODUCT_NAMES[product]}'
        """
    ).df()
    data = labels.merge(flags, on="customer_no")
    assert len(data) > 1500

    def lift(flag: str) -> float:
        has = data[flag].astype(bool)
        return data.loc[has, "taken"].mean() / data.loc[~has, "taken"].mean()

    candidates = ["education", "mortgage", "salaried", "travel", "retirement_browsing", "aged_50", "wealthy",
                  "senior_wealthy", "male", "first_tier"]
    lifts = {flag: lift(flag) for flag in candidates}
    assert lifts[driver] >= 4.0
    assert max(lifts, key=lifts.get) == driver, lifts


def test_takeup_opens_the_product(con):
    missing = con.sql(
        """
        select count(*) from labels l
        where l.标签类型 = '产品购买' and l.标签值 = '1'
          and not exists (select 1 from accounts a where a.客户号 = l.客户号 and a.产品名称 = l.产品
                          and a.开户日期 = l.标签日期)
        """
    ).fetchall()[0][0]
    assert missing == 0


def test_takeup_dates_fall_in_window(con):
    low, high = con.sql(
        "select min(标签日期), max(标签日期) from labels where 标签类型 = '产品购买' and 标签值 = '1'"
    ).fetchall()[0]
    assert low >= WINDOW_START
    assert high <= "2024-06-30"


def test_defaults_follow_planted_timeline(truth):
    defaulters = truth[truth["defaulted"]]
    assert len(defaulters) >= 40
    assert 0.65 <= defaulters["pre_default_behaviour"].mean() <= 0.95
    gap = (pd.to_datetime(defaulters["default_date"]) - pd.to_datetime(defaulters["delinquency_date"])).dt.days
    assert (gap == 90).all()
    planted = defaulters[defaulters["pre_default_behaviour"]]
    assert planted["lead_days"].between(61, 183).all()
    assert defaulters.loc[~defaulters["pre_default_behaviour"], "lead_days"].isna().all()
    signals = planted[["signal_salary_stop", "signal_cash_jump", "signal_new_device", "signal_late_payment"]]
    assert (signals.sum(axis=1) >= 2).all()


def test_default_labels_match_truth(con, truth):
    labels = con.sql(
        "select 客户号 as customer_no, 标签日期 as label_date from labels where 标签类型 = '违约' and 标签值 = '1'"
    ).df()
    expected = truth.loc[truth["defaulted"], ["customer_no", "default_date"]]
    merged = expected.merge(labels, on="customer_no", how="outer")
    assert len(merged) == len(expected) == len(labels)
    assert (pd.to_datetime(merged["label_date"]) == pd.to_datetime(merged["default_date"])).all()


def test_salary_stops_at_behaviour_date(con):
    rows = con.sql(
        """
        select p.customer_no,
               count(*) filter (where t.txn_tm >= p.behaviour_date) as after,
               count(*) filter (where t.txn_tm < p.behaviour_date
                                  and t.txn_tm >= p.behaviour_date - interval 62 day) as before
        from planted_truth p left join transactions t on t.cust_no = p.customer_no and t.txn_type = '代发工资'
        where p.signal_salary_stop group by 1
        """
    ).df()
    assert len(rows) >= 10
    assert (rows["after"] == 0).all()
    assert (rows["before"] >= 1).mean() > 0.9


def test_cash_withdrawals_jump_before_delinquency(con):
    before, after = con.sql(
        """
        with per_customer as (
            select p.customer_no,
                   count(t.txn_no) filter (where t.txn_tm < p.behaviour_date) as before_count,
                   date_diff('day', date '2023-01-01', p.behaviour_date) as before_days,
                   count(t.txn_no) filter (where t.txn_tm >= p.behaviour_date
                                             and t.txn_tm < p.delinquency_date) as after_count,
                   date_diff('day', p.behaviour_date, p.delinquency_date) as after_days
            from planted_truth p left join transactions t on t.cust_no = p.customer_no and t.txn_type = '取现'
            where p.signal_cash_jump group by all
        )
        select sum(before_count) / sum(before_days), sum(after_count) / sum(after_days) from per_customer
        """
    ).fetchall()[0]
    assert after > 5 * before
    assert after * 30 > 3


def test_new_device_appears_at_behaviour_date(con):
    rows = con.sql(
        """
        select p.customer_no,
               count(distinct e.device_id) filter (
                   where e.evt_tm >= p.behaviour_date and e.device_id not in (
                       select device_id from events old where old.cust_no = p.customer_no
                         and old.evt_tm < p.behaviour_date)) as new_devices
        from planted_truth p join events e on e.cust_no = p.customer_no
        where p.signal_new_device group by 1
        """
    ).df()
    assert len(rows) >= 10
    assert (rows["new_devices"] >= 1).all()


def test_late_payments_then_missed_instalments(con):
    rows = con.sql(
        """
        select p.customer_no, p.signal_late_payment,
               count(*) filter (where cast(r.应还日期 as date) >= p.behaviour_date
                                  and cast(r.应还日期 as date) < p.delinquency_date
                                  and cast(r.逾期天数 as integer) >= 5 and r.实还日期 is not null) as late,
               count(*) filter (where cast(r.应还日期 as date) >= p.delinquency_date
                                  and r.实还日期 is not null) as paid_after
        from planted_truth p join repayments r on r.客户号 = p.customer_no
        where p.defaulted group by all
        """
    ).df()
    assert (rows["paid_after"] == 0).all()
    late_signal = rows[rows["signal_late_payment"]]
    assert len(late_signal) >= 10
    assert (late_signal["late"] >= 1).mean() > 0.9


def test_false_alarms_are_few(truth):
    alarms = truth["false_alarm"].notna()
    assert not (alarms & truth["defaulted"]).any()
    assert 0.015 <= alarms.mean() <= 0.045


def _rings(truth: pd.DataFrame) -> dict[int, set[str]]:
    members = truth[truth["fraud_ring"].notna()]
    return {int(ring): set(group["customer_no"]) for ring, group in members.groupby("fraud_ring")}


def test_rings_share_phones_and_devices(con, truth):
    rings = _rings(truth)
    assert len(rings) >= 3
    customers = con.sql("select 客户号, 手机号 from customers").df().set_index("客户号")["手机号"]
    for ring, members in rings.items():
        assert 4 <= len(members) <= 12
        phones = customers.loc[sorted(members)]
        assert phones.nunique() <= 2, ring
        shared_device = con.sql(
            f"""
            select max(users) from (select device_id, count(distinct cust_no) as users from events
                                    where cust_no in {tuple(sorted(members))} group by 1)
            """
        ).fetchall()[0][0]
        assert shared_device >= 2, ring


def _strongly_connected(nodes: set[str], edges: set[tuple[str, str]]) -> bool:
    def reach(start: str, forward: bool) -> set[str]:
        seen, stack = {start}, [start]
        while stack:
            node = stack.pop()
            for source, target in edges:
                if forward and source == node:
                    neighbour = target
                elif not forward and target == node:
                    neighbour = source
                else:
                    continue
                if neighbour not in seen:
                    seen.add(neighbour)
                    stack.append(neighbour)
        return seen

    start = next(iter(nodes))
    return reach(start, True) >= nodes and reach(start, False) >= nodes


def test_rings_move_money_in_cycles(con, truth):
    owner = con.sql("select 账号, 客户号 from accounts").df().set_index("账号")["客户号"]
    transfers = con.sql("select cust_no, cpty_no from transactions where txn_type = '转账转出'").df()
    transfers["receiver"] = transfers["cpty_no"].map(owner)
    for ring, members in _rings(truth).items():
        inside = transfers[transfers["cust_no"].isin(members) & transfers["receiver"].isin(members)]
        edges = set(zip(inside["cust_no"], inside["receiver"]))
        assert _strongly_connected(members, edges), ring
        assert len(inside) >= 3 * len(members)


def test_confirmed_fraud_labels_are_ring_members(con, truth):
    labels = con.sql("select 客户号, 标签值 from labels where 标签类型 = '欺诈'").df()
    confirmed = set(labels.loc[labels["标签值"] == "1", "客户号"])
    cleared = set(labels.loc[labels["标签值"] == "0", "客户号"])
    members = set(truth.loc[truth["fraud_ring"].notna(), "customer_no"])
    assert confirmed
    assert confirmed <= members
    assert confirmed == set(truth.loc[truth["fraud_confirmed"], "customer_no"])
    assert not cleared & members


def test_family_members_share_address(con):
    pairs = con.sql(
        """
        select count(*), count(*) filter (where a.联系地址 = b.联系地址)
        from relations r join customers a on a.客户号 = r.客户号 join customers b on b.客户号 = r.关联方
        where r.关系类型 = '亲属'
        """
    ).fetchall()[0]
    assert pairs[0] > 100
    assert pairs[0] == pairs[1]


def _segment_features(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.sql(
        """
        select p.customer_no, p.segment, p.age,
               ln(1 + coalesce(assets.aum, 0)) as log_assets,
               ln(1 + coalesce(activity.count, 0)) as log_transactions,
               coalesce(activity.mobile_share, 0) as mobile_share,
               coalesce(activity.business_share, 0) as business_share,
               ln(1 + coalesce(activity.inflow, 0)) as log_inflow,
               ln(1 + coalesce(app.count, 0)) as log_events
        from planted_truth p
        left join (select b.cust_no, sum(b.bal) as aum from balances b join accounts a on a.账号 = b.acct_no
                   where a.产品大类 in ('存款', '理财') and b.stat_month = date '2024-06-30' group by 1) assets
               on assets.cust_no = p.customer_no
        left join (select cust_no, count(*) as count,
                          avg(case when chnl in ('手机银行', '第三方支付') then 1 else 0 end) as mobile_share,
                          avg(case when txn_type in ('经营收入', '经营支出') then 1 else 0 end) as business_share,
                          sum(greatest(txn_amt, 0)) / 18 as inflow
                   from transactions group by 1) activity on activity.cust_no = p.customer_no
        left join (select cust_no, count(*) as count from events group by 1) app on app.cust_no = p.customer_no
        """
    ).df()


def test_segments_differ_as_planted(con):
    features = _segment_features(con).groupby("segment").median(numeric_only=True)
    assert features["age"].idxmax() == "affluent_senior"
    assert features["log_assets"].idxmax() == "affluent_senior"
    assert features["mobile_share"].idxmax() == "young_professional"
    assert features["business_share"].idxmax() == "small_business"
    assert features.loc["dormant", "log_transactions"] == 0
    assert features.loc["dormant", "log_events"] == 0


def _adjusted_rand_index(truth: np.ndarray, found: np.ndarray) -> float:
    table = pd.crosstab(truth, found).to_numpy()
    pairs = sum(comb(int(n), 2) for n in table.ravel())
    rows = sum(comb(int(n), 2) for n in table.sum(axis=1))
    columns = sum(comb(int(n), 2) for n in table.sum(axis=0))
    expected = rows * columns / comb(int(table.sum()), 2)
    return (pairs - expected) / ((rows + columns) / 2 - expected)


def test_segments_recoverable_by_kmeans(con):
    # Plain k-means (Lloyd's algorithm, 10 random starts, seed 0) on seven
    # standardised features; the relationship map offers many more.
    features = _segment_features(con)
    columns = ["age", "log_assets", "log_transactions", "mobile_share", "business_share", "log_inflow", "log_events"]
    x = features[columns].to_numpy(float)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    rng = np.random.default_rng(0)
    best_inertia, best_labels = np.inf, None
    for _ in range(10):
        centres = x[rng.choice(len(x), 5, replace=False)]
        for _ in range(100):
            labels = ((x[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
            centres = np.array([x[labels == k].mean(axis=0) if (labels == k).any() else centres[k] for k in range(5)])
        inertia = ((x - centres[labels]) ** 2).sum()
        if inertia < best_inertia:
            best_inertia, best_labels = inertia, labels
    assert _adjusted_rand_index(features["segment"].to_numpy(), best_labels) >= 0.7
