"""``manage.py segment_define SLUG --file rule.json [--name ...]``: a rule segment from a file."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from personalization.exceptions import InvalidInput
from personalization.segments.definitions import rule_segment_define
from personalization.segments.jobs import segments_refresh_enqueue


class Command(BaseCommand):
    help = gettext_lazy(
        "Create or update a rule segment from a JSON file: a rule tree, or a definition as "
        "segment_export writes it. Validated as the admin validates; its membership is "
        "refreshed by a job afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", metavar="SLUG")
        parser.add_argument(
            "--file", required=True, help=_("The JSON file ('-' reads standard input).")
        )
        parser.add_argument("--name", help=_("The segment's name (default: kept, or the slug)."))
        parser.add_argument("--description", help=_("Who is in it, in the marketer's words."))

    def handle(self, *args, slug, file, name=None, description=None, **options):
        document = self._read(file)
        rule = document
        if isinstance(document, dict) and "rule" in document:
            if document.get("slug", slug) != slug:
                raise CommandError(
                    _("The file defines the segment %(theirs)r, not %(slug)r.")
                    % {"theirs": document.get("slug"), "slug": slug}
                )
            rule = document["rule"]
            name = name if name is not None else document.get("name")
            if description is None:
                description = document.get("description")
        try:
            segment, created = rule_segment_define(
                slug=slug, rule=rule, name=name, description=description
            )
        except InvalidInput as err:
            raise CommandError(str(err)) from err
        segments_refresh_enqueue(slugs=[segment.slug])
        message = _("Created %(slug)s.") if created else _("Updated %(slug)s.")
        self.stdout.write(
            (message + " " + _("Its members are being refreshed.")) % {"slug": segment.slug}
        )

    def _read(self, file: str):
        try:
            if file == "-":
                return json.load(sys.stdin)
            with open(file, encoding="utf-8") as handle:
                return json.load(handle)
        except OSError as err:
            raise CommandError(
                _("Cannot read %(file)s: %(error)s") % {"file": file, "error": err.strerror}
            ) from err
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CommandError(
                _("%(file)s is not valid JSON: %(error)s") % {"file": file, "error": err}
            ) from err
