"""Anymail tracking webhooks onto the ledger: once per event, in any order, and suppressions."""

import datetime as dt

import pytest
import time_machine
from anymail.signals import AnymailTrackingEvent, tracking

from personalization.consent import consent_state
from personalization.messaging import campaign_plan, campaign_schedule, messages_dispatch
from personalization.models import Message, MessageEvent, MessageState
from personalization.privacy.suppression import email_suppressed

from .shop import T0, campaign, customer, segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent():
    """One campaign message, sent."""
    everyone = segment()
    customer(segment=everyone)
    made = campaign(include=[everyone])
    with time_machine.travel(T0, tick=False):
        campaign_schedule(campaign=made)
        campaign_plan(campaign_id=made.pk)
        messages_dispatch()
    message = Message.objects.get()
    assert message.state == MessageState.SENT
    return message


def webhook(message, event_type, *, minutes, event_id=None, **extra):
    event = AnymailTrackingEvent(
        event_type=event_type,
        timestamp=T0 + dt.timedelta(minutes=minutes),
        event_id=event_id or f"{event_type}-{minutes}",
        message_id=message.esp_message_id,
        recipient=message.to_email,
        **extra,
    )
    tracking.send(sender=object, event=event, esp_name="TestESP")


def test_events_set_the_first_time_of_each_kind_whatever_their_order(sent):
    webhook(sent, "opened", minutes=30)
    webhook(sent, "clicked", minutes=31)
    webhook(sent, "delivered", minutes=1)  # late, as webhooks often are
    webhook(sent, "opened", minutes=5)  # an earlier open, reported after a later one
    webhook(sent, "opened", minutes=90)

    sent.refresh_from_db()
    assert sent.delivered_at == T0 + dt.timedelta(minutes=1)
    assert sent.opened_at == T0 + dt.timedelta(minutes=5)
    assert sent.clicked_at == T0 + dt.timedelta(minutes=31)
    assert MessageEvent.objects.filter(message=sent).count() == 5


def test_a_replayed_webhook_changes_nothing(sent):
    for _ in range(3):
        webhook(sent, "opened", minutes=7, event_id="evt-1")

    assert MessageEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("event_type", "reason", "withdraws_consent"),
    [
        ("bounced", "hard_bounce", False),
        ("complained", "complaint", True),
        ("unsubscribed", "unsubscribed", True),
    ],
)
def test_bounces_complaints_and_esp_unsubscribes_suppress_the_address(
    sent, event_type, reason, withdraws_consent
):
    webhook(sent, event_type, minutes=3)

    assert email_suppressed(email=sent.to_email, reason=reason)
    state = consent_state(profile=sent.profile, purpose="email_marketing")
    assert (state == "withdrawn") is withdraws_consent
    # The next campaign skips the address.
    everyone = sent.campaign.include_segments.first()
    later = campaign(include=[everyone])
    with time_machine.travel(T0 + dt.timedelta(days=2), tick=False):
        campaign_schedule(campaign=later)
        campaign_plan(campaign_id=later.pk)
        messages_dispatch()
    assert Message.objects.get(campaign=later).state == MessageState.SKIPPED


def test_an_event_for_a_message_we_do_not_know_is_kept_and_harmless(sent):
    event = AnymailTrackingEvent(
        event_type="opened", timestamp=T0, event_id="stranger", message_id="not-ours"
    )
    tracking.send(sender=object, event=event, esp_name="TestESP")

    assert MessageEvent.objects.get().message is None


def test_a_real_email_service_without_a_webhook_secret_is_warned_about(settings):
    from django.core.checks import run_checks

    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "token"}
    assert "personalization.W002" in {message.id for message in run_checks()}

    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "user:password"}
    assert "personalization.W002" not in {message.id for message in run_checks()}
