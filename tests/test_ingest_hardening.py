"""Inputs that once slipped personal data or tracebacks past ingest."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from relmap_utils.context import RunContext
from relmap_utils.errors import PrivacyError, SourceError
from relmap_utils.i18n import tr
from relmap_utils.ingest import run_ingest, validate_sources
from relmap_utils.ingest.privacy import MaskedHeaders, text_looks_personal

# Fictitious values: region 990000 is not issued; the mobile numbers are examples.
ID_NUMBER = "990000199001011239"
MAPPING = {"客户号": "customer_id", "性别": "gender", "开户日期": "open_date"}


def _context(tmp_path: Path, text: str, columns: dict | None = None) -> RunContext:
    engagement_dir = tmp_path / "eng"
    (engagement_dir / "data").mkdir(parents=True)
    (engagement_dir / "data" / "customers.csv").write_text(text, encoding="utf-8")
    source = {"name": "cust", "path": "data/customers.csv", "table": "customers", "columns": columns or MAPPING}
    config = {"name": "t", "client": "示例银行", "sources": [source]}
    run_dir = engagement_dir / "runs" / "r1"
    run_dir.mkdir(parents=True)
    for folder in (engagement_dir, run_dir):
        (folder / "engagement.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return RunContext.open(run_dir)


def _validate_messages(ctx: RunContext) -> str:
    return "\n".join(str(problem) for problem in validate_sources(ctx.engagement, ctx.engagement_dir))


def test_phone_inside_free_text_stops_ingest(tmp_path):
    ctx = _context(
        tmp_path,
        "客户号,性别,开户日期,备注\n0001,男,2023-01-05,联系电话13812340001\n0002,女,2023-01-06,无\n",
    )

    with pytest.raises(PrivacyError, match=r"列 备注：1 个值符合手机号") as caught:
        run_ingest(ctx)

    assert "13812340001" not in str(caught.value)
    assert not list(ctx.run_dir.rglob("*.parquet"))


def test_headerless_file_says_so_without_values(tmp_path):
    ctx = _context(tmp_path, f"0001,张三丰,{ID_NUMBER},13812345678,2023-01-05\n0002,李四光,{ID_NUMBER},13987654321,2023-01-06\n")

    with pytest.raises(SourceError, match=r"文件似乎没有标题行") as caught:
        run_ingest(ctx)
    messages = _validate_messages(ctx)

    for text in (str(caught.value), messages):
        assert "13812345678" not in text and ID_NUMBER not in text and "张三丰" not in text
    assert "没有标题行" in messages


def test_column_list_masks_headers_that_look_personal(tmp_path):
    ctx = _context(tmp_path, f"客户号,性别,{ID_NUMBER},13812345678\n0001,男,a,b\n")

    with pytest.raises(SourceError, match=r"文件中的列：客户号, 性别, <列 3：疑似个人信息>, <列 4：疑似个人信息>") as caught:
        run_ingest(ctx)

    assert "13812345678" not in caught.value.render("en")
    assert "<column 4: looks like personal data>" in caught.value.render("en")


@pytest.mark.parametrize(
    ("text", "personal"),
    [("联系电话13812340001", True), (f"证件{ID_NUMBER}", True), ("a.b@bank.cn", True),
     ("62220202001122300001", True), ("客户号", False), ("2023-01-05", False), ("990000199001011238", True), ("账户 12345", False)],
)
def test_text_looks_personal(text, personal):
    assert text_looks_personal(text) is personal


def test_masked_headers_render_in_each_language():
    names = MaskedHeaders(["客户号", "13812345678"])

    assert names.render("zh_CN") == "客户号, <列 2：疑似个人信息>"
    assert names.render("en") == "客户号, <column 2: looks like personal data>"
    assert tr("ingest.header_masked", locale="en", position=1) == "<column 1: looks like personal data>"


def test_missing_mapped_column_lists_real_headers(tmp_path):
    ctx = _context(tmp_path, "客户编码,性别,开户日期\nC1,男,2023-01-05\n")

    with pytest.raises(SourceError, match=r"不存在的列：客户号。文件中的列：客户编码, 性别, 开户日期"):
        run_ingest(ctx)


def test_file_that_is_not_a_table_shows_no_contents(tmp_path):
    ctx = _context(tmp_path, "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")

    with pytest.raises(SourceError, match=r"文件似乎没有标题行") as caught:
        run_ingest(ctx)

    assert "root" not in str(caught.value)
