"""Counted nouns: "1 row" and "2 rows" in English, the bare count in Chinese."""

from __future__ import annotations

import re
from pathlib import Path

import ibis
import pandas as pd
import pytest
from typer.testing import CliRunner

from relmap_utils import i18n
from relmap_utils.cli import build_app
from relmap_utils.errors import ConfigError
from relmap_utils.plural import counted
from relmap_utils.profiling import profile_tables
from test_runner_support import make_engagement

PACKAGE_DIR = Path(i18n.__file__).parent
COUNTED_CALL = re.compile(r"""\bcounted\(\s*f?["']([a-z_.]+)["']""")
PROFILING_NOUN = re.compile(r"""\b_counted\(\s*["']([a-z_]+)["']""")


def _counted_keys() -> set[str]:
    keys = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        keys.update(key for key in COUNTED_CALL.findall(text) if not key.endswith("."))
        keys.update(f"profiling.count.{noun}" for noun in PROFILING_NOUN.findall(text))
    return keys


@pytest.mark.parametrize(("count", "expected"), [(0, "0 rows"), (1, "1 row"), (2, "2 rows"), (12345, "12,345 rows")])
def test_counted_english_forms(count, expected):
    assert counted("profiling.count.rows", count).render("en") == expected


def test_counted_chinese_is_bare_count():
    assert counted("profiling.count.rows", 1).render("zh_CN") == "1"
    assert counted("profiling.count.rows", 12345).render("zh_CN") == "12,345"


def test_counted_unknown_count():
    assert counted("profiling.count.rows", None).render("en") == "- rows"


def test_every_counted_key_has_both_forms():
    keys = _counted_keys()

    assert "cli.count.problems" in keys
    assert "profiling.count.rows" in keys
    for locale in ("zh_CN", "en"):
        entries = i18n.catalog(locale)
        missing = sorted(f"{key}.{form}" for key in keys for form in ("one", "other") if f"{key}.{form}" not in entries)
        assert missing == [], locale


def test_validate_one_problem_in_english(monkeypatch, tmp_path):
    engagement = make_engagement(tmp_path / "tiny")
    problem = ConfigError("config.not_found", path="data/customers.csv", file="customers.csv")
    monkeypatch.setattr("relmap_utils.cli.validate_engagement", lambda config, folder: [str(problem)])
    monkeypatch.setenv("RELMAP_LANG", "en")

    result = CliRunner().invoke(build_app(), ["validate", str(engagement)])

    assert result.exit_code == 2
    assert "1 problem found:" in result.stderr
    assert "problems" not in result.stderr


def test_finding_with_one_row_in_english():
    backend = ibis.duckdb.connect()
    accounts = pd.DataFrame({"account_id": ["k1", "k2", None], "customer_id": ["a", "a", "b"]})
    tables = {"accounts": backend.create_table("accounts", accounts)}

    profile = profile_tables(tables)

    texts = [finding.text("en") for finding in profile.findings if finding.code == "profiling.finding.key_nulls"]
    assert texts == ["Table accounts has 1 row with an empty key (account_id, customer_id)."]
