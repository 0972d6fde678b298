"""Hand jobs to Celery: best effort, bounded in time, never raising.

The job row is already committed, so failing to reach the broker loses nothing: the job stays
pending with no ``enqueued_at`` and the periodic sweep hands it over later. What must not
happen is the shop's request waiting on a broker that is down or slow, so the hand-over:

- uses its own connection with a short connect and socket timeout and no connection retries
  (kombu's defaults retry for seconds), and publishes with ``retry=False``;
- after a failure, skips the broker in this process for ``PAUSE_AFTER_FAILURE`` seconds, so a
  dead broker costs one timeout per process and pause, not one per request.

The message names the Celery task ``personalization.job_run`` and carries only the job id;
the task is looked up by name, so this module imports no task.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from celery import current_app
from django.utils import timezone

from ..conf import app_settings
from ..models import Job, JobState
from .run import job_run

logger = logging.getLogger(__name__)

JOB_RUN_TASK = "personalization.job_run"
PAUSE_AFTER_FAILURE = 30.0

_lock = threading.Lock()
_broker_unreachable_until: dict[str, float] = {}


def jobs_dispatch(*, job_ids: Sequence[int]) -> int:
    """Hand these (committed) jobs to Celery now. Returns how many the broker accepted.

    With ``CELERY_TASK_ALWAYS_EAGER`` the jobs run here and now instead, as a worker would
    run them.
    """
    if not job_ids:
        return 0
    app = current_app
    if app.conf.task_always_eager:
        for job_id in job_ids:
            job_run(job_id=job_id)
        return len(job_ids)

    url = app.conf.broker_write_url or app.conf.broker_url or ""
    with _lock:
        paused = time.monotonic() < _broker_unreachable_until.get(url, 0.0)
    if paused:
        return 0
    sent: list[int] = []
    try:
        with _connection(app) as connection:
            for job_id in job_ids:
                app.send_task(JOB_RUN_TASK, args=[job_id], connection=connection, retry=False)
                sent.append(job_id)
    except Exception as err:  # noqa: BLE001  (any broker failure: leave the job to the sweep)
        with _lock:
            _broker_unreachable_until[url] = time.monotonic() + PAUSE_AFTER_FAILURE
        logger.warning(
            "Could not hand %d job(s) to the Celery broker (%s); they stay pending for the "
            "sweep, and this process leaves the broker alone for %ds.",
            len(job_ids) - len(sent),
            err,
            PAUSE_AFTER_FAILURE,
        )
    if sent:
        Job.objects.filter(pk__in=sent, state=JobState.PENDING).update(enqueued_at=timezone.now())
    return len(sent)


def _connection(app):
    timeout = app_settings.JOB_DISPATCH_TIMEOUT_SECONDS
    connection = app.connection_for_write(
        transport_options={
            "max_retries": 0,  # kombu retries a failed connect for seconds by default
            "connect_retries_timeout": timeout,
            # Redis: each socket operation, the connect included.
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
        }
    )
    # py-amqp reads the connect timeout from the connection (Celery prefers its own setting).
    connection.connect_timeout = timeout
    return connection


def dispatch_pause_reset() -> None:
    """Forget that a broker was unreachable (for tests, and after fixing the broker URL)."""
    with _lock:
        _broker_unreachable_until.clear()
