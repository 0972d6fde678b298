"""Celery tasks: thin wrappers over domain functions, safe to run more than once.

Work the app hands to Celery goes through the job outbox (``personalization.jobs``): the only
task a job needs is ``personalization.job_run``, which the outbox sends by name.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from .flows import flows_run
from .jobs import JOB_RUN_TASK, job_run, jobs_purge, jobs_sweep
from .messaging import campaign_plan, campaigns_due, messages_dispatch, messages_sweep
from .privacy.retention import events_expire
from .recommendations import recommendations_build
from .segments import segments_refresh
from .segments.selection import segments_select
from .stats import profile_stats_rebuild


@shared_task(name="personalization.profile_stats_rebuild")
def profile_stats_rebuild_task() -> int:
    """Recompute every profile's order stats; a nightly safety net behind the live updates."""
    return profile_stats_rebuild()


# No Celery retries or acks_late: the job row is the source of truth, and its claim and lease
# decide who runs it and when it is tried again.
# A database that is briefly locked or unreachable (SQLite under a concurrent writer, a
# PostgreSQL failover) is worth another try soon; the claim makes a repeated run harmless.
@shared_task(
    name=JOB_RUN_TASK,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=1,
    max_retries=5,
)
def job_run_task(job_id: int) -> str | None:
    """Run one job of the outbox, if it is still there to run."""
    job = job_run(job_id=job_id)
    return job.state if job is not None else None


@shared_task(name="personalization.jobs_sweep", ignore_result=True)
def jobs_sweep_task() -> int:
    """Hand over the jobs the broker never took or a worker never finished (every minute)."""
    return jobs_sweep().handed_over


@shared_task(name="personalization.jobs_purge", ignore_result=True)
def jobs_purge_task() -> int:
    """Delete jobs finished long ago (daily)."""
    return jobs_purge()


@shared_task(name="personalization.segments_refresh", ignore_result=True)
def segments_refresh_task(slugs: list[str] | None = None, exclude: list[str] | None = None) -> int:
    """Recompute segments for everyone (Beat: cart abandoners every 5 min, the rest every 15).

    Two at once (two Beats, a manual refresh) are safe: a segment is refreshed by one at a time.
    """
    results = segments_refresh(segments=segments_select(slugs=slugs, exclude=exclude))
    return sum(result.entered + result.exited for result in results)


@shared_task(name="personalization.events_expire", ignore_result=True)
def events_expire_task() -> int:
    """Delete events older than EVENT_RETENTION_DAYS (daily); returns how many."""
    return events_expire()


@shared_task(name="personalization.recommendations_build", ignore_result=True)
def recommendations_build_task() -> int | None:
    """Rebuild the item-to-item model (Beat: RECOMMENDATION_BUILD_SCHEDULE, daily by default).

    Two at once (two Beats, a manual build) are safe: the second skips. Returns the new
    build's id, None when skipped.
    """
    return recommendations_build().build_id


# Messaging. The ledger is the source of truth: a task lost with the broker is made up for by
# the next minute's Beat, and a repeated run plans or sends nothing twice.
DISPATCH_SECONDS = 50  # a pass per minute: hand over before the next Beat tick


@shared_task(name="personalization.campaigns_plan_due", ignore_result=True)
def campaigns_plan_due_task() -> int:
    """Plan every scheduled campaign whose time has come (every minute); messages planned."""
    planned = sum(campaign_plan(campaign_id=pk) for pk in campaigns_due())
    if planned:
        messages_dispatch_task.delay()
    return planned


@shared_task(name="personalization.flows_run", ignore_result=True)
def flows_run_task() -> int:
    """Enter, exit and plan every flow (every minute); messages planned."""
    planned = sum(report.planned for report in flows_run().values())
    if planned:
        messages_dispatch_task.delay()
    return planned


@shared_task(
    name="personalization.messages_dispatch",
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=1,
    max_retries=5,
)
def messages_dispatch_task() -> int:
    """Send due messages in batches for up to DISPATCH_SECONDS (every minute); how many sent."""
    return messages_dispatch(seconds=DISPATCH_SECONDS).sent


@shared_task(name="personalization.messages_sweep", ignore_result=True)
def messages_sweep_task() -> int:
    """Return unfinished claims, mark lost sends 'unknown', finish campaigns (every minute)."""
    report = messages_sweep()
    return report.returned + report.unknown
