"""Parameters of stage 03 (segmentation), as written in engagement.yaml.

``stages.segmentation.params`` holds one block per part of the stage::

    as_of: 2024-06-30
    tiers: {amount_unit: 万元, rules: [...]}
    rfm: {recency: days_since_last_purchase, ...}
    clusters: {method: kmeans, features: [...], k: [3, 8], ...}
    profiles: {features: [...]}
    migration: {from_date: 2023-07-31, baseline_run: ""}
    actions: {tier: {private: {zh_CN: ..., en: ...}}}

:func:`parse_params` validates them with pydantic and turns every problem
into one :class:`~relmap_utils.errors.ConfigError` that names the key path
(``stages.segmentation.params.clusters.k``) and the value.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from collections.abc import Collection

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from relmap_utils.config import params_error, rule_error
from relmap_utils.errors import ConfigError

PARAM_PATH = "stages.segmentation.params"
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_\-\u4e00-\u9fff]{1,40}$")
# Units written after a number in a threshold, and their factor to yuan.
AMOUNT_UNITS = {"元": 1.0, "万": 1e4, "万元": 1e4, "亿": 1e8, "亿元": 1e8}
_AMOUNT_TEXT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(元|万元|万|亿元|亿)?\s*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Bilingual(_Strict):
    """A text in both report languages; a missing one falls back to the other."""

    zh_CN: str = ""
    en: str = ""

    @model_validator(mode="after")
    def _one_given(self) -> "Bilingual":
        if not self.zh_CN and not self.en:
            raise rule_error("segmentation.rule.bilingual_empty")
        return self

    def get(self, locale: str) -> str:
        """Return the text in ``locale``, or the other language's when that one is empty."""
        primary = self.en if locale == "en" else self.zh_CN
        return primary or self.zh_CN or self.en


class Condition(_Strict):
    """One test on one map column; every given test must hold.

    ``min`` and ``max`` are inclusive. On amount columns they may be text
    with a unit (``"50万"``, ``"1.2亿"``); bare numbers are in the tiers'
    ``amount_unit``.
    """

    min: float | str | None = None
    max: float | str | None = None
    equals: float | str | bool | None = None
    in_: list[float | str | bool] | None = Field(default=None, alias="in")
    missing: bool | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _some_test(self) -> "Condition":
        if all(value is None for value in (self.min, self.max, self.equals, self.in_, self.missing)):
            raise rule_error("segmentation.rule.condition_empty", allowed="min, max, equals, in, missing")
        for name in ("min", "max"):
            value = getattr(self, name)
            if isinstance(value, str) and not _AMOUNT_TEXT.match(value):
                raise rule_error("segmentation.rule.amount_text", at=name, value=value, allowed="50、50万、1.2亿、3000元")
        return self

    def written_unit(self) -> str | None:
        """Return the unit written in a text ``min`` or ``max`` (``"50万"`` gives ``万``), if any."""
        for value in (self.min, self.max):
            if isinstance(value, str):
                match = _AMOUNT_TEXT.match(value)
                if match and match.group(2):
                    return match.group(2)
        return None


class TierRule(_Strict):
    """One tier: customers matching ``when`` and no earlier rule.

    ``when`` maps a map column to a :class:`Condition` (all must hold), or
    is a list of such mappings (any one must hold). An empty ``when`` or
    ``otherwise: true`` matches every customer left: the catch-all tier.
    """

    code: str
    name: Bilingual | None = None
    when: dict[str, Condition] | list[dict[str, Condition]] = Field(default_factory=dict)
    otherwise: bool = False

    @field_validator("code")
    @classmethod
    def _plain_code(cls, value: str) -> str:
        if not CODE_PATTERN.match(value):
            raise rule_error("segmentation.rule.tier_code", allowed=CODE_PATTERN.pattern)
        return value

    @property
    def catch_all(self) -> bool:
        """True when the rule matches every customer that reaches it."""
        return self.otherwise or not self.when

    def clauses(self) -> list[dict[str, Condition]]:
        """Return ``when`` as a list of AND-clauses (empty for a catch-all)."""
        if self.otherwise:
            return []
        return [self.when] if isinstance(self.when, dict) else [clause for clause in self.when if clause]


class TierParams(_Strict):
    """Ordered tier rules; the first rule a customer matches is their tier."""

    amount_unit: Literal["元", "万元", "亿元"] = "元"
    rules: list[TierRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_codes(self) -> "TierParams":
        codes = [rule.code for rule in self.rules]
        repeated = sorted({code for code in codes if codes.count(code) > 1})
        if repeated:
            raise rule_error("segmentation.rule.codes_repeated", at="rules", value=", ".join(repeated))
        for path, condition in self.conditions():
            if condition.min is None or condition.max is None:
                continue
            low = amount_to_yuan(condition.min, self.amount_unit)
            high = amount_to_yuan(condition.max, self.amount_unit)
            if low > high:
                raise rule_error(
                    "segmentation.rule.min_above_max", at=path, value=f"min={condition.min}, max={condition.max}",
                    allowed="min <= max",
                )
        return self

    def conditions(self) -> list[tuple[str, Condition]]:
        """Return every condition with its key path below ``tiers``, such as ``rules[0].when.aum``."""
        found = []
        for position, rule in enumerate(self.rules):
            if isinstance(rule.when, dict):
                found += [(f"rules[{position}].when.{column}", test) for column, test in rule.when.items()]
            else:
                for index, clause in enumerate(rule.when):
                    found += [(f"rules[{position}].when[{index}].{column}", test) for column, test in clause.items()]
        return found


class RfmParams(_Strict):
    """Map columns of recency, frequency and monetary value, and the scoring."""

    enabled: bool = True
    recency: str = "days_since_last_purchase"
    frequency: str = "purchase_count"
    monetary: str = "purchase_amount"
    bins: int = Field(default=5, ge=2, le=10)
    # A score at or above this is "high" in the eight RFM cells.
    high_score: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _high_within_bins(self) -> "RfmParams":
        if self.high_score > self.bins:
            raise rule_error(
                "segmentation.rule.high_score", at="high_score", value=self.high_score, allowed=f"<= {self.bins}"
            )
        return self


class SegmentName(_Strict):
    """A consultant's name and description of one segment, overriding the automatic ones."""

    zh_CN: str = ""
    en: str = ""
    description_zh: str = ""
    description_en: str = ""


class ClusterParams(_Strict):
    """Data-driven segments: which features, which model, how k is chosen."""

    enabled: bool = True
    method: Literal["kmeans", "gmm"] = "kmeans"
    features: list[str] = Field(default_factory=list)
    # Columns to log-transform (log1p of values clipped at 0); None chooses
    # amounts and counts from the feature dictionary.
    log_features: list[str] | None = None
    k: int | list[int] = Field(default_factory=lambda: [3, 8])
    criterion: Literal["silhouette", "bic"] | None = None
    sample_size: int = Field(default=100_000, ge=100)
    silhouette_sample: int = Field(default=5_000, ge=100)
    minibatch_above: int = Field(default=50_000, ge=1)
    bootstrap: int = Field(default=5, ge=0, le=100)
    stability_threshold: float = Field(default=0.8, gt=0, le=1)
    random_state: int = Field(default=0, ge=0)
    strata: str | None = "tier"
    chunk_size: int = Field(default=200_000, ge=1000)
    names: dict[str, SegmentName] = Field(default_factory=dict)

    @field_validator("k")
    @classmethod
    def _k_range(cls, value: int | list[int]) -> int | list[int]:
        values = [value] if isinstance(value, int) else value
        if not 1 <= len(values) <= 2 or any(item < 2 for item in values) or values != sorted(values):
            raise rule_error("segmentation.rule.k_range", allowed="k >= 2, [low, high], 2 <= low <= high")
        return value

    @model_validator(mode="after")
    def _bic_needs_mixture(self) -> "ClusterParams":
        if self.criterion == "bic" and self.method != "gmm":
            raise rule_error("segmentation.rule.bic_needs_gmm", at="criterion", value="bic", allowed="silhouette")
        return self

    @property
    def k_values(self) -> list[int]:
        """Every k to try, lowest first."""
        if isinstance(self.k, int):
            return [self.k]
        return list(range(self.k[0], self.k[-1] + 1))

    @property
    def selection(self) -> str:
        """The k-selection criterion: silhouette for KMeans, BIC for GaussianMixture, unless set."""
        return self.criterion or ("bic" if self.method == "gmm" else "silhouette")


class ProfileParams(_Strict):
    """Columns whose contrasts profile each tier and segment."""

    features: list[str] = Field(default_factory=list)
    # Contrasts used to name a segment automatically.
    name_contrasts: int = Field(default=2, ge=1, le=4)


class MigrationParams(_Strict):
    """The two map dates, or the baseline run, that migration compares."""

    enabled: bool = True
    from_date: str = ""
    to_date: str = ""
    baseline_run: str = ""
    top_movers: int = Field(default=20, ge=0, le=1000)


class ActionParams(_Strict):
    """Recommended actions that replace the defaults, per tier code, RFM cell or segment id."""

    tier: dict[str, Bilingual] = Field(default_factory=dict)
    rfm_cell: dict[str, Bilingual] = Field(default_factory=dict)
    segment: dict[str, Bilingual] = Field(default_factory=dict)


class SegmentationParams(_Strict):
    """All parameters of stage 03."""

    as_of: str = ""
    tiers: TierParams = Field(default_factory=TierParams)
    rfm: RfmParams = Field(default_factory=RfmParams)
    clusters: ClusterParams = Field(default_factory=ClusterParams)
    profiles: ProfileParams = Field(default_factory=ProfileParams)
    migration: MigrationParams = Field(default_factory=MigrationParams)
    actions: ActionParams = Field(default_factory=ActionParams)


def parse_params(values: dict[str, Any] | None) -> SegmentationParams:
    """Validate the stage parameters.

    Parameters
    ----------
    values : dict or None
        ``stages.segmentation.params`` (empty values of the notebook's
        parameters cell are dropped, so the defaults apply).

    Returns
    -------
    SegmentationParams

    Raises
    ------
    ConfigError
        Listing every invalid key with its path under
        ``stages.segmentation.params``, the value and what is expected.
    """
    cleaned = {name: value for name, value in (values or {}).items() if value not in (None, "", [], {})}
    try:
        return SegmentationParams.model_validate(cleaned)
    except ValidationError as error:
        raise params_error(error, SegmentationParams, PARAM_PATH) from None


def check_threshold_units(tiers: TierParams, amount_columns: Collection[str]) -> None:
    """Reject a threshold written with a money unit (``"5万"``) on a column that is not an amount.

    Such a threshold would be read as a plain number (5万 as 50,000
    transactions), so the rule would silently match nobody or everybody.

    Parameters
    ----------
    tiers : TierParams
    amount_columns : collection of str
        Map columns measured in yuan (from the feature dictionary).

    Raises
    ------
    ConfigError
        Naming the key path ``stages.segmentation.params.tiers.rules[i].when.<column>``.
    """
    for path, condition in tiers.conditions():
        column = path.rsplit(".", 1)[1]
        unit = condition.written_unit()
        if unit is not None and column not in amount_columns:
            value = condition.min if condition.min is not None else condition.max
            raise ConfigError(
                "segmentation.tier_unit_not_amount", path=f"{PARAM_PATH}.tiers.{path}", column=column, value=value, unit=unit
            )


def amount_to_yuan(value: float | str, unit: str) -> float:
    """Convert a threshold to yuan.

    Text carries its own unit (``"50万"`` is 500,000); a bare number is in
    ``unit`` (``元``, ``万元`` or ``亿元``).

    Examples
    --------
    >>> amount_to_yuan("50万", "元"), amount_to_yuan(50, "万元"), amount_to_yuan("1.2亿", "元")
    (500000.0, 500000.0, 120000000.0)
    """
    if isinstance(value, str):
        match = _AMOUNT_TEXT.match(value)
        if match is None:
            raise ValueError(f"not an amount: {value!r}")
        number, written_unit = float(match.group(1)), match.group(2)
        return number * AMOUNT_UNITS[written_unit or unit]
    return float(value) * AMOUNT_UNITS[unit]
