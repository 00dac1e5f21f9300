"""Pseudonym key, pseudonyms in Python and SQL, and the personal-data scan."""

from __future__ import annotations

import datetime
import hashlib
import hmac

import ibis
import pytest

from relmap_utils.config import Privacy
from relmap_utils.engine import connect
from relmap_utils.errors import PrivacyError
from relmap_utils.ingest.privacy import (
    PSEUDONYM_LENGTH,
    get_key,
    header_kind,
    install_key,
    key_fingerprint,
    pseudonymize_expr,
    pseudonymize_value,
    remove_key,
    scan_personal_data,
)

KEY = b"0123456789abcdef0123456789abcdef"
# Fictitious values with valid check characters: region 990000 and card
# prefix 6200000 are not issued.
VALID_IDS = ["990000199001011239", "99000019851231507X", "99000019851231507x"]
INVALID_ID = "990000199001011238"
VALID_CARDS = ["6200000000000000018", "6200000000000000026", "6200000000000013"]
INVALID_CARD = "6200000000000000019"
# Valid resident ID numbers that also pass the Luhn check of card numbers.
IDS_PASSING_LUHN = ["990000199001011255", "990000199001011263", "990000199001011271"]


@pytest.fixture(scope="module")
def backend():
    con = connect()
    yield con
    con.disconnect()


def test_get_key_reads_named_variable(monkeypatch):
    monkeypatch.setenv("BANK_KEY", "  a-long-enough-secret-value \n")

    assert get_key(Privacy(key_env="BANK_KEY")) == b"a-long-enough-secret-value"


@pytest.mark.parametrize("value", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_get_key_missing_names_variable(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("BANK_KEY", raising=False)
    else:
        monkeypatch.setenv("BANK_KEY", value)

    with pytest.raises(PrivacyError, match=r"环境变量 BANK_KEY 未设置或为空"):
        get_key(Privacy(key_env="BANK_KEY"))


def test_get_key_too_short(monkeypatch):
    monkeypatch.setenv("BANK_KEY", "short")

    with pytest.raises(PrivacyError, match=r"BANK_KEY.*太短"):
        get_key(Privacy(key_env="BANK_KEY"))


def test_key_fingerprint_tells_keys_apart_without_the_key():
    first = key_fingerprint(KEY)

    assert first == key_fingerprint(KEY)
    assert first != key_fingerprint(KEY + b"x")
    assert len(first) == 16
    assert KEY.decode() not in first


def test_pseudonym_is_truncated_hmac_sha256():
    expected = hmac.new(KEY, "张三".encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_LENGTH]

    assert pseudonymize_value("张三", KEY) == expected


@pytest.mark.parametrize(
    ("left", "right"),
    [(" 99000019851231507x ", "99000019851231507X"), ("C0001\u3000", "C0001"), ("\tK001\n", "K001")],
)
def test_pseudonym_normalises_before_hashing(left, right):
    assert pseudonymize_value(left, KEY) == pseudonymize_value(right, KEY)


def test_pseudonym_keeps_case_elsewhere():
    assert pseudonymize_value("abc", KEY) != pseudonymize_value("ABC", KEY)


@pytest.mark.parametrize("key", [KEY, b"k" * 100], ids=["short-key", "key-longer-than-a-block"])
def test_sql_pseudonyms_equal_python(backend, key):
    values = [*VALID_IDS, " C0001 ", "张三", "a@b.cn", None, "x" * 300]
    table = ibis.memtable({"v": values, "n": list(range(len(values)))}, schema={"v": "string", "n": "int64"})
    key_table = install_key(backend, key)
    try:
        result = backend.execute(table.select(p=pseudonymize_expr(table.v, key_table), q=pseudonymize_expr(table.n, key_table)))
    finally:
        remove_key(backend)

    for value, pseudonym in zip(values, result["p"]):
        if value is None:
            assert pseudonym is None or pseudonym != pseudonym
        else:
            assert pseudonym == pseudonymize_value(value, key)
    assert list(result["q"]) == [pseudonymize_value(str(number), key) for number in range(len(values))]


def test_key_table_removed(backend):
    install_key(backend, KEY)
    remove_key(backend)

    tables = backend.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    assert ("__relmap_pseudonym_key",) not in tables


def test_scan_counts_each_kind(backend):
    table = ibis.memtable(
        {
            "证件": [*VALID_IDS, INVALID_ID, None],
            "卡": [*VALID_CARDS, INVALID_CARD, "abc"],
            "联系": ["13812345678", "+86 13912345678", "10000000001", "a.b@bank.cn", "not-an-email@"],
            "金额": ["1", "2", "3", "4", "5"],
        }
    )

    found = scan_personal_data(table)

    # The invalid ID number still counts under the 证件 header, as a long run of digits.
    assert found == {
        "证件": {"resident_id": 3, "number": 1},
        "卡": {"card": 3},
        "联系": {"mobile": 2, "email": 1},
    }


def test_scan_counts_id_numbers_once(backend):
    table = ibis.memtable({"证件": IDS_PASSING_LUHN + [VALID_CARDS[0]]})

    found = scan_personal_data(table)

    assert found == {"证件": {"resident_id": 3, "card": 1}}


def test_scan_headers_and_allowlist(backend):
    table = ibis.memtable(
        {
            "客户姓名": ["张三", "李四", None],
            "home_address": ["上海", "", "北京"],
            "产品名称": ["理财A", "理财B", "存款"],
            "hotline": ["13800000000", "13800000000", "13800000000"],
            "mapped": ["x", "y", "z"],
        }
    )

    found = scan_personal_data(table, allowlist=["13800000000"], headers={"mapped": "联系人"})

    assert found == {"客户姓名": {"name": 2}, "home_address": {"address": 2}, "mapped": {"name": 3}}


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("姓名", "name"),
        ("客户名称", "name"),
        ("名称", "name"),
        ("联系人", "name"),
        ("customer_name", "name"),
        ("Name", "name"),
        ("地址", "address"),
        ("家庭住址", "address"),
        ("address", "address"),
        ("产品名称", None),
        ("product_name", None),
        ("网点名称", None),
        ("region", None),
    ],
)
def test_header_kind(header, kind):
    assert header_kind(header) == kind


def test_scan_skips_numbers_and_dates(backend):
    table = ibis.memtable({"amount": [13812345678.0], "day": [datetime.date(2023, 1, 5)]})

    assert scan_personal_data(table) == {}


def test_scan_finds_personal_data_inside_free_text(backend):
    table = ibis.memtable(
        {
            "备注": ["联系电话13812340001", "请回电+86 13912345678。", "订单号 213812340001", "无", None],
            "说明": [f"证件{VALID_IDS[0]}已核", f"证件{INVALID_ID}", f"卡{VALID_CARDS[0]}。", f"卡{INVALID_CARD}", "a"],
            "附言": ["请发到 zhang.san@bank.cn 谢谢", "邮箱@无", "x", "y", "z"],
        }
    )

    found = scan_personal_data(table)

    assert found == {
        "备注": {"mobile": 2},
        "说明": {"resident_id": 1, "card": 1},
        "附言": {"email": 1},
    }


@pytest.mark.parametrize(
    ("header", "kind"),
    [("开户人", "name"), ("持卡人", "name"), ("收款人", "name"), ("卡号", "number"), ("银行卡号", "number"),
     ("证件号码", "number"), ("经办人手机", "number"), ("联系方式", "number"), ("card_no", "number"),
     ("mobile", "number"), ("id_no", "number"), ("客户号", None), ("account_id", None), ("收入", None)],
)
def test_header_kind_covers_number_and_person_headers(header, kind):
    assert header_kind(header) == kind


def test_scan_counts_long_digits_under_number_headers(backend):
    table = ibis.memtable(
        {
            "卡号": ["62220202001122300001", "62220202001122300002", VALID_CARDS[0], "123", None],
            "流水号": ["62220202001122300001", "62220202001122300002", "1", "2", "3"],
            "开户人": ["王建国", "李秀英", "", None, "赵六"],
        }
    )

    found = scan_personal_data(table)

    assert found == {"卡号": {"number": 2, "card": 1}, "开户人": {"name": 3}}


def test_scan_skips_digits_inside_codes(backend):
    # The 16 digits after TX pass the Luhn check, but they are part of a code.
    table = ibis.memtable({"流水号": ["TX" + VALID_CARDS[2], "A13812345678", VALID_IDS[0] + "B"]})

    assert scan_personal_data(table) == {}


def test_pseudonym_accepts_text_key():
    assert pseudonymize_value("张三", KEY.decode("ascii")) == pseudonymize_value("张三", KEY)
