"""Abandoned cart: a first reminder two hours after the cart was left, a second no sooner than
a day later, never more than two, and nothing once the customer ordered or emptied the cart."""

import datetime as dt

import pytest
from django.core import mail

from personalization.models import EntryState, ExitReason, Message, MessageState

from .shop import T0, FlowKind, abandoned_cart, beat, customer, entry_of, place_order, sent_to

pytestmark = pytest.mark.django_db

HOUR, DAY, MINUTE = dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(minutes=1)
FIRST, SECOND = "Your cart is saved for you", "Still thinking it over?"


@pytest.fixture
def kettle(product_factory):
    return product_factory(title="Copper Kettle", url="https://shop.test/p/kettle")


def test_two_reminders_at_their_times_and_never_a_third_whatever_the_cart_does(kettle):
    anna = customer()
    cart = abandoned_cart(anna, kettle, at=T0)

    beat(T0 + HOUR + MINUTE)  # abandoned now, but the first reminder waits for two hours
    assert sent_to(anna) == []
    beat(T0 + 2 * HOUR + MINUTE)
    assert sent_to(anna) == [FIRST]
    (reminder,) = mail.outbox
    assert "Copper Kettle" in reminder.alternatives[0][0]
    assert reminder.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    beat(T0 + 2 * HOUR + 23 * HOUR)  # not sooner than a day after the first
    assert sent_to(anna) == [FIRST]
    beat(T0 + 2 * HOUR + DAY + 2 * MINUTE)
    assert sent_to(anna) == [FIRST, SECOND]

    # The customer comes back, changes the cart and leaves again: still only two.
    cart.source_updated_at = T0 + 2 * DAY
    cart.save(update_fields=["source_updated_at"])
    for hours in (3, 6, 30, 60):
        beat(T0 + 2 * DAY + hours * HOUR)
    assert sent_to(anna) == [FIRST, SECOND]
    assert entry_of(anna, FlowKind.ABANDONED_CART).state == EntryState.COMPLETED


def test_an_order_ends_the_flow_before_the_next_reminder(kettle):
    bo = customer()
    abandoned_cart(bo, kettle, at=T0)
    beat(T0 + 2 * HOUR + MINUTE)
    place_order(bo, kettle, at=T0 + 5 * HOUR)

    beat(T0 + 2 * HOUR + DAY + 2 * MINUTE)

    assert sent_to(bo, FlowKind.ABANDONED_CART) == [FIRST]
    entry = entry_of(bo, FlowKind.ABANDONED_CART)
    assert (entry.state, entry.exit_reason) == (EntryState.EXITED, ExitReason.ORDERED)


def test_an_emptied_cart_ends_the_flow(kettle):
    cy = customer()
    cart = abandoned_cart(cy, kettle, at=T0)
    beat(T0 + HOUR + MINUTE)
    cart.lines.all().delete()

    beat(T0 + 2 * HOUR + MINUTE)

    assert sent_to(cy) == []
    assert entry_of(cy, FlowKind.ABANDONED_CART).exit_reason == ExitReason.CART_EMPTIED


def test_an_order_in_the_night_stops_a_reminder_held_back_for_the_quiet_hours(kettle):
    evening = T0.replace(hour=18, minute=30)  # 19:30 in Stockholm
    dag = customer()
    abandoned_cart(dag, kettle, at=evening)
    beat(evening + 2 * HOUR + MINUTE)  # 21:31 there: planned, held back until 08:00
    (held,) = Message.objects.filter(profile=dag, flow_step__flow__kind=FlowKind.ABANDONED_CART)
    assert (held.state, held.reason) == (MessageState.DEFERRED, "quiet_hours")

    place_order(dag, kettle, at=evening + 9 * HOUR)  # 04:30 there
    beat(evening + 12 * HOUR + 31 * MINUTE)  # 08:01 there

    held.refresh_from_db()
    assert (held.state, held.reason) == (MessageState.SKIPPED, "flow_exited")
    assert sent_to(dag, FlowKind.ABANDONED_CART) == []
