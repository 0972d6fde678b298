"""Registering the Beat schedules adds what is missing and never undoes a marketer's edits."""

import pytest
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from personalization.schedules import SCHEDULES, schedules_register

pytestmark = pytest.mark.django_db

SWEEP = "personalization: sweep background jobs"
REBUILD = "personalization: rebuild profile stats"


def migrate():
    call_command("migrate", interactive=False, verbosity=0)


def test_migrate_registers_every_schedule_once():
    migrate()
    migrate()
    tasks = PeriodicTask.objects.filter(name__in=SCHEDULES)
    assert {t.name: t.task for t in tasks} == {name: task for name, (task, _c) in SCHEDULES.items()}
    assert tasks.count() == len(SCHEDULES)


def test_the_job_sweep_runs_every_minute():
    crontab = PeriodicTask.objects.get(name=SWEEP).crontab
    assert (crontab.minute, crontab.hour) == ("*", "*")


def test_a_crontab_the_marketer_changed_is_kept():
    task = PeriodicTask.objects.get(name=REBUILD)
    task.crontab = CrontabSchedule.objects.create(minute="0", hour="5", timezone="Europe/Berlin")
    task.save()

    migrate()

    task.refresh_from_db()
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == (
        "0",
        "5",
        "Europe/Berlin",
    )


def test_a_crontab_edited_in_place_is_kept():
    crontab = PeriodicTask.objects.get(name=REBUILD).crontab
    crontab.hour = "4"
    crontab.save()

    migrate()

    assert PeriodicTask.objects.get(name=REBUILD).crontab.hour == "4"


def test_a_task_the_marketer_disabled_stays_disabled():
    PeriodicTask.objects.filter(name=SWEEP).update(enabled=False)
    task = PeriodicTask.objects.get(name=SWEEP)
    task.enabled = False
    task.save()

    migrate()

    assert PeriodicTask.objects.get(name=SWEEP).enabled is False


def test_a_deleted_schedule_comes_back():
    PeriodicTask.objects.filter(name=SWEEP).delete()
    assert schedules_register() == 1
    assert PeriodicTask.objects.filter(name=SWEEP).exists()


def test_identical_crontabs_that_already_exist_are_no_obstacle(settings):
    settings.CELERY_TIMEZONE = "UTC"
    PeriodicTask.objects.filter(name__in=SCHEDULES).delete()
    CrontabSchedule.objects.all().delete()
    _task, cron = SCHEDULES[REBUILD]
    for _ in range(2):
        CrontabSchedule.objects.create(**cron, timezone="UTC")

    assert schedules_register() == len(SCHEDULES)

    assert PeriodicTask.objects.filter(name__in=SCHEDULES).count() == len(SCHEDULES)
    assert CrontabSchedule.objects.filter(**cron).count() == 2  # one of them reused


def test_crontabs_are_meant_in_the_projects_timezone(settings):
    settings.CELERY_TIMEZONE = "Europe/Stockholm"
    PeriodicTask.objects.filter(name__in=SCHEDULES).delete()
    _task, cron = SCHEDULES[REBUILD]
    CrontabSchedule.objects.create(**cron, timezone="UTC")  # same fields, another zone

    schedules_register()

    zones = {str(t.crontab.timezone) for t in PeriodicTask.objects.filter(name__in=SCHEDULES)}
    assert zones == {"Europe/Stockholm"}


def test_without_a_celery_timezone_djangos_is_used(settings):
    del settings.CELERY_TIMEZONE
    settings.TIME_ZONE = "America/New_York"
    PeriodicTask.objects.filter(name__in=SCHEDULES).delete()

    schedules_register()

    zones = {str(t.crontab.timezone) for t in PeriodicTask.objects.filter(name__in=SCHEDULES)}
    assert zones == {"America/New_York"}
