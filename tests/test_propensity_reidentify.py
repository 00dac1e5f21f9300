"""``relmap reidentify``: pseudonyms back to the bank's customer numbers, only with the key."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from relmap_utils.cli import build_app
from relmap_utils.ingest.privacy import pseudonymize_value


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(build_app(), list(args), env=env)


@pytest.fixture
def files(tmp_path, pseudonym_key):
    master = tmp_path / "customers.csv"
    pd.DataFrame({"客户号": ["000123", "000456", "000789"], "姓名": ["张三", "李四", "王五"]}).to_csv(
        master, index=False, encoding="gb18030")
    listing = tmp_path / "education_wealth.csv"
    pd.DataFrame({"排名": [1, 2], "客户号（假名）": [pseudonymize_value("000456", pseudonym_key),
                                                  pseudonymize_value("000123", pseudonym_key)],
                  "购买概率": [0.9, 0.8]}).to_csv(listing, index=False, encoding="utf-8-sig")
    return listing, master


def test_maps_pseudonyms_back(files, tmp_path):
    listing, master = files
    result = invoke("reidentify", str(listing), "--customers", str(master))

    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "education_wealth_reidentified.csv", dtype=str, encoding="utf-8-sig")
    assert written["银行客户号"].tolist() == ["000456", "000123"]


def test_missing_key_is_a_clear_error(files, monkeypatch):
    listing, master = files
    monkeypatch.delenv("RELMAP_PSEUDONYM_KEY")
    result = invoke("reidentify", str(listing), "--customers", str(master))

    assert result.exit_code == 2
    assert "RELMAP_PSEUDONYM_KEY" in result.output
    assert "Traceback" not in result.output


def test_unknown_pseudonyms_named(files, monkeypatch, tmp_path):
    listing, master = files
    monkeypatch.setenv("RELMAP_LANG", "en")
    other = tmp_path / "short.csv"
    pd.read_csv(master, dtype=str, encoding="gb18030").head(1).to_csv(other, index=False)
    result = invoke("reidentify", str(listing), "--customers", str(other))

    assert result.exit_code == 2
    assert "1 pseudonyms of the list are not in the customer master" in result.output


def test_never_overwrites(files, tmp_path):
    listing, master = files
    (tmp_path / "taken.csv").write_text("x", encoding="utf-8")
    result = invoke("reidentify", str(listing), "--customers", str(master), "--out", str(tmp_path / "taken.csv"))
    assert result.exit_code == 2
    assert (tmp_path / "taken.csv").read_text(encoding="utf-8") == "x"


def test_utf16_master_is_read(files, tmp_path):
    listing, master = files
    utf16 = tmp_path / "customers_utf16.csv"
    pd.read_csv(master, dtype=str, encoding="gb18030").to_csv(utf16, index=False, encoding="utf-16")
    result = invoke("reidentify", str(listing), "--customers", str(utf16), "--out", str(tmp_path / "out.csv"))

    assert result.exit_code == 0, result.output


def test_empty_list_is_a_clear_error(files, tmp_path):
    _, master = files
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = invoke("reidentify", str(empty), "--customers", str(master))

    assert result.exit_code == 2
    assert "empty.csv" in result.output
    assert "Traceback" not in result.output


def test_output_inside_run_folder_refused(files, tmp_path):
    listing, master = files
    run = tmp_path / "runs" / "20240101-000000"
    (run / "artifacts" / "04_propensity").mkdir(parents=True)
    (run / "manifest.json").write_text("{}", encoding="utf-8")
    inside = run / "artifacts" / "04_propensity" / "list.csv"
    result = invoke("reidentify", str(listing), "--customers", str(master), "--out", str(inside))

    assert result.exit_code == 2
    assert not inside.exists()


def test_missing_output_folder_is_a_clear_error(files, tmp_path):
    listing, master = files
    result = invoke("reidentify", str(listing), "--customers", str(master), "--out", str(tmp_path / "nodir" / "x.csv"))

    assert result.exit_code == 2
    assert "nodir" in result.output
    assert "Traceback" not in result.output
