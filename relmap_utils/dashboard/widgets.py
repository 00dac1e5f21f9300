"""Filter widgets: one dropdown per dimension the data has, and a section that follows them.

Inside Voilà a :class:`FilterBar` and an ``Output`` widget make a section
interactive: changing a dropdown re-renders the section in the kernel. In an
exported or executed notebook there is no kernel behind the page, so
:func:`filtered_section` renders the unfiltered section once, without widgets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from relmap_utils.dashboard.render import display_html, note, running_in_voila
from relmap_utils.i18n import tr

logger = logging.getLogger(__name__)

Filters = dict[str, str | None]
# Dropdown value of "all": ipywidgets shows a blank box for a None value.
ALL = ""


@dataclass(frozen=True)
class FilterSpec:
    """One filter: its key (``region``, ``segment``, ``product``, ...), label and allowed values.

    ``options`` are ``(label, value)`` pairs. With ``include_all`` the widget
    adds "all" first and starts there; without it, it starts at the first option.
    """

    key: str
    label: str
    options: Sequence[tuple[str, str]]
    include_all: bool = True


class FilterBar:
    """A row of dropdowns, one per :class:`FilterSpec`, each starting at "all"."""

    def __init__(self, specs: Sequence[FilterSpec]) -> None:
        import ipywidgets as widgets

        everything = tr("dashboard.filter.all")
        self.specs = list(specs)
        self.dropdowns = {}
        for spec in self.specs:
            options = [(label, value) for label, value in spec.options]
            if spec.include_all:
                options.insert(0, (everything, ALL))
            self.dropdowns[spec.key] = widgets.Dropdown(
                options=options,
                value=options[0][1],
                description=spec.label,
                style={"description_width": "initial"},
                layout=widgets.Layout(width="auto", margin="0 16px 0 0"),
            )
        self.widget = widgets.HBox(list(self.dropdowns.values()), layout=widgets.Layout(flex_flow="row wrap"))

    def values(self) -> Filters:
        """Return the chosen value of each filter (``None`` for "all")."""
        return {key: dropdown.value or None for key, dropdown in self.dropdowns.items()}

    def observe(self, callback: Callable[[Filters], None]) -> None:
        """Call ``callback`` with the new filter values whenever a dropdown changes."""
        for dropdown in self.dropdowns.values():
            dropdown.observe(lambda _change: callback(self.values()), names="value")


def filtered_section(specs: Sequence[FilterSpec], render: Callable[[Filters], None]) -> None:
    """Display a section that ``render`` draws for the chosen filters.

    Parameters
    ----------
    specs : sequence of FilterSpec
        Filters to offer; an empty sequence shows the section without filters.
    render : callable
        Draws the section (displays its outputs) for a mapping of filter key
        to value, ``None`` meaning "all".
    """
    unfiltered: Filters = {spec.key: None if spec.include_all else spec.options[0][1] for spec in specs}
    if not running_in_voila() or not specs:
        render(unfiltered)
        return

    import ipywidgets as widgets
    from IPython.display import display

    bar = FilterBar(specs)
    output = widgets.Output()

    def redraw(filters: Mapping[str, str | None]) -> None:
        output.clear_output(wait=True)
        with output:
            try:
                render(dict(filters))
            except Exception:
                # The page stays up when one filter combination fails; the
                # error goes to the server log, not to the client's screen.
                logger.exception("dashboard section failed for filters %s", dict(filters))
                display_html(note(tr("dashboard.section_failed")))

    bar.observe(redraw)
    with output:
        render(unfiltered)
    display(widgets.VBox([bar.widget, output]))
