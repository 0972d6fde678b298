"""The shop keeps selling while the Celery broker is down; the work waits in the database.

These tests commit for real (``transaction=True``), as the shop does: the hand-over to the
broker happens after the commit, where the fault used to turn a placed order into a 500.
"""

import time

import pytest
from django.db import connection

from demo_shop.shop.jobs import ORDER_CONFIRMATION_SEND
from demo_shop.shop.models import Order as ShopOrder
from personalization import models as pzn
from personalization.confirmation import CONFIRMATION_SEND_JOB
from personalization.jobs import jobs_sweep
from personalization.jobs.dispatch import dispatch_pause_reset
from personalization.segments.jobs import SEGMENTS_UPDATE_JOB
from tests.celery_worker import running_worker, worker_app

pytestmark = pytest.mark.django_db(transaction=True)

ORDER, CONFIRM = "order confirmation", "consent confirmation"
EMAILS = (ORDER_CONFIRMATION_SEND, CONFIRMATION_SEND_JOB)


@pytest.fixture(autouse=True)
def _shop_settings(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
    }
    dispatch_pause_reset()
    yield
    dispatch_pause_reset()


@pytest.fixture
def broker_down(settings, closed_port):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port}/0"


@pytest.fixture
def broker_silent(settings, silent_broker):
    """The shop's broker accepts connections and never answers."""
    settings.CELERY_BROKER_URL = silent_broker.url
    return silent_broker


def checkout_with_newsletter(shopper, product, email="ann@example.com"):
    shopper.client.raise_request_exception = False
    shopper.add(product)
    return shopper.checkout(email=email, marketing=True)


def jobs():
    return {(job.task, job.state, job.enqueued_at is None) for job in pzn.Job.objects.all()}


def subjects(mailoutbox):
    """The kinds of email sent, one entry per message."""
    kinds = {"Please confirm your subscription": CONFIRM, "Your Demo Shop order": ORDER}
    return sorted(
        next(kind for start, kind in kinds.items() if message.subject.startswith(start))
        for message in mailoutbox
    )


def test_checkout_with_the_broker_down_places_the_order_and_answers_normally(
    broker_down, shopper, kettle, mailoutbox
):
    response = checkout_with_newsletter(shopper, kettle)

    order = ShopOrder.objects.get()
    assert response.status_code == 302 and response.url == order.get_absolute_url()
    assert shopper.client.get(response.url).status_code == 200
    # The work is in the database, never handed over, waiting for the sweep.
    assert jobs() == {
        (ORDER_CONFIRMATION_SEND, pzn.JobState.PENDING, True),
        (CONFIRMATION_SEND_JOB, pzn.JobState.PENDING, True),
        # The customer's segments are re-evaluated once the broker is back.
        (SEGMENTS_UPDATE_JOB, pzn.JobState.PENDING, True),
    }
    assert mailoutbox == []


def test_a_broker_that_never_answers_is_tried_once_not_on_every_checkout(
    broker_silent, shopper, make_shopper, kettle, beans
):
    first = checkout_with_newsletter(shopper, kettle)
    second = checkout_with_newsletter(make_shopper(), beans, email="bo@example.com")

    assert first.status_code == second.status_code == 302
    assert ShopOrder.objects.count() == 2
    emails = pzn.Job.objects.filter(task__in=EMAILS)
    assert emails.filter(state=pzn.JobState.PENDING, enqueued_at=None).count() == 4
    assert not pzn.Job.objects.exclude(state=pzn.JobState.PENDING, enqueued_at=None).exists()
    # Many hand-overs, one connection: after the first timed out, the process left it alone.
    assert len(broker_silent.accepted) == 1


def wait_for(condition, timeout=30.0):
    if connection.vendor == "sqlite":
        # SQLite's shared in-memory test database: this thread's polling reads would hold
        # table locks that make the worker's writes fail at once ("table is locked") and
        # retry with backoff. Read without them (shared-cache read-uncommitted mode).
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA read_uncommitted = 1")
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            left = list(
                pzn.Job.objects.exclude(state=pzn.JobState.DONE).values_list(
                    "task", "state", "attempts", "last_error"
                )
            )
            raise AssertionError(f"the worker did not get there in time: {left}")
        time.sleep(0.05)


# The worker writes while the sweep is still writing: SQLite's shared in-memory test database
# answers "table is locked" instead of waiting, so this needs PostgreSQL (as below).
@pytest.mark.postgres
@pytest.mark.redis
def test_when_the_broker_is_back_the_sweep_runs_each_job_exactly_once(
    broker_down, shopper, kettle, mailoutbox
):
    checkout_with_newsletter(shopper, kettle)
    assert mailoutbox == []

    # The broker is back: a real worker on Redis, and Beat's next sweep.
    with running_worker():
        assert jobs_sweep().handed_over == pzn.Job.objects.count()
        wait_for(lambda: not pzn.Job.objects.exclude(state=pzn.JobState.DONE).exists())
        assert jobs_sweep().handed_over == 0  # nothing left over

    assert subjects(mailoutbox) == [CONFIRM, ORDER]
    assert set(pzn.Job.objects.values_list("state", "attempts")) == {(pzn.JobState.DONE, 1)}


# The worker runs while the request is still writing: a real concurrent database is needed
# (SQLite's shared in-memory test database answers "table is locked" instead of waiting).
@pytest.mark.postgres
@pytest.mark.redis
def test_with_a_working_broker_the_checkout_hands_its_jobs_to_the_worker(
    shopper, kettle, mailoutbox
):
    with running_worker():
        checkout_with_newsletter(shopper, kettle)
        wait_for(lambda: not pzn.Job.objects.exclude(state=pzn.JobState.DONE).exists())

    assert subjects(mailoutbox) == [CONFIRM, ORDER]
    assert not pzn.Job.objects.filter(enqueued_at__isnull=True).exists()


def test_the_demos_file_system_broker_carries_the_jobs_to_a_worker(
    settings, tmp_path, shopper, kettle, mailoutbox
):
    folders = {name: tmp_path / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    options = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options

    checkout_with_newsletter(shopper, kettle)
    assert not pzn.Job.objects.filter(enqueued_at__isnull=True).exists()  # all handed over

    app = worker_app("pzn-fs-test", broker="filesystem://", broker_transport_options=options)
    with running_worker(app, purge=False):
        wait_for(lambda: not pzn.Job.objects.exclude(state=pzn.JobState.DONE).exists())

    assert subjects(mailoutbox) == [CONFIRM, ORDER]
