"""Help pages of relmap: Chinese text wrapped whole at 80 columns, headings and --help translated."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from relmap_utils.cli import build_app
from relmap_utils.cli_help import display_width, wrap
from relmap_utils.i18n import catalog, tr

COMMANDS = [[], ["run"], ["runs"], ["validate"], ["new"], ["demo"], ["notebook"]]
# Help texts of the commands above, by catalog key prefix; each must appear whole.
HELP_KEYS = re.compile(r"^cli\.(help|[a-z]+\.help|opt\.[a-z_]+|arg\.[a-z_]+)$")


def _help_page(args: list[str], language: str = "zh_CN") -> str:
    # build_app() reads the catalogs, so the language must be set before it runs.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELMAP_LANG", language)
        result = CliRunner().invoke(build_app(), [*args, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.stdout


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --------------------------------------------------------------------------- wrap


def test_wrap_breaks_between_chinese_characters():
    assert wrap("运行业务项目：每次新建运行目录。", 16) == ["运行业务项目：每", "次新建运行目录。"]


def test_wrap_keeps_closing_marks_on_the_line():
    lines = wrap("一二三四五六七，八九", 14)

    assert lines == ["一二三四五六", "七，八九"]


def test_wrap_keeps_opening_marks_with_next_character():
    lines = wrap("一二三四五（六七）", 12)

    assert lines == ["一二三四五", "（六七）"]


def test_wrap_breaks_english_at_spaces():
    assert wrap("run the stages of an engagement", 16, "  ", "  ") == ["  run the stages", "  of an", "  engagement"]


def test_wrap_mixed_text_keeps_words_whole():
    lines = wrap("检查 engagement.yaml、阶段笔记本和数据源", 20)

    assert lines == ["检查", "engagement.yaml、阶", "段笔记本和数据源"]


def test_wrap_folds_words_wider_than_line():
    lines = wrap("/a/very/long/path/without/spaces", 10)

    assert "".join(lines) == "/a/very/long/path/without/spaces"
    assert all(display_width(line) <= 10 for line in lines)


def test_wrap_keeps_paragraphs_apart():
    assert wrap("第一段。\n\n第二段。", 40) == ["第一段。", "", "第二段。"]


# --------------------------------------------------------------------------- help pages


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args) or "relmap")
@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_help_fits_80_columns(args, language):
    page = _help_page(args, language)

    too_wide = [line for line in page.splitlines() if display_width(line) > 80]
    assert too_wide == []
    assert "…" not in page
    assert "<bool>" not in page


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_help_texts_appear_whole(language):
    pages = _squeeze("".join(_help_page(args, language) for args in COMMANDS))

    texts = {key: text for key, text in catalog(language).items() if HELP_KEYS.match(key)}
    assert texts
    cut = [key for key, text in texts.items() if _squeeze(text) not in pages]
    assert cut == []


def test_validate_summary_in_one_piece():
    page = _help_page([])

    line = next(line for line in page.splitlines() if line.strip().startswith("validate"))
    assert line.split("validate", 1)[1].strip().startswith("检查 engagement.yaml、")


def test_help_option_and_headings_translated():
    page = _help_page(["run"])

    assert "Show this message and exit." not in page
    assert tr("cli.opt.help", locale="zh_CN") in page
    for key in ("usage", "arguments", "options"):
        assert tr(f"cli.help_page.{key}", locale="zh_CN") in page
    assert "[默认：14400]" in page
    assert "[必填]" in page


def test_subcommand_groups_use_same_help():
    group = next((name for name in ("audit",) if name in _help_page([])), None)
    if group is None:
        pytest.skip("no sub-command group is registered")

    page = _help_page([group])

    assert tr("cli.opt.help", locale="zh_CN") in page
    assert all(display_width(line) <= 80 for line in page.splitlines())


def test_help_by_subprocess_at_80_columns():
    env = {**os.environ, "COLUMNS": "80", "RELMAP_LANG": "zh_CN"}

    completed = subprocess.run(
        [sys.executable, "-m", "relmap_utils.cli", "run", "--help"],
        capture_output=True, text=True, encoding="utf-8", env=env, timeout=120, check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert all(display_width(line) <= 80 for line in completed.stdout.splitlines())
    assert _squeeze(tr("cli.opt.stages", locale="zh_CN")) in _squeeze(completed.stdout)
    assert "…" not in completed.stdout
