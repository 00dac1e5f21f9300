"""Stage 04: propensity per product, SHAP reasons, next best product and campaign lists.

See docs/propensity.md. The notebook calls :func:`run_stage`; the other
modules are usable on their own (metrics, separation check, explanations).
"""

from relmap_utils.propensity.explain import Explanation, reason_codes
from relmap_utils.propensity.metrics import OneClassWarning, summary_metrics
from relmap_utils.propensity.models import SeparationWarning, find_separation, fit_logit
from relmap_utils.propensity.params import PropensityParams, check_parameters
from relmap_utils.propensity.stage import STAGE_ID, run_stage

__all__ = [
    "STAGE_ID", "Explanation", "OneClassWarning", "PropensityParams", "SeparationWarning", "check_parameters",
    "find_separation", "fit_logit", "reason_codes", "run_stage", "summary_metrics",
]
