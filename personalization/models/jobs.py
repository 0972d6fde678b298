"""The outbox of background jobs: work recorded with the change that needs it, run by Celery.

The database, not the broker, is the source of truth for work to do (see
``personalization.jobs``). A row never holds code: ``task`` names a handler registered in
Python, ``args`` are its keyword arguments as JSON.
"""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class JobState(models.TextChoices):
    PENDING = "pending", _("pending")
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class JobQuerySet(models.QuerySet):
    def due(self, now: dt.datetime):
        """Pending jobs whose time has come."""
        return self.filter(state=JobState.PENDING, run_after__lte=now)

    def never_handed_over(self, now: dt.datetime):
        """Due jobs the broker never accepted (down at commit time, or a retry now due)."""
        return self.due(now).filter(enqueued_at__isnull=True)

    def not_taken(self, now: dt.datetime, *, since: dt.datetime):
        """Due jobs handed to the broker before ``since`` that no worker has started."""
        return self.due(now).filter(enqueued_at__lt=since)

    def lease_expired(self, now: dt.datetime):
        """Running jobs whose worker stopped holding them (it died, or ran past its lease)."""
        return self.filter(state=JobState.RUNNING, claimed_until__lt=now)


class Job(models.Model):
    """One piece of background work, run at least once by a Celery worker."""

    task = models.CharField(
        _("task"),
        max_length=200,
        help_text=_(
            "Name of the registered handler that does the work, "
            "e.g. personalization.consent_confirmation_send."
        ),
    )
    args = models.JSONField(
        _("arguments"),
        default=dict,
        blank=True,
        help_text=_("Keyword arguments the handler is called with, as JSON."),
    )
    # NULL rather than "" for "no key": NULLs never collide in the unique constraint.
    key = models.CharField(  # noqa: DJ001
        _("idempotency key"),
        max_length=200,
        null=True,
        blank=True,
        help_text=_(
            "When set, recording a second job with the same key returns the first one instead."
        ),
    )
    state = models.CharField(
        _("state"),
        max_length=16,
        choices=JobState.choices,
        default=JobState.PENDING,
        help_text=_(
            "Pending: waiting for a worker. Running: a worker holds it. Done: finished. "
            "Failed: gave up after its last attempt (retry it from the list)."
        ),
    )
    attempts = models.PositiveSmallIntegerField(
        _("attempts"), default=0, help_text=_("How many times a worker has started it.")
    )
    max_attempts = models.PositiveSmallIntegerField(
        _("maximum attempts"), help_text=_("It is marked failed after this many attempts.")
    )
    run_after = models.DateTimeField(
        _("run after"),
        default=timezone.now,
        help_text=_("Not started before this time (later for a retry, after a backoff)."),
    )
    enqueued_at = models.DateTimeField(
        _("handed to the broker at"),
        null=True,
        blank=True,
        help_text=_(
            "When it was last handed to Celery. Empty while the broker has not accepted it: "
            "the periodic sweep hands it over."
        ),
    )
    claimed_until = models.DateTimeField(
        _("leased until"),
        null=True,
        blank=True,
        help_text=_(
            "While running: the worker holds it until then. After that the sweep assumes the "
            "worker died and hands the job to another."
        ),
    )
    last_error = models.TextField(
        _("last error"), blank=True, help_text=_("What went wrong in the latest failed attempt.")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(
        _("started at"), null=True, blank=True, help_text=_("When the latest attempt started.")
    )
    finished_at = models.DateTimeField(
        _("finished at"), null=True, blank=True, help_text=_("When it was done or gave up.")
    )

    objects = JobQuerySet.as_manager()

    class Meta:
        verbose_name = _("background job")
        verbose_name_plural = _("background jobs")
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The sweep's two questions, each over a small partial index.
            models.Index(
                fields=["run_after"], condition=Q(state=JobState.PENDING), name="pzn_job_pending"
            ),
            models.Index(
                fields=["claimed_until"],
                condition=Q(state=JobState.RUNNING),
                name="pzn_job_running",
            ),
            models.Index(
                fields=["finished_at"], condition=Q(state=JobState.DONE), name="pzn_job_done"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["key"], name="pzn_job_key_unique"),
            models.CheckConstraint(condition=~Q(task=""), name="pzn_job_task_not_empty"),
            models.CheckConstraint(
                condition=Q(state__in=JobState.values), name="pzn_job_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(max_attempts__gte=1) & Q(attempts__lte=F("max_attempts")),
                name="pzn_job_attempts_bounded",
            ),
            # A running job is always leased, and only a running one.
            models.CheckConstraint(
                condition=Q(state=JobState.RUNNING, claimed_until__isnull=False)
                | (~Q(state=JobState.RUNNING) & Q(claimed_until__isnull=True)),
                name="pzn_job_lease_iff_running",
            ),
            models.CheckConstraint(
                condition=Q(state__in=[JobState.DONE, JobState.FAILED], finished_at__isnull=False)
                | (~Q(state__in=[JobState.DONE, JobState.FAILED]) & Q(finished_at__isnull=True)),
                name="pzn_job_finished_iff_over",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task} #{self.pk} ({self.get_state_display()})"
