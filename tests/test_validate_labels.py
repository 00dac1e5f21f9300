"""Label values other than 0/1 are reported by ``relmap validate`` and stop ingest."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from relmap_utils.config import load_engagement
from relmap_utils.engine import connect
from relmap_utils.errors import SourceError
from relmap_utils.ingest import validate_sources
from relmap_utils.ingest.source import read_source

CUSTOMERS = "客户号,城市\n0001,上海\n0002,北京\n0003,广州\n0004,深圳\n"
# Rows are numbered from the header (row 1), so "maybe" sits in rows 3, 5 and 7.
LABELS = (
    "客户号,标签类型,日期,结果\n"
    "0001,default,2024-01-31,1\n"
    "0002,default,2024-01-31,maybe\n"
    "0003,default,2024-01-31,0\n"
    "0004,default,2024-01-31,maybe\n"
    "0001,default,2024-02-29,2\n"
    "0002,default,2024-02-29,maybe\n"
    "0003,default,2024-02-29,未知\n"
)


def _engagement(folder: Path, labels: str, **label_source) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (folder / "data" / "labels.csv").write_text(labels, encoding="utf-8")
    columns = {
        "客户号": {"name": "customer_id", "role": "identifier"},
        "标签类型": "label_type",
        "日期": "label_date",
        "结果": {"name": "value", **label_source.pop("value_mapping", {})},
    }
    config = {
        "name": "labels_check",
        "client": "示例银行",
        "sources": [
            {"name": "customers", "path": "data/customers.csv", "table": "customers",
             "columns": {"客户号": {"name": "customer_id", "role": "identifier"}, "城市": "city"}},
            {"name": "labels", "path": "data/labels.csv", "table": "labels", "columns": columns, **label_source},
        ],
    }
    (folder / "engagement.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return folder


def _read_labels(folder: Path):
    engagement = load_engagement(folder)
    backend = connect(engagement.engine)
    try:
        source = next(item for item in engagement.sources if item.name == "labels")
        result = read_source(source, folder, backend)
        return result.table.order_by("label_date").execute()
    finally:
        backend.disconnect()


def test_validate_lists_bad_label_values(tmp_path):
    folder = _engagement(tmp_path, LABELS)
    problems = validate_sources(load_engagement(folder), folder)
    errors = [problem for problem in problems if problem.key == "ingest.label_values_invalid"]
    assert len(errors) == 1
    zh = errors[0].render("zh_CN")
    assert "数据源 labels（data/labels.csv）的标签列 结果 有 5 个值不是 0, 1" in zh
    assert "'maybe' ×3" in zh
    assert "'2' ×1" in zh
    assert "'未知' ×1" in zh
    assert "首几行：3, 5, 6, 7, 8" in zh
    assert "missing_values" in zh
    en = errors[0].render("en")
    assert "has 5 values other than 0, 1" in en
    assert "first rows: 3, 5, 6, 7, 8" in en


def test_ingest_stops_on_bad_label(tmp_path):
    folder = _engagement(tmp_path, LABELS)
    with pytest.raises(SourceError, match="maybe"):
        _read_labels(folder)


def test_single_bad_label_not_nulled(tmp_path):
    # One bad value in many is below the share at which unparsed values stop ingest.
    rows = "".join(f"000{1 + index % 4},default,2024-01-31,{index % 2}\n" for index in range(40))
    folder = _engagement(tmp_path, "客户号,标签类型,日期,结果\n" + rows + "0001,default,2024-03-31,maybe\n")
    with pytest.raises(SourceError) as caught:
        _read_labels(folder)
    assert "'maybe' ×1" in caught.value.render("en")
    assert "first rows: 42" in caught.value.render("en")


def test_declared_marker_becomes_missing(tmp_path):
    folder = _engagement(tmp_path, LABELS, missing_values=["maybe", "未知"], value_mapping={"values": {"2": "1"}})
    frame = _read_labels(folder)
    assert frame["value"].isna().sum() == 4
    assert sorted(frame["value"].dropna().astype(int).tolist()) == [0, 1, 1]


def test_recoded_words_pass(tmp_path):
    labels = "客户号,标签类型,日期,结果\n0001,default,2024-01-31,是\n0002,default,2024-01-31,否\n"
    folder = _engagement(tmp_path, labels, value_mapping={"values": {"是": "1", "否": "0"}})
    assert validate_sources(load_engagement(folder), folder) == []
    frame = _read_labels(folder)
    assert frame["value"].tolist() == [1, 0]


@pytest.mark.slow
def test_bad_label_on_spark(tmp_path):
    from test_map_spark_engine import require_spark

    require_spark()
    import ibis
    import pandas as pd
    from pyspark.sql import SparkSession

    from relmap_utils import spark
    from relmap_utils.config import Source
    from relmap_utils.ingest.labels import check_label_values

    started_here = SparkSession.getActiveSession() is None
    session = spark.spark_session({"spark.sql.shuffle.partitions": "1"}, master="local[1]")
    try:
        frame = pd.DataFrame({"customer_id": ["1", "2", "3", "4"], "result": ["1", "maybe", "0", "maybe"]})
        session.createDataFrame(frame).createOrReplaceTempView("label_check_rows")
        table = ibis.pyspark.connect(session).table("label_check_rows")
        source = Source(name="dw_labels", sql="SELECT * FROM dw.labels", table="labels")
        with pytest.raises(SourceError) as caught:
            check_label_values(source, table, "result")
        en = caught.value.render("en")
        assert "has 2 values other than 0, 1: 'maybe' ×2" in en
        assert "first rows: -" in en
    finally:
        if started_here:
            session.stop()
