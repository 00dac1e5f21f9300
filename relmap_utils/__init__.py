"""relmap: the customer relationship map workbench.

The package holds all logic of the stage notebooks: engagement configuration,
ingest into canonical tables, the run folder and its manifest, and each
analysis stage. Notebooks under ``notebooks/`` only call into it.
"""

__version__ = "0.1.0"
