"""The app's periodic tasks, registered in django-celery-beat after migrate.

Registering only ever adds what is missing. Once a periodic task exists it belongs to the
people running the shop: a crontab a marketer changed, a task they disabled, a timezone they
picked are all left exactly as they are by every later ``migrate``. (Delete the entry and run
``migrate`` to get the app's default back; disable it to switch it off.)
"""

from __future__ import annotations

import json

from django.apps import apps as global_apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction

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
