"""Profile and life stage: age, tenure, region, occupation and family-stage proxies.

Attributes of the customer master (occupation, income, city, ...) are taken
as extracted: the customers table is a snapshot, not a history, so these
columns hold the extraction-time value at every ``as_of``. Age, tenure and
life stage are computed at ``as_of``.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import ibis.expr.types as ir

from relmap_utils import schema
from relmap_utils.features.base import BuildContext, Feature, finish
from relmap_utils.features.spec import MapSpec
from relmap_utils.features.windows import whole_months, whole_years

FAMILY = "profile"

# Customer-master columns copied into the map, in this order.
ATTRIBUTES = (
    "gender", "customer_type", "region", "city", "city_tier", "occupation", "education",
    "marital_status", "income", "risk_tolerance",
)
# regions columns joined through customers.region_id, and their map names.
REGION_ATTRIBUTES = {
    "region_name": "region_name",
    "parent_region": "region_parent",
    "city_tier": "region_city_tier",
    "population": "region_population",
    "urban_share": "region_urban_share",
    "avg_salary": "region_avg_salary",
    "unemployment_rate": "region_unemployment_rate",
}
_REGION_UNITS = {"population": "number", "urban_share": "number", "avg_salary": "yuan", "unemployment_rate": "number"}

# Age bands (lower bound in years, code), and life stages by age and marriage.
AGE_BANDS = ((65, "65_plus"), (55, "55_64"), (45, "45_54"), (35, "35_44"), (25, "25_34"), (0, "under_25"))
LIFE_STAGES = ("young_single", "young_family", "mid_single", "mid_family", "pre_retirement", "retirement")


def features(spec: MapSpec) -> list[Feature]:
    """Return the candidate features of the profile family."""
    customers = schema.table("customers")
    regions = schema.table("regions")
    result = [
        Feature("joined_by_as_of", FAMILY, "flag", "open_date <= as_of, or open_date missing",
                ("customers.open_date",), "features.feature.joined_by_as_of"),
        Feature("age_years", FAMILY, "years",
                "whole years from birth_date to as_of; NULL when birth_date is missing or after as_of",
                ("customers.birth_date",), "features.feature.age_years"),
        Feature("age_band", FAMILY, "category", "age_years in bands: under_25, 25_34, 35_44, 45_54, 55_64, 65_plus",
                ("customers.birth_date",), "features.feature.age_band"),
        Feature("tenure_months", FAMILY, "months",
                "whole months from open_date to as_of; NULL when open_date is missing or after as_of",
                ("customers.open_date",), "features.feature.tenure_months"),
        Feature("is_married", FAMILY, "flag", "marital_status in MapSpec.married_values; NULL when missing",
                ("customers.marital_status",), "features.feature.is_married"),
        Feature("life_stage", FAMILY, "category",
                "age < 35: young_single/young_family; 35-54: mid_single/mid_family (by is_married); "
                "55-64: pre_retirement; 65+: retirement",
                ("customers.birth_date", "customers.marital_status"), "features.feature.life_stage"),
    ]
    for column in ATTRIBUTES:
        definition = customers.column(column)
        unit = "yuan" if definition.type == "amount" else "category"
        result.append(
            Feature(column, FAMILY, unit, f"customers.{column} as extracted", (f"customers.{column}",),
                    "features.feature.attribute",
                    {"label": {"zh_CN": definition.description_zh, "en": definition.description_en}})
        )
    for column, name in REGION_ATTRIBUTES.items():
        definition = regions.column(column)
        result.append(
            Feature(name, FAMILY, _REGION_UNITS.get(column, "category"),
                    f"regions.{column} of customers.region_id", ("customers.region_id", f"regions.{column}"),
                    "features.feature.region_attribute",
                    {"label": {"zh_CN": definition.description_zh, "en": definition.description_en}})
        )
    result.append(
        Feature("profile_covered", FAMILY, "flag", "some profile feature above is not missing", ("customers",),
                "features.feature.profile_covered", fill=False)
    )
    return result


def build(ctx: BuildContext, included: Mapping[str, Feature]) -> ir.Table:
    """Return ``customer_id`` and the included profile features, one row per customer."""
    customers = ctx.tables["customers"]
    rows = customers.filter(customers.customer_id.notnull())
    # One row per customer even if the master repeats an id; run_stage rejects
    # repeated ids before it builds, so max() only guards direct callers.
    columns = [name for name in ("birth_date", "open_date", *ATTRIBUTES, "region_id") if name in rows.columns]
    master = rows.group_by("customer_id").agg({name: rows[name].max() for name in columns})

    as_of = ctx.as_of
    values: dict[str, ir.Value] = {}
    if "age_years" in included or "age_band" in included or "life_stage" in included:
        values["age_years"] = whole_years(master.birth_date, as_of)
    if "tenure_months" in included:
        values["tenure_months"] = whole_months(master.open_date, as_of)
    if "joined_by_as_of" in included:
        values["joined_by_as_of"] = master.open_date.isnull() | (master.open_date <= ibis.date(as_of))
    if "is_married" in included or "life_stage" in included:
        values["is_married"] = master.marital_status.isin(ctx.spec.married_values)
    for column in ATTRIBUTES:
        if column in included:
            values[column] = master[column]
    table = master.mutate(**values)

    if "age_band" in included:
        table = table.mutate(age_band=_age_band(table.age_years))
    if "life_stage" in included:
        table = table.mutate(life_stage=_life_stage(table.age_years, table.is_married))

    region_names = [name for column, name in REGION_ATTRIBUTES.items() if name in included]
    if region_names:
        table = _join_regions(ctx, table, region_names)

    if "profile_covered" in included:
        covered = ibis.literal(False)
        for name in included:
            if name not in ("profile_covered", "joined_by_as_of"):
                covered = covered | table[name].notnull()
        table = table.mutate(profile_covered=covered)
    return finish(table, included)


def _age_band(age: ir.IntegerValue) -> ir.StringValue:
    return ibis.cases(*[(age >= low, code) for low, code in AGE_BANDS], else_=ibis.null("string"))


def _life_stage(age: ir.IntegerValue, married: ir.BooleanValue) -> ir.StringValue:
    return ibis.cases(
        (age >= 65, "retirement"),
        (age >= 55, "pre_retirement"),
        ((age >= 35) & married, "mid_family"),
        ((age >= 35) & ~married, "mid_single"),
        ((age >= 0) & married, "young_family"),
        ((age >= 0) & ~married, "young_single"),
        else_=ibis.null("string"),
    )


def _join_regions(ctx: BuildContext, table: ir.Table, names: list[str]) -> ir.Table:
    regions = ctx.tables["regions"]
    wanted = {name: column for column, name in REGION_ATTRIBUTES.items() if name in names}
    # max() keeps one row per region even if the regions table repeats a region_id.
    attributes = regions.filter(regions.region_id.notnull()).group_by("region_id").agg(
        {name: regions[column].max() for name, column in wanted.items()}
    )
    attributes = attributes.rename(_region_key="region_id")
    joined = table.left_join(attributes, table.region_id == attributes._region_key)
    return joined.select(*table.columns, *names)
