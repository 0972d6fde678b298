"""The plain-text part of a marketing email, from its HTML (after CSS inlining).

Written for the HTML emails are made of: layout tables, a hidden preheader, image links next to
title links, a footer of links. Each table row and block becomes a paragraph, cells of a row
are joined on one line, a link keeps its address in brackets after its text, an image link
with no text is left out (the title link next to it carries the address), and what the HTML
hides (``display: none``, ``<head>``, ``<style>``) stays hidden. A general converter
(inscriptis, used before) lays tables out as fixed-width columns padded with spaces and costs
four times as much per message (docs/benchmarks.md, B3).
"""

from __future__ import annotations

import re

from lxml import etree
from lxml import html as lxml_html

_BLOCKS = frozenset(
    "address article aside blockquote center dd div dl dt footer form h1 h2 h3 h4 h5 h6 header "
    "hr li main nav ol p pre section table tbody tfoot thead tr ul".split()
)
_CELLS = frozenset(("td", "th"))
_UNSEEN = frozenset(("head", "style", "script", "template", "title", "noscript"))
_SPACES = re.compile(r"\s+")
_HIDDEN = re.compile(r"display\s*:\s*none", re.IGNORECASE)


class _Writer:
    """Paragraphs of lines of words, whitespace collapsed as a browser would."""

    def __init__(self):
        self.paragraphs: list[str] = []
        self.lines: list[str] = []
        self.words: list[str] = []

    def text(self, value: str | None) -> None:
        if value:
            self.words.append(value)

    def space(self) -> None:
        self.words.append(" ")

    def line_break(self) -> None:
        self.lines.append(self._line())

    def paragraph(self) -> None:
        self.line_break()
        text = "\n".join(line for line in self.lines if line)
        if text:
            self.paragraphs.append(text)
        self.lines = []

    def _line(self) -> str:
        line = _SPACES.sub(" ", "".join(self.words)).strip()
        self.words = []
        return line

    def result(self) -> str:
        self.paragraph()
        return "\n\n".join(self.paragraphs) + "\n"


def _hidden(element) -> bool:
    return element.tag in _UNSEEN or bool(_HIDDEN.search(element.get("style", "")))


def _link(element, out: _Writer) -> None:
    inner = _Writer()
    _children(element, inner)
    inner.paragraph()
    text = " ".join(" ".join(inner.paragraphs).split())
    href = (element.get("href") or "").strip()
    if not text:  # an image link: the text link beside it carries the address
        return
    out.text(text)
    if href and not href.startswith("#") and href not in (text, f"mailto:{text}"):
        out.text(f" ({href})")


def _children(element, out: _Writer) -> None:
    out.text(element.text)
    for child in element:
        _element(child, out)
        out.text(child.tail)


def _element(element, out: _Writer) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    if not tag or _hidden(element):  # comments, processing instructions, hidden parts
        return
    if tag == "br":
        out.line_break()
    elif tag == "img":
        out.text(element.get("alt"))
    elif tag == "a":
        _link(element, out)
    elif tag == "hr":
        out.paragraph()
        out.text("―" * 8)
        out.paragraph()
    elif tag in _BLOCKS:
        out.paragraph()
        if tag == "li":
            out.text("- ")
        _children(element, out)
        out.paragraph()
    else:
        _children(element, out)
        if tag in _CELLS:
            out.space()


def html_to_text(html: str) -> str:
    """The readable text of an HTML email, links with their addresses."""
    try:
        root = lxml_html.document_fromstring(html)
    except etree.ParserError:  # nothing but stray markup: no text
        return "\n"
    body = root.find("body")
    out = _Writer()
    _element(root if body is None else body, out)
    return out.result()
