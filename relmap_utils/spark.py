"""Spark sessions, canonical tables on Spark, and results brought back from Spark.

Stages build their tables as Ibis expressions, so the same code runs on DuckDB
and, through Ibis's PySpark backend, on Spark. This module contains the parts
specific to Spark: starting a session with settings that suit relmap, reading
the canonical Parquet tables of a run, and collecting a result as Arrow.

PySpark is an optional dependency (``pip install "relmap[spark]"``); it is
imported only when a function here is called.

Notes
-----
A run folder lives on the driver's file system. In local mode (the default)
that is all Spark needs. On a cluster, executors read the canonical Parquet
files too, so the run folder must then sit on storage that every executor
sees under the same path (HDFS, or a shared mount).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from relmap_utils.config import Engine
from relmap_utils.errors import ConfigError, RunError

logger = logging.getLogger(__name__)

APP_NAME = "relmap"
DEFAULT_MASTER = "local[*]"
TIMEZONE_SETTING = "spark.sql.session.timeZone"

# Applied to local sessions unless spark_conf names the key. A local session
# serves this machine only, so its driver listens on the loopback interface,
# and it opens no web UI port.
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
}
# Applied to every session unless spark_conf names the key: Spark's console
# progress bars would fill executed notebooks with carriage-return lines.
SESSION_DEFAULTS: dict[str, str] = {
    "spark.ui.showConsoleProgress": "false",
}
# Settings that make Spark fetch jars from a Maven repository when the session
# starts. relmap runs offline, so jars must be local files (spark.jars).
DOWNLOADING_SETTINGS = ("spark.jars.packages", "spark.jars.repositories", "spark.jars.ivySettings")


def session_settings(conf: Mapping[str, str] | None = None, master: str | None = None) -> dict[str, str]:
    """Return the Spark settings relmap starts a session with.

    Parameters
    ----------
    conf : mapping of str to str, optional
        The engagement's ``engine.spark_conf``. Its values win over relmap's
        defaults.
    master : str, optional
        Master URL used when ``conf`` names no ``spark.master``; default
        ``local[*]`` (every core of this machine).

    Returns
    -------
    dict of str to str
        ``conf`` plus ``spark.master``, the session defaults and, for a
        ``local`` master, the loopback and no-UI defaults.

    Raises
    ------
    ConfigError
        When ``conf`` names a setting that downloads jars at start-up.

    Examples
    --------
    >>> session_settings({"spark.sql.shuffle.partitions": "4"})["spark.driver.host"]
    '127.0.0.1'
    >>> "spark.driver.host" in session_settings({"spark.master": "yarn"})
    False
    """
    settings = {str(key): str(value) for key, value in (conf or {}).items()}
    for key in DOWNLOADING_SETTINGS:
        if key in settings:
            raise ConfigError("engine.spark_download_setting", key=key, value=settings[key])

    settings.setdefault("spark.master", master or DEFAULT_MASTER)
    defaults = dict(SESSION_DEFAULTS)
    if settings["spark.master"].startswith("local"):
        defaults.update(LOCAL_DEFAULTS)
    for key, value in defaults.items():
        settings.setdefault(key, value)
    return settings


_MEMORY = re.compile(r"^\s*(\d+)\s*([KMGT])(?:I?B)?\s*$", re.IGNORECASE)


def engine_settings(engine: Engine) -> tuple[dict[str, str], str | None]:
    """Translate an engagement's ``engine`` section into Spark settings.

    ``threads`` becomes the local master ``local[<threads>]`` and
    ``memory_limit`` (DuckDB's spelling, for example ``6GB``) becomes
    ``spark.driver.memory`` (``6g``), unless ``spark_conf`` sets those keys.

    Parameters
    ----------
    engine : Engine
        The ``engine`` section of engagement.yaml.

    Returns
    -------
    tuple of (dict of str to str, str or None)
        The Spark settings and the master URL to use when they name none.

    Raises
    ------
    ConfigError
        When ``memory_limit`` is not a whole number with a K, M, G or T unit.

    Examples
    --------
    >>> engine_settings(Engine(backend="pyspark", threads=2, memory_limit="6GB"))
    ({'spark.driver.memory': '6g'}, 'local[2]')
    """
    conf = dict(engine.spark_conf)
    if engine.memory_limit and "spark.driver.memory" not in conf:
        match = _MEMORY.match(engine.memory_limit)
        if match is None:
            raise ConfigError("engine.memory_limit_invalid", value=engine.memory_limit)
        conf["spark.driver.memory"] = f"{match.group(1)}{match.group(2).lower()}"
    master = f"local[{engine.threads}]" if engine.threads else None
    return conf, master


def _import_pyspark() -> Any:
    try:
        import pyspark
    except ImportError:
        raise RunError("engine.pyspark_missing") from None
    return pyspark


def _java_available() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return True
    return shutil.which("java") is not None


def spark_unavailable() -> str | None:
    """Return why a Spark session cannot start on this machine, or None when it can.

    Checks that PySpark is importable and that a Java runtime is on PATH or
    under ``JAVA_HOME``; it does not start Java.
    """
    try:
        _import_pyspark()
    except RunError as exc:
        return exc.render("en")
    if not _java_available():
        return RunError("engine.java_missing").render("en")
    return None


def spark_session(conf: Mapping[str, str] | None = None, *, master: str | None = None) -> Any:
    """Start a Spark session with relmap's settings, or reuse the active one.

    Parameters
    ----------
    conf : mapping of str to str, optional
        Spark settings, usually the engagement's ``engine.spark_conf``, for
        example ``{"spark.sql.catalogImplementation": "hive"}``.
    master : str, optional
        Master URL when ``conf`` names none; default ``local[*]``.

    Returns
    -------
    pyspark.sql.SparkSession

    Raises
    ------
    RunError
        When PySpark is not installed, or Java cannot be found or fails to
        start Spark.
    ConfigError
        When ``conf`` names a setting that downloads jars.

    Notes
    -----
    When a session is already active in this process (a notebook on a Spark
    platform, or a test fixture), Spark returns it. Spark then applies the
    runtime SQL settings of ``conf`` and ignores static ones such as
    ``spark.master`` or ``spark.sql.catalogImplementation``.
    """
    settings = session_settings(conf, master)
    _import_pyspark()
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is None and not _java_available():
        raise RunError("engine.java_missing")

    builder = SparkSession.builder.appName(APP_NAME)
    for key, value in settings.items():
        builder = builder.config(key, value)
    logger.info("starting Spark session (master %s)", settings["spark.master"])
    try:
        return builder.getOrCreate()
    except PySparkRuntimeError as exc:
        # JAVA_GATEWAY_EXITED: the JVM did not start, usually a Java older than 17.
        logger.error("Spark did not start: %s", exc)
        raise RunError("engine.spark_start_failed", detail=str(exc).splitlines()[0]) from None


def connect_spark(
    conf: Mapping[str, str] | None = None,
    *,
    timezone: str | None = None,
    session: Any = None,
    master: str | None = None,
) -> Any:
    """Return an Ibis PySpark backend over a relmap Spark session.

    Parameters
    ----------
    conf : mapping of str to str, optional
        Spark settings (see :func:`spark_session`).
    timezone : str, optional
        IANA time zone of the engagement. It becomes the session time zone
        unless ``conf`` sets ``spark.sql.session.timeZone``; without either,
        Ibis sets UTC.
    session : pyspark.sql.SparkSession, optional
        Use this session instead of starting one; ``conf`` and ``master`` are
        then ignored except for the time zone.
    master : str, optional
        Master URL when ``conf`` names none (see :func:`spark_session`).

    Returns
    -------
    ibis.backends.pyspark.Backend

    Notes
    -----
    Ibis's ``disconnect()`` on this backend stops the Spark session, also a
    session passed in by the caller.
    """
    if session is None:
        session = spark_session(conf, master=master)
    zone = (conf or {}).get(TIMEZONE_SETTING) or timezone
    # Ibis sets the session time zone to UTC when it connects and applies
    # keyword settings afterwards, so the zone is passed here, not in conf.
    settings = {TIMEZONE_SETTING: zone} if zone else {}
    return ibis.pyspark.connect(session, **settings)


def is_spark(backend: Any) -> bool:
    """Return whether ``backend`` is Ibis's PySpark backend."""
    return getattr(backend, "name", None) == "pyspark"


def read_tables(
    backend: Any, tables_dir: str | Path, names: list[str] | None = None, *, prefix: str = ""
) -> dict[str, ir.Table]:
    """Register canonical Parquet tables of a run as Ibis tables of ``backend``.

    Parameters
    ----------
    backend : ibis.BaseBackend
        DuckDB or PySpark backend.
    tables_dir : str or Path
        Folder with ``<table>.parquet`` files (``RunContext.tables_dir``).
    names : list of str, optional
        Tables to read; default every Parquet file of the folder.
    prefix : str, default=""
        Prefix of the registered view names. Spark's temporary views are
        shared by the whole session, so two runs read into one session need
        different prefixes.

    Returns
    -------
    dict of str to ibis.Table
        Keyed by canonical table name, without the prefix.

    Raises
    ------
    RunError
        When a requested table has no Parquet file.
    """
    folder = Path(tables_dir)
    if names is None:
        names = sorted(path.stem for path in folder.glob("*.parquet"))
    tables = {}
    for name in names:
        path = folder / f"{name}.parquet"
        if not path.is_file():
            raise RunError("engine.table_missing", table=name, path=str(path))
        tables[name] = backend.read_parquet(path, table_name=f"{prefix}{name}")
    return tables


def collect(backend: Any, expr: ir.Table) -> pa.Table:
    """Execute a table expression and return the result as an Arrow table.

    On Spark the rows travel as Arrow batches (``DataFrame.toArrow``), not
    through pandas, so integer columns with NULLs keep their type and no
    float rounding happens on the way. Columns get the Ibis schema's types.

    Parameters
    ----------
    backend : ibis.BaseBackend
        The backend the expression's tables belong to.
    expr : ibis.Table
        Expression to execute.

    Returns
    -------
    pyarrow.Table
    """
    if not is_spark(backend):
        return backend.to_pyarrow(expr)

    from ibis.formats.pyarrow import PyArrowData

    schema = expr.schema()
    # Ibis's own execute registers in-memory tables (ibis.memtable) in these
    # hooks before it compiles; the SQL below would not find them otherwise.
    backend._run_pre_execute_hooks(expr)
    frame = backend._session.sql(backend.compile(expr))
    table = frame.toArrow()
    # Spark attaches the session time zone to timestamp columns (TIMESTAMP_LTZ);
    # Ibis's naive timestamps are wall-clock times in that zone.
    zone = backend._session.conf.get(TIMEZONE_SETTING)
    columns = []
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None and schema[field.name].timezone is None:
            column = _wall_clock(column, zone)
        columns.append(column)
    table = pa.Table.from_arrays(columns, names=table.column_names)
    return PyArrowData.convert_table(table, schema)


def _wall_clock(column: pa.ChunkedArray, zone: str) -> pa.ChunkedArray:
    import pyarrow.compute as pc

    return pc.local_timestamp(column.cast(pa.timestamp("us", tz=zone)))
