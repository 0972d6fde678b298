"""Two Beats running the flows and two dispatchers sending, at the same moment, on real
PostgreSQL: each customer gets each step once."""

import datetime as dt
from collections import Counter

import pytest
import time_machine
from django.core import mail

from personalization.flows import flows_run
from personalization.messaging import messages_dispatch
from personalization.models import FlowEntry, FlowKind, Message, MessageState
from tests.concurrency import run_concurrently

from .shop import T0, abandoned_cart, customer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_beats_and_two_dispatchers_send_each_reminder_once(product_factory):
    kettle = product_factory(title="Copper Kettle")
    people = [customer() for _ in range(30)]
    for person in people:
        abandoned_cart(person, kettle, at=T0)
    due = T0 + dt.timedelta(hours=2, minutes=1)

    with time_machine.travel(due, tick=False):
        run_concurrently([lambda: flows_run(now=due)] * 2)
        run_concurrently([lambda: messages_dispatch(now=due)] * 2)

    cart_flow = {"flow__kind": FlowKind.ABANDONED_CART}
    assert FlowEntry.objects.filter(**cart_flow).count() == 30
    reminders = Message.objects.filter(flow_step__flow__kind=FlowKind.ABANDONED_CART)
    assert Counter(reminders.values_list("state", flat=True)) == {MessageState.SENT: 30}
    per_address = Counter(
        address
        for message in mail.outbox
        if message.subject == "Your cart is saved for you"
        for address in message.to
    )
    assert per_address == Counter({person.email: 1 for person in people})
