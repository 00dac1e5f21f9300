"""Message catalogs: no doubled punctuation, in the templates or where a message is embedded in another."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from relmap_utils import i18n
from relmap_utils.errors import PrivacyError
from relmap_utils.i18n import Msg
from relmap_utils.notebook_exec import NotebookFailedError

LOCALE_DIR = Path(i18n.__file__).parent / "locale"
REPO_ROOT = Path(__file__).resolve().parents[1]
AREAS = sorted(path.stem for path in (LOCALE_DIR / "zh_CN" / "LC_MESSAGES").glob("*.po"))
# Two identical punctuation marks in a row; "..." (an ellipsis) is allowed.
DOUBLED = re.compile(r"。。|，，|、、|；；|：：|！！|？？|(?<!\.)\.\.(?!\.)|,,|;;")
# Parameters that carry a whole message or an exception text, which may end in
# its own full stop: the template must not put punctuation right after them.
MESSAGE_PARAMETERS = ("detail", "evalue", "error", "problems", "message", "scope")
PUNCTUATION_AFTER = re.compile(r"\{(" + "|".join(MESSAGE_PARAMETERS) + r")\}[。．.！!？?；;，,：:]")
# Catalogs of other modules that still put a full stop after an embedded message.
KNOWN_OFFENDERS: dict[str, str] = {}


def _entries(area: str) -> dict[str, dict[str, str]]:
    from babel.messages.pofile import read_po

    entries = {}
    for locale in ("zh_CN", "en"):
        with (LOCALE_DIR / locale / "LC_MESSAGES" / f"{area}.po").open("rb") as handle:
            for message in read_po(handle, locale=locale):
                if message.id and message.string:
                    entries.setdefault(str(message.id), {})[locale] = str(message.string)
    return entries


def _area_param(area: str):
    if area in KNOWN_OFFENDERS:
        reason = f"{KNOWN_OFFENDERS[area]} puts punctuation after an embedded message"
        return pytest.param(area, marks=pytest.mark.xfail(strict=True, reason=reason))
    return area


@pytest.mark.parametrize("area", AREAS)
def test_no_doubled_punctuation(area):
    doubled = [
        (key, locale, text)
        for key, texts in _entries(area).items()
        for locale, text in texts.items()
        if DOUBLED.search(text)
    ]

    assert doubled == []


@pytest.mark.parametrize("area", [_area_param(area) for area in AREAS])
def test_no_punctuation_after_embedded_message(area):
    offenders = [
        (key, locale, text)
        for key, texts in _entries(area).items()
        for locale, text in texts.items()
        if PUNCTUATION_AFTER.search(text)
    ]

    assert offenders == []


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_privacy_error_inside_notebook_failure(locale, tmp_path):
    privacy = PrivacyError(
        "ingest.personal_data_found",
        problems=[Msg("ingest.personal_column", table="customers", column="手机号", kind=Msg("ingest.kind.mobile"), count=2)],
    )
    failure = NotebookFailedError(
        notebook=tmp_path / "00_ingest.ipynb", output=tmp_path / "executed.ipynb", kind="error",
        cell_index=5, cell_id="abc", execution_count=5, ename="PrivacyError", evalue=privacy.render(locale),
    )

    text = failure.render(locale)

    assert privacy.render(locale) in text
    assert DOUBLED.search(text) is None


# The stage names in Chinese: ingest is 数据导入, profiling is 数据剖析.
OTHER_STAGE_TERMS = {"数据接入": "数据导入", "数据画像": "数据剖析"}
# Files of other modules that still use the other terms.
TERMS_ELSEWHERE: set[str] = set()


def _worded_files() -> list[str]:
    patterns = ("relmap_utils/locale/*/LC_MESSAGES/*.po", "notebooks/**/*.ipynb", "docs/*.md", "README*.md")
    return sorted({path.relative_to(REPO_ROOT).as_posix() for pattern in patterns for path in REPO_ROOT.glob(pattern)})


def _term_param(path: str):
    if path in TERMS_ELSEWHERE:
        return pytest.param(path, marks=pytest.mark.xfail(strict=True, reason="uses 数据接入 or 数据画像"))
    return path


@pytest.mark.parametrize("path", [_term_param(path) for path in _worded_files()])
def test_stage_names_use_one_term(path):
    text = (REPO_ROOT / path).read_text(encoding="utf-8")

    found = {term: OTHER_STAGE_TERMS[term] for term in OTHER_STAGE_TERMS if term in text}

    assert found == {}, f"{path}: write {found}"
