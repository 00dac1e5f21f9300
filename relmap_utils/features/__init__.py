"""Stage 02, the relationship map (客户关系地图): one row per customer, as of a date.

The map joins what the bank records about each customer into one table,
computed strictly from data dated on or before ``as_of``. Six feature
families, one module each:

- :mod:`~relmap_utils.features.profile`: age, tenure, region, occupation, life stage;
- :mod:`~relmap_utils.features.holdings`: products and balances by product family, AUM, liabilities;
- :mod:`~relmap_utils.features.transactions`: RFM, the lifetime quartet, flows, regular income, mixes;
- :mod:`~relmap_utils.features.stability`: recent behaviour against the customer's own history;
- :mod:`~relmap_utils.features.interests`: topics browsed in the channels;
- :mod:`~relmap_utils.features.relations`: degree, shared entities, related customers' defaults.

:func:`build_map` returns the map at one date as an Ibis expression (DuckDB
or Spark run it); :func:`feature_dictionary` describes every feature, the
ones left out included; :func:`run_stage` builds the map for one or more
dates into a run folder. docs/map.md documents every rule.
"""

from relmap_utils.features.base import FAMILIES, Feature
from relmap_utils.features.builder import build_map
from relmap_utils.features.checks import discover_values
from relmap_utils.features.dictionary import available_columns, feature_dictionary
from relmap_utils.features.spec import MapSpec, make_spec
from relmap_utils.features.stage import STAGE_ID, read_map, run_stage

__all__ = [
    "FAMILIES",
    "STAGE_ID",
    "Feature",
    "MapSpec",
    "available_columns",
    "build_map",
    "discover_values",
    "feature_dictionary",
    "make_spec",
    "read_map",
    "run_stage",
]
