"""relmap audit verify on a real small demo run: clean, tampered, with planted personal data, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from relmap_utils.audit import verify_run
from relmap_utils.audit.notebooks import check_notebook
from relmap_utils.cli import main
from relmap_utils.manifest import sha256_file, write_manifest
from relmap_utils.paths import ENGAGEMENTS_DIR

DEMO = ENGAGEMENTS_DIR / "demo"
RESIDENT_ID = "11010519491231002X"  # valid check character (GB 11643-1999 example)
MOBILE = "13812345678"


@pytest.fixture
def demo_run(profiled_demo_run: Path) -> Path:
    """The shared small demo run (read only)."""
    return profiled_demo_run


@pytest.fixture
def run_copy(demo_run_copy: Path) -> Path:
    """A copy of the demo run, free to tamper with."""
    return demo_run_copy


def _verify(run: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "verify", str(run), *args])
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out + captured.err


def _codes(run: Path, **options: object) -> set[str]:
    return {finding.code for finding in verify_run(run, **options).errors}


def _flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    position = len(data) // 2 if offset is None else offset
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def _listed_files(run: Path) -> dict[str, list[str]]:
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    kinds: dict[str, list[str]] = {"artifact": [], "notebook": [], "report": []}
    for stage in manifest["stages"]:
        kinds["notebook"].append(stage["executed_notebook"]["path"])
        kinds["artifact"].extend(record["path"] for record in stage["artifacts"])
        kinds["report"].extend(record["path"] for record in stage["reports"])
    return kinds


# --------------------------------------------------------------------------- clean run


def test_clean_run_verifies(demo_run, capsys):
    digest = sha256_file(demo_run / "manifest.json")

    code, output = _verify(demo_run, "--expect", digest, capsys=capsys)

    assert code == 0, output
    assert "审阅通过" in output
    assert "与 --expect 给出的值一致" in output


def test_clean_run_report_counts(demo_run):
    report = verify_run(demo_run)

    assert report.ok, [finding.message("en") for finding in report.errors]
    assert report.counts["notebooks"] == 2
    assert report.counts["hashed"] >= 15
    assert report.counts["scanned"] >= 15


def test_verify_writes_nothing(demo_run):
    before = {path: path.stat().st_mtime_ns for path in demo_run.rglob("*")}

    verify_run(demo_run)

    assert {path: path.stat().st_mtime_ns for path in demo_run.rglob("*")} == before


def test_json_output_in_english(demo_run, capsys, monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")

    code, output = _verify(demo_run, "--json", capsys=capsys)

    document = json.loads(output)
    assert code == 0
    assert document["ok"] is True
    assert document["errors"] == []
    assert document["run_id"] == demo_run.name


# --------------------------------------------------------------------------- manifest hash


def test_expect_wrong_hash_fails(demo_run, capsys):
    code, output = _verify(demo_run, "--expect", "0" * 64, capsys=capsys)

    assert code == 1
    assert "0" * 64 in output
    assert "审阅未通过" in output


def test_edited_manifest_fails_expect(run_copy):
    digest = sha256_file(run_copy / "manifest.json")
    manifest = json.loads((run_copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["stages"][1]["params"]["top_n"] = 99
    write_manifest(run_copy, manifest)

    codes = _codes(run_copy, expect=digest)

    assert "expect_mismatch" in codes
    assert "parameters_mismatch" in codes


# --------------------------------------------------------------------------- tampering


@pytest.mark.parametrize("kind", ["artifact", "notebook", "report"])
def test_one_flipped_byte_is_detected(run_copy, kind, capsys):
    name = _listed_files(run_copy)[kind][0]
    _flip_byte(run_copy / name)

    code, output = _verify(run_copy, capsys=capsys)

    assert code == 1
    assert name in output
    assert "已被改动" in output


def test_every_artifact_is_hashed(run_copy):
    names = _listed_files(run_copy)["artifact"]
    for name in names:
        _flip_byte(run_copy / name, offset=0)

    report = verify_run(run_copy)

    modified = {finding.file for finding in report.errors if finding.code == "file_modified"}
    assert modified == set(names)


def test_deleted_artifact_is_missing(run_copy):
    name = _listed_files(run_copy)["artifact"][0]
    (run_copy / name).unlink()

    report = verify_run(run_copy)

    assert [finding.file for finding in report.errors if finding.code == "file_missing"] == [name]


def test_unlisted_file_is_reported(run_copy):
    extra = run_copy / "artifacts" / "01_profiling" / "notes.txt"
    extra.write_text("added later\n", encoding="utf-8")

    report = verify_run(run_copy)

    assert [(finding.code, finding.file) for finding in report.errors] == [
        ("unlisted_file", "artifacts/01_profiling/notes.txt")
    ]


# --------------------------------------------------------------------------- personal data


def _plant_in_notebook(run: Path, text: str) -> str:
    name = _listed_files(run)["notebook"][1]
    path = run / name
    notebook = json.loads(path.read_text(encoding="utf-8"))
    code_cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    code_cells[-1]["outputs"].append({"output_type": "stream", "name": "stdout", "text": [text]})
    path.write_text(json.dumps(notebook, ensure_ascii=False), encoding="utf-8")
    return name


def test_personal_data_in_notebook_output_is_found(run_copy, capsys):
    name = _plant_in_notebook(run_copy, f"客户证件号 {RESIDENT_ID}\n")

    code, output = _verify(run_copy, capsys=capsys)

    assert code == 1
    assert "110105********002X" in output
    assert RESIDENT_ID not in output
    report = verify_run(run_copy)
    hits = [finding for finding in report.errors if finding.code == "personal_data"]
    assert [hit.file for hit in hits] == [name]
    assert hits[0].params["place"].key == "audit.place.cell_output"


def _plant_parquet(run: Path) -> str:
    name = "artifacts/01_profiling/planted.parquet"
    pq.write_table(pa.table({"remark": ["正常", f"请致电 {MOBILE}", "正常"]}), run / name)
    return name


def test_personal_data_in_parquet_column_is_found(run_copy, capsys):
    name = _plant_parquet(run_copy)

    code, output = _verify(run_copy, capsys=capsys)

    assert code == 1
    assert "138****5678" in output
    assert MOBILE not in output
    hits = [finding for finding in verify_run(run_copy).errors if finding.code == "personal_data"]
    assert [(hit.file, hit.params["place"].params, hit.where.params) for hit in hits] == [
        (name, {"column": "remark"}, {"row": 2})
    ]


def test_engagement_allowlist_suppresses(run_copy):
    _plant_parquet(run_copy)
    config_path = run_copy.parent.parent / "engagement.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config.setdefault("privacy", {})["allowlist"] = ["138-1234-5678"]
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")

    report = verify_run(run_copy)

    assert "personal_data" not in {finding.code for finding in report.errors}
    assert report.allowlist_sizes == {"run": 0, "engagement": 1}


def test_messages_mask_file_names(run_copy, capsys):
    (run_copy / f"联系{MOBILE}.txt").write_text("", encoding="utf-8")

    code, output = _verify(run_copy, "--json", capsys=capsys)

    assert code == 1
    assert MOBILE not in output
    errors = json.loads(output)["errors"]
    assert [error["file"] for error in errors] == ["联系138****5678.txt"]


# --------------------------------------------------------------------------- inputs


def test_missing_inputs_are_notes_unless_required(run_copy):
    manifest = json.loads((run_copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["inputs"][0]["resolved_path"] = str(run_copy / "absent.csv")
    manifest["inputs"][0]["path"] = "data/absent.csv"
    write_manifest(run_copy, manifest)

    relaxed = verify_run(run_copy)
    strict = verify_run(run_copy, require_inputs=True)

    assert relaxed.ok
    assert [note.code for note in relaxed.notes] == ["input_not_available"]
    assert [error.code for error in strict.errors] == ["input_not_available"]


def test_changed_input_is_detected(run_copy, tmp_path):
    manifest = json.loads((run_copy / "manifest.json").read_text(encoding="utf-8"))
    changed = tmp_path / "customers_changed.csv"
    changed.write_bytes(Path(manifest["inputs"][0]["resolved_path"]).read_bytes() + b"\n")
    manifest["inputs"][0]["resolved_path"] = str(changed)
    write_manifest(run_copy, manifest)

    assert _codes(run_copy) == {"input_modified"}


# --------------------------------------------------------------------------- bad input


def _tree(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(path), path.stat().st_size) for path in folder.rglob("*"))


@pytest.mark.parametrize("case", ["missing", "file", "no_manifest", "engagement", "bad_json", "not_relmap"])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, case, capsys):
    target = tmp_path / "target"
    if case == "file":
        target.write_text("x", encoding="utf-8")
    elif case == "no_manifest":
        target.mkdir()
        (target / "artifacts").mkdir()
    elif case == "engagement":
        (target / "runs" / "20260101-000000").mkdir(parents=True)
        shutil.copy(DEMO / "engagement.yaml", target / "engagement.yaml")
    elif case == "bad_json":
        target.mkdir()
        (target / "manifest.json").write_text('{"run_id": ', encoding="utf-8")
    elif case == "not_relmap":
        target.mkdir()
        (target / "manifest.json").write_text('{"name": "other tool"}', encoding="utf-8")
    before = _tree(tmp_path)

    code, output = _verify(target, capsys=capsys)

    assert code == 2
    assert str(target) in output
    assert "Traceback" not in output
    assert _tree(tmp_path) == before


def test_engagement_folder_names_latest_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")
    (tmp_path / "runs" / "20260101-000000").mkdir(parents=True)
    (tmp_path / "runs" / "20260102-000000").mkdir()
    shutil.copy(DEMO / "engagement.yaml", tmp_path / "engagement.yaml")

    code, output = _verify(tmp_path, capsys=capsys)

    assert code == 2
    assert "is an engagement folder" in output
    assert "20260102-000000" in output


# --------------------------------------------------------------------------- notebook checks


def _notebook(cells: list[dict], parameters: dict | None = None, exception: bool | None = None) -> dict:
    return {"metadata": {"papermill": {"parameters": parameters or {}, "exception": exception}}, "cells": cells}


def _code(count: int | None, source: str = "x = 1", status: str = "completed", outputs: list | None = None) -> dict:
    return {"cell_type": "code", "source": source, "execution_count": count,
            "metadata": {"papermill": {"status": status}}, "outputs": outputs or []}  # fmt: skip


def test_notebook_run_in_order_passes():
    cells = [_code(1), {"cell_type": "markdown", "source": "说明"}, _code(None, source="  \n"), _code(2)]

    assert check_notebook(_notebook(cells, {"a": 1}), "n.ipynb", {"a": 1}) == []


@pytest.mark.parametrize(
    ("cells", "code"),
    [
        ([_code(1), _code(3)], "execution_order"),
        ([_code(2), _code(1)], "execution_order"),
        ([_code(1), _code(None)], "cell_not_executed"),
        ([_code(1), _code(2, status="failed")], "cell_not_completed"),
        ([_code(1, outputs=[{"output_type": "error", "ename": "KeyError", "evalue": "x", "traceback": []}])],
         "cell_error_output"),
    ],
    ids=["gap", "reversed", "not-executed", "failed-status", "error-output"],
)  # fmt: skip
def test_notebook_defects_are_found(cells, code):
    codes = {finding.code for finding in check_notebook(_notebook(cells), "n.ipynb", {})}

    assert code in codes


def test_unexecuted_cells_are_one_finding():
    cells = [_code(1), _code(2, status="failed"), _code(None, status="pending"), _code(None, status="pending")]

    findings = check_notebook(_notebook(cells), "n.ipynb", {})

    not_executed = [finding for finding in findings if finding.code == "cell_not_executed"]
    assert [finding.params for finding in not_executed] == [{"cells": "3, 4", "count": 2}]


def test_notebook_parameters_compared_with_manifest():
    notebook = _notebook([_code(1)], {"top_n": 10, "run_dir": "/r"})

    findings = check_notebook(notebook, "n.ipynb", {"top_n": 20, "run_dir": "/r"})

    assert [(finding.code, finding.params) for finding in findings] == [("parameters_mismatch", {"names": "top_n"})]


def test_notebook_exception_and_missing_metadata():
    assert [f.code for f in check_notebook(_notebook([_code(1)], exception=True), "n", None)] == ["notebook_exception"]
    assert [f.code for f in check_notebook({"metadata": {}, "cells": []}, "n", None)] == ["notebook_not_papermill"]
    assert [f.code for f in check_notebook(None, "n", None)] == ["notebook_unreadable"]


def test_stage_with_nothing_to_do_is_a_note_not_an_error():
    from relmap_utils.audit.verify import _check_statuses

    reason = {"reason": "no_labels", "message_zh": "没有产品购买标签", "message_en": "no take-up labels"}
    manifest = {"status": "succeeded", "stages": [
        {"id": "02_map", "status": "succeeded"},
        {"id": "04_propensity", "status": "nothing_to_do", "skip_reason": reason},
    ]}
    findings = _check_statuses(manifest)
    assert [finding.code for finding in findings] == ["stage_nothing_to_do"]
    assert findings[0].severity == "note"
    assert "没有产品购买标签" in findings[0].message("zh_CN")
    assert "no take-up labels" in findings[0].message("en")
