"""CSV cells a spreadsheet cannot run: the defence against CSV (formula) injection.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some
spreadsheets skip before looking) is read by Excel, LibreOffice and Google Sheets as a
formula: a customer who names themselves ``=HYPERLINK("http://evil", "click")`` would plant a
link, or worse, in the marketer's spreadsheet. Every CSV the app writes goes through
:func:`csv_safe`, which does what OWASP recommends: such a cell gets a leading single quote,
and the spreadsheet shows it as the text it is.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

#: First characters that make a spreadsheet read a cell as a formula (OWASP's list).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """``value`` as a cell no spreadsheet runs: text starting with a formula trigger is
    prefixed with a single quote. Numbers, None and other text pass unchanged (a negative
    number is a number, not a formula)."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


class _Line:
    """A file-like object that hands back what the csv writer writes to it."""

    def write(self, text: str) -> str:
        return text


def csv_lines(*, header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV text, one line at a time (for ``StreamingHttpResponse``), every cell through
    :func:`csv_safe`, the header included."""
    writer = csv.writer(_Line())
    yield writer.writerow([csv_safe(cell) for cell in header])
    for row in rows:
        yield writer.writerow([csv_safe(cell) for cell in row])
