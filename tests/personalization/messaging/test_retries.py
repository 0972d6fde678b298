"""What the email service answers: transient errors back off and retry the same message,
refused addresses are not retried, and a message failing too often ends 'failed'."""

import datetime as dt

import pytest
import time_machine
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.core import mail

from personalization.messaging import campaign_plan, campaign_schedule, messages_dispatch
from personalization.models import Message, MessageState
from tests.flaky_email import FlakyBackend

from .shop import T0, campaign, customer, segment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def flaky(settings):
    settings.EMAIL_BACKEND = "tests.flaky_email.FlakyBackend"
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "MESSAGE_MAX_ATTEMPTS": 3,
        "MESSAGE_RETRY_BACKOFF_SECONDS": 60,
    }
    FlakyBackend.failures.clear()
    yield FlakyBackend.failures
    FlakyBackend.failures.clear()


def planned_campaign():
    everyone = segment()
    anna = customer(segment=everyone)
    made = campaign(include=[everyone])
    with time_machine.travel(T0, tick=False):
        campaign_schedule(campaign=made)
        campaign_plan(campaign_id=made.pk)
    return anna, made


def dispatch_at(minutes: float):
    with time_machine.travel(T0 + dt.timedelta(minutes=minutes), tick=False):
        messages_dispatch()


@pytest.mark.parametrize(
    "error",
    [
        AnymailAPIError("throttled", status_code=429),
        AnymailAPIError("unavailable", status_code=503),
        AnymailAPIError("timed out"),  # no status: the request never got an answer
        TimeoutError("timed out"),
    ],
    ids=["429", "503", "no answer", "timeout"],
)
def test_a_transient_error_backs_off_and_sends_the_same_message_once(flaky, error):
    anna, made = planned_campaign()
    flaky[anna.email] = [error]

    dispatch_at(0)
    message = Message.objects.get(campaign=made)
    assert (message.state, message.reason, message.attempts) == (
        MessageState.DEFERRED,
        "esp_unavailable",
        1,
    )
    assert message.not_before == T0 + dt.timedelta(seconds=60)
    assert mail.outbox == []

    dispatch_at(0.5)  # too early: nothing happens
    assert Message.objects.get(campaign=made).state == MessageState.DEFERRED
    dispatch_at(1)
    message.refresh_from_db()
    assert (message.state, message.attempts) == (MessageState.SENT, 2)
    assert [m.to for m in mail.outbox] == [[anna.email]]


def test_the_pause_doubles_and_the_message_fails_after_the_last_attempt(flaky):
    anna, made = planned_campaign()
    flaky[anna.email] = [AnymailAPIError("unavailable", status_code=502) for _ in range(3)]

    dispatch_at(0)
    dispatch_at(1)  # second attempt, 60 s later: fails, next in 120 s
    message = Message.objects.get(campaign=made)
    assert message.not_before == T0 + dt.timedelta(minutes=1, seconds=120)
    dispatch_at(3)  # third and last attempt

    message.refresh_from_db()
    assert (message.state, message.reason, message.attempts) == (
        MessageState.FAILED,
        "esp_unavailable",
        3,
    )
    assert "unavailable" in message.last_error
    dispatch_at(60)
    assert mail.outbox == []


def test_a_refused_address_fails_at_once_and_is_not_retried(flaky):
    anna, made = planned_campaign()
    flaky[anna.email] = [AnymailRecipientsRefused("refused")]

    dispatch_at(0)
    dispatch_at(10)

    message = Message.objects.get(campaign=made)
    assert (message.state, message.reason, message.attempts) == (MessageState.FAILED, "refused", 1)
    assert mail.outbox == []
