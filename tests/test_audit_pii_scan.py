"""The personal-data scanner of relmap audit verify, on small hand-made texts and files."""

from __future__ import annotations

import json

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relmap_utils.audit.pii_scan import (
    bundled_library_allowlist,
    classify_value,
    find_personal_data,
    luhn_ok,
    mask_value,
    normalize_allowlist,
    resident_id_check_ok,
    scan_notebook,
    scan_parquet,
    scan_text_file,
    scan_xlsx,
)
from relmap_utils.engine import connect

# 11010519491231002X is the example of GB 11643-1999; its check character is X.
RESIDENT_ID = "11010519491231002X"
MOBILE = "13812345678"
# Standard test card numbers of Visa and Mastercard; both pass the Luhn check.
VISA = "4111111111111111"
MASTERCARD = "5500000000000004"
EMAIL = "zhang.san@example.com"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (RESIDENT_ID, "resident_id"),
        (RESIDENT_ID.lower(), "resident_id"),
        ("110105194912310021", None),  # wrong check character
        (MOBILE, "mobile"),
        ("+86 138-1234-5678", "mobile"),
        ("12812345678", None),  # no mainland mobile prefix starts with 12
        (VISA, "card"),
        ("4111 1111 1111 1111", "card"),
        ("4111111111111112", None),  # fails Luhn
        (EMAIL, "email"),
        ("not-an-email@", None),
    ],
    ids=["id", "id-lower-x", "id-bad-check", "mobile", "mobile-86-dashes", "mobile-12", "card", "card-spaced",
         "card-bad-luhn", "email", "email-incomplete"],  # fmt: skip
)
def test_classify_value(value, kind):
    assert classify_value(value) == kind


def test_check_digit_and_luhn_helpers():
    assert resident_id_check_ok(RESIDENT_ID)
    assert not resident_id_check_ok("11010519491231002")
    assert luhn_ok(MASTERCARD)
    assert not luhn_ok("5500000000000005")


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("resident_id", RESIDENT_ID, "110105********002X"),
        ("mobile", MOBILE, "138****5678"),
        ("mobile", "+8613812345678", "138****5678"),
        ("card", VISA, "411111******1111"),
        ("email", EMAIL, "z***@example.com"),
    ],
)
def test_mask_value_hides_the_middle(kind, value, masked):
    assert mask_value(kind, value) == masked


def test_find_in_chinese_sentence():
    text = f"客户身份证{RESIDENT_ID}，手机 138 1234 5678，邮箱 {EMAIL}。"

    matches = find_personal_data(text)

    assert [match.kind for match in matches] == ["resident_id", "mobile", "email"]
    assert [match.masked for match in matches] == ["110105********002X", "138****5678", "z***@example.com"]
    assert text[matches[0].start : matches[0].end] == RESIDENT_ID


@pytest.mark.parametrize(
    "text",
    [
        f"3fa9{RESIDENT_ID}b0",  # inside a hex pseudonym
        f"z:.{VISA}*t",  # fraction of a float in minified JavaScript
        f"{MOBILE}.5",  # a float
        f"id_{MOBILE}",  # part of an identifier
        f"1{MOBILE}",  # a longer number
    ],
    ids=["hex", "js-fraction", "float", "identifier", "longer-number"],
)
def test_digit_runs_inside_other_tokens_are_ignored(text):
    assert find_personal_data(text) == []


def test_allowlist_ignores_spacing_and_case():
    allowlist = normalize_allowlist(["138-1234-5678", "Service@Example.com"])

    assert find_personal_data(f"热线 {MOBILE}", allowlist) == []
    assert find_personal_data("mail service@example.com", allowlist) == []
    assert len(find_personal_data("mail other@example.com", allowlist)) == 1


def test_plotly_bundle_values_are_not_reported():
    from plotly.offline import get_plotlyjs

    assert bundled_library_allowlist()
    assert find_personal_data(get_plotlyjs()) == []


def test_scan_text_file_reports_line_and_count(tmp_path):
    path = tmp_path / "run.log"
    path.write_text(f"ok\nphone {MOBILE} and {MOBILE}\nmail {EMAIL}\n", encoding="utf-8")

    hits = {hit.kind: hit for hit in scan_text_file(path, "run.log", frozenset())}

    assert set(hits) == {"mobile", "email"}
    assert hits["mobile"].count == 2
    assert hits["mobile"].where.params == {"line": 2, "column": 7}
    assert hits["email"].masked == "z***@example.com"


def test_scan_notebook_covers_outputs_and_sources():
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": "说明"},
            {
                "cell_type": "code",
                "source": ["x = 1\n"],
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": [f"card {VISA}\n"]},
                    {"output_type": "display_data", "data": {"application/json": {"phone": MOBILE},
                                                              "image/png": "iVBORw0KGgo="}},
                ],
            },
            {"cell_type": "code", "source": f"email = '{EMAIL}'", "outputs": []},
        ]
    }  # fmt: skip

    hits = scan_notebook(notebook, "executed/x.ipynb", frozenset())

    found = {(hit.kind, hit.place.key, hit.place.params.get("cell")) for hit in hits}
    assert found == {
        ("card", "audit.place.cell_output", 2),
        ("mobile", "audit.place.cell_output", 2),
        ("email", "audit.place.cell_source", 3),
    }


def test_scan_parquet_streams_text_and_integer_columns(tmp_path):
    path = tmp_path / "t.parquet"
    table = pa.table(
        {
            "note": ["正常", f"联系 {MOBILE}", None, "正常"],
            "phone_number": pa.array([1, 2, int(MOBILE), 4], pa.int64()),
            "tags": [["a"], [EMAIL], [], ["b"]],
            "amount": [1.0, 2.0, float(MOBILE), 4.0],
        }
    )
    pq.write_table(table, path)

    hits = scan_parquet(path, "artifacts/x/t.parquet", frozenset(), connect(), batch_rows=2)

    found = {(hit.place.params["column"], hit.kind, hit.where.params["row"]) for hit in hits}
    assert found == {("note", "mobile", 2), ("phone_number", "mobile", 3), ("tags", "email", 2)}


def test_scan_parquet_respects_allowlist(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"hotline": [MOBILE, MOBILE]}), path)

    assert scan_parquet(path, "t.parquet", normalize_allowlist([MOBILE]), connect()) == []


def test_scan_xlsx_names_sheet_and_cell(tmp_path):
    path = tmp_path / "book.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "客户"
    sheet["A1"] = "证件号码"
    sheet["B3"] = RESIDENT_ID
    workbook.save(path)

    hits = scan_xlsx(path, "book.xlsx", frozenset())

    assert len(hits) == 1
    assert hits[0].place.params == {"sheet": "客户"}
    assert hits[0].where.params == {"cell": "B3"}
    assert hits[0].masked == "110105********002X"


def test_masked_forms_never_contain_the_value():
    text = json.dumps({"id": RESIDENT_ID, "phone": MOBILE, "card": VISA})
    for match in find_personal_data(text):
        assert match.masked not in (RESIDENT_ID, MOBILE, VISA)
        assert "*" in match.masked
