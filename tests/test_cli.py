"""The relmap command line, through Typer's test runner, on tiny engagements."""

from __future__ import annotations

import hashlib
import json
import sys
import types
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from relmap_utils import stages as stages_module
from relmap_utils.cli import build_app, format_duration, format_table
from relmap_utils.config import load_engagement
from relmap_utils.errors import ConfigError
from test_runner_support import make_engagement, make_registry


@pytest.fixture
def registry(tmp_path, monkeypatch):
    stages = make_registry(tmp_path / "notebooks")
    monkeypatch.setattr(stages_module, "STAGES", tuple(stages))
    return stages


@pytest.fixture
def engagement(tmp_path) -> Path:
    return make_engagement(tmp_path / "tiny")


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(build_app(), list(args), env=env)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- help


def test_help_in_chinese():
    result = invoke("--help")

    assert result.exit_code == 0
    assert "客户关系地图工作台" in result.stdout


def test_help_in_english(monkeypatch):
    monkeypatch.setenv("RELMAP_LANG", "en")

    result = invoke("run", "--help")

    assert result.exit_code == 0
    assert "Run an engagement" in result.stdout
    assert "--from" in result.stdout


def test_version():
    from relmap_utils import __version__

    result = invoke("--version")

    assert result.exit_code == 0
    assert result.stdout.strip() == f"relmap {__version__}"


# --------------------------------------------------------------------------- new


def test_new_creates_valid_engagement(tmp_path):
    result = invoke("new", "acme", "--dir", str(tmp_path / "engagements"))

    folder = tmp_path / "engagements" / "acme"
    assert result.exit_code == 0, result.output
    assert (folder / "data").is_dir()
    config = load_engagement(folder)
    assert config.name == "acme"
    assert config.locale == "zh_CN"
    assert config.timezone == "Asia/Shanghai"
    assert set(config.stages) == {"ingest", "profiling"}


def test_new_rejects_existing_folder(tmp_path):
    folder = tmp_path / "acme"
    folder.mkdir()
    (folder / "engagement.yaml").write_text("keep me", encoding="utf-8")

    result = invoke("new", "acme", "--dir", str(tmp_path))

    assert result.exit_code == 2
    assert "已存在" in result.stderr
    assert (folder / "engagement.yaml").read_text(encoding="utf-8") == "keep me"


@pytest.mark.parametrize("name", ["银行项目", "_x", "a/b"])
def test_new_rejects_bad_name(tmp_path, name):
    result = invoke("new", name, "--dir", str(tmp_path))

    assert result.exit_code == 2
    assert "名称" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_template_covers_every_config_key():
    from relmap_utils.config import Engagement, Engine, Privacy, Source, StageConfig

    text = (Path(__file__).resolve().parents[1] / "templates" / "engagement.yaml").read_text(encoding="utf-8")

    for model in (Engagement, Engine, Privacy, Source, StageConfig):
        for field in model.model_fields:
            assert f"{field}:" in text, f"{model.__name__}.{field}"


# --------------------------------------------------------------------------- run and runs


def test_run_prints_progress_and_sha256(registry, engagement, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("a:\n  cutoff: 700\nb:\n  fail: false\n", encoding="utf-8")

    result = invoke(
        "run", str(engagement), "-p", 'a.codes=["0101", "0203"]', "-p", "a.cutoff=None", "--params", str(params)
    )

    assert result.exit_code == 0, result.output
    (run_dir,) = (engagement / "runs").iterdir()
    assert "[1/3] 00_a" in result.stdout
    assert "[3/3] 02_c 成功" in result.stdout
    assert sha256(run_dir / "manifest.json") in result.stdout
    seen = json.loads((run_dir / "artifacts" / "00_a" / "params_seen.json").read_text(encoding="utf-8"))
    assert seen["codes"]["value"] == ["0101", "0203"]
    assert seen["cutoff"] == {"type": "NoneType", "value": None}


def test_run_failed_stage_exits_1(registry, engagement):
    result = invoke("run", str(engagement), "-p", "b.fail=True")

    assert result.exit_code == 1
    (run_dir,) = (engagement / "runs").iterdir()
    assert str(run_dir / "executed" / "01_b.ipynb") in result.stderr
    assert "ValueError: planned failure" in result.stderr
    assert sha256(run_dir / "manifest.json") in result.stdout
    assert "Traceback" not in result.output


def test_run_stages_option(registry, engagement):
    assert invoke("run", str(engagement), "--stages", "a").exit_code == 0

    result = invoke("run", str(engagement), "--stages", "b,c")

    assert result.exit_code == 0, result.output
    latest = sorted((engagement / "runs").iterdir())[-1]
    manifest = json.loads((latest / "manifest.json").read_text(encoding="utf-8"))
    assert [entry["status"] for entry in manifest["stages"]] == ["reused", "succeeded", "succeeded"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "title=x"], "没有指明阶段"),
        (["-p", "a.title"], "格式不对"),
        (["-p", "zz.title=x"], "没有名为 zz 的阶段"),
        (["--stages", "zz"], "没有名为 zz 的阶段"),
        (["--params", "absent.yaml"], "找不到参数文件"),
    ],
    ids=["pair-without-stage", "pair-without-equals", "unknown-stage-param", "unknown-stage", "missing-params-file"],
)
def test_run_rejects_bad_arguments(registry, engagement, args, message):
    result = invoke("run", str(engagement), *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (engagement / "runs").exists()


def test_run_invalid_config_exits_2(tmp_path, registry):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "engagement.yaml").write_text("name: bad\nclient: c\nlocale: fr\nsources: []\n", encoding="utf-8")

    result = invoke("run", str(folder), env={"RELMAP_LANG": "en"})

    assert result.exit_code == 2
    assert "locale" in result.stderr
    assert "sources" in result.stderr
    assert "Traceback" not in result.output


def test_run_messages_follow_engagement_locale(tmp_path, registry):
    engagement = make_engagement(tmp_path / "en", locale="en")

    result = invoke("run", str(engagement), "-p", "b.fail=True")

    assert result.exit_code == 1
    assert "[2/3] 01_b failed" in result.stdout
    assert "Cell 3 (id" in result.stderr


def test_runs_lists_history(registry, engagement):
    invoke("run", str(engagement), "--stages", "a")
    invoke("run", str(engagement), "-p", "b.fail=True")

    result = invoke("runs", str(engagement))

    assert result.exit_code == 0, result.output
    run_ids = sorted(path.name for path in (engagement / "runs").iterdir())
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["运行", "状态", "开始时间", "用时", "阶段"]
    assert lines[1].startswith(run_ids[0])
    assert "成功 1" in lines[1]
    assert lines[2].startswith(run_ids[1])
    assert "失败" in lines[2]
    assert "已跳过 1" in lines[2]


def test_runs_without_runs(engagement):
    result = invoke("runs", str(engagement))

    assert result.exit_code == 0
    assert "还没有运行记录" in result.stdout


def test_format_table_aligns_chinese():
    table = format_table(["运行", "x"], [["ab", "1"], ["成功", "2"]])

    assert table.splitlines() == ["运行  x", "ab    1", "成功  2"]


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (5.4, "0:00:05"), (3725, "1:02:05")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


# --------------------------------------------------------------------------- validate


def test_validate_ok(monkeypatch, registry, engagement):
    monkeypatch.setattr("relmap_utils.ingest.validate_sources", lambda config, folder: [], raising=False)

    result = invoke("validate", str(engagement))

    assert result.exit_code == 0, result.output
    assert "tiny 检查通过" in result.stdout


def test_validate_lists_problems(monkeypatch, tmp_path, engagement):
    from relmap_utils.stages import Stage
    from test_runner_support import write_notebook

    untagged = write_notebook(tmp_path / "untagged.ipynb", ['run_dir = ""'], tag_first=False)
    monkeypatch.setattr(stages_module, "STAGES", (Stage("a", "00_a", untagged),))
    problem = ConfigError("config.not_found", path="data/customers.csv", file="customers.csv")
    monkeypatch.setattr("relmap_utils.ingest.validate_sources", lambda config, folder: [problem], raising=False)
    monkeypatch.delenv("RELMAP_PSEUDONYM_KEY")

    result = invoke("validate", str(engagement))

    assert result.exit_code == 2
    assert "发现 3 个问题" in result.stderr
    assert "untagged.ipynb" in result.stderr
    assert "RELMAP_PSEUDONYM_KEY" in result.stderr
    assert "data/customers.csv" in result.stderr


def test_validate_reports_undeclared_personal_data(engagement):
    (engagement / "data" / "customers.csv").write_text(
        "客户号,城市,联系方式\n0001,上海,13812345678\n0002,北京,13987654321\n", encoding="utf-8"
    )

    result = invoke("validate", str(engagement))

    assert result.exit_code == 2
    assert "表 customers 的列 联系方式：2 个值符合手机号" in result.stderr
    assert "导入会在写出任何文件之前停止" in result.stderr
    assert "检查了每个数据源的全部行" in result.stderr


# --------------------------------------------------------------------------- demo


@pytest.fixture
def fake_demo(monkeypatch):
    """A stand-in demo generator that writes the tiny engagement's CSV and counts its calls."""
    calls = []

    def generate_demo_bank(out_dir, n_customers=20000, n_transactions=1_000_000, seed=20240601):
        calls.append((n_customers, n_transactions, seed))
        (Path(out_dir) / "customers.csv").write_text("客户号,城市\n0001,上海\n", encoding="utf-8")
        (Path(out_dir) / "fake_demo.json").write_text(json.dumps([n_customers, n_transactions, seed]))
        return {}

    def demo_bank_is_current(out_dir, n_customers=20000, n_transactions=1_000_000, seed=20240601):
        marker = Path(out_dir) / "fake_demo.json"
        return marker.is_file() and json.loads(marker.read_text()) == [n_customers, n_transactions, seed]

    module = types.ModuleType("relmap_utils.demo")
    module.generate_demo_bank = generate_demo_bank
    module.demo_bank_is_current = demo_bank_is_current
    monkeypatch.setitem(sys.modules, "relmap_utils.demo", module)
    return calls


def test_demo_generates_once_and_runs(monkeypatch, registry, engagement, fake_demo):
    monkeypatch.setattr(stages_module, "STAGES", (registry[0],))
    monkeypatch.delenv("RELMAP_PSEUDONYM_KEY")
    args = ["demo", "--engagement", str(engagement), "--customers", "30", "--transactions", "200"]

    first = invoke(*args)
    second = invoke(*args)

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert fake_demo == [(30, 200, 20240601)]
    assert "随机生成的假名化密钥" in first.stderr
    assert "直接使用" in second.stdout
    runs = sorted((engagement / "runs").iterdir())
    assert len(runs) == 2
    fingerprints = {json.loads((run / "manifest.json").read_text(encoding="utf-8"))["pseudonym_key"]["fingerprint"]
                    for run in runs}  # fmt: skip
    assert len(fingerprints) == 1


def test_demo_regenerates_for_other_size(monkeypatch, registry, engagement, fake_demo):
    monkeypatch.setattr(stages_module, "STAGES", (registry[0],))

    invoke("demo", "--engagement", str(engagement), "--customers", "30", "--transactions", "200")
    invoke("demo", "--engagement", str(engagement), "--customers", "40", "--transactions", "200", "--seed", "7")

    assert fake_demo == [(30, 200, 20240601), (40, 200, 7)]


# --------------------------------------------------------------------------- the real stages


@pytest.mark.slow
def test_run_real_stages_end_to_end(tmp_path):
    folder = tmp_path / "bank"
    (folder / "data").mkdir(parents=True)
    csv = "客户号,城市,年龄,开户日期\nK7310042,上海,30,2023年1月5日\nK7310043,北京,41,2023/2/1\nK7310044,上海,,20230301\n"
    (folder / "data" / "customers.csv").write_bytes(csv.encode("gbk"))
    config = """\
name: bank
client: 测试银行
sources:
  - name: customers
    path: data/customers.csv
    table: customers
    columns:
      客户号: {name: customer_id, role: identifier}
      城市: {name: city, role: category}
      年龄: {name: age, role: integer}
      开户日期: {name: open_date, role: date}
"""
    (folder / "engagement.yaml").write_text(config, encoding="utf-8")

    result = invoke("run", str(folder))

    assert result.exit_code == 0, result.output
    (run_dir,) = (folder / "runs").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    stages = {entry["key"]: entry for entry in manifest["stages"]}
    # Later stages (the relationship map, ...) run too; ingest and profiling come first.
    assert [entry["key"] for entry in manifest["stages"]][:2] == ["ingest", "profiling"]
    # Without labels, stages 04 and 05 have nothing to model and say so instead of failing.
    expected = {**dict.fromkeys(stages, "succeeded"), "propensity": "nothing_to_do", "risk": "nothing_to_do"}
    assert {key: entry["status"] for key, entry in stages.items()} == expected
    assert stages["propensity"]["skip_reason"]["key"] == "propensity.no_labels"
    assert stages["risk"]["skip_reason"]["key"] == "risk.notice.no_labels"
    assert (run_dir / "artifacts" / "00_ingest" / "tables" / "customers.parquet").is_file()
    assert stages["profiling"]["artifacts"]
    # customer numbers are pseudonymized at ingest, so no run file may contain them
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert b"K731004" not in path.read_bytes(), path


def test_validate_checks_stage_parameters(monkeypatch, engagement):
    monkeypatch.setattr("relmap_utils.ingest.validate_sources", lambda config, folder: [], raising=False)
    config_path = engagement / "engagement.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config.setdefault("stages", {})
    config["stages"]["risk"] = {"params": {"screening": {"min_iv": "lots"}}}
    config["stages"]["segmentation"] = {"params": {"no_such_key": 1}}
    config["stages"]["profiling"] = {"params": {"top_n": -1}}
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")

    result = invoke("validate", str(engagement))

    assert result.exit_code == 2, result.output
    assert "发现 3 个问题" in result.stderr
    assert "top_n" in result.stderr
    assert "stages.risk.params.screening.min_iv" in result.stderr
    assert "stages.segmentation.params.no_such_key" in result.stderr
