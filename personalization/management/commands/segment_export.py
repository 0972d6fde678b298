"""``manage.py segment_export [SLUG]``: rule segment definitions as JSON, for version control."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from personalization.models import Segment, SegmentKind
from personalization.segments.definitions import segment_export


class Command(BaseCommand):
    help = gettext_lazy(
        "Print a rule segment's definition as JSON (segment_define reads it back), or, without "
        "a slug, a list of every rule segment's definition."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?", metavar="SLUG")

    def handle(self, *args, slug=None, **options):
        if slug is None:
            segments = Segment.objects.filter(kind=SegmentKind.RULE).order_by("slug")
            data = [segment_export(segment) for segment in segments]
        else:
            segment = Segment.objects.filter(slug=slug).first()
            if segment is None:
                raise CommandError(_("No segment %(slug)s.") % {"slug": slug})
            if segment.kind != SegmentKind.RULE:
                raise CommandError(
                    _("%(slug)s is a built-in lifecycle segment: its definition is settings.")
                    % {"slug": slug}
                )
            data = segment_export(segment)
        self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
