"""Backfill historical orders from a CSV file: profiles, catalogue mirror, orders, lines, stats.

The file is read as a stream and written one batch of ``BATCH_SIZE`` orders at a time, so
memory stays flat whatever its size. A reader thread checks the next batch while one is
written (:mod:`.reading`). Batches are written set-based: on PostgreSQL by ``COPY`` into
temporary tables and ``INSERT … SELECT`` from there (:mod:`.postgres`), elsewhere through the
ORM (:mod:`.orm`). The order statistics of the profiles touched are recomputed set-based once
the orders are in (and whenever many profiles are waiting), for profiles whose orders were
already present too: running the same file again repairs them after an interruption.

Columns (a header row is required; names are case-insensitive, in any order; unknown columns
are ignored and listed in :attr:`ImportResult.ignored_columns`):

required  ``order_id, email, placed_at, total, currency``
optional  ``status, first_name, last_name`` (per order),
          ``product_id, sku, title, category, quantity, unit_price`` (per line) and
          ``trait.<key>`` (per order: a trait of the customer, as text, recorded as the
          shop's; an empty cell records nothing; see :mod:`.traits`)

A row naming a product (``product_id`` or ``sku``) is one order line. The rows of one order
must be adjacent and repeat the same order fields. An order with a bad row is not imported at
all; each bad row is reported with its line number. See ``docs/guide/backfill.md``.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import time
import zoneinfo
from collections.abc import Callable
from typing import IO, Any

from django.db import connection, reset_queries, transaction
from django.utils.translation import gettext as _

from ..conf import app_settings
from ..exceptions import ImportFileError, InvalidInput
from .orm import OrmWriter
from .postgres import PostgresWriter
from .reading import (
    COLUMNS,
    LINE_COLUMNS,
    ORDER_COLUMNS,
    REQUIRED_COLUMNS,
    Reader,
    encoding_check,
    in_background,
)
from .results import BadRow, ImportResult
from .stats import profile_stats_recompute

__all__ = [
    "COLUMNS",
    "LINE_COLUMNS",
    "ORDER_COLUMNS",
    "REQUIRED_COLUMNS",
    "BadRow",
    "ImportFileError",
    "ImportResult",
    "encoding_get",
    "orders_import",
    "orders_import_path",
    "profile_stats_recompute",
    "timezone_get",
]


def orders_import(
    *,
    stream: IO[str],
    timezone: dt.tzinfo | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    on_bad_row: Callable[[BadRow], None] | None = None,
    on_progress: Callable[[ImportResult], None] | None = None,
) -> ImportResult:
    """Import the orders in a CSV text stream (opened with ``newline=""``).

    ``timezone`` is given to dates and times without a UTC offset; without it, such rows are
    bad. ``on_bad_row`` is called for every row left out, ``on_progress`` after each batch.
    With ``dry_run`` everything is checked and written, then rolled back at the end.
    Raises :class:`ImportFileError` when the file itself is unusable.
    """
    result = ImportResult(dry_run=dry_run)
    started = time.monotonic()
    report = on_bad_row or (lambda bad: None)
    reader = Reader(stream, timezone=timezone, batch_size=batch_size or app_settings.BATCH_SIZE)
    writer = (PostgresWriter if connection.vendor == "postgresql" else OrmWriter)(report=report)
    try:
        with transaction.atomic() if dry_run else contextlib.nullcontext():
            result.ignored_columns = reader.header_read()
            try:
                for batch in in_background(reader.batches):
                    result.rows += batch.rows
                    result.orders_bad += batch.orders_bad
                    result.rows_bad += len(batch.bad)
                    for bad in batch.bad:
                        report(bad)
                    writer.write(batch.orders, result)
                    reset_queries()  # with DEBUG on, Django would keep every query's text
                    result.elapsed = time.monotonic() - started
                    if on_progress:
                        on_progress(result)
            except ImportFileError:
                writer.stats_flush()  # for the batches before the problem
                raise
            writer.stats_flush()
            if dry_run:
                transaction.set_rollback(True)
    except ImportFileError as err:
        err.result = result
        raise
    finally:
        writer.close()
        result.elapsed = time.monotonic() - started
    return result


def orders_import_path(*, path: str, encoding: str = "utf-8-sig", **options: Any) -> ImportResult:
    """Import a CSV file; see :func:`orders_import` for the options.

    The whole file is first checked to be text in ``encoding``, so a wrong encoding is
    reported before anything is written.
    """
    encoding_get(encoding)
    try:
        encoding_check(path, encoding)
        stream = open(path, encoding=encoding, newline="")  # closed by the with below
    except FileNotFoundError as err:
        raise ImportFileError(_("There is no file %(path)s.") % {"path": path}) from err
    except OSError as err:
        raise ImportFileError(
            _("%(path)s cannot be read: %(error)s.") % {"path": path, "error": err.strerror}
        ) from err
    with stream:
        return orders_import(stream=stream, **options)


def encoding_get(name: str) -> codecs.CodecInfo:
    """The text encoding called ``name``; ImportFileError when Python knows none."""
    try:
        return codecs.lookup(name)
    except LookupError as err:
        raise ImportFileError(
            _("%(encoding)s is not an encoding Python knows (try utf-8 or cp1252).")
            % {"encoding": name}
        ) from err


def timezone_get(name: str) -> dt.tzinfo:
    """The IANA timezone called ``name``; InvalidInput when there is none."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise InvalidInput(
            _("%(value)r is not an IANA timezone name such as Europe/Berlin.") % {"value": name},
            field="timezone",
        ) from err
