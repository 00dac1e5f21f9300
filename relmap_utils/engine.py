"""Table engine connections: DuckDB by default, PySpark when the engagement names it.

All table work goes through Ibis, so stages receive an Ibis backend and never
a DuckDB or Spark handle directly.
"""

from __future__ import annotations

from typing import Any

import ibis

from relmap_utils.config import Engine


def connect(engine: Engine | None = None, database: str = ":memory:", **extra: Any) -> Any:
    """Return an Ibis backend configured for offline use.

    DuckDB's automatic extension install and load are switched off: banks run
    this on machines without internet access, and a silent download attempt
    would hang or fail there. Only UTF-8 text reaches DuckDB (ingest transcodes
    other encodings first), so no encodings extension is needed.
    """
    engine = engine or Engine()
    if engine.backend == "pyspark":
        from pyspark.sql import SparkSession  # optional dependency, imported only when configured

        builder = SparkSession.builder.appName("relmap")
        for key, value in engine.spark_conf.items():
            builder = builder.config(key, value)
        return ibis.pyspark.connect(builder.getOrCreate(), **extra)

    config: dict[str, Any] = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    if engine.threads:
        config["threads"] = engine.threads
    if engine.memory_limit:
        config["memory_limit"] = engine.memory_limit
    return ibis.duckdb.connect(database, **config, **extra)
