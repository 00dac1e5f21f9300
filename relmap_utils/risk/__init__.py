"""Stage 05: risk indicators, scorecard, dynamic risk profile and early warning.

Modules: :mod:`~relmap_utils.risk.binning` (optbinning WoE/IV bins saved as
tables), :mod:`~relmap_utils.risk.metrics` (AUC, KS, Gini),
:mod:`~relmap_utils.risk.screening` (IV, correlation, VIF, logit, short list),
:mod:`~relmap_utils.risk.scorecard` (points), and the stage entry point
:func:`relmap_utils.risk.stage.run_stage`.
"""
