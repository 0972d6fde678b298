"""manage.py generate_shop_data: fill the database with a realistic synthetic shop."""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from personalization.exceptions import InvalidInput
from personalization.synthetic import Progress, shop_data_generate

PROGRESS_EVERY_SECONDS = 2.0
PHASES = {
    "catalogue": gettext_lazy("catalogue"),
    "profiles": gettext_lazy("profiles"),
    "statistics": gettext_lazy("statistics"),
}


def _until(value: str) -> dt.datetime:
    """A date (midnight UTC) or an ISO 8601 date and time (UTC when it has no offset)."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError as err:
        raise CommandError(
            _("--until: %(value)r is not an ISO 8601 date or date and time.") % {"value": value}
        ) from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = _(
        "Generate a synthetic shop (profiles, consent, catalogue, orders, carts, events) with "
        "a fixed seed. The same seed, options and --until give the same data."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add = parser.add_argument
        add(
            "--profiles",
            type=int,
            required=True,
            help=_("Number of profiles (customers and anonymous visitors)."),
        )
        add(
            "--seed",
            type=int,
            default=0,
            help=_(
                "Random seed (default 0). Each seed makes different people and "
                "ids, so several seeds can share a database."
            ),
        )
        add("--products", type=int, default=500, help=_("Products to generate (default 500)."))
        add(
            "--months",
            type=int,
            default=18,
            help=_("Months of order history before --until (default 18)."),
        )
        add(
            "--until",
            type=_until,
            default=None,
            help=_(
                "When the history ends: a date or ISO date and time (default: "
                "today 00:00 UTC). Fix it to reproduce data on another day."
            ),
        )
        add(
            "--existing-catalogue",
            action="store_true",
            help=_(
                "Buy from the products already in the catalogue mirror instead "
                "of generating products."
            ),
        )
        add(
            "--orders-per-profile",
            type=float,
            default=5.0,
            help=_("Average orders per profile (default 5)."),
        )
        add(
            "--event-days",
            type=int,
            default=90,
            help=_("Days of browse events to keep before --until (default 90)."),
        )
        add(
            "--currency",
            default=None,
            help=_(
                "Currency of generated prices and orders (default: the "
                "DEFAULT_CURRENCY setting, else EUR)."
            ),
        )
        add(
            "--batch-size",
            type=int,
            default=None,
            help=_(
                "Rows per INSERT (default: the BATCH_SIZE setting); profiles "
                "are written a quarter of that per transaction."
            ),
        )
        add(
            "--workers",
            type=int,
            default=1,
            help=_(
                "Processes writing at once (default 1; more needs PostgreSQL). "
                "With 1, primary keys are reproducible too."
            ),
        )

    def handle(self, *args, **options) -> None:
        self._verbosity = options["verbosity"]
        self._last_report = 0.0
        until = options["until"]
        if isinstance(until, str):  # call_command() passes options as given, unconverted
            until = _until(until)
        try:
            report = shop_data_generate(
                profiles=options["profiles"],
                seed=options["seed"],
                products=options["products"],
                months=options["months"],
                until=until,
                existing_catalogue=options["existing_catalogue"],
                orders_per_profile=options["orders_per_profile"],
                event_days=options["event_days"],
                currency=options["currency"],
                batch_size=options["batch_size"],
                workers=options["workers"],
                progress=self._progress if self._verbosity > 0 else None,
            )
        except InvalidInput as err:
            raise CommandError(str(err)) from err
        except IntegrityError as err:
            raise CommandError(
                _(
                    "The data clashes with rows already in the database (%(error)s). Nothing was "
                    "written; use another --seed or an empty database."
                )
                % {"error": err}
            ) from err
        if self._verbosity == 0:
            return
        rate = report.rows / report.seconds if report.seconds else 0
        self.stdout.write(
            _(
                "Generated %(rows)s rows with seed %(seed)d up to %(until)s in %(seconds).1f s "
                "(%(rate)s rows/s):"
            )
            % {
                "rows": f"{report.rows:,}",
                "seed": report.seed,
                "until": report.until.isoformat(),
                "seconds": report.seconds,
                "rate": f"{rate:,.0f}",
            }
        )
        for name, count in report.counts.items():
            self.stdout.write(f"  {name:<16} {count:>12,}")

    def _progress(self, progress: Progress) -> None:
        now = time.monotonic()
        finished = progress.done == progress.total
        if not finished and now - self._last_report < PROGRESS_EVERY_SECONDS:
            return
        self._last_report = now
        rate = progress.rows / progress.seconds if progress.seconds else 0
        line = _(
            "%(phase)-10s %(done)s/%(total)s  %(rows)s rows  %(rate)s rows/s  %(seconds)ds"
        ) % {
            "phase": PHASES.get(progress.phase, progress.phase),
            "done": f"{progress.done:,}",
            "total": f"{progress.total:,}",
            "rows": f"{progress.rows:,}",
            "rate": f"{rate:,.0f}",
            "seconds": progress.seconds,
        }
        if progress.phase == "profiles" and 0 < progress.done < progress.total:
            remaining = progress.seconds * (progress.total - progress.done) / progress.done
            line += "  " + _("about %(minutes)d min left") % {"minutes": round(remaining / 60)}
        self.stderr.write(line)
