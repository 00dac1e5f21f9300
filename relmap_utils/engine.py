"""Table engine connections: DuckDB by default, PySpark when the engagement names it.

All table work goes through Ibis, so stages receive an Ibis backend and never
a DuckDB or Spark handle directly.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import ibis

from relmap_utils.config import Engine


def connect(
    engine: Engine | None = None, database: str = ":memory:", *, timezone: str | None = None, **extra: Any
) -> Any:
    """Return an Ibis backend configured for offline use.

    DuckDB's automatic extension install and load are switched off: banks run
    this on machines without internet access, and a silent download attempt
    would hang or fail there. Only UTF-8 text reaches DuckDB (ingest transcodes
    other encodings first), so no encodings extension is needed.

    With ``backend: pyspark`` the backend runs on a Spark session started
    from ``engine.spark_conf`` (see :func:`relmap_utils.spark.spark_session`):
    a local session by default (on ``engine.threads`` cores, or every core),
    or the cluster and catalog that ``spark.master`` and
    ``spark.sql.catalogImplementation`` name.

    Parameters
    ----------
    engine : Engine, optional
        The engagement's ``engine`` section; default DuckDB.
    database : str, default=":memory:"
        DuckDB database file; not used by PySpark.
    timezone : str, optional
        The engagement's IANA time zone, used as Spark's session time zone
        unless ``spark_conf`` sets ``spark.sql.session.timeZone``. DuckDB
        ignores it: canonical timestamps are naive local times.
    **extra
        Further keyword arguments of ``ibis.duckdb.connect`` or, for PySpark,
        Spark SQL settings applied to the session.

    Returns
    -------
    ibis.BaseBackend

    Raises
    ------
    RunError
        PySpark is configured but not installed, or Spark cannot start.
    ConfigError
        ``spark_conf`` names a setting that downloads jars.
    """
    engine = engine or Engine()
    if engine.backend == "pyspark":
        from relmap_utils.spark import connect_spark, engine_settings

        conf, master = engine_settings(engine)
        backend = connect_spark(conf, timezone=timezone, master=master)
        for key, value in extra.items():
            backend._session.conf.set(key, value)
        return backend

    config: dict[str, Any] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        # DuckDB spills to ".tmp" in the working directory by default, which is the run
        # folder during a run; spilled pages can hold values from before pseudonymization.
        "temp_directory": str(Path(tempfile.gettempdir()) / f"relmap-duckdb-{os.getpid()}"),
    }
    if engine.threads:
        config["threads"] = engine.threads
    if engine.memory_limit:
        config["memory_limit"] = engine.memory_limit
    backend = ibis.duckdb.connect(database, **config, **extra)
    # A connection-level setting: the progress bar would print into executed notebooks and logs.
    backend.raw_sql("SET enable_progress_bar = false")
    return backend
