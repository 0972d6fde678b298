"""The guardrail policy, rule by rule, through the dispatcher a campaign's messages go through."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from personalization.consent import consent_record
from personalization.messaging import campaign_plan, campaign_schedule, messages_dispatch
from personalization.models import Cart, Message, MessageState, TopicPreference
from personalization.privacy.suppression import suppression_add

from .shop import T0, campaign, customer, segment, send_campaign, topic

pytestmark = pytest.mark.django_db


def outcome(message):
    return (message.state, message.reason)


def test_a_consenting_customer_gets_the_campaign_once():
    everyone = segment()
    anna = customer(segment=everyone)

    messages = send_campaign(include=[everyone])

    assert outcome(messages[anna.pk]) == (MessageState.SENT, "")
    (sent,) = mail.outbox
    assert sent.to == [anna.email]
    assert messages[anna.pk].esp_message_id == str(sent.anymail_status.message_id)


@pytest.mark.parametrize(
    ("consent", "reason"),
    [(False, "no_consent"), ("pending", "consent_pending")],
)
def test_no_marketing_mail_without_current_confirmed_consent(consent, reason):
    everyone = segment()
    bea = customer(marketing=consent, segment=everyone)

    messages = send_campaign(include=[everyone])

    assert outcome(messages[bea.pk]) == (MessageState.SKIPPED, reason)
    assert mail.outbox == []


def test_a_withdrawn_consent_is_respected_at_send_time_not_only_at_planning():
    everyone = segment()
    cid = customer(segment=everyone)
    made = campaign(include=[everyone])
    with time_machine.travel(T0, tick=False):
        campaign_schedule(campaign=made)
        campaign_plan(campaign_id=made.pk)
        consent_record(profile=cid, purpose="email_marketing", granted=False, source="api")
        messages_dispatch()

    assert outcome(Message.objects.get(profile=cid)) == (MessageState.SKIPPED, "no_consent")


@pytest.mark.parametrize("reason", ["unsubscribed", "hard_bounce", "complaint", "erased"])
def test_a_suppressed_address_is_never_mailed(reason):
    everyone = segment()
    dan = customer(segment=everyone)
    suppression_add(emails=[dan.email], reason=reason, source="admin")

    messages = send_campaign(include=[everyone])

    assert outcome(messages[dan.pk]) == (MessageState.SKIPPED, f"suppressed_{reason}")


def test_a_topic_opted_out_of_or_off_by_default_is_not_sent():
    everyone = segment()
    news, offers = topic(), topic(subscribed_by_default=False)
    out, never_chose, chose = (customer(segment=everyone) for _ in range(3))
    TopicPreference.objects.create(profile=out, topic=news, subscribed=False, updated_at=T0)
    TopicPreference.objects.create(profile=chose, topic=offers, subscribed=True, updated_at=T0)

    on_news = send_campaign(include=[everyone], topic=news)
    on_offers = send_campaign(include=[everyone], topic=offers)

    assert outcome(on_news[out.pk]) == (MessageState.SKIPPED, "topic_off")
    assert on_news[never_chose.pk].state == MessageState.SENT
    assert outcome(on_offers[never_chose.pk]) == (MessageState.SKIPPED, "topic_off")
    assert on_offers[chose.pk].state == MessageState.SENT


def test_a_paused_customer_is_skipped_until_the_break_ends():
    everyone = segment()
    eve = customer(segment=everyone, paused_until=T0 + dt.timedelta(days=3))

    assert outcome(send_campaign(include=[everyone])[eve.pk]) == (MessageState.SKIPPED, "paused")
    later = send_campaign(include=[everyone], at=T0 + dt.timedelta(days=4))
    assert later[eve.pk].state == MessageState.SENT


def test_the_fourth_campaign_in_a_week_waits_until_a_slot_frees():
    everyone = segment()
    fay = customer(segment=everyone)
    for day in range(3):
        sent = send_campaign(include=[everyone], at=T0 + dt.timedelta(days=day))
        assert sent[fay.pk].state == MessageState.SENT

    fourth = send_campaign(include=[everyone], at=T0 + dt.timedelta(days=5))[fay.pk]

    assert outcome(fourth) == (MessageState.DEFERRED, "frequency_cap")
    # The first went out at T0: a week later its slot is free again.
    assert fourth.not_before == T0 + dt.timedelta(days=7)
    with time_machine.travel(T0 + dt.timedelta(days=7), tick=False):
        messages_dispatch()
    fourth.refresh_from_db()
    assert fourth.state == MessageState.SENT
    assert len(mail.outbox) == 4


def test_a_cap_deferral_past_the_campaigns_last_useful_moment_becomes_a_skip(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "MESSAGE_FREQUENCY_CAP": 1}
    everyone = segment()
    gus = customer(segment=everyone)
    send_campaign(include=[everyone])

    # The slot frees in 7 days; the campaign is worth sending for 72 hours.
    late = send_campaign(include=[everyone], at=T0 + dt.timedelta(hours=1))[gus.pk]

    assert outcome(late) == (MessageState.SKIPPED, "frequency_cap")


@pytest.mark.parametrize(
    ("frequency", "days", "reason"),
    [("weekly", 7, "own_frequency"), ("monthly", 30, "own_frequency")],
)
def test_the_customers_own_pace_is_stricter_than_the_shops(frequency, days, reason):
    everyone = segment()
    hal = customer(segment=everyone, frequency=frequency)
    send_campaign(include=[everyone])

    second = send_campaign(include=[everyone], at=T0 + dt.timedelta(hours=2))[hal.pk]

    assert (second.state, second.reason) == (MessageState.SKIPPED, reason)


def test_quiet_hours_defer_to_the_morning_where_the_customer_lives():
    everyone = segment()
    # 22:30 UTC: 23:30 in Stockholm (quiet), 17:30 in New York (not), 07:30 next day in Tokyo.
    sto = customer(segment=everyone, timezone="Europe/Stockholm")
    nyc = customer(segment=everyone, timezone="America/New_York")
    tyo = customer(segment=everyone, timezone="Asia/Tokyo")
    unknown = customer(segment=everyone, timezone="Mars/Olympus")
    at = dt.datetime(2027, 3, 1, 22, 30, tzinfo=dt.UTC)

    messages = send_campaign(include=[everyone], at=at)

    assert messages[nyc.pk].state == MessageState.SENT
    assert outcome(messages[sto.pk]) == (MessageState.DEFERRED, "quiet_hours")
    assert messages[sto.pk].not_before == dt.datetime(2027, 3, 2, 7, tzinfo=dt.UTC)  # 08:00 CET
    assert messages[tyo.pk].not_before == dt.datetime(2027, 3, 1, 23, tzinfo=dt.UTC)  # 08:00 JST
    # An unknown zone is the shop's (UTC in the tests): 22:30 is quiet there too.
    assert messages[unknown.pk].not_before == dt.datetime(2027, 3, 2, 8, tzinfo=dt.UTC)

    with time_machine.travel(dt.datetime(2027, 3, 2, 7, 1, tzinfo=dt.UTC), tick=False):
        messages_dispatch()
    assert Message.objects.get(pk=messages[sto.pk].pk).state == MessageState.SENT


def test_without_the_personalisation_consent_the_generic_variant_goes_out():
    everyone = segment()
    tailored = customer(segment=everyone)
    generic = customer(segment=everyone, personalization=False)

    messages = send_campaign(
        include=[everyone], subject="For you", generic_subject="News from the shop"
    )

    assert messages[tailored.pk].variant == "tailored"
    assert messages[generic.pk].variant == "generic"
    subjects = {m.to[0]: m.subject for m in mail.outbox}
    assert subjects == {tailored.email: "For you", generic.email: "News from the shop"}


@pytest.mark.parametrize(
    ("locale", "greeting", "expected"),
    [
        ("en", "", "Hi Ida,"),
        ("sv", "", "Hej!"),
        ("fi", "", "Hello,"),
        ("sv", "first_name", "Hej Ida!"),
        ("en", "neutral", "Hello,"),
    ],
)
def test_first_names_follow_the_locale_default_and_the_customers_choice(locale, greeting, expected):
    everyone = segment()
    customer(segment=everyone, first_name="Ida", locale=locale, greeting=greeting)

    send_campaign(include=[everyone], subject="{{ greeting }} news")

    assert mail.outbox[0].subject == f"{expected} news"


def test_the_generic_variant_shows_what_is_popular_and_says_so(product_factory, order_factory):
    mug = product_factory(title="Stoneware Mug")
    for _ in range(3):
        order = order_factory(placed_at=T0 - dt.timedelta(days=2))
        order.lines.create(product=mug, quantity=1, unit_price=mug.price)
    everyone = segment()
    for _ in range(2):
        customer(segment=everyone, personalization=False)

    send_campaign(include=[everyone], body="<p>{{ greeting }}</p>{% recommendations 2 %}")

    assert len(mail.outbox) == 2
    for sent in mail.outbox:
        html = sent.alternatives[0][0]
        assert "Popular right now" in html and "Stoneware Mug" in html
        assert "Picked for you" not in html


def test_the_cart_block_shows_the_recipients_open_cart_in_the_tailored_variant_only(
    product_factory,
):
    kettle = product_factory(title="Copper Kettle")
    everyone = segment()
    tailored = customer(segment=everyone)
    generic = customer(segment=everyone, personalization=False)
    for someone in (tailored, generic):
        cart = Cart.objects.create(
            external_id=f"cart-{someone.pk}",
            profile=someone,
            currency="EUR",
            total=Decimal("30.00"),
            shop_total=Decimal("30.00"),
            source_updated_at=T0 - dt.timedelta(hours=3),
        )
        cart.lines.create(product=kettle, quantity=2, unit_price=Decimal("15.00"))

    send_campaign(include=[everyone], body="<p>{{ greeting }}</p>{% cart_lines %}")

    html = {m.to[0]: m.alternatives[0][0] for m in mail.outbox}
    assert "Copper Kettle" in html[tailored.email] and "2 pieces" in html[tailored.email]
    assert "Copper Kettle" not in html[generic.email]
