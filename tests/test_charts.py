"""Chart helpers: plotly.js embedded (never from a CDN), and Chinese text in static images.

The B28 tests need an installed CJK font: scripts/ensure_system_packages.sh
installs fonts-wqy-microhei (make test runs it).
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from pathlib import Path

import matplotlib
import pytest

from relmap_utils import charts
from relmap_utils.charts import FontNotFoundError

PLOTLYJS_BANNER = "* plotly.js v"
REMOTE_SCRIPT = re.compile(r"<script[^>]+src=[\"']?(https?:)?//", re.IGNORECASE)


@pytest.fixture
def restore_matplotlib():
    saved = matplotlib.rcParams.copy()
    yield
    matplotlib.rcParams.update(saved)


@pytest.fixture(scope="module")
def b28(cases: Path) -> dict:
    folder = cases / "B28"
    content = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    with (folder / "segment_sizes.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    chart = content["chart"]
    return {
        "categories": [row[chart["x"]] for row in rows],
        "values": [float(row[chart["y"]]) for row in rows],
        "chart": chart,
        "expected": content["expected"],
    }


def _missing_glyph_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(item.message) for item in caught if "missing from" in str(item.message)]


def test_b28_bar_chart_png(b28, tmp_path, restore_matplotlib):
    chart = b28["chart"]
    target = tmp_path / "segments.png"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = charts.static_bar_chart(
            b28["categories"], b28["values"], target,
            title=chart["title"], x_label=chart["x"], y_label=chart["y_label"],
        )

    assert _missing_glyph_warnings(caught) == []
    assert written == target
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert target.stat().st_size > 10_000


def test_b28_font_covers_required_codepoints(b28, restore_matplotlib):
    required = [chr(int(item.split()[0][2:], 16)) for item in b28["expected"]["required_codepoints"]]
    chart = b28["chart"]
    text = "".join([chart["title"], chart["x"], chart["y_label"], *b28["categories"]])

    font = charts.cjk_font(text)

    assert charts.missing_codepoints(font.path, required) == []
    assert charts.missing_codepoints(font.path, text) == []
    assert matplotlib.rcParams["font.sans-serif"][0] == font.name


def test_negative_values_render_minus(tmp_path, restore_matplotlib):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charts.static_bar_chart(["净流入", "净流出"], [1200.0, -3400.0], tmp_path / "flows.png",
                                title="资金净流量（元）", y_label="金额（元）")

    assert _missing_glyph_warnings(caught) == []
    assert matplotlib.rcParams["axes.unicode_minus"] is False
    font = charts.cjk_font(configure=False)
    assert charts.missing_codepoints(font.path, "-") == []


def test_no_font_names_the_fix(monkeypatch):
    monkeypatch.setattr(charts, "_candidate_fonts", lambda: [])

    with pytest.raises(FontNotFoundError, match="fonts-wqy-microhei") as raised:
        charts.cjk_font("客户")

    assert "客" in str(raised.value)
    assert "Install a Chinese font" in raised.value.render("en")


def test_font_without_glyphs_is_skipped(monkeypatch):
    latin = matplotlib.font_manager.findfont("DejaVu Sans")
    monkeypatch.setattr(charts, "_candidate_fonts", lambda: [("DejaVu Sans", latin)])

    with pytest.raises(FontNotFoundError):
        charts.cjk_font("客户")


def test_to_html_embeds_plotlyjs():
    figure = charts.bar_chart(["高净值客户", "长尾客户"], [1280, 18650], title="客户分群分布", y_title="客户数（人）")

    page = charts.to_html(figure, include_plotlyjs=True, full_html=True)

    assert page.count(PLOTLYJS_BANNER) == 1
    assert REMOTE_SCRIPT.search(page) is None
    # Plotly writes the figure JSON with non-ASCII characters as \u escapes.
    assert json.dumps("客户分群分布")[1:-1] in page


def test_to_html_without_plotlyjs():
    figure = charts.line_chart(["2023-01", "2023-02"], [3, 4], title="每月行数")

    fragment = charts.to_html(figure, include_plotlyjs=False)

    assert PLOTLYJS_BANNER not in fragment
    assert "Plotly.newPlot" in fragment


@pytest.mark.parametrize("value", ["cdn", "https://cdn.plot.ly/plotly-3.0.0.min.js", "directory"])
def test_to_html_rejects_network_sources(value):
    figure = charts.line_chart([1, 2], [3, 4], title="t")

    with pytest.raises(ValueError, match="embedded"):
        charts.to_html(figure, include_plotlyjs=value)


def test_show_embeds_plotlyjs_once(monkeypatch):
    bundles = []
    monkeypatch.setattr("IPython.display.display", lambda bundle, raw=False: bundles.append(bundle))
    charts.reset_notebook_state()
    figure = charts.bar_chart(["甲", "乙"], [1, 2], title="测试")

    charts.show(figure)
    charts.show(figure)
    charts.reset_notebook_state()
    charts.show(figure)

    counts = [bundle["text/html"].count(PLOTLYJS_BANNER) for bundle in bundles]
    assert counts == [1, 0, 1]
    assert all("application/vnd.plotly.v1+json" in bundle for bundle in bundles)
    assert all(REMOTE_SCRIPT.search(bundle["text/html"]) is None for bundle in bundles)


def test_figures_use_cjk_font_stack():
    figure = charts.bar_chart(["甲"], [1], title="客户数")

    family = figure.layout.template.layout.font.family

    assert "Microsoft YaHei" in family
    assert "Noto Sans CJK SC" in family
    assert figure.layout.title.text == "客户数"


def test_histogram_chart_needs_matching_edges():
    with pytest.raises(ValueError, match="one more edge"):
        charts.histogram_chart([0, 1], [1, 2], title="t")
