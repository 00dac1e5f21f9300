"""Chart helpers: Plotly figures that render offline, and a CJK font for matplotlib.

Banks often block foreign CDNs, so no figure may load plotly.js from the
network. :func:`to_html` embeds plotly.js in the page, and :func:`show`
embeds it once per notebook kernel: the first figure shown carries the
library, every later figure only its data. Static images (PNG) come from
matplotlib, which draws boxes for Chinese text unless a CJK font is
configured; :func:`cjk_font` finds one among the installed fonts and checks
that it covers the characters to be drawn.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from relmap_utils.errors import RelmapError

logger = logging.getLogger(__name__)

# Browser fonts tried in order for Chinese labels: Windows, macOS, Linux.
FONT_FAMILY = (
    '"Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "Noto Sans CJK SC", '
    '"Source Han Sans SC", "WenQuanYi Micro Hei", "Helvetica Neue", Arial, sans-serif'
)
COLORWAY = ("#1f5aa6", "#e07b39", "#3a9d5d", "#c23b3b", "#7d5ba6", "#8c6d46", "#d16ba5", "#6b7b8c")

# Installed font families preferred for static images, best first.
PREFERRED_CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "Sarasa Gothic SC",
    "Droid Sans Fallback",
    "AR PL UMing CN",
)
# Words in font names or files that suggest Chinese coverage. When no preferred
# family covers the text, only fonts with these words are opened and checked.
_CJK_HINTS = ("cjk", "han", "hei", "song", "kai", "ming", "wqy", "wenquanyi", "yahei", "chinese", "sc", "cn", "gb")
# Characters every chart of relmap may need beyond its own text: digits,
# punctuation, full-width brackets and the minus sign.
BASE_TEXT = "0123456789.,%-+()（）：，、客户数量"

_plotlyjs_embedded = False


class FontNotFoundError(RelmapError):
    """No installed font can draw the Chinese text of a static chart."""


@dataclass(frozen=True)
class CJKFont:
    """An installed font that covers the requested characters."""

    name: str
    path: Path


def relmap_template() -> go.layout.Template:
    """Return the compact Plotly template of relmap charts (white, CJK font stack)."""
    axis = {"gridcolor": "#e5e7eb", "linecolor": "#9ca3af", "zeroline": False, "automargin": True}
    return go.layout.Template(
        layout={
            "font": {"family": FONT_FAMILY, "size": 13, "color": "#1f2937"},
            "colorway": list(COLORWAY),
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "xaxis": axis,
            "yaxis": axis,
            "margin": {"l": 60, "r": 20, "t": 60, "b": 50},
            "hoverlabel": {"font": {"family": FONT_FAMILY}},
        }
    )


def style_figure(
    figure: go.Figure,
    title: str | None = None,
    x_title: str | None = None,
    y_title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """Apply the relmap template, titles and height to ``figure`` and return it."""
    figure.update_layout(template=relmap_template())
    if title is not None:
        figure.update_layout(title={"text": title, "x": 0.01, "xanchor": "left"})
    if x_title is not None:
        figure.update_xaxes(title_text=x_title)
    if y_title is not None:
        figure.update_yaxes(title_text=y_title)
    if height is not None:
        figure.update_layout(height=height)
    return figure


def bar_chart(
    categories: Sequence[Any],
    values: Sequence[float],
    *,
    title: str,
    x_title: str = "",
    y_title: str = "",
    horizontal: bool = False,
    text: Sequence[str] | None = None,
) -> go.Figure:
    """Return a styled bar chart; ``horizontal`` puts the categories on the y axis.

    Parameters
    ----------
    categories, values : sequence
        Bar labels and lengths.
    title : str
    x_title, y_title : str
        Titles of the horizontal (x) and vertical (y) axes as drawn: for a
        horizontal chart the values run along x, so ``x_title`` names them.
    horizontal : bool, default=False
    text : sequence of str, optional
        Text on each bar.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    labels = [str(category) for category in categories]
    if horizontal:
        trace = go.Bar(x=list(values), y=labels, orientation="h", text=text)
        figure = style_figure(go.Figure(trace), title, x_title, y_title)
        figure.update_yaxes(autorange="reversed", type="category")
    else:
        trace = go.Bar(x=labels, y=list(values), text=text)
        figure = style_figure(go.Figure(trace), title, x_title, y_title)
        figure.update_xaxes(type="category")
    return figure


def line_chart(
    x: Sequence[Any],
    y: Sequence[float],
    *,
    title: str,
    x_title: str = "",
    y_title: str = "",
) -> go.Figure:
    """Return a styled line chart with markers."""
    figure = go.Figure(go.Scatter(x=list(x), y=list(y), mode="lines+markers"))
    return style_figure(figure, title, x_title, y_title)


def histogram_chart(
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    title: str,
    x_title: str = "",
    y_title: str = "",
) -> go.Figure:
    """Return a bar chart of precomputed bins (``len(edges) == len(counts) + 1``).

    The bins come from the database, so the figure holds only the counts.
    """
    if len(edges) != len(counts) + 1:
        raise ValueError(f"histogram needs one more edge than counts; got {len(edges)} edges and {len(counts)} counts")
    centres = [(low + high) / 2 for low, high in zip(edges[:-1], edges[1:])]
    widths = [high - low for low, high in zip(edges[:-1], edges[1:])]
    hover = [f"[{low:,.4g}, {high:,.4g}): {count:,}" for low, high, count in zip(edges[:-1], edges[1:], counts)]
    trace = go.Bar(x=centres, y=list(counts), width=widths, hovertext=hover, hoverinfo="text")
    figure = style_figure(go.Figure(trace), title, x_title, y_title)
    figure.update_layout(bargap=0.02)
    return figure


def heatmap(
    matrix: Sequence[Sequence[float | None]],
    labels: Sequence[str],
    *,
    title: str,
) -> go.Figure:
    """Return a correlation-style heatmap on a diverging scale from -1 to 1."""
    trace = go.Heatmap(z=[list(row) for row in matrix], x=list(labels), y=list(labels),
                       zmin=-1, zmax=1, colorscale="RdBu", reversescale=True)
    figure = style_figure(go.Figure(trace), title)
    figure.update_yaxes(autorange="reversed")
    return figure


def plotlyjs_script() -> str:
    """Return a ``<script>`` element with the whole plotly.js bundled in the plotly package."""
    return f'<script type="text/javascript">{get_plotlyjs()}</script>'


def to_html(figure: go.Figure, include_plotlyjs: bool = True, *, full_html: bool = False) -> str:
    """Render ``figure`` as HTML that works without network access.

    Parameters
    ----------
    figure : plotly Figure
    include_plotlyjs : bool, default=True
        Embed plotly.js in the output. Pass ``False`` for every figure of a
        page after the first, which already carries it. Plotly's ``"cdn"``
        and URL options are rejected: they load the library from the network.
    full_html : bool, default=False
        Return a whole ``<html>`` document instead of a ``<div>``.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        When ``include_plotlyjs`` is not a bool.
    """
    if not isinstance(include_plotlyjs, bool):
        raise ValueError(
            f"include_plotlyjs must be True or False so that plotly.js is embedded, not loaded from a "
            f"network address; got {include_plotlyjs!r}"
        )
    return figure.to_html(
        include_plotlyjs=include_plotlyjs,
        full_html=full_html,
        include_mathjax=False,
        config={"displaylogo": False, "responsive": True},
    )


def show(figure: go.Figure) -> None:
    """Display ``figure`` in a notebook, embedding plotly.js with the first figure only.

    The output is HTML, so an executed notebook renders offline wherever its
    HTML outputs are rendered (nbconvert, Voilà, a trusted notebook). It also
    carries Plotly's JSON, which JupyterLab's Plotly extension draws in an
    untrusted notebook.
    """
    from IPython.display import display

    global _plotlyjs_embedded
    html = to_html(figure, include_plotlyjs=False)
    if not _plotlyjs_embedded:
        html = plotlyjs_script() + html
    bundle = {"text/html": html, "application/vnd.plotly.v1+json": figure.to_plotly_json()}
    display(bundle, raw=True)
    _plotlyjs_embedded = True


def reset_notebook_state() -> None:
    """Forget that plotly.js was shown, so the next :func:`show` embeds it again.

    Call it after clearing a notebook's outputs in a running kernel.
    """
    global _plotlyjs_embedded
    _plotlyjs_embedded = False


def missing_codepoints(font_path: str | Path, text: Iterable[str]) -> list[str]:
    """Return the characters of ``text`` that the font file has no glyph for.

    Whitespace is ignored. The check reads the font's character map (cmap)
    with matplotlib's FreeType wrapper. For a collection (.ttc) it reads the
    first font, because that is the one matplotlib draws with.
    """
    from matplotlib.ft2font import FT2Font

    charmap = FT2Font(str(font_path)).get_charmap()
    needed = sorted({char for char in text if not char.isspace()})
    return [char for char in needed if ord(char) not in charmap]


def cjk_font(text: str = "", *, configure: bool = True) -> CJKFont:
    """Find an installed font that draws ``text`` and Chinese, and configure matplotlib with it.

    Parameters
    ----------
    text : str, optional
        Every character a chart will draw (title, labels, categories). The font
        must cover these and :data:`BASE_TEXT`.
    configure : bool, default=True
        Put the font first in ``font.sans-serif``, select the sans-serif family
        and set ``axes.unicode_minus`` to False, so negative tick labels use
        the ASCII hyphen-minus, which every font has, instead of U+2212.

    Returns
    -------
    CJKFont

    Raises
    ------
    FontNotFoundError
        When no installed font covers the characters; the message names the
        characters and the package to install (fonts-wqy-microhei).
    """
    import matplotlib

    needed = set(BASE_TEXT) | set(text)
    chosen = None
    for name, path in _candidate_fonts():
        try:
            if not missing_codepoints(path, needed):
                chosen = CJKFont(name, Path(path))
                break
        except (OSError, RuntimeError) as error:
            logger.debug("cannot read font %s: %s", path, error)
    if chosen is None:
        shown = "".join(sorted(char for char in needed if ord(char) > 127))[:40]
        raise FontNotFoundError("charts.no_cjk_font", characters=shown)

    if configure:
        families = [chosen.name] + [f for f in matplotlib.rcParams["font.sans-serif"] if f != chosen.name]
        matplotlib.rcParams["font.sans-serif"] = families
        matplotlib.rcParams["font.family"] = "sans-serif"
        matplotlib.rcParams["axes.unicode_minus"] = False
    logger.info("static charts use font %s (%s)", chosen.name, chosen.path)
    return chosen


def static_bar_chart(
    categories: Sequence[Any],
    values: Sequence[float],
    path: str | Path,
    *,
    title: str,
    x_label: str = "",
    y_label: str = "",
    dpi: int = 150,
) -> Path:
    """Draw a bar chart with Chinese text as a PNG file, using a CJK font.

    The figure is drawn without pyplot, so no global figure state is touched
    beyond the font settings of :func:`cjk_font`. Bars carry their values.

    Parameters
    ----------
    categories, values : sequence
        Bar labels and heights.
    path : str or Path
        PNG file to write; its folder must exist.
    title, x_label, y_label : str
    dpi : int, default=150

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FontNotFoundError
        When no installed font covers the text (see :func:`cjk_font`).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [str(category) for category in categories]
    cjk_font("".join([title, x_label, y_label, *labels]))

    figure = Figure(figsize=(8, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    bars = axes.bar(labels, list(values), color=COLORWAY[0])
    axes.bar_label(bars, labels=[f"{value:,.0f}" for value in values], padding=2)
    axes.set_title(title)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.spines[["top", "right"]].set_visible(False)

    target = Path(path)
    with warnings.catch_warnings():
        # A missing glyph is an error here, not a warning: boxes in a client
        # report are worse than no chart.
        warnings.filterwarnings("error", message=r".*missing from (current )?font.*")
        figure.savefig(target, dpi=dpi)
    return target


def _candidate_fonts() -> list[tuple[str, str]]:
    """Return installed fonts as (family, file), preferred CJK families first.

    Fonts installed after matplotlib built its font cache are added from the
    system font folders first, so a font installed by
    scripts/ensure_system_packages.sh is found without deleting the cache.
    """
    from matplotlib import font_manager

    manager = font_manager.fontManager
    known = {entry.fname for entry in manager.ttflist}
    for path in font_manager.findSystemFonts():
        if path not in known and any(hint in Path(path).name.lower() for hint in _CJK_HINTS):
            try:
                manager.addfont(path)
            except (OSError, RuntimeError, ValueError) as error:
                logger.debug("cannot add font %s: %s", path, error)

    entries = [(entry.name, entry.fname) for entry in manager.ttflist]
    rank = {name.lower(): index for index, name in enumerate(PREFERRED_CJK_FAMILIES)}
    preferred = sorted((e for e in entries if e[0].lower() in rank), key=lambda e: rank[e[0].lower()])
    hinted = [
        entry for entry in entries
        if entry[0].lower() not in rank and any(hint in (entry[0] + Path(entry[1]).name).lower() for hint in _CJK_HINTS)
    ]
    return preferred + hinted
