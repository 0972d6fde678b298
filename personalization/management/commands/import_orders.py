"""``manage.py import_orders PATH``: backfill historical orders from a CSV file.

See docs/guide/backfill.md. Exit status: 0 when every row was imported or already present,
3 when some rows were bad (the other orders were imported), 1 when the file could not be
imported (missing, unreadable, no required columns), 2 for wrong arguments.
"""

from __future__ import annotations

import io
import sys
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from personalization.exceptions import InvalidInput
from personalization.importing import (
    BadRow,
    ImportFileError,
    ImportResult,
    encoding_get,
    orders_import,
    orders_import_path,
    timezone_get,
)

BAD_ROWS_EXIT_STATUS = 3
PROGRESS_EVERY = 2.0  # seconds


class Command(BaseCommand):
    help = gettext_lazy(
        "Import historical orders from a CSV file (one row per order, or per order line). "
        "Creates missing profiles and products; orders already present are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help=_("The CSV file, or - to read standard input."))
        parser.add_argument(
            "--encoding",
            default="utf-8-sig",
            help=_("The file's text encoding (default: UTF-8, with or without a BOM)."),
        )
        parser.add_argument(
            "--timezone",
            help=_(
                "IANA timezone (e.g. Europe/Berlin) for placed_at values without a UTC "
                "offset. Without it, such rows are bad."
            ),
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            help=_("Orders per transaction (default: PERSONALIZATION['BATCH_SIZE'])."),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=_("Check everything against the database, then roll it all back."),
        )

    def handle(self, *args, path, encoding, timezone, batch_size, dry_run, verbosity, **options):
        if batch_size is not None and batch_size < 1:
            raise CommandError(_("--batch-size must be at least 1."))
        try:
            tz = timezone_get(timezone) if timezone else None
        except InvalidInput as err:
            raise CommandError(err.message) from err
        self.verbosity = verbosity
        self._progress_at = time.monotonic()
        options = {
            "timezone": tz,
            "batch_size": batch_size,
            "dry_run": dry_run,
            "on_bad_row": self.bad_row,
            "on_progress": self.progress if verbosity > 0 else None,
        }
        try:
            if path == "-":
                encoding_get(encoding)
                stream = io.TextIOWrapper(sys.stdin.buffer, encoding=encoding, newline="")
                result = orders_import(stream=stream, **options)
            else:
                result = orders_import_path(path=path, encoding=encoding, **options)
        except ImportFileError as err:
            if err.result is not None and err.result.rows:
                self.summary(err.result)
            raise CommandError(err.message) from err
        self.summary(result)
        if result.rows_bad:
            raise CommandError(
                ngettext(
                    "%(count)d row was bad; its order was not imported (see above).",
                    "%(count)d rows were bad; their orders were not imported (see above).",
                    result.rows_bad,
                )
                % {"count": result.rows_bad},
                returncode=BAD_ROWS_EXIT_STATUS,
            )

    def bad_row(self, bad: BadRow) -> None:
        self.stderr.write(str(bad))

    def progress(self, result: ImportResult) -> None:
        now = time.monotonic()
        if now - self._progress_at < PROGRESS_EVERY:
            return
        self._progress_at = now
        self.stderr.write(
            _("%(rows)s rows · %(orders)s orders · %(rate)s orders/s")
            % {
                "rows": f"{result.rows:,}",
                "orders": f"{result.orders_seen:,}",
                "rate": f"{result.orders_per_second:,.0f}",
            }
        )

    def summary(self, result: ImportResult) -> None:
        if result.ignored_columns:
            self.stderr.write(
                _("Ignored unknown column(s): %(names)s.")
                % {"names": ", ".join(result.ignored_columns)}
            )
        if self.verbosity == 0:
            return
        rows = [
            (_("orders imported"), f"{result.orders_imported:,}"),
            (_("order lines imported"), f"{result.lines_imported:,}"),
            (_("orders already present"), f"{result.orders_present:,}"),
            (_("orders skipped as bad"), f"{result.orders_bad:,}"),
            (_("bad rows"), f"{result.rows_bad:,}"),
            (_("profiles created"), f"{result.profiles_created:,}"),
            (_("orders of erased addresses (no consent)"), f"{result.orders_suppressed:,}"),
            (_("products created"), f"{result.products_created:,}"),
            (_("traits recorded"), f"{result.traits_recorded:,}"),
            (_("rows read"), f"{result.rows:,}"),
            (_("elapsed"), _("%(seconds).1f s") % {"seconds": result.elapsed}),
            (_("rate"), _("%(rate)s orders/s") % {"rate": f"{result.orders_per_second:,.0f}"}),
        ]
        if result.dry_run:
            self.stdout.write(_("Dry run: everything was rolled back, nothing was imported."))
        width = max(len(label) for label, _value in rows)
        for label, value in rows:
            self.stdout.write(f"{label:<{width}}  {value:>12}")
