"""Background jobs: an outbox in the database, run by Celery, swept up by Celery Beat.

Work that must happen because of a change (an email to send, a segment to refresh) is
recorded as a :class:`~personalization.models.Job` in the same transaction as the change, with
:func:`job_enqueue`. After the commit the job is handed to Celery, best effort: a broker that
is down or slow never fails or holds up the request, and never loses the work, because the
periodic :func:`jobs_sweep` hands over whatever the broker did not take and whatever a worker
left unfinished. A worker runs a job with :func:`job_run`, which claims it atomically, so a
job runs once however many times it is delivered.

Handlers are registered by name with :func:`job_handler`; see ``registry``.
"""

from .dispatch import JOB_RUN_TASK, jobs_dispatch
from .enqueue import job_enqueue
from .registry import (
    JobHandler,
    job_handler,
    job_handler_get,
    job_handler_names,
    job_handler_register,
    job_handler_unregister,
)
from .run import backoff, job_claim, job_run
from .sweep import SweepResult, jobs_purge, jobs_retry, jobs_sweep

__all__ = [
    "JOB_RUN_TASK",
    "JobHandler",
    "SweepResult",
    "backoff",
    "job_claim",
    "job_enqueue",
    "job_handler",
    "job_handler_get",
    "job_handler_names",
    "job_handler_register",
    "job_handler_unregister",
    "job_run",
    "jobs_dispatch",
    "jobs_purge",
    "jobs_retry",
    "jobs_sweep",
]
