"""Run one job: claim it atomically, call its handler, record the outcome.

The claim is one conditional ``UPDATE``: it succeeds only for a job that is due and pending,
or running with an expired lease, and it bumps ``attempts``. Two deliveries of the same job
(a duplicate message, the after-commit hand-over and the sweep, two workers) race on that
row; the database lets exactly one of them win, and the others find nothing to do. The
outcome is written only by the attempt that holds the claim (matched on ``attempts``), so a
worker that overran its lease cannot overwrite the result of the one that took over.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback

from django.db.models import F, Q
from django.utils import timezone

from ..conf import app_settings
from ..models import Job, JobState
from .registry import job_handler_get

logger = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(hours=1)
MAX_ERROR_LENGTH = 10_000


def job_claim(*, job_id: int, now: dt.datetime | None = None) -> Job | None:
    """Take the job for one attempt, or None when it is not ours to run (any more)."""
    now = now or timezone.now()
    task = Job.objects.filter(pk=job_id).values_list("task", flat=True).first()
    if task is None:
        return None
    handler = job_handler_get(task)
    lease = (handler.lease if handler else None) or dt.timedelta(
        seconds=app_settings.JOB_LEASE_SECONDS
    )
    claimable = Q(state=JobState.PENDING, run_after__lte=now) | Q(
        state=JobState.RUNNING, claimed_until__lt=now
    )
    claimed = Job.objects.filter(claimable, pk=job_id, attempts__lt=F("max_attempts")).update(
        state=JobState.RUNNING,
        attempts=F("attempts") + 1,
        claimed_until=now + lease,
        started_at=now,
    )
    if not claimed:
        return None
    return Job.objects.get(pk=job_id)


def job_run(*, job_id: int) -> Job | None:
    """Run the job if it is ours to run. Returns it as it ended, or None if it was not run.

    A failure the handler declares transient (``retry_for``) is retried after a backoff
    (picked up by the sweep when due) until ``max_attempts``; any other failure, an unknown
    handler, or the last attempt failing marks the job failed, with the error kept.
    """
    job = job_claim(job_id=job_id)
    if job is None:
        return None
    handler = job_handler_get(job.task)
    if handler is None:
        return _finish_failed(job, f"No job handler is registered as {job.task!r} here.")
    try:
        handler.function(**job.args)
    except Exception as err:  # noqa: BLE001  (recorded on the job, never lost in a log)
        error = _describe(err)
        if isinstance(err, handler.retry_for) and job.attempts < job.max_attempts:
            return _retry_later(job, error)
        return _finish_failed(job, error)
    now = timezone.now()
    if not _held(job).update(
        state=JobState.DONE, claimed_until=None, finished_at=now, last_error=""
    ):
        logger.warning("Job %s finished after its lease passed to another attempt.", job.pk)
    job.state, job.claimed_until, job.finished_at, job.last_error = JobState.DONE, None, now, ""
    return job


def backoff(attempts: int) -> dt.timedelta:
    """Wait after the ``attempts``-th failed attempt: the base doubled each time, at most 1 h."""
    base = dt.timedelta(seconds=app_settings.JOB_RETRY_BACKOFF_SECONDS)
    return min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


def _held(job: Job):
    return Job.objects.filter(pk=job.pk, state=JobState.RUNNING, attempts=job.attempts)


def _retry_later(job: Job, error: str) -> Job:
    run_after = timezone.now() + backoff(job.attempts)
    logger.warning(
        "Job %s (%s) failed attempt %d of %d; retrying after %s: %s",
        job.pk,
        job.task,
        job.attempts,
        job.max_attempts,
        run_after.isoformat(),
        error.splitlines()[-1] if error else "",
    )
    _held(job).update(
        state=JobState.PENDING,
        claimed_until=None,
        enqueued_at=None,  # due for the sweep's next hand-over once run_after passes
        run_after=run_after,
        last_error=error,
    )
    job.state, job.claimed_until, job.enqueued_at = JobState.PENDING, None, None
    job.run_after, job.last_error = run_after, error
    return job


def _finish_failed(job: Job, error: str) -> Job:
    logger.error("Job %s (%s) failed for good: %s", job.pk, job.task, error)
    now = timezone.now()
    _held(job).update(state=JobState.FAILED, claimed_until=None, finished_at=now, last_error=error)
    job.state, job.claimed_until, job.finished_at, job.last_error = (
        JobState.FAILED,
        None,
        now,
        error,
    )
    return job


def _describe(err: BaseException) -> str:
    text = "".join(traceback.format_exception(err, limit=-8))
    return text[-MAX_ERROR_LENGTH:]
