"""Parameters of stage 04 (``stages.propensity.params`` in engagement.yaml), validated once.

Every check lives in :func:`check_parameters`, so a wrong value stops the
stage before any data is read, with the key path, the value and what is
allowed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from relmap_utils.config import params_error, rule_error

PARAMS_PATH = "stages.propensity.params"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitParams(_Strict):
    """How labelled customers are split into a development (train) and a test sample.

    ``time`` (default): rows with a label dated before ``cutoff`` train, the
    rest test; without ``cutoff`` the date is chosen so that about
    ``1 - test_share`` of the rows train. ``random``: a stratified random
    split with ``seed``, only when asked for.
    """

    method: Literal["time", "random"] = "time"
    cutoff: dt.date | None = None
    test_share: float = Field(0.3, gt=0.0, lt=1.0)
    seed: int = 42


class ContactPolicy(_Strict):
    """Who may not be contacted: columns of the canonical customers table.

    ``opted_out`` and ``open_complaint`` name boolean (or 0/1, yes/no)
    columns; ``last_contact`` names a date column, and customers contacted
    within ``recent_days`` days of the scoring date are left out.
    """

    opted_out: str | None = None
    open_complaint: str | None = None
    last_contact: str | None = None
    recent_days: int = Field(30, ge=0)


class Suitability(_Strict):
    """Suitability (适当性): product risk levels (R1-R5) and the customer's risk tolerance (C1-C5)."""

    risk_levels: dict[str, str] = Field(default_factory=dict)
    tolerance_feature: str = "risk_tolerance"

    @field_validator("risk_levels")
    @classmethod
    def _levels(cls, value: dict[str, str]) -> dict[str, str]:
        for product, level in value.items():
            if _rank(level) is None:
                raise rule_error("propensity.rule.risk_level", at=product, value=level, allowed="R1, R2, R3, R4, R5")
        return value


class ProductLabel(_Strict):
    """A product's display name in each report language."""

    zh_CN: str = Field(min_length=1)
    en: str = Field(min_length=1)


class CampaignParams(_Strict):
    """Campaign lists: the ``top_n`` best customers per product."""

    top_n: int = Field(1000, ge=1)
    contact_policy: ContactPolicy = Field(default_factory=ContactPolicy)
    suitability: Suitability = Field(default_factory=Suitability)


class PropensityParams(_Strict):
    """All parameters of stage 04; see docs/propensity.md for each one."""

    products: list[str] = Field(default_factory=list)
    label_type: str = "takeup"
    min_positives: int = Field(30, ge=1)
    map_features: bool = True
    features_as_of: dt.date | None = None
    label_window_start: dt.date | None = None
    scoring_as_of: dt.date | None = None
    features: list[str] = Field(default_factory=list)
    exclude_features: list[str] = Field(default_factory=list)
    customer_columns: list[str] = Field(default_factory=list)
    post_outcome: list[str] = Field(default_factory=list)
    split: SplitParams = Field(default_factory=SplitParams)
    calibration: Literal["isotonic", "sigmoid"] = "isotonic"
    class_weight: Literal["balanced", "none"] = "balanced"
    logit_features: int = Field(12, ge=1)
    max_iter: int = Field(200, ge=10)
    learning_rate: float = Field(0.1, gt=0.0, le=1.0)
    explain_sample: int = Field(1000, ge=10)
    reason_rows: int = Field(2000, ge=0)
    product_values: dict[str, float] = Field(default_factory=dict)
    product_codes: dict[str, str] = Field(default_factory=dict)
    product_labels: dict[str, ProductLabel] = Field(default_factory=dict)
    campaign: CampaignParams = Field(default_factory=CampaignParams)
    threads: int = Field(1, ge=1)
    seed: int = 42


def _rank(level: Any) -> int | None:
    text = str(level or "").strip().upper()
    if len(text) == 2 and text[0] in "RC" and text[1] in "12345":
        return int(text[1])
    return None


def risk_rank(level: Any) -> int | None:
    """Return 1-5 for ``R1``-``R5`` or ``C1``-``C5``, else ``None``.

    Examples
    --------
    >>> risk_rank("R3"), risk_rank("c2"), risk_rank("high")
    (3, 2, None)
    """
    return _rank(level)


def check_parameters(values: Mapping[str, Any] | None) -> PropensityParams:
    """Validate the stage parameters.

    Parameters
    ----------
    values : mapping or None
        ``stages.propensity.params`` of engagement.yaml, with notebook
        overrides merged in. Empty strings count as not given.

    Returns
    -------
    PropensityParams

    Raises
    ------
    ConfigError
        Naming the key path (``stages.propensity.params.split.method``), the
        value given and what is allowed.
    """
    cleaned = {key: value for key, value in (values or {}).items() if value not in ("", None)}
    try:
        return PropensityParams.model_validate(cleaned)
    except ValidationError as exc:
        raise params_error(exc, PropensityParams, PARAMS_PATH) from None
