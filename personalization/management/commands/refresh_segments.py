"""``manage.py refresh_segments [--segment SLUG ...]``: recompute segments for everyone now."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from personalization.exceptions import InvalidInput
from personalization.segments import RefreshResult, segments_refresh
from personalization.segments.selection import segments_select


class Command(BaseCommand):
    help = gettext_lazy(
        "Recompute segment membership for everyone and record who entered and who left. "
        "Beat does this on a schedule; run it after changing a threshold or importing history."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--segment",
            action="append",
            dest="slugs",
            metavar="SLUG",
            help=_("Refresh only this segment (repeat for several). Default: all."),
        )

    def handle(self, *args, slugs=None, **options):
        try:
            segments = segments_select(slugs=slugs)
        except InvalidInput as err:
            raise CommandError(err.message) from err
        total = segments.count()
        started = time.monotonic()
        done = 0

        def progress(result: RefreshResult) -> None:
            nonlocal done
            done += 1
            # Progress on stderr, the summary on stdout (which scripts read).
            self.stderr.write(
                _("[%(done)d/%(total)d] %(slug)s: %(members)d members (+%(entered)d, -%(exited)d)")
                % {
                    "done": done,
                    "total": total,
                    "slug": result.segment,
                    "members": result.members,
                    "entered": result.entered,
                    "exited": result.exited,
                }
            )

        results = segments_refresh(segments=segments, progress=progress)
        self.stdout.write(
            _(
                "Refreshed %(count)d segment(s) in %(seconds).1f s: "
                "%(entered)d entered, %(exited)d left."
            )
            % {
                "count": len(results),
                "seconds": time.monotonic() - started,
                "entered": sum(result.entered for result in results),
                "exited": sum(result.exited for result in results),
            }
        )
