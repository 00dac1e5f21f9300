"""Points scorecard from a logit on WoE features.

Scaling: a score of ``base_score`` means good:bad odds of ``base_odds``, and
every ``pdo`` points double the odds. With ``factor = pdo / ln 2`` and
``offset = base_score - factor * ln(base_odds)``, the score is
``offset + factor * ln(odds_good)``. The logit models
``ln(odds_bad) = b0 + sum_i b_i * WoE_i``, so a bin of variable ``i`` with
WoE ``w`` earns ``-factor * b_i * w + (offset - factor * b0) / n`` points,
where ``n`` is the number of variables. A higher score means lower risk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from relmap_utils.risk.binning import assign_bins
from relmap_utils.risk.params import ScorecardSettings

SCORECARD_COLUMNS = (
    "variable", "bin_id", "bin", "kind", "lower", "upper", "categories", "special",
    "count", "bad_rate", "woe", "coef", "points_exact", "points",
)


@dataclass
class Scorecard:
    """A points table and its scaling.

    Attributes
    ----------
    table : pandas.DataFrame
        :data:`SCORECARD_COLUMNS`; ``points`` are the exact points rounded
        to whole numbers, the form a risk team files.
    factor, offset : float
    intercept : float
        ``b0`` of the logit.
    variables : list of str
    """

    table: pd.DataFrame
    factor: float
    offset: float
    intercept: float
    variables: list[str]

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the total points of each row of ``frame`` (raw variable values)."""
        total = np.zeros(len(frame))
        for name in self.variables:
            rows = self.table[self.table.variable == name]
            ids = assign_bins(rows, frame[name])
            points = pd.Series(rows["points"].to_numpy(dtype=float), index=rows["bin_id"].to_numpy())
            # A value outside every bin (an unseen category) gets the points of WoE 0.
            neutral = (self.offset - self.factor * self.intercept) / len(self.variables)
            total += np.where(ids >= 0, points.reindex(ids).fillna(neutral).to_numpy(), neutral)
        return total

    def probability(self, score: Sequence[float] | np.ndarray) -> np.ndarray:
        """Return the default probability that a score stands for under the scaling."""
        odds_good = np.exp((np.asarray(score, dtype=float) - self.offset) / self.factor)
        return 1.0 / (1.0 + odds_good)


def scaling(settings: ScorecardSettings) -> tuple[float, float]:
    """Return ``(factor, offset)`` of the scaling.

    Examples
    --------
    >>> factor, offset = scaling(ScorecardSettings())
    >>> round(factor, 4), round(offset, 4)
    (72.1348, 387.6036)
    """
    factor = settings.pdo / math.log(2)
    return factor, settings.base_score - factor * math.log(settings.base_odds)


def build_scorecard(bins: pd.DataFrame, logit: pd.DataFrame, settings: ScorecardSettings) -> Scorecard:
    """Turn the bins and the logit coefficients of the kept variables into points.

    Parameters
    ----------
    bins : pandas.DataFrame
        Bin tables (see :func:`~relmap_utils.risk.binning.bin_table`).
    logit : pandas.DataFrame
        ``variable`` and ``coef``, with the intercept as ``const``.
    settings : ScorecardSettings

    Returns
    -------
    Scorecard
    """
    factor, offset = scaling(settings)
    coefficients = logit.set_index("variable")["coef"]
    intercept = float(coefficients.get("const", 0.0))
    variables = [name for name in logit["variable"] if name != "const"]
    share = (offset - factor * intercept) / max(len(variables), 1)

    frames = []
    for name in variables:
        rows = bins[(bins.variable == name) & ~bins["empty"]].copy()
        rows["coef"] = float(coefficients[name])
        rows["points_exact"] = -factor * rows["coef"] * rows["woe"] + share
        frames.append(rows)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(SCORECARD_COLUMNS))
    table["points"] = np.round(table["points_exact"].astype(float)).astype(int) if len(table) else []
    return Scorecard(table[list(SCORECARD_COLUMNS)], factor, offset, intercept, variables)
