"""The five planted customer segments and the behaviour each one drives.

Segments are the demo bank's ground truth for clustering: each one differs from
the others in age, assets, activity, channel use and products, so that a
clustering of the relationship map can recover them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SEGMENT_CODES = ("affluent_senior", "young_professional", "mass_retail", "small_business", "dormant")

# Share of customers in each segment, in SEGMENT_CODES order.
SEGMENT_SHARES = (0.10, 0.22, 0.38, 0.12, 0.18)

EDUCATIONS = ("初中及以下", "高中/中专", "大专", "本科", "硕士及以上")
RISK_TOLERANCES = ("C1", "C2", "C3", "C4", "C5")
# Transaction kinds of the free-form activity (everything except salaries,
# repayments and the planted patterns). Amount sign follows the kind.
ACTIVITY_KINDS = ("消费", "转账转出", "转账转入", "取现", "存现", "经营收入", "经营支出")


@dataclass(frozen=True)
class Segment:
    """Parameters of one segment; probabilities are per customer, amounts in yuan."""

    code: str
    name_zh: str
    name_en: str
    age: tuple[int, int]
    tier_weights: tuple[float, ...]  # over people.TIERS
    occupation_weights: dict[str, float]
    education_weights: tuple[float, ...]  # over EDUCATIONS
    risk_weights: tuple[float, ...]  # over RISK_TOLERANCES
    tenure_years: tuple[float, float]
    income_median_wan: float  # annual income, 万元
    liquid_median: float  # demand-deposit level
    aum_median: float  # deposits and wealth products together
    aum_sigma: float
    salaried: float
    activity_per_month: float  # free-form transactions per active month
    app_events_per_month: float
    mobile_share: float  # share of non-cash activity in the mobile app
    counter_share: float  # share of transfers and cash at the branch counter
    kind_weights: tuple[float, ...]  # over ACTIVITY_KINDS
    spend_multiplier: float
    products: dict[str, float] = field(default_factory=dict)  # product code -> holding probability


SEGMENTS: dict[str, Segment] = {
    segment.code: segment
    for segment in (
        Segment(
            code="affluent_senior",
            name_zh="富裕长者",
            name_en="affluent seniors",
            age=(58, 80),
            tier_weights=(0.35, 0.30, 0.20, 0.10, 0.05),
            occupation_weights={"退休人员": 0.55, "企业管理人员": 0.15, "私营企业主": 0.1, "医生": 0.08,
                                "教师": 0.07, "公务员": 0.05},
            education_weights=(0.15, 0.25, 0.2, 0.3, 0.1),
            risk_weights=(0.1, 0.4, 0.35, 0.1, 0.05),
            tenure_years=(8, 25),
            income_median_wan=30.0,
            liquid_median=120_000,
            aum_median=2_500_000,
            aum_sigma=0.6,
            salaried=0.12,
            activity_per_month=3.0,
            app_events_per_month=0.6,
            mobile_share=0.35,
            counter_share=0.45,
            kind_weights=(0.45, 0.2, 0.1, 0.12, 0.13, 0.0, 0.0),
            spend_multiplier=1.8,
            products={"000102": 0.85, "000103": 0.5, "001201": 0.7, "001202": 0.6, "001203": 0.25,
                      "003102": 0.25, "004101": 0.4, "002102": 0.03},
        ),
        Segment(
            code="young_professional",
            name_zh="年轻白领",
            name_en="young professionals",
            age=(23, 35),
            tier_weights=(0.4, 0.35, 0.17, 0.06, 0.02),
            occupation_weights={"企业职员": 0.45, "专业技术人员": 0.35, "公务员": 0.08, "教师": 0.07, "医生": 0.05},
            education_weights=(0.0, 0.03, 0.17, 0.55, 0.25),
            risk_weights=(0.02, 0.1, 0.38, 0.35, 0.15),
            tenure_years=(1, 8),
            income_median_wan=18.0,
            liquid_median=45_000,
            aum_median=120_000,
            aum_sigma=0.6,
            salaried=0.97,
            activity_per_month=13.0,
            app_events_per_month=6.0,
            mobile_share=0.9,
            counter_share=0.03,
            kind_weights=(0.78, 0.1, 0.07, 0.02, 0.01, 0.0, 0.02),
            spend_multiplier=1.3,
            products={"000102": 0.3, "001201": 0.4, "001203": 0.15, "003101": 0.55, "003102": 0.2,
                      "002102": 0.3, "004101": 0.1},
        ),
        Segment(
            code="mass_retail",
            name_zh="大众零售",
            name_en="mass retail",
            age=(28, 56),
            tier_weights=(0.05, 0.2, 0.3, 0.25, 0.2),
            occupation_weights={"企业职员": 0.3, "工人": 0.2, "服务业人员": 0.2, "教师": 0.05, "农民": 0.1,
                                "自由职业": 0.1, "个体工商户": 0.05},
            education_weights=(0.25, 0.35, 0.25, 0.13, 0.02),
            risk_weights=(0.3, 0.45, 0.2, 0.05, 0.0),
            tenure_years=(2, 15),
            income_median_wan=7.0,
            liquid_median=12_000,
            aum_median=30_000,
            aum_sigma=0.7,
            salaried=0.75,
            activity_per_month=5.0,
            app_events_per_month=1.5,
            mobile_share=0.5,
            counter_share=0.25,
            kind_weights=(0.6, 0.12, 0.05, 0.13, 0.1, 0.0, 0.0),
            spend_multiplier=1.0,
            products={"000102": 0.35, "001201": 0.12, "003101": 0.3, "002102": 0.2, "004101": 0.08},
        ),
        Segment(
            code="small_business",
            name_zh="小微企业主",
            name_en="small-business owners",
            age=(32, 58),
            tier_weights=(0.15, 0.3, 0.3, 0.17, 0.08),
            occupation_weights={"个体工商户": 0.55, "私营企业主": 0.45},
            education_weights=(0.15, 0.35, 0.3, 0.17, 0.03),
            risk_weights=(0.03, 0.12, 0.4, 0.3, 0.15),
            tenure_years=(2, 12),
            income_median_wan=40.0,
            liquid_median=150_000,
            aum_median=400_000,
            aum_sigma=0.7,
            salaried=0.1,
            activity_per_month=11.0,
            app_events_per_month=1.5,
            mobile_share=0.45,
            counter_share=0.3,
            kind_weights=(0.15, 0.08, 0.04, 0.04, 0.09, 0.32, 0.28),
            spend_multiplier=1.5,
            products={"000102": 0.4, "001201": 0.3, "001202": 0.15, "003101": 0.25, "003102": 0.2,
                      "002103": 0.6, "004101": 0.15},
        ),
        Segment(
            code="dormant",
            name_zh="休眠客户",
            name_en="dormant customers",
            age=(20, 80),
            tier_weights=(0.1, 0.2, 0.25, 0.25, 0.2),
            occupation_weights={"学生": 0.2, "农民": 0.25, "无业": 0.2, "企业职员": 0.2, "工人": 0.15},
            education_weights=(0.35, 0.3, 0.2, 0.15, 0.0),
            risk_weights=(0.5, 0.4, 0.1, 0.0, 0.0),
            tenure_years=(3, 18),
            income_median_wan=3.0,
            liquid_median=600,
            aum_median=800,
            aum_sigma=0.8,
            salaried=0.0,
            activity_per_month=0.0,
            app_events_per_month=0.0,
            mobile_share=0.3,
            counter_share=0.6,
            kind_weights=(0.3, 0.2, 0.2, 0.2, 0.1, 0.0, 0.0),
            spend_multiplier=0.8,
            products={"000102": 0.05},
        ),
    )
}
