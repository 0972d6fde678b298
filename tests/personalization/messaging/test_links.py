"""Every link in a marketing email, fetched the way link scanners do (GET, no cookies), changes
nothing; the one-click POST that mail clients send unsubscribes, once, with a 200."""

import re
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail
from django.test import Client

from personalization.conf import app_settings
from personalization.consent import consent_state
from personalization.messaging import campaign_plan, campaign_schedule, messages_dispatch
from personalization.models import ConsentRecord, PreferenceChange, Profile, TopicPreference

from .shop import T0, campaign, customer, segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_email(product_factory):
    product_factory(title="Mug")
    everyone = segment()
    anna = customer(segment=everyone)
    made = campaign(
        include=[everyone],
        body='<p>{{ greeting }}</p>{% recommendations 2 %}<p><a href="{{ site_url }}">Shop</a></p>',
    )
    with time_machine.travel(T0, tick=False):
        campaign_schedule(campaign=made)
        campaign_plan(campaign_id=made.pk)
        messages_dispatch()
    (message,) = mail.outbox
    return anna, message


def state_of(profile: Profile) -> tuple:
    return (
        ConsentRecord.objects.filter(profile=profile).count(),
        PreferenceChange.objects.filter(profile=profile).count(),
        TopicPreference.objects.filter(profile=profile).count(),
        Profile.objects.filter(pk=profile.pk).values_list("paused_until", "frequency").get(),
    )


def test_a_link_scanner_fetching_every_link_changes_nothing(sent_email):
    anna, message = sent_email
    html = message.alternatives[0][0]
    links = set(re.findall(r'href="([^"]+)"', html)) | {
        message.extra_headers["List-Unsubscribe"].strip("<>")
    }
    before = state_of(anna)
    scanner = Client()
    site = app_settings.SITE_URL
    own = [url for url in links if url.startswith(site)]
    assert any("unsubscribe" in url for url in own)

    for url in own:
        scanner.get(urlsplit(url).path)
        scanner.head(urlsplit(url).path)

    assert state_of(anna) == before
    assert consent_state(profile=anna, purpose="email_marketing") == "granted"


def test_the_one_click_post_unsubscribes_once_without_cookies_or_csrf(sent_email):
    anna, message = sent_email
    target = urlsplit(message.extra_headers["List-Unsubscribe"].strip("<>")).path
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    mail_client = Client(enforce_csrf_checks=True)

    answers = [mail_client.post(target, {"List-Unsubscribe": "One-Click"}) for _ in range(2)]

    assert [answer.status_code for answer in answers] == [200, 200]  # no redirect
    assert consent_state(profile=anna, purpose="email_marketing") == "withdrawn"
    assert ConsentRecord.objects.filter(profile=anna, status="withdrawn").count() == 1
