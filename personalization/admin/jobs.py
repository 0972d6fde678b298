"""Admin for the job outbox: what is waiting, what failed and why, and a retry for failures.

Jobs are written by the app's code and its workers; here they can be read, filtered and, when
failed, retried. Nothing else is editable: changing a job's arguments or state by hand would
bypass the claim that makes each job run once.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..jobs import jobs_retry
from ..models import Job
from .base import ReadOnlyAdminMixin


@admin.register(Job)
class JobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "pk",
        "task",
        "state",
        "attempts_display",
        "created_at",
        "run_after",
        "finished_at",
        "error_summary",
    )
    list_display_links = ("pk", "task")
    list_filter = ("state", "task")
    search_fields = ("=task", "=key")
    search_help_text = _("The task name or the idempotency key (exact).")
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    actions = ["retry"]
    fields = (
        "task",
        "arguments",
        "key",
        "state",
        "attempts",
        "max_attempts",
        "created_at",
        "run_after",
        "enqueued_at",
        "started_at",
        "claimed_until",
        "finished_at",
        "last_error",
    )
    readonly_fields = ("arguments",)

    @admin.display(description=_("attempts"), ordering="attempts")
    def attempts_display(self, job: Job) -> str:
        return f"{job.attempts} / {job.max_attempts}"

    @admin.display(description=_("last error"))
    def error_summary(self, job: Job) -> str:
        lines = job.last_error.strip().splitlines()
        return lines[-1][:120] if lines else ""

    @admin.display(description=_("arguments"))
    def arguments(self, job: Job) -> str:
        return format_html("<pre>{}</pre>", json.dumps(job.args, indent=2, sort_keys=True))

    @admin.action(description=_("Retry the selected failed jobs"), permissions=["retry"])
    def retry(self, request, queryset):
        count = jobs_retry(jobs=queryset)
        if not count:
            self.message_user(request, _("Only failed jobs can be retried."), level="warning")
            return
        self.message_user(
            request,
            ngettext(
                "%(count)d failed job will be tried again.",
                "%(count)d failed jobs will be tried again.",
                count,
            )
            % {"count": count},
        )

    def has_retry_permission(self, request) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
