"""``manage.py erase_profile EMAIL [--yes]``: erase a person at their request."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from personalization.exceptions import InvalidInput
from personalization.models import SuppressionSource
from personalization.privacy.erasure import (
    profile_erase,
    profile_erasure_preview,
    profile_for_email,
)

YES = ("y", "yes")


class Command(BaseCommand):
    help = gettext_lazy(
        "Erase the person with this email address (current or former): their profile, events, "
        "carts, consent records and preferences are deleted; their orders stay for revenue, "
        "detached from them; the address is kept only as a salted hash on the suppression "
        "list. Asks for confirmation unless --yes is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", metavar="EMAIL")
        parser.add_argument("--yes", action="store_true", help=_("Do not ask for confirmation."))

    def handle(self, *args, email, yes, **options):
        try:
            profile = profile_for_email(email=email)
            preview = profile_erasure_preview(profile=profile, source=SuppressionSource.COMMAND)
        except InvalidInput as err:
            raise CommandError(err.message) from err
        if not yes:
            self.stdout.write(_("This will delete, for good:"))
            for line in preview.removed():
                self.stdout.write(f"  - {line}")
            self.stdout.write(_("and keep:"))
            for line in preview.kept():
                self.stdout.write(f"  - {line}")
            try:
                answer = input(_("Erase %(email)s? Type 'yes' to go on: ") % {"email": email})
            except EOFError:  # no terminal to answer from (a script without --yes)
                answer = ""
            if answer.strip().lower() not in YES:
                raise CommandError(_("Nothing was erased."))
        try:
            report = profile_erase(profile=profile, source=SuppressionSource.COMMAND)
        except InvalidInput as err:
            raise CommandError(err.message) from err
        self.stdout.write(_("Erased. Deleted:"))
        for line in report.removed():
            self.stdout.write(f"  - {line}")
        self.stdout.write(_("Kept:"))
        for line in report.kept():
            self.stdout.write(f"  - {line}")
