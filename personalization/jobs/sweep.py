"""The periodic sweep (Celery Beat, every minute) and the other set-based job maintenance."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from ..conf import app_settings
from ..models import Job, JobState
from .dispatch import jobs_dispatch

logger = logging.getLogger(__name__)

SWEEP_LIMIT = 5000


@dataclass(frozen=True)
class SweepResult:
    handed_over: int  # jobs given to the broker (again)
    gave_up: int  # jobs whose worker died on their last attempt, now failed


def jobs_sweep(*, now: dt.datetime | None = None, limit: int = SWEEP_LIMIT) -> SweepResult:
    """Hand over what the broker never took or a worker never finished.

    - pending and due, never handed over (the broker was down at commit; a retry now due);
    - pending, handed over longer than ``JOB_REDELIVER_AFTER_SECONDS`` ago and never started
      (the broker lost the message);
    - running past its lease (the worker died): handed over again, or marked failed when
      that was its last attempt.

    Handing a job over twice is harmless: only one attempt can claim it. At most ``limit``
    jobs a run, oldest due first; the next run takes the rest.
    """
    now = now or timezone.now()
    redeliver_before = now - dt.timedelta(seconds=app_settings.JOB_REDELIVER_AFTER_SECONDS)
    gave_up = (
        Job.objects.lease_expired(now)
        .filter(attempts__gte=F("max_attempts"))
        .update(
            state=JobState.FAILED,
            claimed_until=None,
            finished_at=now,
            last_error="The worker stopped during the last attempt (its lease expired).",
        )
    )
    candidates = Job.objects.filter(
        Q(state=JobState.PENDING, run_after__lte=now)
        & (Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=redeliver_before))
        | Q(state=JobState.RUNNING, claimed_until__lt=now)
    ).order_by("run_after", "pk")
    with transaction.atomic():
        # skip_locked: a second sweep running at the same moment takes other rows.
        ids = list(
            candidates.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit]
        )
        if ids:
            # Marked now, so the next sweep waits JOB_REDELIVER_AFTER_SECONDS before repeating
            # itself; cleared again when the broker refuses them (below).
            Job.objects.filter(pk__in=ids, state=JobState.PENDING).update(enqueued_at=now)
    handed_over = jobs_dispatch(job_ids=ids) if ids else 0
    if handed_over < len(ids):
        Job.objects.filter(pk__in=ids[handed_over:], state=JobState.PENDING).update(
            enqueued_at=None
        )
    if ids or gave_up:
        logger.info("Job sweep: handed %d job(s) over, %d gave up.", handed_over, gave_up)
    return SweepResult(handed_over=handed_over, gave_up=gave_up)


def jobs_retry(*, jobs: QuerySet[Job]) -> int:
    """Give failed jobs a fresh set of attempts, now (the admin's "retry" action)."""
    if not isinstance(jobs, QuerySet) or jobs.model is not Job:
        raise TypeError("jobs_retry(jobs=...) is a QuerySet of Job.")
    job_ids = list(jobs.filter(state=JobState.FAILED).values_list("pk", flat=True))
    if not job_ids:
        return 0
    with transaction.atomic():
        count = Job.objects.filter(pk__in=job_ids, state=JobState.FAILED).update(
            state=JobState.PENDING,
            attempts=0,
            run_after=timezone.now(),
            enqueued_at=None,
            finished_at=None,
        )
        transaction.on_commit(lambda: jobs_dispatch(job_ids=job_ids), robust=True)
    return count


def jobs_purge(*, now: dt.datetime | None = None) -> int:
    """Delete jobs done more than ``JOB_KEEP_DONE_DAYS`` ago. Failed jobs stay for a human."""
    now = now or timezone.now()
    before = now - dt.timedelta(days=app_settings.JOB_KEEP_DONE_DAYS)
    deleted, _ = Job.objects.filter(state=JobState.DONE, finished_at__lt=before).delete()
    return deleted
