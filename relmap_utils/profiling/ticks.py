"""Axis ticks of the profiling charts that Chinese readers expect: 万 and 亿, not k and M.

Plotly abbreviates large tick labels with SI prefixes (20k, 1.5M), which a
Chinese banker reads as foreign. In ``zh_CN`` the profiling charts therefore
set their tick values and labels themselves: round steps (1, 2, 2.5 or 5 times
a power of ten) labelled with 万 (10^4) and 亿 (10^8). English charts keep
Plotly's labels.
"""

from __future__ import annotations

import math
from typing import Any

# Target number of ticks on a linear axis.
TICK_COUNT = 5
_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


def chinese_number(value: float) -> str:
    """Format a tick value with 万 or 亿 and at most four significant digits.

    Examples
    --------
    >>> [chinese_number(v) for v in (0, 2500, 20000, 1500000, 250000000, -30000)]
    ['0', '2500', '2万', '150万', '2.5亿', '-3万']
    """
    magnitude = abs(value)
    for unit, size in (("亿", 1e8), ("万", 1e4)):
        if magnitude >= size:
            return _plain(value / size) + unit
    return _plain(value)


def _plain(value: float) -> str:
    text = f"{value:.4g}"
    if "e" in text:
        text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text


def nice_ticks(low: float, high: float, count: int = TICK_COUNT) -> list[float]:
    """Return round tick values from ``low`` to ``high``, about ``count`` of them.

    Examples
    --------
    >>> nice_ticks(0, 95000)
    [0.0, 20000.0, 40000.0, 60000.0, 80000.0]
    """
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(factor * power for factor in _STEPS if factor * power >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def log_ticks(high: float) -> list[float]:
    """Return the powers of ten from 1 up to the first at or above ``high``, for a log axis."""
    if not high >= 1:
        return [1.0]
    return [10.0**power for power in range(math.ceil(math.log10(high)) + 1)]


def chinese_axis(figure: Any, axis: str, low: float, high: float, *, log: bool = False, **where: Any) -> None:
    """Label axis ``"x"`` or ``"y"`` of ``figure`` with 万/亿 ticks over ``low``..``high``.

    ``where`` selects a subplot panel (``row=``, ``col=``), as in Plotly's
    ``update_xaxes``.
    """
    values = log_ticks(high) if log else nice_ticks(low, high)
    update = figure.update_xaxes if axis == "x" else figure.update_yaxes
    update(tickmode="array", tickvals=values, ticktext=[chinese_number(value) for value in values], **where)
