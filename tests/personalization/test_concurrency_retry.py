"""The retry helper (personalization.concurrency): what is retried, how often, and what a
caller sees. The races themselves are in test_concurrency.py; here PostgreSQL is made to report
them on purpose, so every case happens on every run."""

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction

from personalization import signals, tracking
from personalization.changes import Change, profile_changed_note
from personalization.concurrency import ATTEMPTS, atomic_retried
from personalization.confirmation import CONFIRMATION_SEND_JOB
from personalization.exceptions import ConcurrentUpdate, PersonalizationError
from personalization.jobs import enqueue, job_enqueue, job_handler_register, job_handler_unregister
from personalization.models import ConsentRecord, Job, Profile, ProfileAlias
from personalization.segments.jobs import SEGMENTS_UPDATE_JOB
from personalization.tracking import identify


def _raise_sqlstate(sqlstate):
    """Make PostgreSQL itself report the error (a real driver error, as a real race gives)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}'; END $$"
        )


@pytest.fixture
def announced():
    calls = []

    def receive(sender, profile_ids, **kwargs):
        calls.append(set(profile_ids))

    signals.profile_changed.connect(receive)
    yield calls
    signals.profile_changed.disconnect(receive)


def _writer(failures, *, sqlstate="40P01"):
    """A retried write that fails with ``sqlstate`` on its first ``failures`` attempts."""
    calls, committed = [], []

    @atomic_retried
    def write(email):
        calls.append(email)
        profile = Profile.objects.create(email=f"{len(calls)}-{email}")
        profile_changed_note(profile.pk, Change.PROFILE)
        transaction.on_commit(lambda: committed.append(profile.email))
        if len(calls) <= failures:
            _raise_sqlstate(sqlstate)
        return profile

    return write, calls, committed


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sqlstate", ["40P01", "40001", "23505"])
def test_a_race_in_an_own_transaction_is_retried_and_the_lost_attempt_leaves_nothing(
    sqlstate, announced
):
    write, calls, committed = _writer(2, sqlstate=sqlstate)

    profile = write("ann@example.com")

    assert len(calls) == 3
    assert list(Profile.objects.values_list("email", flat=True)) == ["3-ann@example.com"]
    assert committed == ["3-ann@example.com"]
    assert announced == [{profile.pk}]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_after_the_last_attempt_the_caller_gets_concurrent_update_and_nothing_is_written(
    announced,
):
    write, calls, committed = _writer(99, sqlstate="40001")

    with pytest.raises(ConcurrentUpdate) as raised:
        write("ann@example.com")

    assert len(calls) == ATTEMPTS == raised.value.attempts
    assert isinstance(raised.value, PersonalizationError)
    assert isinstance(raised.value, OperationalError)
    assert raised.value.__cause__.__cause__.sqlstate == "40001"
    assert not Profile.objects.exists()
    assert committed == [] and announced == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_other_errors_are_not_retried():
    calls = []

    @atomic_retried
    def write():
        calls.append(1)
        _raise_sqlstate("23503")  # a foreign-key violation: a bug, not a race

    with pytest.raises(IntegrityError):
        write()
    assert calls == [1]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_inside_the_callers_transaction_a_deadlock_is_raised_at_once_and_the_block_stays_usable():
    write, calls, committed = _writer(99)

    with transaction.atomic():
        Profile.objects.create(email="before@example.com")
        with pytest.raises(ConcurrentUpdate) as raised:
            write("ann@example.com")
        assert raised.value.attempts == 1
        Profile.objects.create(email="after@example.com")

    assert len(calls) == 1
    emails = set(Profile.objects.values_list("email", flat=True))
    assert emails == {"before@example.com", "after@example.com"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_calls_nested_in_a_retried_call_leave_the_retry_to_the_outermost():
    inner, inner_calls, _committed = _writer(1)
    outer_calls = []

    @atomic_retried
    def outer():
        outer_calls.append(1)
        Profile.objects.create(email=f"outer-{len(outer_calls)}@example.com")
        return inner("ann@example.com")

    outer()

    assert len(outer_calls) == len(inner_calls) == 2
    emails = set(Profile.objects.values_list("email", flat=True))
    assert emails == {"outer-2@example.com", "2-ann@example.com"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_retried_sign_up_records_one_grant_and_one_confirmation_job(monkeypatch, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
        "SITE_URL": "https://shop.example",
    }
    real = tracking.consent_grant_many
    calls = []

    def deadlocking_once(**kwargs):
        records = real(**kwargs)
        calls.append(1)
        if len(calls) == 1:
            _raise_sqlstate("40P01")
        return records

    monkeypatch.setattr(tracking, "consent_grant_many", deadlocking_once)

    identify(email="ann@example.com", consents={"email_marketing": "v1"})

    assert calls == [1, 1]
    assert Profile.objects.count() == 1
    assert ConsentRecord.objects.count() == 1
    # One of each job: the rolled-back attempt left neither the email nor the segment update.
    assert sorted(Job.objects.values_list("task", flat=True)) == [
        CONFIRMATION_SEND_JOB,
        SEGMENTS_UPDATE_JOB,
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_sign_up_deadlocking_inside_the_shops_transaction_leaves_the_shops_work_usable(
    monkeypatch, user_factory
):
    """As in a checkout that sends its signals before it commits (or ATOMIC_REQUESTS)."""
    real = tracking.consent_grant_many

    def deadlocking(**kwargs):
        real(**kwargs)
        _raise_sqlstate("40P01")

    monkeypatch.setattr(tracking, "consent_grant_many", deadlocking)

    with transaction.atomic():
        user = user_factory(username="ann")
        with pytest.raises(ConcurrentUpdate):
            identify(user=user, consents={"email_marketing": "v1"})
        user.first_name = "Ann"
        user.save()

    user.refresh_from_db()
    assert user.first_name == "Ann"
    assert not Profile.objects.exists() and not ConsentRecord.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_job_recorded_by_a_retried_attempt_is_recorded_and_handed_over_once(monkeypatch):
    handed_over = []
    monkeypatch.setattr(enqueue, "jobs_dispatch", lambda job_ids: handed_over.extend(job_ids))
    job_handler_register(name="tests.retried", function=lambda **kwargs: None)
    calls = []

    @atomic_retried
    def write():
        calls.append(1)
        job = job_enqueue(task="tests.retried", args={"attempt": len(calls)})
        if len(calls) == 1:
            _raise_sqlstate("40P01")
        return job

    try:
        job = write()
    finally:
        job_handler_unregister(name="tests.retried")

    assert len(calls) == 2
    assert list(Job.objects.values_list("args", flat=True)) == [{"attempt": 2}]
    assert handed_over == [job.pk]


@pytest.mark.django_db
def test_a_unique_conflict_inside_the_callers_transaction_is_retried_in_a_savepoint():
    """Runs on SQLite too: the test's own transaction is the caller's."""
    ProfileAlias.objects.create(
        profile=Profile.objects.create(), kind=ProfileAlias.Kind.ANONYMOUS_ID, value="taken"
    )
    calls = []

    @atomic_retried
    def write():
        calls.append(1)
        profile = Profile.objects.create(email=f"{len(calls)}@example.com")
        value = "taken" if len(calls) == 1 else "free"
        ProfileAlias.objects.create(
            profile=profile, kind=ProfileAlias.Kind.ANONYMOUS_ID, value=value
        )
        return profile

    profile = write()

    assert len(calls) == 2
    assert profile.email == "2@example.com"
    assert not Profile.objects.filter(email="1@example.com").exists()
