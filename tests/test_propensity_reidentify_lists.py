"""``relmap reidentify``: localized header and options, list cells with several pseudonyms, clear refusals."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from relmap_utils.cli import build_app
from relmap_utils.errors import RelmapError
from relmap_utils.ingest.privacy import pseudonymize_value
from relmap_utils.propensity.reidentify import reidentify


@pytest.fixture
def master(tmp_path):
    path = tmp_path / "customers.csv"
    pd.DataFrame({"客户号": ["000123", "000456", "000789"]}).to_csv(path, index=False, encoding="utf-8-sig")
    return path


def _write_list(tmp_path, column: str, cells: list) -> object:
    path = tmp_path / "household.csv"
    pd.DataFrame({"排名": list(range(1, len(cells) + 1)), column: cells}).to_csv(path, index=False, encoding="utf-8-sig")
    return path


def test_cell_with_several_pseudonyms(tmp_path, master, pseudonym_key):
    p123, p456, p789 = (pseudonymize_value(number, pseudonym_key) for number in ("000123", "000456", "000789"))
    listing = _write_list(tmp_path, "家庭成员（假名）", [f"{p123}; {p456}", f"{p789}、{p123}", p456])

    path, count = reidentify(listing, master, list_column="家庭成员（假名）", out=tmp_path / "out.csv")

    written = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    assert count == 3
    assert list(written.columns) == ["排名", "家庭成员（假名）", "银行客户号"]
    assert written["银行客户号"].tolist() == ["000123; 000456", "000789、000123", "000456"]


def test_english_header(tmp_path, master, pseudonym_key, monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")
    listing = _write_list(tmp_path, "customer_id", [pseudonymize_value("000789", pseudonym_key)])

    path, _ = reidentify(listing, master, out=tmp_path / "out.csv")

    assert pd.read_csv(path, dtype=str)["bank customer number"].tolist() == ["000789"]


def test_unknown_part_of_list_cell(tmp_path, master, pseudonym_key):
    listing = _write_list(tmp_path, "客户号（假名）", [f"{pseudonymize_value('000123', pseudonym_key)};ffff0000ffff0000"])

    with pytest.raises(RelmapError, match="名单中有 1 个假名在客户主数据中找不到（例如 ffff0000ffff0000）"):
        reidentify(listing, master, out=tmp_path / "out.csv")


def test_empty_cell_named(tmp_path, master, pseudonym_key):
    listing = _write_list(tmp_path, "客户号（假名）", [pseudonymize_value("000123", pseudonym_key), None])

    with pytest.raises(RelmapError, match="假名列 客户号（假名） 有 1 个空单元格（第一个在第 3 行）"):
        reidentify(listing, master, out=tmp_path / "out.csv")


def test_missing_list_column_points_to_option(tmp_path, master):
    listing = _write_list(tmp_path, "member", ["x"])

    with pytest.raises(RelmapError, match="没有假名列 客户号（假名）.*--list-column"):
        reidentify(listing, master, out=tmp_path / "out.csv")


def test_reidentified_list_rejected(tmp_path, master, pseudonym_key):
    listing = tmp_path / "again.csv"
    pd.DataFrame({"客户号（假名）": [pseudonymize_value("000123", pseudonym_key)], "银行客户号": ["000123"]}).to_csv(
        listing, index=False)

    with pytest.raises(RelmapError, match="已有列 银行客户号"):
        reidentify(listing, master, out=tmp_path / "out.csv")


def test_cli_list_column_option(tmp_path, master, pseudonym_key):
    listing = _write_list(tmp_path, "成员", [pseudonymize_value("000456", pseudonym_key)])

    result = CliRunner().invoke(build_app(), ["reidentify", str(listing), "--customers", str(master),
                                              "--list-column", "成员", "--out", str(tmp_path / "out.csv")])

    assert result.exit_code == 0, result.output
    assert "已还原 1 位客户的客户号" in result.output


def test_help_is_chinese_first():
    result = CliRunner().invoke(build_app(), ["reidentify", "--help"])

    assert "营销名单中假名所在的列" in result.output
    assert "银行客户主数据文件" in result.output


def test_stray_separators_are_not_pseudonyms(tmp_path, master, pseudonym_key):
    p123 = pseudonymize_value("000123", pseudonym_key)
    listing = _write_list(tmp_path, "客户号（假名）", [f"{p123};", f";;{p123}"])

    path, _ = reidentify(listing, master, out=tmp_path / "out.csv")

    written = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    assert written["银行客户号"].tolist() == ["000123;", ";;000123"]


def test_blank_cell_counts_as_empty(tmp_path, master, pseudonym_key):
    listing = _write_list(tmp_path, "客户号（假名）", [pseudonymize_value("000123", pseudonym_key), " "])

    with pytest.raises(RelmapError, match="有 1 个空单元格（第一个在第 3 行）"):
        reidentify(listing, master, out=tmp_path / "out.csv")


def test_list_reidentified_in_english_rejected(tmp_path, master, pseudonym_key):
    listing = tmp_path / "again.csv"
    pd.DataFrame({"客户号（假名）": [pseudonymize_value("000123", pseudonym_key)],
                  "bank customer number": ["000123"]}).to_csv(listing, index=False)

    with pytest.raises(RelmapError, match="已有列 bank customer number"):
        reidentify(listing, master, out=tmp_path / "out.csv")
