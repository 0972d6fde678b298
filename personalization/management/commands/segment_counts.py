"""``manage.py segment_counts [--json]``: every segment's current number of members."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from personalization.models import Segment


class Command(BaseCommand):
    help = gettext_lazy("Print every segment's current member count.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--json",
            action="store_true",
            help=_("Print only a JSON object mapping each segment's slug to its member count."),
        )

    def handle(self, *args, **options):
        rows = list(
            Segment.objects.order_by("slug").values_list("slug", "member_count", "refreshed_at")
        )
        if options["json"]:
            self.stdout.write(json.dumps({slug: count for slug, count, _at in rows}))
            return
        width = max((len(slug) for slug, _count, _at in rows), default=0)
        for slug, count, refreshed_at in rows:
            when = refreshed_at.isoformat(timespec="seconds") if refreshed_at else _("never")
            self.stdout.write(
                _("%(slug)s  %(count)8d  (refreshed %(when)s)")
                % {"slug": slug.ljust(width), "count": count, "when": when}
            )
