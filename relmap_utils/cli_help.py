"""Help pages of the ``relmap`` command that wrap Chinese text at the terminal width.

Typer draws help pages with rich by default. At 80 columns rich cuts a
Chinese option help with "…", because it breaks lines only at spaces and
Chinese sentences have none, and it labels every flag ``<bool>``. relmap
therefore switches rich off for its help pages and lays them out with
:class:`HelpFormatter`. It counts a Chinese character as two columns and may
break a line between any two Chinese characters, but never before a closing
or after an opening punctuation mark. Its headings and the text of
``--help`` come from the message catalogs.

:class:`RelmapGroup` applies this to the root command and to every command
and sub-command registered under it, including those added by other modules.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from relmap_utils.i18n import tr

# Marks that must not start a line (closing) or end one (opening), after the
# common rules for Chinese line breaking.
NO_BREAK_BEFORE = set("，。、；：！？）》」』】〕”’…·%,.;:!?)]}")
NO_BREAK_AFTER = set("（《「『【〔“‘([{")
# Catalog keys of the section headings that click writes in English.
HEADING_KEYS = {
    "Usage:": "cli.help_page.usage",
    "Options": "cli.help_page.options",
    "Arguments": "cli.help_page.arguments",
    "Commands": "cli.help_page.commands",
}
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# Click appends "  [default: 14400; required]" to a parameter's help, in English.
_EXTRAS = re.compile(r"\s{2}\[(?P<items>[^\[\]]+)\]$")


def display_width(text: str) -> int:
    """Return the terminal columns ``text`` takes: two for wide (Chinese) characters, one otherwise."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in "WF"


def _can_break(before: str, after: str) -> bool:
    """Return whether a line may break between two adjacent non-space characters."""
    if not (_is_wide(before) or _is_wide(after)):
        return False
    return after not in NO_BREAK_BEFORE and before not in NO_BREAK_AFTER


def _segments(paragraph: str) -> list[tuple[str, bool]]:
    """Split a paragraph into unbreakable pieces, each with whether a space precedes it."""
    pieces: list[tuple[str, bool]] = []
    current = ""
    spaced = False
    for char in paragraph:
        if char.isspace():
            if current:
                pieces.append((current, spaced))
                current = ""
            spaced = True
        elif current and _can_break(current[-1], char):
            pieces.append((current, spaced))
            current = char
            spaced = False
        else:
            current += char
    if current:
        pieces.append((current, spaced))
    return pieces


def _fold(piece: str, width: int) -> list[str]:
    """Cut a piece wider than ``width`` (a long path, say) into parts that fit."""
    parts, part = [], ""
    for char in piece:
        if part and display_width(part + char) > width:
            parts.append(part)
            part = ""
        part += char
    return parts + [part] if part else parts


def wrap(text: str, width: int, initial_indent: str = "", subsequent_indent: str = "") -> list[str]:
    """Wrap ``text`` into lines of at most ``width`` display columns, indents included.

    Paragraphs (separated by a blank line) stay apart with an empty line
    between them. Inside a paragraph a line breaks at a space or between
    two Chinese characters; a single newline counts as a space.

    Examples
    --------
    >>> wrap("运行业务项目：每次新建运行目录。", 16)
    ['运行业务项目：每', '次新建运行目录。']
    >>> wrap("run the stages of an engagement", 16, "  ", "  ")
    ['  run the stages', '  of an', '  engagement']
    """
    lines: list[str] = []
    for number, paragraph in enumerate(_PARAGRAPH_BREAK.split(text.strip())):
        if number:
            lines.append("")
        indent = initial_indent if not lines else subsequent_indent
        line, used = indent, display_width(indent)
        for piece, spaced in _segments(paragraph):
            gap = " " if spaced and line.strip() else ""
            if line.strip() and used + display_width(gap + piece) > width:
                lines.append(line)
                line, used, gap = subsequent_indent, display_width(subsequent_indent), ""
            room = max(width - used, 1)
            parts = _fold(piece, room) if display_width(piece) > room else [piece]
            for part in parts[:-1]:
                lines.append(line + gap + part)
                line, used, gap = subsequent_indent, display_width(subsequent_indent), ""
            line += gap + parts[-1]
            used += display_width(gap + parts[-1])
        lines.append(line)
    return [line.rstrip() for line in lines]


def _heading(name: str) -> str:
    key = HEADING_KEYS.get(name)
    return tr(key) if key else f"{name}:"


def _translate_extras(description: str) -> str:
    """Translate the ``[default: ...; required]`` suffix that click adds to a parameter's help."""
    match = _EXTRAS.search(description)
    if match is None:
        return description
    items = []
    for item in match.group("items").split("; "):
        if item == "required":
            items.append(tr("cli.help_page.required"))
        elif item.startswith("default: "):
            items.append(tr("cli.help_page.default", value=item.removeprefix("default: ")))
        else:
            items.append(item)
    return description[: match.start()] + "  [" + "; ".join(items) + "]"


class HelpFormatter(typer.Context.formatter_class):  # type: ignore[misc, name-defined]
    """Click's help formatter, wrapping by display width and with translated headings."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        if prefix is None:
            prefix = _heading("Usage:")
            # "Usage: relmap", but "用法：relmap": a full-width colon carries its own space.
            prefix += "" if _is_wide(prefix[-1]) else " "
        first = f"{' ' * self.current_indent}{prefix}{prog} "
        lines = wrap(args, self.width, first, " " * display_width(first)) if args else [first.rstrip()]
        self.write("\n".join(lines) + "\n")

    def write_heading(self, heading: str) -> None:
        self.write(" " * self.current_indent + _heading(heading) + "\n")

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        self.write("\n".join(wrap(text, self.width, indent, indent)) + "\n")

    def write_dl(self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        rows = list(rows)
        if not rows:
            return
        first_width = min(max(display_width(term) for term, _ in rows), col_max) + col_spacing
        indent = " " * self.current_indent
        hanging = " " * (self.current_indent + first_width)
        for term, description in rows:
            if not description:
                self.write(f"{indent}{term}\n")
                continue
            if display_width(term) + col_spacing <= first_width:
                first = f"{indent}{term}" + " " * (first_width - display_width(term))
            else:
                self.write(f"{indent}{term}\n")
                first = hanging
            self.write("\n".join(wrap(_translate_extras(description), self.width, first, hanging)) + "\n")


class HelpContext(typer.Context):
    """Context whose help pages use :class:`HelpFormatter`."""

    formatter_class = HelpFormatter


def _commands(command: Any) -> Iterable[Any]:
    yield command
    for child in getattr(command, "commands", {}).values():
        yield from _commands(child)


def use_plain_help(command: Any) -> None:
    """Give ``command`` and every command under it the wrapping, translated help pages.

    Turns off rich help (Typer's ``rich_markup_mode``), sets the context
    class, shows a command's whole first paragraph in its parent's command
    list instead of a cut one, and translates the text of ``--help``.
    """
    for item in _commands(command):
        item.rich_markup_mode = None
        item.context_class = HelpContext
        if item.help and not item.short_help:
            item.short_help = _PARAGRAPH_BREAK.split(item.help.strip())[0]
        help_option = item.get_help_option(HelpContext(item, **item.context_settings))
        if help_option is not None:
            help_option.help = tr("cli.opt.help")


class RelmapGroup(TyperGroup):
    """Root group of ``relmap``: applies :func:`use_plain_help` to the whole command tree.

    Typer builds this group from the :class:`typer.Typer` app each time the
    app is invoked, with every registered command and sub-group already
    built, so commands that other modules add are covered too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        use_plain_help(self)
