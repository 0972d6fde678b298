"""Record a job in the caller's transaction; hand it to Celery once that commits."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..conf import app_settings
from ..exceptions import InvalidInput
from ..models import Job
from ..validation import aware_datetime
from .dispatch import jobs_dispatch
from .registry import job_handler_get

MAX_KEY_LENGTH = 200
MAX_ATTEMPTS_LIMIT = 100  # the column holds more; nothing sensible needs more tries


def job_enqueue(
    *,
    task: str,
    args: dict[str, Any] | None = None,
    key: str | None = None,
    run_after: dt.datetime | None = None,
    max_attempts: int | None = None,
) -> Job:
    """Record a job and hand it to Celery after the surrounding transaction commits.

    Call it inside the transaction of the change that needs the work, so both commit or
    neither does. The hand-over is best effort and bounded (``JOB_DISPATCH_TIMEOUT_SECONDS``):
    with the broker down the job simply waits, pending, for the periodic sweep. A rolled-back
    transaction leaves no job behind and hands nothing over.

    ``key`` makes the call idempotent: when a job with that key already exists, it is returned
    and nothing new is recorded or handed over.
    """
    if not isinstance(task, str):
        raise TypeError("job_enqueue(task=...) is the name of a registered job handler (a str).")
    handler = job_handler_get(task)
    if handler is None:
        raise InvalidInput(
            _("No job handler is registered as %(task)r.") % {"task": task}, field="task"
        )
    args = {} if args is None else args
    if not isinstance(args, dict):
        raise TypeError("job_enqueue(args=...) is a dict of the handler's keyword arguments.")
    _check_json(args, field="args")
    if key is not None:
        if not isinstance(key, str):
            raise TypeError("job_enqueue(key=...) is a str.")
        if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            raise InvalidInput(
                _("A job key is 1 to %(max)d characters.") % {"max": MAX_KEY_LENGTH},
                field="key",
            )
    now = timezone.now()
    run_after = aware_datetime(run_after, field="run_after") if run_after is not None else now
    if max_attempts is None:
        max_attempts = handler.max_attempts or app_settings.JOB_MAX_ATTEMPTS
    elif isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
        raise TypeError("job_enqueue(max_attempts=...) is an int.")
    if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
        raise InvalidInput(
            _("Between 1 and %(max)d attempts.") % {"max": MAX_ATTEMPTS_LIMIT},
            field="max_attempts",
        )

    job = Job(
        task=task,
        args=args,
        key=key,
        run_after=run_after,
        max_attempts=max_attempts,
        created_at=now,
    )
    if key is None:
        job.save(force_insert=True)
    else:
        try:
            # A savepoint, so that losing to an equal key leaves the caller's transaction usable.
            with transaction.atomic():
                job.save(force_insert=True)
        except IntegrityError:
            existing = Job.objects.filter(key=key).first()
            if existing is None:
                raise
            return existing
    job_id = job.pk
    # robust: the caller's change has committed; the sweep covers a hand-over that fails.
    transaction.on_commit(lambda: jobs_dispatch(job_ids=[job_id]), robust=True)
    return job


def _check_json(value: Any, *, field: str, depth: int = 0) -> None:
    """Only what JSON (and PostgreSQL's jsonb) stores and reads back as it was given."""
    if depth > 32:
        raise InvalidInput(_("Job arguments nest too deeply."), field=field)
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(_("Job arguments cannot contain NUL characters."), field=field)
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(_("Job arguments cannot be NaN or infinite."), field=field)
        return
    if isinstance(value, list):
        for item in value:
            _check_json(item, field=field, depth=depth + 1)
        return
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                raise InvalidInput(_("Job argument names must be strings."), field=field)
            _check_json(name, field=field, depth=depth + 1)
            _check_json(item, field=field, depth=depth + 1)
        return
    raise InvalidInput(
        _("Job arguments are JSON values (str, int, float, bool, None, list, dict), not %(type)s.")
        % {"type": type(value).__name__},
        field=field,
    )
