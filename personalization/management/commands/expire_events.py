"""``manage.py expire_events``: delete events older than EVENT_RETENTION_DAYS now."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from personalization.conf import app_settings
from personalization.exceptions import InvalidInput
from personalization.privacy.retention import (
    EXPIRE_BATCH_SIZE,
    events_expire,
    events_expire_before,
)


class Command(BaseCommand):
    help = gettext_lazy(
        "Delete behavioural events older than PERSONALIZATION['EVENT_RETENTION_DAYS'], in "
        "batches. Beat does this daily; run it after lowering the setting."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=EXPIRE_BATCH_SIZE,
            metavar="N",
            help=_("Events deleted per statement (default: %(default)s)."),
        )

    def handle(self, *args, batch_size: int, **options):
        now = timezone.now()
        before = events_expire_before(now=now)
        if before is None:
            self.stdout.write(
                _("Event retention is off (EVENT_RETENTION_DAYS is None): nothing deleted.")
            )
            return
        started = time.monotonic()
        done = 0

        def progress(deleted: int) -> None:
            nonlocal done
            done += deleted
            # Progress on stderr, the summary on stdout (which scripts read).
            self.stderr.write(_("%(done)d events deleted so far…") % {"done": done})

        try:
            deleted = events_expire(now=now, batch_size=batch_size, progress=progress)
        except InvalidInput as err:
            raise CommandError(err.message) from err
        self.stdout.write(
            _(
                "Deleted %(count)d event(s) that occurred before %(before)s "
                "(older than %(days)d days) in %(seconds).1f s."
            )
            % {
                "count": deleted,
                "before": before.isoformat(timespec="seconds"),
                "days": app_settings.EVENT_RETENTION_DAYS,
                "seconds": time.monotonic() - started,
            }
        )
