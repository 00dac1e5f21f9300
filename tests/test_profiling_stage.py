"""run_stage on a small run folder: artifacts, HTML report, privacy, parameter checks."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from relmap_utils.context import RunContext
from relmap_utils.errors import ConfigError, StageError
from relmap_utils.profiling import run_stage
from relmap_utils.profiling.model import ColumnProfile, SemanticType
from relmap_utils.profiling.report import render_html, top_values_text

# Raw personal data planted in undeclared columns; none of it may leave the profile.
PLANTED_NAMES = ["张三丰", "李四光", "王五常"]
PLANTED_PHONES = ["13812345678", "13987654321", "15011112222"]
PLOTLYJS_BANNER = "* plotly.js v"
REMOTE_SCRIPT = re.compile(r"<script[^>]+src=[\"']?(https?:)?//", re.IGNORECASE)


def _pseudonym(index: int) -> str:
    return f"{index:064x}"


def _write_run(folder: Path, locale: str = "zh_CN") -> Path:
    run = folder / "engagements" / "testbank" / "runs" / "20240101-000000"
    tables = run / "artifacts" / "00_ingest" / "tables"
    tables.mkdir(parents=True)
    (run / "engagement.yaml").write_text(
        f"name: testbank\nclient: 测试银行\nlocale: {locale}\n"
        "sources:\n  - {name: customers, path: data/customers.csv, table: customers}\n",
        encoding="utf-8",
    )
    customers = pd.DataFrame(
        {
            "customer_id": [_pseudonym(index) for index in range(30)],
            "gender": ["男", "女", None] * 10,
            "open_date": pd.to_datetime(["2023-01-05", "2023-02-10", "2023-04-20"] * 10),
            "income": [float(1000 * (index + 1)) for index in range(30)],
            "name": [_pseudonym(1000 + index) for index in range(30)],
            "contact_name": (PLANTED_NAMES * 10),
            "mobile_no": [f"1{index % 3 + 3}8{index:08d}" for index in range(27)] + PLANTED_PHONES,
        }
    )
    accounts = pd.DataFrame(
        {
            "account_id": [_pseudonym(5000 + index) for index in range(40)],
            "customer_id": [_pseudonym(index % 32) for index in range(40)],
            "product_family": ["deposit", "loan", "card", "wealth"] * 10,
            "open_date": pd.to_datetime(["2023-03-01"] * 40),
            "limit_amount": [float(index) for index in range(40)],
        }
    )
    customers.to_parquet(tables / "customers.parquet", index=False)
    accounts.to_parquet(tables / "accounts.parquet", index=False)
    meta = {
        "customers": {
            column: {"type": "id" if column.endswith("_id") else None, "role": None, "declared": False,
                     "pseudonymized": column in ("customer_id", "name")}
            for column in customers.columns
        },
        "accounts": {
            column: {"type": None, "role": None, "declared": False, "pseudonymized": column.endswith("_id")}
            for column in accounts.columns
        },
    }
    (run / "artifacts" / "00_ingest" / "columns.json").write_text(json.dumps(meta), encoding="utf-8")
    return run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return _write_run(tmp_path)


@pytest.fixture
def result(run_dir: Path) -> dict:
    return run_stage(RunContext.open(run_dir), top_n=5, as_of="2024-06-30")


def test_artifacts_written(result, run_dir):
    folder = run_dir / "artifacts" / "01_profiling"

    for name in ("columns", "tables", "integrity", "findings", "correlations"):
        assert (folder / f"{name}.parquet").is_file(), name
    assert (folder / "summary.json").is_file()
    assert Path(result["report"]) == run_dir / "reports" / "01_profiling.html"
    assert not list(folder.glob("*.tmp"))


def test_columns_artifact(result, run_dir):
    columns = pd.read_parquet(run_dir / "artifacts" / "01_profiling" / "columns.parquet")

    assert len(columns) == 7 + 5
    income = columns.set_index(["table", "column"]).loc[("customers", "income")]
    assert income["semantic_type"] == "numeric"
    assert income["mean"] == pytest.approx(15500.0)
    assert income["count"] == 30
    gender = columns.set_index(["table", "column"]).loc[("customers", "gender")]
    assert json.loads(gender["top_values"]) == [["女", 10], ["男", 10]]
    assert gender["missing"] == 10


def test_findings_artifact(result, run_dir):
    findings = pd.read_parquet(run_dir / "artifacts" / "01_profiling" / "findings.parquet")

    assert list(findings.columns) == ["severity", "table", "column", "code", "message_zh", "message_en"]
    orphans = findings[findings["code"] == "profiling.finding.orphans"].iloc[0]
    # accounts 30 and 31 reference customers 30 and 31, which do not exist: 2 of 40 rows.
    assert orphans["message_zh"] == "表 accounts 有 2 行的 customer_id 在 customers 中找不到（2 个不同取值，占已填写行的 5.0%）。"
    assert orphans["severity"] == "high"
    ranks = findings["severity"].map({"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4})
    assert ranks.is_monotonic_increasing


def test_summary(result, run_dir):
    summary = json.loads((run_dir / "artifacts" / "01_profiling" / "summary.json").read_text(encoding="utf-8"))

    assert summary["quality_score"] == result["quality_score"]
    assert 0 <= summary["quality_score"] <= 100
    assert set(summary["dimensions"]) == {"completeness", "uniqueness", "integrity", "validity"}
    assert summary["rows"] == {"accounts": 40, "customers": 30}
    assert summary["severity_counts"]["critical"] >= 1
    assert summary["capped"] is True
    assert summary["headline_findings"][0]["severity"] == "critical"
    assert summary["parameters"]["as_of"] == "2024-06-30"


def test_integrity_artifact(result, run_dir):
    integrity = pd.read_parquet(run_dir / "artifacts" / "01_profiling" / "integrity.parquet")

    reference = integrity[integrity["check"] == "reference"].iloc[0]
    assert reference["failures"] == 2
    assert json.loads(reference["sample"]) == [_pseudonym(30), _pseudonym(31)]
    assert set(integrity["check"]) == {"reference", "unique_key", "date_overlap"}


def test_no_personal_data_leaves_the_stage(result, run_dir):
    texts = [(run_dir / "reports" / "01_profiling.html").read_text(encoding="utf-8")]
    folder = run_dir / "artifacts" / "01_profiling"
    texts.append((folder / "summary.json").read_text(encoding="utf-8"))
    for path in folder.glob("*.parquet"):
        texts.append(pd.read_parquet(path).to_json(force_ascii=False))
    everything = "\n".join(texts)

    for value in PLANTED_NAMES + PLANTED_PHONES:
        assert value not in everything
        assert json.dumps(value)[1:-1] not in everything
    # The pseudonymized name column is counted, never listed.
    assert _pseudonym(1000) not in everything


def test_undeclared_personal_columns_are_critical(result):
    profile = result["profile"]
    critical = {(item.table, item.column) for item in profile.findings if item.severity == "critical"}

    assert ("customers", "contact_name") in critical
    assert ("customers", "mobile_no") in critical
    assert profile.column("customers", "mobile_no").semantic_type == "personal"


def test_html_report_offline_and_chinese(result):
    page = Path(result["report"]).read_text(encoding="utf-8")

    assert page.count(PLOTLYJS_BANNER) == 1
    assert REMOTE_SCRIPT.search(page) is None
    assert "<html lang='zh-CN'>" in page
    assert "数据质量报告" in page
    assert "总体质量评分" in page
    assert "表 accounts 有 2 行的 customer_id 在 customers 中找不到" in page


def test_html_report_in_english(tmp_path):
    run = _write_run(tmp_path, locale="en")

    result = run_stage(RunContext.open(run))

    page = Path(result["report"]).read_text(encoding="utf-8")
    assert "<html lang='en'>" in page
    assert "Data quality report" in page


def test_html_report_merges_small_groups(result, run_dir):
    page = Path(result["report"]).read_text(encoding="utf-8")
    columns = pd.read_parquet(run_dir / "artifacts" / "01_profiling" / "columns.parquet").set_index(["table", "column"])

    # Each product family has 10 accounts of 8 customers, under the default minimum of 10.
    assert json.loads(columns.loc[("accounts", "product_family"), "top_value_customers"]) == [8, 8, 8, 8]
    assert "其他（合并 4 个小类）" in page
    assert "deposit (10)" not in page
    assert "女 (10); 男 (10)" in page
    assert "客户数少于 10 位" in page


def test_top_values_text_merges_below_minimum():
    column = ColumnProfile(
        table="customers", name="occupation", physical_type="string", semantic=SemanticType("category"),
        rows=100, count=100, top_values=[("职员", 25), ("教师", 12), ("律师", 2), ("法官", 1)],
        top_value_customers=[25, 12, 2, 1],
    )

    assert top_values_text(column, "zh_CN") == "职员 (25); 教师 (12); 律师 (2); 法官 (1)"
    assert top_values_text(column, "zh_CN", min_group_size=10) == "职员 (25); 教师 (12); 其他（合并 2 个小类）"
    assert top_values_text(column, "en", min_group_size=13) == "职员 (25); other (3 small groups merged)"


def test_top_values_text_hides_small_remainder():
    # 103 filled rows: listing 男 (100) alone would reveal the merged group as 3 rows.
    column = ColumnProfile(
        table="customers", name="gender", physical_type="string", semantic=SemanticType("category"),
        rows=110, count=103, top_values=[("男", 100), ("女", 3)], top_value_customers=[100, 3],
    )

    assert top_values_text(column, "zh_CN", min_group_size=10) == "其他（合并 2 个小类）"


def test_html_report_time_in_engagement_zone(run_dir):
    profile = run_stage(RunContext.open(run_dir))["profile"]
    generated = dt.datetime(2026, 12, 4, 21, 17, 24, tzinfo=dt.timezone.utc)

    page = render_html(profile, locale="zh_CN", generated=generated, timezone="Asia/Shanghai")

    assert "生成时间：2026-12-05 05:17:24 (Asia/Shanghai)" in page


def test_html_report_header_names_zone(result):
    page = Path(result["report"]).read_text(encoding="utf-8")

    assert re.search(r"生成时间：\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \(Asia/Shanghai\)", page)


def test_html_report_follows_relmap_lang(run_dir, monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")

    result = run_stage(RunContext.open(run_dir))

    page = Path(result["report"]).read_text(encoding="utf-8")
    assert "<html lang='en'>" in page
    assert "Data quality report" in page
    assert "数据质量报告" not in page


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"top_n": 0}, "top_n"),
        ({"histogram_bins": "20"}, "histogram_bins"),
        ({"exact_limit": -1}, "exact_limit"),
        ({"as_of": "30/06/2024"}, "as_of"),
        ({"top_values": 5}, "top_values"),
    ],
    ids=["top-n-zero", "bins-as-text", "negative-limit", "bad-date", "unknown-name"],
)
def test_bad_parameters(run_dir, params, match):
    with pytest.raises(ConfigError, match=match):
        run_stage(RunContext.open(run_dir), **params)


def test_run_without_tables(tmp_path):
    run = _write_run(tmp_path)
    for path in (run / "artifacts" / "00_ingest" / "tables").glob("*.parquet"):
        path.unlink()

    with pytest.raises(StageError, match="00_ingest"):
        run_stage(RunContext.open(run))


def test_broken_columns_json(run_dir):
    (run_dir / "artifacts" / "00_ingest" / "columns.json").write_text("{not json", encoding="utf-8")

    with pytest.raises(StageError, match="columns.json"):
        run_stage(RunContext.open(run_dir))


def test_missing_columns_json_falls_back_to_inference(run_dir):
    (run_dir / "artifacts" / "00_ingest" / "columns.json").unlink()

    result = run_stage(RunContext.open(run_dir))

    assert result["profile"].column("customers", "income").semantic_type == "numeric"


NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_profiling.ipynb"


def test_notebook_is_committed_clean():
    import nbformat

    from relmap_utils.notebook_exec import declared_parameters

    notebook = nbformat.read(NOTEBOOK, as_version=4)

    assert declared_parameters(notebook) == [
        "run_dir", "top_n", "histogram_bins", "exact_limit", "max_orphan_samples", "as_of",
    ]
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.get("outputs") and cell.get("execution_count") is None for cell in code)


@pytest.mark.slow
def test_notebook_runs_offline(tmp_path):
    import nbformat

    from relmap_utils.notebook_exec import execute_notebook

    run = _write_run(tmp_path)
    output = tmp_path / "01_profiling.ipynb"

    execute_notebook(NOTEBOOK, output, {"run_dir": str(run), "top_n": 5}, cwd=run, timeout=600)

    executed = nbformat.read(output, as_version=4)
    html_outputs = [
        item["data"]["text/html"]
        for cell in executed.cells if cell.cell_type == "code"
        for item in cell.get("outputs", []) if "text/html" in item.get("data", {})
    ]
    everything = nbformat.writes(executed)
    assert sum(page.count(PLOTLYJS_BANNER) for page in html_outputs) == 1
    assert all(REMOTE_SCRIPT.search(page) is None for page in html_outputs)
    outputs = [item for cell in executed.cells if cell.cell_type == "code" for item in cell.get("outputs", [])]
    assert [item for item in outputs if item["output_type"] == "error"] == []
    assert "表 accounts 有 2 行的 customer_id 在 customers 中找不到" in everything
    for value in PLANTED_NAMES + PLANTED_PHONES:
        assert value not in everything
    assert (run / "reports" / "01_profiling.html").is_file()
