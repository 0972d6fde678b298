"""The marketer's path in the admin: write, preview, test-send, schedule, watch, cancel."""

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from personalization.messaging import campaign_plan, messages_dispatch
from personalization.models import Campaign, CampaignStatus, Message, MessageState

from .shop import T0, campaign, customer, segment, topic

pytestmark = pytest.mark.django_db


def url(model: str, view: str = "changelist", *args) -> str:
    return reverse(f"admin:personalization_{model}_{view}", args=args)


def test_a_marketer_creates_a_campaign_and_broken_copy_is_a_form_error(marketer):
    everyone, news = segment(), topic()
    form = {
        "name": "Spring",
        "topic": news.pk,
        "include_segments": [everyone.pk],
        "subject": "{{ greeting }} spring",
        "preheader": "",
        "body": "<p>{% if %}</p>",
        "generic_subject": "",
        "generic_body": "",
        "send_mode": "now",
        "send_at_0": "",
        "send_at_1": "",
        "priority": 100,
        "utm_campaign": "",
    }

    page = marketer.post(url("campaign", "add"), form)
    assert page.status_code == 200
    assert "The template does not work" in page.content.decode()

    page = marketer.post(url("campaign", "add"), {**form, "body": "<p>{{ greeting }}</p>"})
    assert page.status_code == 302
    assert Campaign.objects.get().status == CampaignStatus.DRAFT


def test_preview_shows_what_a_customer_gets_or_why_nothing_and_test_sends_to_the_marketer(
    marketer,
):
    everyone = segment()
    anna = customer(segment=everyone, first_name="Anna")
    bo = customer(segment=everyone, marketing=False)
    made = campaign(include=[everyone], subject="{{ greeting }} news")

    with time_machine.travel(T0, tick=False):
        page = marketer.get(url("campaign", "preview", made.pk), {"profile": anna.email})
        text = page.content.decode()
        assert "Would get it now" in text and "Hi Anna, news" in text
        assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in text

        page = marketer.get(url("campaign", "preview", made.pk), {"profile": str(bo.pk)})
        assert "Would get nothing: no consent to marketing email." in page.content.decode()

        marketer.post(
            url("campaign", "preview", made.pk), {"profile": anna.email, "_test_send": "1"}
        )
    (test,) = mail.outbox
    assert test.to == ["marketer@shop.example"]
    assert test.subject == "[Test] Hi Anna, news"
    assert Message.objects.count() == 0  # a test is not a message to the customer


def test_scheduling_runs_the_lint_and_warnings_need_acknowledging(marketer):
    everyone = segment()
    made = campaign(include=[everyone], body="<p>We saw you looking at these.</p>")

    marketer.post(url("campaign", "schedule", made.pk))
    made.refresh_from_db()
    assert made.status == CampaignStatus.DRAFT

    Campaign.objects.filter(pk=made.pk).update(lint_acknowledged=True)
    with time_machine.travel(T0, tick=False):
        marketer.post(url("campaign", "schedule", made.pk))
    made.refresh_from_db()
    assert (made.status, made.plan_at) == (CampaignStatus.SCHEDULED, T0)


def test_an_inference_about_the_customer_blocks_scheduling_even_when_acknowledged(marketer):
    made = campaign(
        include=[segment()],
        body="<p>Since you are expecting, here are some ideas.</p>",
        lint_acknowledged=True,
    )

    page = marketer.post(url("campaign", "schedule", made.pk), follow=True)

    assert "asserts something about the customer" in page.content.decode()
    made.refresh_from_db()
    assert made.status == CampaignStatus.DRAFT


def test_cancel_stops_what_was_not_handed_over_and_the_ledger_shows_every_reason(marketer):
    everyone = segment()
    customer(segment=everyone)
    customer(segment=everyone, marketing=False)
    night_owl = customer(segment=everyone, timezone="Asia/Tokyo")  # 19:00 there: fine
    made = campaign(include=[everyone])
    with time_machine.travel(T0, tick=False):
        marketer.post(url("campaign", "schedule", made.pk))
        campaign_plan(campaign_id=made.pk)
        messages_dispatch()
        later = campaign(include=[everyone])
        marketer.post(url("campaign", "schedule", later.pk))
        campaign_plan(campaign_id=later.pk)
        marketer.post(url("campaign", "cancel", later.pk))

    assert dict(later.messages.values_list("state", "reason").distinct()) == {
        MessageState.CANCELLED: "cancelled"
    }
    page = marketer.get(url("message"), {"state__exact": "skipped"})
    assert "no consent to marketing email" in page.content.decode()
    assert night_owl.messages.filter(campaign=made, state=MessageState.SENT).exists()
    page = marketer.get(url("campaign", "change", made.pk))
    assert page.status_code == 200
    assert "2 sent" in page.content.decode() and "1 skipped" in page.content.decode()


def test_the_ledger_filters_by_reason_without_reading_the_whole_ledger(marketer):
    everyone = segment()
    customer(segment=everyone)
    customer(segment=everyone, marketing=False)
    made = campaign(include=[everyone])
    with time_machine.travel(T0, tick=False):
        marketer.post(url("campaign", "schedule", made.pk))
        campaign_plan(campaign_id=made.pk)
        messages_dispatch()

    with CaptureQueriesContext(connection) as queries:
        page = marketer.get(url("message"), {"reason__exact": "no_consent"})

    html = page.content.decode()
    assert page.status_code == 200
    assert "no consent to marketing email" in html  # the filter offers every reason by name
    assert "enough email this week" in html
    assert len(page.context["cl"].result_list) == 1
    assert not [q["sql"] for q in queries.captured_queries if "DISTINCT" in q["sql"].upper()]
