"""Parameters of stage 05 (risk indicators and early warning), validated with pydantic.

They come from ``stages.risk.params`` in engagement.yaml. Every setting has
a default, so an empty block runs the stage. :func:`make_params` turns a
validation failure into a :class:`~relmap_utils.errors.ConfigError` that
names the key path, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from relmap_utils.config import params_error, rule_error
from relmap_utils.risk.binning import TRENDS, SolverSettings

PARAMS_PATH = "stages.risk.params"
# Variables that credit scoring leaves out unless the engagement allows them:
# attributes that anti-discrimination rules or bank policy commonly forbid.
DEFAULT_SENSITIVE = ("gender", "ethnicity", "age_years", "age_band", "life_stage")
# Map columns that are bookkeeping, not indicators.
NOT_INDICATORS = (
    "customer_id", "as_of", "joined_by_as_of", "months_observed",
    "profile_covered", "holdings_covered", "transactions_covered", "stability_covered",
    "interests_covered", "relations_covered",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VariableSettings(_Strict):
    """Per-variable overrides of the binning (``variables.<name>``)."""

    dtype: Literal["numerical", "categorical"] | None = None
    monotonic_trend: str | None = None
    special_values: list[Any] | None = None
    breaks: list[float] | None = None
    fixed_breaks: bool = False

    @field_validator("monotonic_trend")
    @classmethod
    def _known_trend(cls, value: str | None) -> str | None:
        if value is not None and value not in TRENDS:
            raise rule_error("risk.rule.trend", allowed=", ".join(TRENDS))
        return value

    @field_validator("breaks")
    @classmethod
    def _increasing_breaks(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (not value or any(low >= high for low, high in zip(value, value[1:]))):
            raise rule_error("risk.rule.breaks", allowed="b1 < b2 < ...")
        return value


class BinningSettings(_Strict):
    """optbinning settings (``binning``); see :class:`~relmap_utils.risk.binning.SolverSettings`.

    ``n_jobs`` is the number of processes that fit variables in parallel.
    """

    solver: Literal["cp", "mip"] = "cp"
    prebinning_method: Literal["cart", "quantile", "uniform"] = "cart"
    max_n_prebins: int = Field(20, ge=2)
    min_prebin_size: float = Field(0.05, gt=0, le=0.5)
    min_bin_size: float | None = Field(None, gt=0, le=0.5)
    max_n_bins: int | None = Field(None, ge=2)
    time_limit: int = Field(60, ge=1)
    cat_cutoff: float | None = Field(None, gt=0, lt=1)
    n_jobs: int = Field(1, ge=1)

    def solver_settings(self) -> SolverSettings:
        """Return the settings as a SolverSettings (``n_jobs`` is not one of them)."""
        return SolverSettings(**self.model_dump(exclude={"n_jobs"}))


class ScreeningSettings(_Strict):
    """Thresholds of the indicator screening (``screening``)."""

    min_iv: float = Field(0.02, ge=0)
    correlation_threshold: float = Field(0.7, gt=0, le=1)
    max_vif: float = Field(10.0, gt=1)
    max_indicators: int = Field(12, ge=1)
    max_p_value: float = Field(0.05, gt=0, le=1)
    min_variable_defaults: int = Field(5, ge=1)
    # A kept indicator above this IV is flagged: so strong a separation often
    # means the variable is recorded after, or because of, the default.
    suspicious_iv: float = Field(0.5, gt=0)


class ScorecardSettings(_Strict):
    """Scaling of the scorecard (``scorecard``): ``base_score`` points at good:bad odds ``base_odds``."""

    base_score: float = 600.0
    base_odds: float = Field(19.0, gt=0)
    pdo: float = Field(50.0, gt=0)


class WarningSettings(_Strict):
    """Early-warning rules and model (``warning``); thresholds are per map date."""

    history_snapshots: int = Field(6, ge=1)
    income_drop_months: int = Field(1, ge=1)
    income_baseline_months: int = Field(2, ge=1)
    cash_jump_min: float = Field(6, ge=1)
    cash_jump_ratio: float = Field(3.0, ge=1)
    new_devices: int = Field(1, ge=1)
    late_instalments: int = Field(2, ge=1)
    days_past_due: int = Field(1, ge=1)
    aum_drop: float = Field(-0.5, lt=0, ge=-1)
    related_defaults: int = Field(1, ge=1)
    min_signals: int = Field(2, ge=1)
    model_threshold: float = Field(0.5, gt=0, le=1)
    top_k: int = Field(50, ge=1)
    lead_months: int = Field(2, ge=0)


class RiskParams(_Strict):
    """All stage 05 parameters.

    Parameters
    ----------
    label_type : str, default="default"
        ``labels.label_type`` of the default label (value 1 = default).
    outcome : {"horizon", "any"}, default="horizon"
        ``horizon``: a customer is bad when the default label is dated within
        ``horizon_months`` after the observation date; customers who
        defaulted on or before it are left out. ``any``: bad when any default
        label row has value 1, whatever its date (for extracts without dates).
    horizon_months : int, default=6
    observation_as_of : str, default=""
        Map date of the training snapshot; empty takes the latest map date
        with a whole outcome window after it (``horizon``), or the latest map
        date (``any``).
    min_defaults : int, default=20
        Fewer bad customers than this stop the screening with a notice.
    indicators : list of str, default=[]
        Map columns to screen; empty screens every column but bookkeeping.
    exclude : list of str, default=[]
    sensitive : list of str
        Variables left out of the scorecard and the warning model unless
        ``use_sensitive`` is true; the report lists them.
    use_sensitive : bool, default=False
    customer_columns : bool, default=True
        Also screen the columns of the canonical customers table that the
        canonical schema does not define (kept by ingest), such as the
        application fields of a scorecard data set.
    monotonic_trend : str, default="auto"
    special_values : list, default=[]
        Special values of every numeric variable, for example ``[-999]``.
    categorical_bins : {"optimal", "raw"}, default="optimal"
        ``raw`` keeps one bin per category (no grouping by optbinning).
    zero_cell_rule : {"add_half", "zero"}, default="add_half"
    variables : mapping of str to VariableSettings
    test_share : float, default=0.3
        Share of the training customers held out (stratified) for the test
        AUC and KS.
    random_state : int, default=42
    risk_bands : list of float, default=[0.02, 0.05, 0.15]
        Cut points of the combined default probability into the bands low,
        medium, high and very_high.
    """

    label_type: str = "default"
    outcome: Literal["horizon", "any"] = "horizon"
    horizon_months: int = Field(6, ge=1, le=36)
    observation_as_of: str = ""
    min_defaults: int = Field(20, ge=1)
    indicators: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    sensitive: list[str] = Field(default_factory=lambda: list(DEFAULT_SENSITIVE))
    use_sensitive: bool = False
    customer_columns: bool = True
    monotonic_trend: str = "auto"
    special_values: list[Any] = Field(default_factory=list)
    categorical_bins: Literal["optimal", "raw"] = "optimal"
    zero_cell_rule: Literal["add_half", "zero"] = "add_half"
    variables: dict[str, VariableSettings] = Field(default_factory=dict)
    binning: BinningSettings = Field(default_factory=BinningSettings)
    screening: ScreeningSettings = Field(default_factory=ScreeningSettings)
    scorecard: ScorecardSettings = Field(default_factory=ScorecardSettings)
    warning: WarningSettings = Field(default_factory=WarningSettings)
    test_share: float = Field(0.3, gt=0, lt=1)
    random_state: int = 42
    risk_bands: list[float] = Field(default_factory=lambda: [0.02, 0.05, 0.15])

    @field_validator("monotonic_trend")
    @classmethod
    def _known_trend(cls, value: str) -> str:
        if value not in TRENDS:
            raise rule_error("risk.rule.trend", allowed=", ".join(TRENDS))
        return value

    @field_validator("observation_as_of", mode="before")
    @classmethod
    def _date_text(cls, value: Any) -> Any:
        return "" if value is None else str(value)

    @model_validator(mode="after")
    def _bands_increase(self) -> "RiskParams":
        bands = self.risk_bands
        if not bands or any(not 0 < value < 1 for value in bands) or sorted(set(bands)) != bands:
            raise rule_error("risk.rule.bands", at="risk_bands", value=bands, allowed="0 < b1 < b2 < ... < 1")
        return self

    def variable(self, name: str) -> VariableSettings:
        """Return the overrides of ``name`` (defaults when none are set)."""
        return self.variables.get(name, VariableSettings())


def make_params(values: Mapping[str, Any] | None) -> RiskParams:
    """Validate stage parameters into :class:`RiskParams`.

    Raises
    ------
    ConfigError
        When a key is unknown or a value invalid; the message names the key
        path under ``stages.risk.params``, the value and the rule.
    """
    try:
        return RiskParams.model_validate(dict(values or {}))
    except ValidationError as error:
        raise params_error(error, RiskParams, PARAMS_PATH) from None
