"""``manage.py run_due``: a cron-driven deployment gets what Beat would have done, once."""

import datetime as dt
import io

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from personalization.messaging import campaign_schedule
from personalization.models import CampaignStatus, MessageState

from .shop import T0, campaign, customer, segment

pytestmark = pytest.mark.django_db


def run_due() -> str:
    out = io.StringIO()
    call_command("run_due", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_run_due_plans_and_sends_a_scheduled_campaign_and_runs_nothing_twice():
    everyone = segment()
    anna = customer(segment=everyone)
    made = campaign(include=[everyone], send_mode="at", send_at=T0 + dt.timedelta(minutes=30))
    with time_machine.travel(T0, tick=False):
        campaign_schedule(campaign=made)
        run_due()  # everything runs once at first; the campaign is not due yet
    assert mail.outbox == []

    with time_machine.travel(T0 + dt.timedelta(minutes=30, seconds=5), tick=False):
        output = run_due()
        assert "personalization: plan due campaigns: done" in output
        assert run_due() == "Nothing was due.\n"  # the same minute: nothing is due again

    # The campaign, once (run_due also ran the flows: Anna, a new subscriber, is welcomed).
    (sent,) = [m for m in mail.outbox if m.subject.endswith("spring is here")]
    assert sent.to == [anna.email]
    assert made.messages.get().state == MessageState.SENT
    with time_machine.travel(T0 + dt.timedelta(minutes=31, seconds=5), tick=False):
        run_due()  # the sweep finishes the campaign; nothing is sent again
    made.refresh_from_db()
    assert made.status == CampaignStatus.SENT
    assert [m.subject for m in mail.outbox].count(sent.subject) == 1


def test_a_disabled_task_is_not_run():
    PeriodicTask.objects.update(enabled=False)

    assert run_due() == "Nothing was due.\n"
