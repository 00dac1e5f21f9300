"""Counted nouns in messages: "1 row" but "2 rows".

English needs the singular noun for a count of one and the plural otherwise,
so a template cannot write "{rows} rows". The catalogs therefore hold each
counted noun under two keys, ``<key>.one`` and ``<key>.other``, after the
CLDR plural categories (English: ``one`` for exactly 1, ``other`` for every
other count). :func:`counted` picks the key from the count and the message
renders later in whatever language is asked for.

Chinese has no plural, and its measure word (行, 个, 位, 笔) depends on the
sentence, so the Chinese entries of both keys are the bare count and the
Chinese templates keep the measure word after the placeholder.
"""

from __future__ import annotations

from relmap_utils.i18n import Msg


def counted(key: str, count: int | None, text: str | None = None) -> Msg:
    """Return the counted-noun message for ``count``: ``key.one`` for 1, ``key.other`` otherwise.

    Parameters
    ----------
    key : str
        Catalog key without the ``.one`` / ``.other`` ending, for example
        ``"profiling.count.rows"``.
    count : int or None
        The number counted; ``None`` (unknown) takes the ``other`` form.
    text : str, optional
        The count as shown; default with thousands separators, ``-`` when unknown.

    Returns
    -------
    Msg
        With the parameter ``count`` set to ``text``.

    Examples
    --------
    >>> counted("cli.count.problems", 1).render("en")
    '1 problem'
    >>> counted("cli.count.problems", 1200).render("en")
    '1,200 problems'
    >>> counted("cli.count.problems", 3).render("zh_CN")
    '3'
    """
    if text is None:
        text = "-" if count is None else f"{count:,}"
    form = "one" if count == 1 else "other"
    return Msg(f"{key}.{form}", count=text)
