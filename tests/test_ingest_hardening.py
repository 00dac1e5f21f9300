"""Inputs that once slipped personal data or tracebacks past ingest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from relmap_utils.config import Source
from relmap_utils.context import RunContext
from relmap_utils.errors import PrivacyError, SourceError
from relmap_utils.i18n import tr
from relmap_utils.ingest import run_ingest, validate_sources
from relmap_utils.ingest.privacy import MaskedHeaders, text_looks_personal
from relmap_utils.ingest.source import check_query

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


def _amounts(tmp_path: Path, values: list[str]) -> RunContext:
    lines = [f"{index:04d},男,2023-01-05,{value}" for index, value in enumerate(values, start=1)]
    columns = {**MAPPING, "年收入": {"name": "income", "role": "amount"}}
    return _context(tmp_path, "客户号,性别,开户日期,年收入\n" + "\n".join(lines) + "\n", columns)


def test_bad_amounts_past_threshold_stop_ingest(tmp_path):
    # Row numbers are line numbers of the file, the header being line 1.
    ctx = _amounts(tmp_path, ["1"] * 18 + ['"1,2,3"', "--5"])

    with pytest.raises(SourceError, match=r"列 年收入.*20 个非空值中有 2 个无法解析（首个在第 20 行，形如 9,9,9）"):
        run_ingest(ctx)


def test_few_bad_amounts_are_counted(tmp_path):
    ctx = _amounts(tmp_path, ["1"] * 39 + ["5万万"])

    report = run_ingest(ctx)

    by_name = {source["name"]: source for source in report["sources"]}
    assert by_name["cust"]["unparsed_values"] == {"income": 1}


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("select customer_id from cust; DROP VIEW cust; select 'x' as customer_id", r"必须是一条 SELECT.*现在是：SELECT, DROP, SELECT"),
        ("select customer_id from cust; DROP TABLE cust; --", r"必须是一条 SELECT"),
        ("select * from read_csv_auto('/etc/passwd')", r"直接读取了文件或表函数 read_csv_auto\(\.\.\.\)"),
        ("with c as (select * from cust) select * from c join 'other.csv' using (customer_id)", r"直接读取了文件或表函数 other\.csv"),
        ("select * from read_parquet('x.parquet')", r"read_parquet"),
    ],
    ids=["drop-view", "drop-table", "read-csv", "path-as-table", "read-parquet"],
)
def test_query_source_rejected_before_running(tmp_path, sql, message):
    ctx = _context(tmp_path, "客户号,性别,开户日期\n0001,男,2023-01-05\n")
    config = yaml.safe_load((ctx.run_dir / "engagement.yaml").read_text(encoding="utf-8"))
    config["sources"][0].pop("table")
    config["sources"].append({"name": "q", "table": "customers", "sql": sql})
    for folder in (ctx.engagement_dir, ctx.run_dir):
        (folder / "engagement.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    ctx = RunContext.open(ctx.run_dir)

    with pytest.raises(SourceError, match=message):
        run_ingest(ctx)
    assert re.search(message, _validate_messages(ctx))


def test_query_source_with_cte_and_range_allowed():
    check_query(Source(name="q", table="customers", sql="with c as (select * from cust) select c.*, r.range from c, range(2) r;"))


def _two_sources(tmp_path: Path, first: str, second: str, columns: dict, second_columns: dict) -> RunContext:
    ctx = _context(tmp_path, first, columns)
    (ctx.engagement_dir / "data" / "customers2.csv").write_text(second, encoding="utf-8")
    config = yaml.safe_load((ctx.run_dir / "engagement.yaml").read_text(encoding="utf-8"))
    config["sources"].append({"name": "cust2", "path": "data/customers2.csv", "table": "customers", "columns": second_columns})
    for folder in (ctx.engagement_dir, ctx.run_dir):
        (folder / "engagement.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return RunContext.open(ctx.run_dir)


def test_conflicting_declared_roles_name_both_sources(tmp_path):
    columns = {**MAPPING, "年收入": {"name": "income", "role": "amount"}}
    second = {"客户号": "customer_id", "年收入": {"name": "income", "role": "date"}}
    ctx = _two_sources(
        tmp_path, "客户号,性别,开户日期,年收入\n0001,男,2023-01-05,12\n", "客户号,年收入\n0009,2023-01-01\n", columns, second
    )

    with pytest.raises(SourceError, match=r"列 income 在两个数据源中声明的角色冲突：cust 为 amount，cust2 为 date"):
        run_ingest(ctx)


def test_disagreeing_guessed_types_keep_text(tmp_path):
    import pyarrow.parquet as pq

    ctx = _two_sources(
        tmp_path,
        "客户号,性别,开户日期,分数\n0001,男,2023-01-05,5\n0002,女,2023-01-06,6\n",
        "客户号,分数\n0009,2023-01-01\n0010,2023-01-02\n",
        MAPPING,
        {"客户号": "customer_id"},
    )

    report = run_ingest(ctx)

    assert report["tables"]["customers"]["columns_kept_as_text"] == ["分数"]
    values = pq.read_table(ctx.tables_dir / "customers.parquet", columns=["分数"]).column(0).to_pylist()
    assert values == ["5", "6", "2023-01-01", "2023-01-02"]


def _write_source_file(ctx: RunContext, data: bytes) -> None:
    (ctx.engagement_dir / "data" / "customers.csv").write_bytes(data)


def _zip_bytes(tmp_path: Path, member: str) -> bytes:
    import zipfile

    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr(member, "x")
    return archive.read_bytes()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", r"customers\.csv 为空（0 字节）"),
        ("xlsx", r"是 Excel 工作簿，不是文本 CSV。请在该数据源中设置 format: excel"),
        ("xls", r"是 Excel 工作簿"),
        ("zip", r"是 ZIP 压缩包，不是文本 CSV"),
    ],
)
def test_file_that_is_not_text_csv(tmp_path, kind, message):
    ctx = _context(tmp_path, "")
    data = {
        "empty": b"",
        "xlsx": _zip_bytes(tmp_path, "xl/workbook.xml"),
        "xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100,
        "zip": _zip_bytes(tmp_path, "customers.csv"),
    }[kind]
    _write_source_file(ctx, data)

    with pytest.raises(SourceError, match=message):
        run_ingest(ctx)
    assert re.search(message, _validate_messages(ctx))


def test_single_line_file_gives_message(tmp_path):
    ctx = _context(tmp_path, "客户号,性别,开户日期\n" + "x" * 200_000)

    assert re.search(r"超过 \d+ 个字符的字段：文件可能没有换行符", _validate_messages(ctx))


def test_misspelt_target_lists_canonical_columns(tmp_path):
    ctx = _context(tmp_path, "客户号,性别,开户日期\n0001,男,2023-01-05\n", {**MAPPING, "性别": "gendre"})

    with pytest.raises(SourceError, match=r"映射到 gendre.*是 gender 的笔误。表 customers 的标准列：customer_id, .*gender"):
        run_ingest(ctx)
    assert "gendre" in _validate_messages(ctx)


def test_extra_target_extending_a_canonical_name_kept(tmp_path):
    ctx = _context(tmp_path, "客户号,性别,开户日期,收入95\n0001,男,2023-01-05,3\n", {**MAPPING, "收入95": "income_1995"})

    report = run_ingest(ctx)

    assert report["tables"]["customers"]["rows"] == 1
