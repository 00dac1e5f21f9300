"""engagement.yaml validation: good files load, bad ones name the key, value and allowed set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from relmap_utils.config import load_engagement, parse_engagement
from relmap_utils.errors import ConfigError
from relmap_utils.paths import expand_path, shared_dir

MINIMAL = {
    "name": "acme",
    "client": "示例银行",
    "sources": [
        {"name": "customers", "path": "data/customers.csv", "table": "customers", "columns": {"客户号": "customer_id"}}
    ],
}


def _write(tmp_path: Path, data: object) -> Path:
    (tmp_path / "engagement.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return tmp_path


def test_minimal_engagement_gets_defaults(tmp_path):
    engagement = load_engagement(_write(tmp_path, MINIMAL))
    assert engagement.locale == "zh_CN"
    assert engagement.timezone == "Asia/Shanghai"
    assert engagement.privacy.key_env == "RELMAP_PSEUDONYM_KEY"
    assert engagement.sources[0].column_maps()["客户号"].name == "customer_id"
    assert engagement.engine.backend == "duckdb"


@pytest.mark.parametrize(
    ("change", "key_path", "value"),
    [
        ({"locale": "fr"}, "locale", "fr"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({"name": "has space"}, "name", "has space"),
        ({"privacy": {"min_group_size": 0}}, "privacy.min_group_size", "0"),
        ({"engine": {"backend": "oracle"}}, "engine.backend", "oracle"),
        ({"colour": "blue"}, "colour", "blue"),
    ],
    ids=["locale", "timezone", "name", "min-group", "backend", "unknown-key"],
)
def test_invalid_value_names_key_and_value(tmp_path, change, key_path, value):
    with pytest.raises(ConfigError) as raised:
        load_engagement(_write(tmp_path, {**MINIMAL, **change}))
    message = raised.value.render("en")
    assert f"{key_path}:" in message
    assert f"value: {value}" in message
    assert str(tmp_path / "engagement.yaml") in message


def test_invalid_role_lists_allowed_roles(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    data["sources"][0]["columns"] = {"客户号": {"name": "customer_id", "role": "idd"}}
    with pytest.raises(ConfigError) as raised:
        load_engagement(_write(tmp_path, data))
    message = raised.value.render("zh_CN")
    assert "sources[0].columns.客户号.role" in message
    assert "idd" in message
    assert "'identifier'" in message


def test_missing_required_key_is_named(tmp_path):
    data = {key: value for key, value in MINIMAL.items() if key != "client"}
    with pytest.raises(ConfigError, match="client"):
        load_engagement(_write(tmp_path, data))


def test_source_needs_path_or_sql(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    data["sources"][0]["sql"] = "select 1"
    with pytest.raises(ConfigError, match="path（文件）或 sql（查询）"):
        load_engagement(_write(tmp_path, data))


def test_duplicate_source_names_rejected(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    data["sources"].append(dict(data["sources"][0]))
    with pytest.raises(ConfigError, match="customers 重复"):
        load_engagement(_write(tmp_path, data))


def test_yaml_syntax_error_names_line(tmp_path):
    (tmp_path / "engagement.yaml").write_text("name: a\nclient: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_engagement(tmp_path)
    assert "line" in raised.value.render("en")


def test_missing_file_says_how_to_create_one(tmp_path):
    with pytest.raises(ConfigError, match="relmap new"):
        load_engagement(tmp_path / "nowhere")


def test_yaml_dates_become_iso_text(tmp_path):
    data = {**MINIMAL, "stages": {"map": {"params": {"as_of": "2024-06-30"}}}}
    text = yaml.safe_dump(data, allow_unicode=True).replace("'2024-06-30'", "2024-06-30")
    (tmp_path / "engagement.yaml").write_text(text, encoding="utf-8")
    assert load_engagement(tmp_path).stage("map").params["as_of"] == "2024-06-30"


def test_shared_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RELMAP_SHARED_DIR", str(tmp_path))
    assert shared_dir() == tmp_path.resolve()
    assert expand_path("${RELMAP_SHARED_DIR}/datasets/x.csv", Path("/elsewhere")) == tmp_path.resolve() / "datasets/x.csv"


def test_shared_dir_defaults_next_to_repository(monkeypatch):
    monkeypatch.delenv("RELMAP_SHARED_DIR", raising=False)
    assert shared_dir() == (Path(__file__).resolve().parents[2] / "shared").resolve()


def test_relative_paths_resolve_against_engagement(tmp_path):
    engagement = parse_engagement(MINIMAL, tmp_path / "engagement.yaml")
    assert engagement.sources[0].resolved_path(tmp_path) == tmp_path / "data/customers.csv"
