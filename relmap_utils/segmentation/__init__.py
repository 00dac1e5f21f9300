"""Stage 03: customer tiers, RFM, clusters, profiles, migration and recommended actions.

:func:`run_stage` runs the whole stage on a run folder; the modules hold the
parts: :mod:`.tiers` (the bank's ordered rules), :mod:`.rfm` (quantile
scores with a tie rule, and the eight RFM cells), :mod:`.clusters` (KMeans
or a Gaussian mixture on a stratified sample), :mod:`.profiles`,
:mod:`.migration` and :mod:`.actions`. docs/segmentation.md describes the
parameters and artifacts.
"""

from relmap_utils.segmentation.params import SegmentationParams, parse_params
from relmap_utils.segmentation.rfm import rfm_values_from_transactions, score_rfm
from relmap_utils.segmentation.stage import STAGE_ID, open_map, run_stage, segment_map
from relmap_utils.segmentation.tiers import assign_tiers

__all__ = [
    "STAGE_ID", "SegmentationParams", "assign_tiers", "open_map", "parse_params", "rfm_values_from_transactions",
    "run_stage", "score_rfm", "segment_map",
]
