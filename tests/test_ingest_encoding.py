"""Encoding detection and streamed transcoding to UTF-8."""

from __future__ import annotations

import codecs
import gzip

import pytest

from relmap_utils.errors import SourceError
from relmap_utils.ingest import encoding
from relmap_utils.ingest.encoding import prepare_utf8, sniff_encoding

TEXT = "客户号,姓名,余额\nC001,张三,1500.50\nC002,李四,-20\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("utf-16"), "utf-16"),
        (TEXT.encode("utf-16-le"), "utf-16-le"),
        (TEXT.encode("utf-16-be"), "utf-16-be"),
        (TEXT.encode("gbk"), "gbk"),
        ("客户,㐀\n".encode("gb18030") + TEXT.encode("gb18030"), "gb18030"),
        (b"a,b\n1,2\n", "utf-8"),
    ],
    ids=["utf8", "utf8-bom", "utf16-bom", "utf16le-no-bom", "utf16be-no-bom", "gbk", "gb18030", "ascii"],
)
def test_sniff_encoding(data, expected):
    assert sniff_encoding(data) == expected


@pytest.mark.parametrize(
    ("name", "reported"),
    [
        ("gbk", "gbk"),
        # GB18030 bytes of characters that GBK also has are GBK bytes.
        ("gb18030", "gbk"),
        ("utf-16", "utf-16"),
        ("utf-8-sig", "utf-8-sig"),
        ("utf-8", "utf-8"),
    ],
)
def test_prepare_utf8_yields_same_text(tmp_path, name, reported):
    path = tmp_path / "data.csv"
    path.write_bytes(TEXT.encode(name))

    with prepare_utf8(path) as prepared:
        text = prepared.path.read_bytes().decode("utf-8-sig")
        copy = prepared.path

    assert text == TEXT
    assert prepared.encoding == reported
    assert prepared.transcoded == (name not in ("utf-8", "utf-8-sig"))
    if prepared.transcoded:
        assert not copy.exists()
        assert not copy.parent.exists()


def test_late_gbk_bytes_after_ascii_start(tmp_path):
    # The first 256 KB are plain ASCII and decode as UTF-8; the GBK bytes come
    # later, so the whole file has to be checked before trusting UTF-8.
    ascii_rows = "".join(f"C{index:06d},x,1\n" for index in range(30_000))
    path = tmp_path / "late.csv"
    path.write_bytes(("id,name,n\n" + ascii_rows + "C999999,张三,2\n").encode("gbk"))
    assert path.stat().st_size > encoding.SAMPLE_BYTES

    with prepare_utf8(path) as prepared:
        tail = prepared.path.read_bytes()[-20:].decode("utf-8")

    assert prepared.encoding == "gbk"
    assert tail.endswith("C999999,张三,2\n")


def test_gb18030_only_characters(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes((TEXT + "C003,张㐀,1\n").encode("gb18030"))

    with prepare_utf8(path) as prepared:
        assert prepared.encoding == "gb18030"
        assert prepared.path.read_text(encoding="utf-8").endswith("张㐀,1\n")


def test_chunk_boundaries_inside_characters(tmp_path, monkeypatch):
    monkeypatch.setattr(encoding, "CHUNK_BYTES", 7)  # splits two-byte GBK characters
    path = tmp_path / "small_chunks.csv"
    path.write_bytes(TEXT.encode("gbk") * 20)

    with prepare_utf8(path) as prepared:
        assert prepared.path.read_text(encoding="utf-8") == TEXT * 20


def test_gzip_source(tmp_path):
    path = tmp_path / "data.csv.gz"
    path.write_bytes(gzip.compress(TEXT.encode("gbk")))

    with prepare_utf8(path) as prepared:
        assert prepared.encoding == "gbk"
        assert prepared.path.read_text(encoding="utf-8") == TEXT


def test_configured_encoding_alias(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(TEXT.encode("gbk"))

    with prepare_utf8(path, "cp936") as prepared:
        assert prepared.encoding == "gbk"


def test_unknown_configured_encoding(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(TEXT.encode("utf-8"))

    with pytest.raises(SourceError, match=r"klingon.*auto"):
        with prepare_utf8(path, "klingon"):
            pass


def test_wrong_configured_encoding_names_the_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes("id,name\n1,a\n2,张三\n".encode("gbk"))

    with pytest.raises(SourceError, match=r"data\.csv.*utf-8.*第 3 行"):
        with prepare_utf8(path, "utf-8"):
            pass


def test_line_delimiter_avoids_characters_in_file(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("a\x1fb\n", encoding="utf-8")

    with prepare_utf8(path) as prepared:
        assert prepared.line_delimiter == "\x1e"


def test_temporary_folder_is_removed_on_error(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(TEXT.encode("gbk"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    with pytest.raises(RuntimeError):
        with prepare_utf8(path, temp_dir=scratch):
            raise RuntimeError("reader failed")

    assert list(scratch.iterdir()) == []
