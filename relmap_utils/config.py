"""engagement.yaml: the one file a consultant edits to describe an engagement.

The file is validated with pydantic. Validation errors are turned into
:class:`~relmap_utils.errors.ConfigError` messages that name the key path
(``sources[2].columns.开户日期.role``), the value found and what is allowed.

Examples
--------
A minimal engagement::

    name: demo
    client: 示例银行
    sources:
      - name: customers
        path: data/customers.csv
        table: customers
        columns:
          客户号: {name: customer_id, role: identifier}
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from relmap_utils.errors import ConfigError
from relmap_utils.i18n import Msg, catalog
from relmap_utils.paths import expand_path

CONFIG_FILE = "engagement.yaml"

Role = Literal[
    "identifier",  # key or code: kept as exact text, never summed
    "category",
    "amount",  # money: thousands separators, currency signs, 万/亿 handled
    "number",
    "integer",
    "date",
    "datetime",
    "text",
    "boolean",
    "personal",  # personal data: treated as set in privacy
]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
SourceFormat = Literal["auto", "csv", "excel", "parquet", "fixed_width"]
Treatment = Literal["pseudonymize", "drop", "year_only"]
Backend = Literal["duckdb", "pyspark"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ColumnMap(_Strict):
    """How one source column becomes a canonical column."""

    name: str = Field(description="Canonical column name (see relmap_utils.schema).")
    role: Role | None = Field(default=None, description="Declared role; type guessing applies only without it.")
    date_format: str | None = Field(default=None, description="strptime format, for example %y%m%d.")
    unit: float | None = Field(default=None, description="Multiplier for amounts, for example 10000 for 万元.")
    treatment: Treatment | None = Field(default=None, description="Personal-data treatment for this column.")
    values: dict[str, str] | None = Field(default=None, description="Recoding of raw values, for example B: default.")


class FixedWidthColumn(_Strict):
    """One field of a fixed-width file; ``start`` counts characters from 1."""

    name: str
    start: int = Field(ge=1)
    width: int = Field(ge=1)


class Source(_Strict):
    """One input file or table and its mapping onto a canonical table."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    path: str | None = Field(default=None, description="File to read; ${RELMAP_SHARED_DIR} and other variables expand.")
    sql: str | None = Field(
        default=None,
        description="Query over other sources (by name) instead of a file, in the engine's SQL dialect. "
        "On a pyspark engagement it may name warehouse tables (database.table); it then runs in Spark.",
    )
    table: str | None = Field(default=None, description="Canonical table this source fills; none for staging sources.")
    format: SourceFormat = "auto"
    encoding: str = "auto"
    separator: str = "auto"
    sheet: str | int | None = None
    header_rows: int | Literal["auto"] = "auto"
    skip_rows: int = Field(default=0, ge=0)
    columns: dict[str, ColumnMap] = Field(default_factory=dict)
    date_formats: list[str] = Field(default_factory=list)
    missing_values: list[str] = Field(default_factory=list)
    fixed_width: list[FixedWidthColumn] | None = None
    keep_unmapped: bool = True
    constants: dict[str, Any] = Field(default_factory=dict, description="Canonical columns set to a fixed value.")

    @field_validator("columns", mode="before")
    @classmethod
    def _expand_short_mapping(cls, value: Any) -> Any:
        # "客户号: customer_id" is short for "客户号: {name: customer_id}"
        if isinstance(value, dict):
            return {src: {"name": dst} if isinstance(dst, str) else dst for src, dst in value.items()}
        return value

    @model_validator(mode="after")
    def _path_or_sql(self) -> "Source":
        if (self.path is None) == (self.sql is None):
            raise ValueError(f"source {self.name!r} needs exactly one of path (a file) or sql (a query over sources)")
        return self

    def column_maps(self) -> dict[str, ColumnMap]:
        """Return the source-to-canonical column mapping."""
        return dict(self.columns)

    def resolved_path(self, engagement_dir: Path) -> Path:
        """Return the absolute path, with ``${VAR}`` expanded (sources with ``path`` only)."""
        if self.path is None:
            raise ValueError(f"source {self.name!r} is a query and has no path")
        return expand_path(self.path, engagement_dir)

    def resolved_format(self, engagement_dir: Path) -> str:
        """Return the format, guessed from the file extension when ``auto``."""
        if self.sql is not None:
            return "sql"
        if self.format != "auto":
            return self.format
        if self.fixed_width:
            return "fixed_width"
        suffixes = [s.lower() for s in self.resolved_path(engagement_dir).suffixes]
        if ".parquet" in suffixes or ".pq" in suffixes:
            return "parquet"
        if ".xlsx" in suffixes or ".xls" in suffixes or ".xlsm" in suffixes:
            return "excel"
        return "csv"


class PersonalColumn(_Strict):
    column: str = Field(description="Canonical column name, or table.column.")
    treatment: Treatment = "pseudonymize"


class Privacy(_Strict):
    """Personal-data handling; the key itself is only ever read from the environment."""

    key_env: str = Field(default="RELMAP_PSEUDONYM_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    min_group_size: int = Field(default=10, ge=1)
    personal_data: list[PersonalColumn] = Field(default_factory=list)
    # Values the personal-data scanner may ignore, for example a bank's public hotline.
    allowlist: list[str] = Field(default_factory=list)


class Engine(_Strict):
    backend: Backend = "duckdb"
    threads: int | None = Field(default=None, ge=1)
    memory_limit: str | None = None
    # PySpark only: Spark settings such as spark.sql.catalogImplementation: hive
    spark_conf: dict[str, str] = Field(default_factory=dict)


class StageConfig(_Strict):
    enabled: bool = True
    params: dict[str, Any] = Field(default_factory=dict)


class Engagement(_Strict):
    """The whole engagement.yaml."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    client: str
    locale: Literal["zh_CN", "en"] = "zh_CN"
    timezone: str = "Asia/Shanghai"
    engine: Engine = Field(default_factory=Engine)
    sources: list[Source] = Field(min_length=1)
    privacy: Privacy = Field(default_factory=Privacy)
    stages: dict[str, StageConfig] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone; use a name such as Asia/Shanghai") from exc
        return value

    @model_validator(mode="after")
    def _unique_source_names(self) -> "Engagement":
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} is used twice; give each source its own name")
            seen.add(source.name)
        return self

    def stage(self, name: str) -> StageConfig:
        """Return the configuration of stage ``name`` (defaults when absent)."""
        return self.stages.get(name, StageConfig())

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


def _format_location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _allowed(error: dict[str, Any]) -> str:
    context = error.get("ctx") or {}
    if "expected" in context:
        return str(context["expected"])
    if "pattern" in context:
        return f"/{context['pattern']}/"
    if "ge" in context:
        return f">= {context['ge']}"
    if error.get("type") == "extra_forbidden":
        return "-"
    return str(error.get("msg", "")).removeprefix("Value error, ")


def config_error_from_validation(exc: ValidationError, file: Path) -> ConfigError:
    """Turn a pydantic error into one ConfigError listing every bad key."""
    lines = []
    for error in exc.errors():
        key_path = _format_location(tuple(error["loc"]))
        value = error.get("input")
        if error["type"] == "missing":
            value = "-"
        known = f"config.detail.{error['type']}"
        detail: Any = Msg(known) if known in catalog("en") else str(error.get("msg", ""))
        lines.append(Msg("config.problem", key=key_path, value=_short(value), detail=detail, allowed=_allowed(error)))
    return ConfigError("config.invalid", file=str(file), problems=lines)


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def _yaml_dates_to_text(value: Any) -> Any:
    # YAML turns 2023-12-31 into a date object; keep stage parameters plain text
    # so they survive JSON manifests and notebook injection unchanged.
    if isinstance(value, dict):
        return {key: _yaml_dates_to_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_yaml_dates_to_text(item) for item in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def parse_engagement(data: Any, file: Path) -> Engagement:
    """Validate an already-parsed mapping as an engagement."""
    if not isinstance(data, dict):
        raise ConfigError("config.not_mapping", file=str(file))
    try:
        return Engagement.model_validate(_yaml_dates_to_text(data))
    except ValidationError as exc:
        raise config_error_from_validation(exc, file) from None


def engagement_file(path: Path | str) -> Path:
    """Return the engagement.yaml of an engagement folder (or the file itself)."""
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / CONFIG_FILE
    if not candidate.is_file():
        raise ConfigError("config.not_found", path=str(path), file=CONFIG_FILE)
    return candidate.resolve()


def load_engagement(path: Path | str) -> Engagement:
    """Read and validate an engagement folder's engagement.yaml.

    Raises
    ------
    ConfigError
        When the file is missing, is not valid YAML, or breaks the schema.
    """
    file = engagement_file(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else "?"
        raise ConfigError("config.yaml_syntax", file=str(file), line=line, detail=str(exc).splitlines()[0]) from None
    except UnicodeDecodeError:
        raise ConfigError("config.not_utf8", file=str(file)) from None
    return parse_engagement(data, file)
