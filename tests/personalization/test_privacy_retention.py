"""Raw events expire after EVENT_RETENTION_DAYS; orders, carts and consent stay."""

import datetime as dt

import pytest
from django.core import checks
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from personalization.exceptions import InvalidInput
from personalization.models import Event, Order
from personalization.privacy.retention import events_expire
from personalization.schedules import SCHEDULES
from personalization.tasks import events_expire_task

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def events(time_machine, profile_factory, order_factory):
    """Events 364 and 366 days old (and an old order), made a year and a bit ago."""
    time_machine.move_to(NOW, tick=False)
    profile = profile_factory()
    order_factory(profile=profile, placed_at=NOW - dt.timedelta(days=800))
    for days in (364, 366):
        Event.objects.create(
            profile=profile, name=f"viewed_{days}", occurred_at=NOW - dt.timedelta(days=days)
        )
    return profile


def names() -> set[str]:
    return set(Event.objects.values_list("name", flat=True))


def test_an_event_older_than_the_period_is_deleted_and_a_younger_one_stays(events):
    assert events_expire() == 1
    assert names() == {"viewed_364"}
    assert Order.objects.count() == 1  # orders are not events


def test_the_period_is_counted_from_now(events, time_machine):
    time_machine.move_to(NOW + dt.timedelta(days=2), tick=False)
    assert events_expire() == 2
    assert names() == set()


def test_a_shorter_period_from_the_settings(events, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "EVENT_RETENTION_DAYS": 30}
    Event.objects.create(profile=events, name="recent", occurred_at=NOW - dt.timedelta(days=29))
    assert events_expire() == 2
    assert names() == {"recent"}


def test_none_keeps_every_event(events, settings, time_machine):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "EVENT_RETENTION_DAYS": None}
    time_machine.move_to(NOW + dt.timedelta(days=3000), tick=False)
    assert events_expire() == 0
    assert names() == {"viewed_364", "viewed_366"}


def test_events_are_deleted_in_bounded_batches_without_reading_them(events):
    for index in range(4):
        Event.objects.create(
            profile=events, name=f"old_{index}", occurred_at=NOW - dt.timedelta(days=400)
        )
    batches = []
    with CaptureQueriesContext(connection) as queries:
        assert events_expire(batch_size=2, progress=batches.append) == 5
    assert batches == [2, 2, 1]
    assert names() == {"viewed_364"}
    statements = [q["sql"].lstrip().split()[0].upper() for q in queries]
    # One DELETE per batch, each picking its rows in a subquery: no row is read into Python.
    assert [s for s in statements if s not in ("SAVEPOINT", "RELEASE")] == ["DELETE"] * 3
    assert all("LIMIT 2" in q["sql"] for q in queries if q["sql"].startswith("DELETE"))


@pytest.mark.parametrize("batch_size", [0, -1, True, "100"])
def test_a_bad_batch_size_is_refused(events, batch_size):
    with pytest.raises(InvalidInput) as raised:
        events_expire(batch_size=batch_size)
    assert raised.value.field == "batch_size"
    assert Event.objects.count() == 2


# --- Beat, the task and the command ----------------------------------------------------------


def test_a_daily_schedule_runs_the_task():
    task = PeriodicTask.objects.get(name="personalization: expire old events")
    assert task.task == "personalization.events_expire"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("37", "2", "*")
    assert SCHEDULES[task.name][0] == task.task


def test_the_task_expires_events(events):
    assert events_expire_task.delay().get() == 1  # eager in tests
    assert names() == {"viewed_364"}


def test_the_command_reports_progress_and_what_it_deleted(events, capsys):
    for index in range(3):
        Event.objects.create(
            profile=events, name=f"old_{index}", occurred_at=NOW - dt.timedelta(days=700)
        )
    call_command("expire_events", "--batch-size", "2")
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "2 events deleted so far…",
        "4 events deleted so far…",
    ]
    assert out.startswith(
        "Deleted 4 event(s) that occurred before 2025-06-01T12:00:00+00:00 (older than 365 days)"
    )
    assert names() == {"viewed_364"}


def test_the_command_says_when_retention_is_off(events, settings, capsys):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "EVENT_RETENTION_DAYS": None}
    call_command("expire_events")
    assert "Event retention is off" in capsys.readouterr().out
    assert Event.objects.count() == 2


def test_the_command_refuses_a_bad_batch_size(events):
    with pytest.raises(CommandError, match="positive whole number"):
        call_command("expire_events", "--batch-size", "0")
    assert Event.objects.count() == 2


# --- The setting -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -5, "365", 36.5, True])
def test_a_wrong_retention_period_is_a_system_check_error(settings, value):
    settings.PERSONALIZATION = {"EVENT_RETENTION_DAYS": value}
    errors = [m for m in checks.run_checks() if m.id == "personalization.E006"]
    assert ["EVENT_RETENTION_DAYS" in m.msg for m in errors] == [True]


@pytest.mark.parametrize("value", [None, 1, 730])
def test_none_or_a_number_of_days_is_accepted(settings, value):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "EVENT_RETENTION_DAYS": value}
    assert [m for m in checks.run_checks() if m.id == "personalization.E006"] == []
