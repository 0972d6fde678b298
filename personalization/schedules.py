"""The app's periodic tasks, registered in django-celery-beat idempotently after migrate."""

from __future__ import annotations

from django.apps import apps as global_apps

# name → (task, crontab fields). Times are in CELERY_TIMEZONE / TIME_ZONE.
SCHEDULES = {
    "personalization: rebuild profile stats": (
        "personalization.profile_stats_rebuild",
        {
            "minute": "17",
            "hour": "3",
            "day_of_week": "*",
            "day_of_month": "*",
            "month_of_year": "*",
        },
    ),
}


def schedules_register() -> int:
    """Create or update the app's PeriodicTasks; never duplicates. Returns how many exist."""
    if not global_apps.is_installed("django_celery_beat"):
        return 0
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    for name, (task, cron) in SCHEDULES.items():
        schedule, _ = CrontabSchedule.objects.get_or_create(**cron)
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "crontab": schedule, "interval": None}
        )
    return len(SCHEDULES)


def schedules_register_after_migrate(**kwargs) -> None:
    from django.db import connections

    using = kwargs.get("using", "default")
    tables = connections[using].introspection.table_names()
    if "django_celery_beat_periodictask" in tables:
        schedules_register()
