"""``manage.py run_due``: run every periodic task that is due, once, here, and exit."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from personalization.schedules import schedules_run_due


class Command(BaseCommand):
    help = gettext_lazy(
        "Run every enabled periodic task that is due (by its schedule in the admin's Periodic "
        "tasks and its last run), once, synchronously, and exit: for deployments that run the "
        "app from cron (every minute) instead of Celery Beat, and for tests. Safe to overlap "
        "with itself or with Beat: each due task runs once."
    )

    def handle(self, *args, **options):
        runs = schedules_run_due(
            progress=lambda name: self.stderr.write(_("running %(name)s …") % {"name": name})
        )
        failed = [run for run in runs if run.error]
        for run in runs:
            if run.error:
                self.stdout.write(
                    _("%(name)s: failed: %(error)s") % {"name": run.name, "error": run.error}
                )
            else:
                self.stdout.write(
                    _("%(name)s: done (%(result)s)") % {"name": run.name, "result": run.result}
                )
        if not runs:
            self.stdout.write(_("Nothing was due."))
        if failed:
            raise CommandError(
                _("%(failed)d of %(total)d due tasks failed.")
                % {"failed": len(failed), "total": len(runs)}
            )
