"""'Why you hear from us': the customer sees what we sent and what the guardrails held back."""

import datetime as dt

import pytest
import time_machine

from personalization.messaging import campaign_plan, campaign_schedule, messages_dispatch
from personalization.models import Message, MessageState, Profile
from personalization.preferences.known import what_we_know

from .shop import T0, campaign, customer, segment

pytestmark = pytest.mark.django_db


def test_the_preference_centre_lists_recent_messages_with_their_reasons():
    everyone = segment()
    anna = customer(segment=everyone)
    first = campaign(include=[everyone], subject="Spring news")
    with time_machine.travel(T0, tick=False):
        campaign_schedule(campaign=first)
        campaign_plan(campaign_id=first.pk)
        messages_dispatch()
    Profile.objects.filter(pk=anna.pk).update(paused_until=T0 + dt.timedelta(days=30))
    second = campaign(include=[everyone], subject="Summer news")
    with time_machine.travel(T0 + dt.timedelta(days=1), tick=False):
        campaign_schedule(campaign=second)
        campaign_plan(campaign_id=second.pk)
        messages_dispatch()
        known = what_we_know(profile=anna)

    held, sent = known.recent_messages
    assert (sent.subject, sent.state) == ("Spring news", MessageState.SENT)
    assert sent.why == f"You agreed to marketing emails and get news about “{first.topic.name}”."
    assert (held.subject, held.state) == ("", MessageState.SKIPPED)
    assert held.why == "Not sent: taking a break from email."
    assert Message.objects.count() == 2
