"""relmap export on a real small demo run: offline HTML, Chinese workbooks, manifest entries, no overwrite."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relmap_utils.audit import manifest_states, verify_run
from relmap_utils.cli import main
from relmap_utils.export import (
    ExportColumn,
    ExportError,
    ExportTable,
    _StagePlan,
    export_run,
    render_index,
    write_workbook,
)
from relmap_utils.manifest import sha256_file, write_manifest

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
MOMENT = dt.datetime(2026, 12, 5, 10, 30, 0, tzinfo=SHANGHAI)


@pytest.fixture
def demo_run(profiled_demo_run: Path) -> Path:
    """The shared small demo run (read only)."""
    return profiled_demo_run


@pytest.fixture
def run_copy(demo_run_copy: Path) -> Path:
    """A copy of the demo run, free to tamper with."""
    return demo_run_copy


class _Links(HTMLParser):
    """Collect the src and href attributes of real elements (script bodies are not parsed as tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls.extend(value or "" for name, value in attrs if name in ("src", "href"))


def _urls(path: Path) -> list[str]:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.urls


# --------------------------------------------------------------------------- a default export


def test_export_writes_pages_and_workbook(run_copy, capsys):
    before = sha256_file(run_copy / "manifest.json")

    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(run_copy)])
    output = capsys.readouterr().out

    assert (exit_info.value.code or 0) == 0
    folders = list((run_copy / "reports").glob("export-*"))
    assert len(folders) == 1
    assert sorted(path.name for path in folders[0].iterdir()) == ["01_profiling.html", "01_profiling.xlsx", "index.html"]
    assert before in output
    assert sha256_file(run_copy / "manifest.json") in output


def test_exported_html_opens_offline(run_copy):
    result = export_run(run_copy, now=MOMENT)

    for page in (path for path in result.files if path.suffix == ".html"):
        text = page.read_text(encoding="utf-8")
        remote = [url for url in _urls(page) if re.match(r"^(https?:)?//", url.strip(), re.IGNORECASE)]
        assert remote == [], page.name
        assert "require.js" not in text
        assert not any("cdn" in url.lower() for url in _urls(page))
        assert text.count("plotly.js v") <= 1, page.name


def test_index_links_stage_pages_in_chinese(run_copy):
    result = export_run(run_copy, now=MOMENT)
    index = (result.folder / "index.html").read_text(encoding="utf-8")

    assert "<html lang='zh-CN'>" in index
    assert "数据质量画像" in index
    assert "数据质量总分" in index
    assert _urls(result.folder / "index.html") == ["01_profiling.html", "01_profiling.xlsx"]


def test_stage_page_is_the_stage_report(run_copy):
    result = export_run(run_copy, now=MOMENT)

    assert sha256_file(result.folder / "01_profiling.html") == sha256_file(run_copy / "reports" / "01_profiling.html")


def test_workbook_has_chinese_sheets_and_headers(run_copy):
    result = export_run(run_copy, now=MOMENT)

    workbook = openpyxl.load_workbook(result.folder / "01_profiling.xlsx", read_only=True)
    assert workbook.sheetnames == ["说明", "发现的问题", "各表概况", "各列概况", "参照完整性", "数值列相关性"]
    header = [cell.value for cell in next(workbook["发现的问题"].iter_rows(max_row=1))]
    assert header == ["严重程度", "表", "列", "说明", "说明（英文）"]
    rows = list(workbook["各表概况"].iter_rows(min_row=2, values_only=True))
    assert len(rows) == len(pq.read_table(run_copy / "artifacts/01_profiling/tables.parquet"))
    severities = {row[0] for row in workbook["发现的问题"].iter_rows(min_row=2, values_only=True)}
    assert severities <= {"严重", "高", "中", "低", "提示"}
    workbook.close()


def test_manifest_lists_export_and_verify_passes(run_copy):
    recorded = sha256_file(run_copy / "manifest.json")

    result = export_run(run_copy, now=MOMENT)

    manifest = json.loads((run_copy / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["exports"][0]
    assert entry["previous_manifest_sha256"] == recorded == result.previous_manifest_sha256
    assert entry["folder"] == "reports/export-20261205-103000"
    assert [record["path"].rsplit("/", 1)[1] for record in entry["files"]] == [
        "index.html", "01_profiling.html", "01_profiling.xlsx"
    ]  # fmt: skip
    assert manifest_states(run_copy, manifest) == [result.manifest_sha256, recorded]
    report = verify_run(run_copy, expect=recorded)
    assert report.ok, [finding.message("en") for finding in report.errors]
    assert report.expect_matched == "before_exports"
    assert verify_run(run_copy, expect=result.manifest_sha256).expect_matched == "current"


@pytest.mark.parametrize("name", ["index.html", "01_profiling.html", "01_profiling.xlsx"])
def test_tampered_export_is_detected(run_copy, name):
    result = export_run(run_copy, now=MOMENT)
    path = result.folder / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    report = verify_run(run_copy)

    assert [(f.code, f.file) for f in report.errors if f.code == "file_modified"] == [
        ("file_modified", f"reports/export-20261205-103000/{name}")
    ]


def test_edit_outside_export_breaks_history(run_copy):
    export_run(run_copy, now=MOMENT)
    manifest = json.loads((run_copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["status"] = "succeeded "
    write_manifest(run_copy, manifest)

    codes = {finding.code for finding in verify_run(run_copy).errors}

    assert "manifest_history_broken" in codes


# --------------------------------------------------------------------------- no overwrite


def test_second_export_writes_new_folder(run_copy):
    first = export_run(run_copy, now=MOMENT)
    second = export_run(run_copy, now=MOMENT + dt.timedelta(seconds=1))

    assert first.folder != second.folder
    manifest = json.loads((run_copy / "manifest.json").read_text(encoding="utf-8"))
    assert [entry["id"] for entry in manifest["exports"]] == [first.folder.name, second.folder.name]
    assert verify_run(run_copy).ok


def test_existing_folder_is_rejected(run_copy, capsys):
    existing = run_copy / "reports" / "export-20261205-103000"
    existing.mkdir()
    (existing / "index.html").write_text("keep me", encoding="utf-8")
    manifest_before = sha256_file(run_copy / "manifest.json")

    with pytest.raises(ExportError, match="已存在"):
        export_run(run_copy, now=MOMENT)

    assert (existing / "index.html").read_text(encoding="utf-8") == "keep me"
    assert sha256_file(run_copy / "manifest.json") == manifest_before


def test_out_option_existing_folder_exits_2(run_copy, tmp_path, capsys):
    out = tmp_path / "for_client"
    out.mkdir()

    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(run_copy), "--out", str(out)])
    output = capsys.readouterr()

    assert exit_info.value.code == 2
    assert str(out) in output.err
    assert list(out.iterdir()) == []


def test_export_outside_run_folder_is_recorded(run_copy, tmp_path):
    out = tmp_path / "for_client" / "bank"

    result = export_run(run_copy, out)

    manifest = json.loads((run_copy / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["exports"][0]["external"] is True
    assert manifest["exports"][0]["files"][0]["path"] == str(out / "index.html")
    assert verify_run(run_copy).ok
    shutil.rmtree(result.folder)
    report = verify_run(run_copy)
    assert report.ok
    assert {note.code for note in report.notes} == {"export_not_available"}


def test_modified_artifact_is_not_exported(run_copy):
    target = run_copy / "artifacts" / "01_profiling" / "findings.parquet"
    data = bytearray(target.read_bytes())
    data[10] ^= 0x01
    target.write_bytes(bytes(data))

    with pytest.raises(ExportError, match="findings.parquet"):
        export_run(run_copy, now=MOMENT)

    assert not (run_copy / "reports" / "export-20261205-103000").exists()


def test_failed_run_is_not_exported(run_copy):
    manifest = json.loads((run_copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["status"] = "failed"
    write_manifest(run_copy, manifest)

    with pytest.raises(ExportError, match="failed"):
        export_run(run_copy, now=MOMENT)


# --------------------------------------------------------------------------- escaping and Excel safety


def test_index_escapes_values_from_the_run():
    attack = "<img src=x onerror=alert(1)>"
    manifest = {"run_id": "r1", "engagement": {"name": "demo", "client": attack}, "started_at": "2026-01-01"}
    summary = {"quality_score": 90.5, "headline_findings": [{"message_zh": attack, "message_en": attack}]}
    plan = _StagePlan("01_profiling", "succeeded", None, [], summary)

    page = render_index(manifest, [plan], {}, MOMENT)

    assert attack not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img" not in page


def test_workbook_keeps_formulas_as_text(tmp_path):
    source = tmp_path / "t.parquet"
    pq.write_table(pa.table({"name": ["=HYPERLINK(\"http://x\")", "正常"], "n": [1, 2]}), source)
    table = ExportTable("t.parquet", "export.sheet.notes", (ExportColumn("name", "profiling.header.table"),
                                                            ExportColumn("n", "profiling.header.rows")))  # fmt: skip
    target = tmp_path / "t.xlsx"

    write_workbook(target, "99_test", [(table, source, "abc")], {"run_id": "r1", "engagement": {}}, MOMENT)

    sheet = openpyxl.load_workbook(target)["说明 (2)"]
    assert [cell.data_type for cell in sheet["A"]][1] == "s"
    assert sheet["A2"].value == "=HYPERLINK(\"http://x\")"
    assert sheet["B3"].value == 2
