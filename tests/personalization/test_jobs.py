"""The job outbox: recorded with the change, handed over after commit, run once, swept up."""

import ast
import datetime as dt
import math
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, transaction

from personalization.exceptions import ConfigurationError, InvalidInput, NaiveDatetime
from personalization.jobs import (
    backoff,
    job_claim,
    job_enqueue,
    job_handler_register,
    job_handler_unregister,
    job_run,
    jobs_dispatch,
    jobs_purge,
    jobs_retry,
    jobs_sweep,
)
from personalization.jobs.dispatch import dispatch_pause_reset
from personalization.models import Job, JobState
from tests.concurrency import run_concurrently

T0 = dt.datetime(2026, 7, 1, 8, tzinfo=dt.UTC)
NAME = "tests.record"


class Transient(OSError):
    pass


class Broken(RuntimeError):
    pass


@pytest.fixture
def handler():
    """A handler that records its calls and raises the exceptions queued in ``failures``."""
    state = SimpleNamespace(name=NAME, calls=[], failures=[], during=None)

    def record(**kwargs):
        state.calls.append(kwargs)
        if state.during is not None:
            state.during()
        if state.failures:
            raise state.failures.pop(0)

    job_handler_register(name=NAME, function=record, retry_for=(Transient,))
    yield state
    job_handler_unregister(name=NAME)


@pytest.fixture(autouse=True)
def _fresh_dispatch():
    dispatch_pause_reset()
    yield
    dispatch_pause_reset()


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(T0, tick=False)
    return time_machine


def later(time_machine, **delta):
    time_machine.move_to(T0 + dt.timedelta(**delta), tick=False)


# --- Recording --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_job_is_recorded_with_the_change_and_run_after_commit(
    handler, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            job = job_enqueue(task=NAME, args={"order_id": 7})
            assert handler.calls == []  # nothing runs before the commit
    assert handler.calls == [{"order_id": 7}]
    job.refresh_from_db()
    assert (job.state, job.attempts, job.finished_at is not None) == (JobState.DONE, 1, True)


@pytest.mark.django_db
def test_a_rolled_back_change_leaves_no_job_and_runs_nothing(
    handler, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(Broken):
            with transaction.atomic():
                job_enqueue(task=NAME, args={"order_id": 7})
                raise Broken
    assert not Job.objects.exists()
    assert handler.calls == []


@pytest.mark.django_db
def test_a_key_records_one_job_however_often_it_is_enqueued(
    handler, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            first = job_enqueue(task=NAME, args={"n": 1}, key="order:7")
            second = job_enqueue(task=NAME, args={"n": 1}, key="order:7")
            # The caller's transaction survived the conflict.
            job_enqueue(task=NAME, args={"n": 2})
    assert first.pk == second.pk
    assert Job.objects.count() == 2
    assert handler.calls == [{"n": 1}, {"n": 2}]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"task": "tests.nobody"}, InvalidInput, "task"),
        ({"args": {"x": math.nan}}, InvalidInput, "args"),
        ({"args": {"x": [math.inf]}}, InvalidInput, "args"),
        ({"args": {"x": "a\x00b"}}, InvalidInput, "args"),
        ({"args": {1: "one"}}, InvalidInput, "args"),
        ({"args": {"when": dt.date(2026, 1, 1)}}, InvalidInput, "args"),
        ({"args": {"ids": {1, 2}}}, InvalidInput, "args"),
        ({"key": ""}, InvalidInput, "key"),
        ({"key": "k" * 201}, InvalidInput, "key"),
        ({"run_after": dt.datetime(2026, 1, 1)}, NaiveDatetime, "run_after"),
        ({"max_attempts": 0}, InvalidInput, "max_attempts"),
        ({"max_attempts": 101}, InvalidInput, "max_attempts"),
    ],
)
def test_bad_input_is_refused_naming_the_argument_and_writes_nothing(handler, kwargs, error, field):
    with pytest.raises(error) as raised:
        job_enqueue(**{"task": NAME, "args": {}, **kwargs})
    assert raised.value.field == field
    assert not Job.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kwargs",
    [{"task": None}, {"args": ["order", 7]}, {"key": 7}, {"max_attempts": "3"}],
)
def test_arguments_of_the_wrong_type_are_a_type_error(handler, kwargs):
    with pytest.raises(TypeError):
        job_enqueue(**{"task": NAME, "args": {}, **kwargs})
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_arguments_read_back_as_they_were_given(handler):
    args = {"ids": [1, 2, 3], "name": "Åsa ✓", "price": 12.5, "flags": {"vip": True, "x": None}}
    job = job_enqueue(task=NAME, args=args)
    assert Job.objects.get(pk=job.pk).args == args


@pytest.mark.django_db
def test_the_database_refuses_rows_that_break_the_rules():
    base = {"task": NAME, "max_attempts": 3}
    for fields in (
        {"task": ""},
        {"state": "lost"},
        {"attempts": 4},
        {"state": JobState.RUNNING},  # running without a lease
        {"state": JobState.DONE},  # done without a finishing time
        {"claimed_until": T0},  # a lease on a job nobody runs
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            Job.objects.create(**{**base, **fields})
    Job.objects.create(**base, key="same")
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.create(**base, key="same")


def test_two_handlers_cannot_share_a_name(handler):
    with pytest.raises(ConfigurationError):
        job_handler_register(name=NAME, function=lambda **kwargs: None)


# --- Running ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_transient_failure_is_retried_with_backoff_until_it_works(handler, frozen):
    handler.failures[:] = [Transient("ESP down"), Transient("ESP still down")]
    job = job_enqueue(task=NAME, args={"n": 1}, max_attempts=5)

    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.PENDING, 1)
    assert job.run_after == T0 + backoff(1) == T0 + dt.timedelta(seconds=60)
    assert "ESP down" in job.last_error

    assert jobs_sweep().handed_over == 0  # not due yet
    later(frozen, seconds=60)
    assert jobs_sweep().handed_over == 1  # eager in tests: it runs, and fails again
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.PENDING, 2)
    assert job.run_after == T0 + dt.timedelta(seconds=60 + 120)

    later(frozen, seconds=180)
    jobs_sweep()
    job.refresh_from_db()
    assert (job.state, job.attempts, job.last_error) == (JobState.DONE, 3, "")
    assert len(handler.calls) == 3


@pytest.mark.django_db
def test_a_job_gives_up_after_its_last_attempt_and_can_be_retried(
    handler, frozen, django_capture_on_commit_callbacks
):
    handler.failures[:] = [Transient("down")] * 3
    job = job_enqueue(task=NAME, args={}, max_attempts=3)
    job_run(job_id=job.pk)
    for minutes in (10, 30):
        later(frozen, minutes=minutes)
        jobs_sweep()
    job.refresh_from_db()
    assert (job.state, job.attempts, job.finished_at) == (
        JobState.FAILED,
        3,
        T0 + dt.timedelta(minutes=30),
    )
    later(frozen, hours=5)
    assert jobs_sweep().handed_over == 0  # failed jobs wait for a human

    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_retry(jobs=Job.objects.all()) == 1  # eager: runs now, and works
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.DONE, 1)
    assert len(handler.calls) == 4


@pytest.mark.django_db
def test_an_error_that_is_not_transient_fails_the_job_at_once(handler):
    handler.failures[:] = [Broken("a bug")]
    job = job_enqueue(task=NAME, args={}, max_attempts=5)
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.FAILED, 1)
    assert "Broken: a bug" in job.last_error


@pytest.mark.django_db
def test_a_job_whose_handler_is_gone_fails_saying_so(handler):
    job = job_enqueue(task=NAME, args={})
    job_handler_unregister(name=NAME)
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == JobState.FAILED and "tests.record" in job.last_error


@pytest.mark.django_db
def test_a_second_delivery_of_a_job_runs_nothing(handler):
    job = job_enqueue(task=NAME, args={})
    job_run(job_id=job.pk)
    job_run(job_id=job.pk)
    assert job_run(job_id=job.pk) is None
    assert len(handler.calls) == 1
    assert job_run(job_id=job.pk + 1000) is None  # deleted or never there: nothing to do


@pytest.mark.django_db
def test_a_job_is_not_run_before_its_time(handler, frozen):
    job = job_enqueue(task=NAME, args={}, run_after=T0 + dt.timedelta(hours=1))
    assert job_run(job_id=job.pk) is None
    later(frozen, hours=1)
    assert job_run(job_id=job.pk).state == JobState.DONE


@pytest.mark.django_db
def test_a_worker_that_dies_mid_job_has_it_rerun_by_the_sweep_after_the_lease(
    handler, frozen, settings
):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "JOB_LEASE_SECONDS": 300}
    job = job_enqueue(task=NAME, args={"n": 1})
    assert job_claim(job_id=job.pk) is not None  # a worker takes it … and is killed

    later(frozen, seconds=299)
    assert jobs_sweep().handed_over == 0  # it may still be working
    assert job_run(job_id=job.pk) is None  # nor may another worker take it
    later(frozen, seconds=301)
    assert jobs_sweep().handed_over == 1

    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.DONE, 2)
    assert handler.calls == [{"n": 1}]


@pytest.mark.django_db
def test_a_worker_dying_on_the_last_attempt_fails_the_job(handler, frozen):
    job = job_enqueue(task=NAME, args={}, max_attempts=1)
    job_claim(job_id=job.pk)
    later(frozen, hours=2)
    result = jobs_sweep()
    job.refresh_from_db()
    assert (result.gave_up, job.state) == (1, JobState.FAILED)
    assert "lease expired" in job.last_error
    assert handler.calls == []


@pytest.mark.django_db
def test_a_worker_that_overran_its_lease_does_not_overwrite_the_next_attempt(
    handler, frozen, settings
):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "JOB_LEASE_SECONDS": 60}
    job = job_enqueue(task=NAME, args={})

    def slow_first_attempt():
        if len(handler.calls) == 1:
            later(frozen, seconds=61)
            job_run(job_id=job.pk)  # another worker takes over, and finishes
            handler.failures.append(Broken("the first attempt fails at last"))

    handler.during = slow_first_attempt
    job_run(job_id=job.pk)

    job.refresh_from_db()
    assert (job.state, job.attempts, job.last_error) == (JobState.DONE, 2, "")


# --- Handing over to the broker ---------------------------------------------------------------


@pytest.fixture
def no_eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False


@pytest.mark.django_db
def test_with_the_broker_down_a_job_stays_pending_for_the_sweep(
    handler, no_eager, settings, closed_port
):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port}/0"
    job = job_enqueue(task=NAME, args={})
    assert jobs_dispatch(job_ids=[job.pk]) == 0
    job.refresh_from_db()
    assert (job.state, job.enqueued_at) == (JobState.PENDING, None)
    assert jobs_sweep().handed_over == 0
    job.refresh_from_db()
    assert job.enqueued_at is None  # still waiting to be handed over
    assert handler.calls == []


@pytest.mark.django_db
def test_a_silent_broker_is_tried_once_then_left_alone(handler, no_eager, settings, silent_broker):
    settings.CELERY_BROKER_URL = silent_broker.url
    jobs = [job_enqueue(task=NAME, args={"n": n}) for n in range(3)]
    for job in jobs:
        assert jobs_dispatch(job_ids=[job.pk]) == 0
    assert len(silent_broker.accepted) == 1
    assert set(Job.objects.values_list("state", "enqueued_at")) == {(JobState.PENDING, None)}


@pytest.mark.django_db
def test_the_sweep_hands_over_again_only_what_was_not_taken_in_time(
    handler, frozen, settings, no_eager
):
    settings.CELERY_BROKER_URL = "memory://"
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "JOB_REDELIVER_AFTER_SECONDS": 900}
    taken_late = job_enqueue(task=NAME, args={"n": 1})
    assert jobs_dispatch(job_ids=[taken_late.pk]) == 1
    never = job_enqueue(task=NAME, args={"n": 2})

    assert jobs_sweep().handed_over == 1  # the one never handed over
    later(frozen, seconds=899)
    assert jobs_sweep().handed_over == 0
    later(frozen, seconds=901)
    assert jobs_sweep().handed_over == 2  # both were handed over 15 minutes ago, not started
    assert {job.enqueued_at for job in Job.objects.filter(pk__in=[taken_late.pk, never.pk])} == {
        T0 + dt.timedelta(seconds=901)
    }


@pytest.mark.django_db
def test_the_purge_deletes_old_finished_jobs_and_keeps_failures(handler, frozen, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "JOB_KEEP_DONE_DAYS": 14}
    handler.failures[:] = [Broken("kept for a human")]
    failed = job_enqueue(task=NAME, args={})
    job_run(job_id=failed.pk)
    old = job_enqueue(task=NAME, args={})
    job_run(job_id=old.pk)
    later(frozen, days=10)
    recent = job_enqueue(task=NAME, args={})
    job_run(job_id=recent.pk)
    waiting = job_enqueue(task=NAME, args={}, run_after=T0 + dt.timedelta(days=30))

    later(frozen, days=15)
    assert jobs_purge() == 1
    assert set(Job.objects.values_list("pk", flat=True)) == {failed.pk, recent.pk, waiting.pk}


# --- Concurrency (PostgreSQL) -----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_one_job_run_it_once(handler):
    handler.during = lambda: time.sleep(0.05)  # hold the claim while the others try
    job = Job.objects.create(task=NAME, args={"n": 1}, max_attempts=5)
    run_concurrently([lambda: job_run(job_id=job.pk)] * 4)
    assert handler.calls == [{"n": 1}]
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.DONE, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sweeps_and_workers_racing_run_each_job_once(handler):
    jobs = Job.objects.bulk_create(Job(task=NAME, args={"n": n}, max_attempts=5) for n in range(20))
    runs = [lambda job=job: job_run(job_id=job.pk) for job in jobs[:10]]
    run_concurrently([jobs_sweep, jobs_sweep, *runs])  # eager: sweeps run what they hand over
    assert sorted(call["n"] for call in handler.calls) == list(range(20))
    assert set(Job.objects.values_list("state", "attempts")) == {(JobState.DONE, 1)}


# --- Structure --------------------------------------------------------------------------------

PACKAGE = Path(__file__).resolve().parents[2] / "personalization"
# Entry points may import tasks; the domain records jobs or sends signals instead.
MAY_IMPORT_TASKS = {"tasks.py", "receivers.py", "apps.py", "views.py", "urls.py"}


def _imports_tasks(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[-1] == "tasks":  # from .tasks / ..tasks import
                return True
            if "tasks" in {alias.name for alias in node.names}:  # from . import tasks
                return True
        elif isinstance(node, ast.Import):
            if any(alias.name.split(".")[-1] == "tasks" for alias in node.names):
                return True
    return False


def test_no_domain_module_imports_celery_tasks():
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name not in MAY_IMPORT_TASKS
        and not {"admin", "management", "migrations"} & set(path.relative_to(PACKAGE).parts)
        and _imports_tasks(path)
    ]
    assert offenders == []


# --- Admin ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_lists_failed_jobs_with_their_error_and_retries_them(
    admin_client, handler, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    handler.failures[:] = [Broken("the ESP refused the API key")]
    job = job_enqueue(task=NAME, args={"order_id": 7})
    job_run(job_id=job.pk)
    url = reverse("admin:personalization_job_changelist")

    page = admin_client.get(url, {"state": JobState.FAILED})
    assert page.status_code == 200
    assert "the ESP refused the API key" in page.content.decode()
    assert (
        admin_client.get(reverse("admin:personalization_job_change", args=[job.pk])).status_code
        == 200
    )

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"action": "retry", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.DONE, 1)
    assert len(handler.calls) == 2
