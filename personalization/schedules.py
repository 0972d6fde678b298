"""The app's periodic tasks, registered in django-celery-beat after migrate.

Registering only ever adds what is missing. Once a periodic task exists it belongs to the
people running the shop: a crontab a marketer changed, a task they disabled, a timezone they
picked are all left exactly as they are by every later ``migrate``. (Delete the entry and run
``migrate`` to get the app's default back; disable it to switch it off.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps as global_apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import F, Q
from django.utils import timezone

# name → (task, crontab fields, or the name of the setting that holds them). Times are in
# CELERY_TIMEZONE, else TIME_ZONE.
_DAILY = {"day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}
SCHEDULES = {
    "personalization: rebuild profile stats": (
        "personalization.profile_stats_rebuild",
        {"minute": "17", "hour": "3", **_DAILY},
    ),
    "personalization: sweep background jobs": (
        "personalization.jobs_sweep",
        {"minute": "*", "hour": "*", **_DAILY},
    ),
    "personalization: purge finished jobs": (
        "personalization.jobs_purge",
        {"minute": "47", "hour": "4", **_DAILY},
    ),
    # Raw events older than EVENT_RETENTION_DAYS are deleted (data minimisation).
    "personalization: expire old events": (
        "personalization.events_expire",
        {"minute": "37", "hour": "2", **_DAILY},
    ),
    # A cart turns abandoned an hour after its last change: picked up within five minutes.
    "personalization: refresh cart abandoners": (
        "personalization.segments_refresh",
        {"minute": "*/5", "hour": "*", **_DAILY},
    ),
    # Time moves customers in and out of the others (a customer lapses after 180 days).
    "personalization: refresh segments": (
        "personalization.segments_refresh",
        {"minute": "*/15", "hour": "*", **_DAILY},
    ),
    # Messaging: scheduled campaigns planned when due, due messages sent, what no worker
    # finished swept up. Every minute each; two Beats at once still send each message once.
    "personalization: plan due campaigns": (
        "personalization.campaigns_plan_due",
        {"minute": "*", "hour": "*", **_DAILY},
    ),
    # Flows: new entries from each trigger, exits, due steps planned (every minute).
    "personalization: run flows": (
        "personalization.flows_run",
        {"minute": "*", "hour": "*", **_DAILY},
    ),
    "personalization: send due messages": (
        "personalization.messages_dispatch",
        {"minute": "*", "hour": "*", **_DAILY},
    ),
    "personalization: sweep the message ledger": (
        "personalization.messages_sweep",
        {"minute": "*", "hour": "*", **_DAILY},
    ),
    # The item-to-item model; the crontab comes from RECOMMENDATION_BUILD_SCHEDULE (None: none).
    "personalization: build recommendations": (
        "personalization.recommendations_build",
        "RECOMMENDATION_BUILD_SCHEDULE",
    ),
}
# The keyword arguments a schedule's task is called with, where it takes any.
SCHEDULE_KWARGS = {
    "personalization: refresh cart abandoners": {"slugs": ["cart_abandoner"]},
    "personalization: refresh segments": {"exclude": ["cart_abandoner"]},
}


def schedule_timezone() -> str:
    """The timezone the app's crontabs are meant in: Celery's, else Django's, else UTC."""
    return getattr(settings, "CELERY_TIMEZONE", None) or settings.TIME_ZONE or "UTC"


def schedule_crontab(setting: str) -> dict[str, str] | None:
    """The crontab fields a setting holds, the ones it leaves out as "*"; None: no schedule."""
    from .conf import app_settings

    fields = getattr(app_settings, setting)
    if fields is None:
        return None
    return {"minute": "*", "hour": "*", **_DAILY, **fields}


def schedules_register(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """Create the app's periodic tasks that do not exist yet. Returns how many it created."""
    if not global_apps.is_installed("django_celery_beat"):
        return 0
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    existing = set(
        PeriodicTask.objects.using(using).filter(name__in=SCHEDULES).values_list("name", flat=True)
    )
    tz = schedule_timezone()
    created = 0
    for name, (task, cron) in SCHEDULES.items():
        if name in existing:
            continue
        if isinstance(cron, str):
            cron = schedule_crontab(cron)
            if cron is None:
                continue
        with transaction.atomic(using=using):
            # Any crontab with these fields and timezone will do: django-celery-beat does not
            # keep them unique, and a shop may hold several equal ones already.
            crontab = (
                CrontabSchedule.objects.using(using)
                .filter(**cron, timezone=tz)
                .order_by("pk")
                .first()
            ) or CrontabSchedule.objects.using(using).create(**cron, timezone=tz)
            _task, made = PeriodicTask.objects.using(using).get_or_create(
                name=name,
                defaults={
                    "task": task,
                    "crontab": crontab,
                    "kwargs": json.dumps(SCHEDULE_KWARGS.get(name, {})),
                },
            )
        created += made
    return created


def schedules_register_after_migrate(**kwargs) -> None:
    from django.db import connections

    using = kwargs.get("using", DEFAULT_DB_ALIAS)
    tables = connections[using].introspection.table_names()
    if "django_celery_beat_periodictask" in tables:
        schedules_register(using=using)


@dataclass(frozen=True)
class DueRun:
    name: str  # the periodic task's name
    task: str
    result: Any = None
    error: str = ""


def schedules_run_due(*, progress: Callable[[str], None] | None = None) -> list[DueRun]:
    """Run, once and in this process, every enabled periodic task that is due by its own
    schedule and last run (django-celery-beat's records, the ones Beat keeps), for
    deployments that drive the app from cron instead of Beat.

    Each task is taken with a compare-and-set of its ``last_run_at``: two ``run_due`` at once
    (or ``run_due`` beside Beat) run it once. A failing task is reported, not raised, so the
    others still run. Tasks whose code is not registered with Celery are left to Beat.
    """
    if not global_apps.is_installed("django_celery_beat"):
        return []
    from celery import current_app
    from django_celery_beat.models import PeriodicTask

    runs = []
    for periodic in PeriodicTask.objects.filter(enabled=True).order_by("name"):
        task = current_app.tasks.get(periodic.task)
        if task is None or (periodic.one_off and periodic.total_run_count):
            continue
        last = periodic.last_run_at
        if last is not None and not periodic.schedule.is_due(last).is_due:
            continue
        same = Q(last_run_at=last) if last is not None else Q(last_run_at__isnull=True)
        taken = PeriodicTask.objects.filter(same, pk=periodic.pk).update(
            last_run_at=timezone.now(), total_run_count=F("total_run_count") + 1
        )
        if not taken:
            continue  # another run_due (or Beat) took it
        if progress is not None:
            progress(periodic.name)
        outcome = task.apply(
            args=json.loads(periodic.args or "[]"), kwargs=json.loads(periodic.kwargs or "{}")
        )
        if outcome.failed():
            runs.append(DueRun(periodic.name, periodic.task, error=repr(outcome.result)))
        else:
            runs.append(DueRun(periodic.name, periodic.task, result=outcome.result))
    return runs
