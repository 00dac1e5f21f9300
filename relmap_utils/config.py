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
import types
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from relmap_utils.errors import ConfigError
from relmap_utils.i18n import Msg
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
            raise rule_error("config.rule.path_or_sql", value=self.path or self.sql, source=self.name)
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
            raise rule_error("config.rule.timezone", allowed="Asia/Shanghai, UTC, ...") from exc
        return value

    @model_validator(mode="after")
    def _unique_source_names(self) -> "Engagement":
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise rule_error("config.rule.source_twice", at="sources", value=source.name, source=source.name)
            seen.add(source.name)
        return self

    def stage(self, name: str) -> StageConfig:
        """Return the configuration of stage ``name`` (defaults when absent)."""
        return self.stages.get(name, StageConfig())

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


def format_key_path(loc: tuple[Any, ...] | list[Any], prefix: str = "") -> str:
    """Join a pydantic error location into a key path such as ``sources[2].columns.开户日期.role``.

    Parameters
    ----------
    loc : sequence of str or int
        Keys and list positions, outermost first.
    prefix : str, default=""
        Path of the block the model was read from, for example
        ``stages.risk.params``.

    Returns
    -------
    str
        The path, or ``prefix`` (``(top level)`` when empty) for an empty ``loc``.
    """
    text = prefix
    for item in loc:
        if isinstance(item, int):
            text += f"[{item}]"
        elif str(item).startswith("["):
            text += str(item)
        else:
            text += ("." if text else "") + str(item)
    return text or "(top level)"


# Error type of :func:`rule_error`: its context carries a catalog key.
RULE_ERROR = "relmap_rule"
# Pydantic error types that only say the value has the wrong type (or is not
# a listed constant); inside a union they mean "this member does not fit".
_TYPE_ERRORS = frozenset({"literal_error", "enum", "int_from_float", "is_instance_of", "none_required"})
# Union members appear in pydantic error locations as type names.
_SCALAR_TAGS = frozenset({"int", "float", "str", "bool", "bytes", "decimal"})
# Catalog key of a type's name, per type name in a union member's tag.
_TYPE_NAMES = {
    "int": "config.type.int", "float": "config.type.float", "str": "config.type.str", "bool": "config.type.bool",
    "list": "config.type.list", "dict": "config.type.dict", "date": "config.type.date", "model": "config.type.dict",
}
# Pydantic error type -> catalog key of the problem.
_DETAILS = {
    "missing": "config.detail.missing",
    "extra_forbidden": "config.detail.extra_forbidden",
    "literal_error": "config.detail.literal_error",
    "enum": "config.detail.literal_error",
    "int_type": "config.detail.int_parsing",
    "int_parsing": "config.detail.int_parsing",
    "int_from_float": "config.detail.int_parsing",
    "int_parsing_size": "config.detail.int_parsing",
    "float_type": "config.detail.float_parsing",
    "float_parsing": "config.detail.float_parsing",
    "finite_number": "config.detail.float_parsing",
    "bool_type": "config.detail.bool_parsing",
    "bool_parsing": "config.detail.bool_parsing",
    "string_type": "config.detail.string_type",
    "string_pattern_mismatch": "config.detail.string_pattern_mismatch",
    "string_too_short": "config.detail.string_too_short",
    "string_too_long": "config.detail.string_too_long",
    "greater_than": "config.detail.out_of_range",
    "greater_than_equal": "config.detail.out_of_range",
    "less_than": "config.detail.out_of_range",
    "less_than_equal": "config.detail.out_of_range",
    "too_short": "config.detail.too_short",
    "too_long": "config.detail.too_long",
    "dict_type": "config.detail.dict_type",
    "model_type": "config.detail.dict_type",
    "model_attributes_type": "config.detail.dict_type",
    "list_type": "config.detail.list_type",
    "tuple_type": "config.detail.list_type",
    "set_type": "config.detail.list_type",
    "date_type": "config.detail.date_parsing",
    "date_parsing": "config.detail.date_parsing",
    "date_from_datetime_parsing": "config.detail.date_parsing",
    "date_from_datetime_inexact": "config.detail.date_parsing",
    "datetime_type": "config.detail.date_parsing",
    "datetime_parsing": "config.detail.date_parsing",
    "datetime_from_date_parsing": "config.detail.date_parsing",
    "union_type": "config.detail.union_type",
}


def rule_error(key: str, /, *, at: str = "", value: Any = None, allowed: Any = None, **params: Any) -> PydanticCustomError:
    """Return a validation error whose text is the catalog message ``key``.

    Raise it from a pydantic validator instead of ``ValueError`` so that
    :func:`validation_problems` shows the message in the user's language.

    Parameters
    ----------
    key : str
        Catalog key of the problem, for example ``"config.rule.path_or_sql"``.
    at : str, default=""
        Key path below the validated field or model, for example
        ``rules[0].when.aum.min``, for a model validator that checks one item.
    value : optional
        The value to show; by default the validator's input.
    allowed : str or Msg, optional
        What is allowed, shown after the problem.
    **params
        Values substituted into the message.
    """
    context = {"key": key, "at": at, "value": value, "allowed": allowed, "params": params}
    return PydanticCustomError(RULE_ERROR, key, context)


def _is_member_tag(item: Any) -> bool:
    return isinstance(item, str) and ("[" in item or item in _SCALAR_TAGS)


def _shape_error(error: dict[str, Any]) -> bool:
    kind = str(error["type"])
    return kind in _TYPE_ERRORS or kind.endswith(("_type", "_parsing"))


def _collapse_unions(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge the per-member errors of union fields.

    Pydantic reports a value that fits no member of ``int | list[int]`` once
    per member, with the member's type name in the location. When some
    member fits the value's shape, only that member's errors are kept;
    otherwise one ``union_type`` error lists the members.
    """
    plain: list[dict[str, Any]] = []
    groups: dict[tuple[Any, ...], list[tuple[str, tuple[Any, ...], dict[str, Any]]]] = {}
    for error in errors:
        loc = tuple(error["loc"])
        index = next((position for position, item in enumerate(loc) if _is_member_tag(item)), None)
        if index is None:
            plain.append(error)
        else:
            groups.setdefault(loc[:index], []).append((loc[index], loc[index + 1 :], error))
    for base, items in groups.items():
        fitting = [dict(error, loc=base + rest) for _, rest, error in items if rest or not _shape_error(error)]
        if fitting:
            plain.extend(_collapse_unions(fitting))
        else:
            members = list(dict.fromkeys(tag for tag, _, _ in items))
            plain.append({"type": "union_type", "loc": base, "input": items[0][2].get("input"), "ctx": {"members": members}})
    return plain


def _member_name(tag: str) -> Any:
    if tag.startswith("literal["):
        return tag[len("literal[") : -1]
    base = tag.split("[", 1)[0]
    return Msg(_TYPE_NAMES[base]) if base in _TYPE_NAMES else tag


def _type_candidates(annotation: Any) -> list[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _type_candidates(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [candidate for arg in get_args(annotation) for candidate in _type_candidates(arg)]
    return [annotation]


def _known_keys(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str] | None:
    """Return the keys allowed in the mapping at ``loc`` of ``model``, when it is a model."""
    if model is None:
        return None
    current: list[Any] = [model]
    for part in loc:
        following: list[Any] = []
        for annotation in (c for a in current for c in _type_candidates(a)):
            origin = get_origin(annotation)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
                field = next((f for n, f in annotation.model_fields.items() if part in (n, f.alias)), None)
                if field is not None:
                    following.append(field.annotation)
            elif origin in (list, tuple, set) and isinstance(part, int):
                following.append(get_args(annotation)[0])
            elif origin is dict:
                following.append(get_args(annotation)[1])
        current = following
    for annotation in (c for a in current for c in _type_candidates(a)):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [field.alias or name for name, field in annotation.model_fields.items()]
    return None


def _bound(context: dict[str, Any]) -> str | None:
    for name, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if name in context:
            return f"{sign} {context[name]}"
    return None


def _allowed(error: dict[str, Any], model: type[BaseModel] | None) -> Any:
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == RULE_ERROR:
        return context.get("allowed")
    if kind == "extra_forbidden":
        keys = _known_keys(model, tuple(error["loc"])[:-1])
        return ", ".join(keys) if keys else None
    if kind in ("literal_error", "enum"):
        values = str(context.get("expected", "")).replace(" or ", ", ")
        return Msg("config.allowed.one_of", values=values)
    if kind == "union_type":
        return Msg("config.allowed.one_of", values=_JoinedMsg([_member_name(tag) for tag in context["members"]], " | "))
    if kind == "string_pattern_mismatch":
        return f"/{context['pattern']}/"
    if kind in ("string_too_short", "too_short"):
        return Msg("config.allowed.at_least", count=context.get("min_length"))
    if kind in ("string_too_long", "too_long"):
        return Msg("config.allowed.at_most", count=context.get("max_length"))
    # A type error says the expected type itself, so it needs no "allowed" part.
    return _bound(context)


class _JoinedMsg(Msg):
    """Texts and messages joined by ``separator``, each rendered in the requested locale."""

    def __init__(self, items: list[Any], separator: str) -> None:
        super().__init__("config.joined")
        self.items = items
        self.separator = separator

    def render(self, locale: str | None = None) -> str:
        return self.separator.join(item.render(locale) if isinstance(item, Msg) else str(item) for item in self.items)


def _detail(error: dict[str, Any]) -> Msg:
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == RULE_ERROR:
        return Msg(context["key"], **context.get("params", {}))
    if kind in _DETAILS:
        return Msg(_DETAILS[kind])
    # A ValueError raised by a validator, or an error type not listed above:
    # pydantic's English text is the only description there is.
    return Msg("config.detail.other", message=str(error.get("msg", "")).removeprefix("Value error, "))


def validation_problems(exc: ValidationError, model: type[BaseModel] | None = None, prefix: str = "") -> list[Msg]:
    """Describe every error of a pydantic validation in the catalog's words.

    Each problem names the key path, the value found, what is wrong and what
    is allowed (the known keys for an unknown key, the listed values, the
    bound, the expected type), in zh_CN or en as the message is shown.

    Parameters
    ----------
    exc : ValidationError
        Raised by ``model.model_validate``.
    model : type of BaseModel, optional
        The validated model; with it, an unknown key lists the known ones.
    prefix : str, default=""
        Key path of the validated block, for example ``stages.risk.params``.

    Returns
    -------
    list of Msg
        One ``config.problem`` message per problem, in the order pydantic found them.
    """
    problems: list[Msg] = []
    for error in _collapse_unions(list(exc.errors())):
        context = error.get("ctx") or {}
        loc = tuple(error["loc"])
        value = error.get("input")
        if error["type"] == RULE_ERROR:
            if context.get("at"):
                loc = (*loc, context["at"])
            if context.get("value") is not None:
                value = context["value"]
        key_path = format_key_path(loc, prefix)
        allowed = _allowed(error, model)
        detail = _detail(error)
        if error["type"] == "missing":
            problems.append(Msg("config.problem_missing", key=key_path, detail=detail))
        elif allowed in (None, ""):
            problems.append(Msg("config.problem_no_allowed", key=key_path, value=_short(value), detail=detail))
        else:
            problems.append(Msg("config.problem", key=key_path, value=_short(value), detail=detail, allowed=allowed))
    return problems


def params_error(exc: ValidationError, model: type[BaseModel], prefix: str) -> ConfigError:
    """Turn a validation error of a stage's parameters into one ConfigError.

    Parameters
    ----------
    exc : ValidationError
    model : type of BaseModel
        The stage's parameter model.
    prefix : str
        Where the parameters sit in engagement.yaml, for example
        ``stages.segmentation.params``.

    Returns
    -------
    ConfigError
        Key ``config.invalid_params``, listing every problem.
    """
    return ConfigError("config.invalid_params", section=prefix, problems=validation_problems(exc, model, prefix))


def config_error_from_validation(exc: ValidationError, file: Path) -> ConfigError:
    """Turn a pydantic error of engagement.yaml into one ConfigError listing every bad key."""
    return ConfigError("config.invalid", file=str(file), problems=validation_problems(exc, Engagement))


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
