"""A shopper in the demo shop leaves a cart: the reminder arrives after the delay, with the
cart; a shopper who buys instead gets none."""

import datetime as dt

import time_machine

from personalization import models as pzn
from personalization.flows import flows_run
from personalization.messaging import messages_dispatch

NOON = dt.datetime(2027, 3, 2, 12, tzinfo=dt.UTC)  # daytime where the shoppers live


def beat(at):
    with time_machine.travel(at, tick=False):
        flows_run()
        messages_dispatch()


def test_a_left_cart_gets_its_reminder_and_a_bought_one_none(
    make_shopper, kettle, mailoutbox, django_capture_on_commit_callbacks
):
    ann, bo = make_shopper(), make_shopper()
    with time_machine.travel(NOON, tick=False), django_capture_on_commit_callbacks(execute=True):
        ann.signup(username="ann", email="ann@example.com", marketing=True)
        bo.signup(username="bo", email="bo@example.com", marketing=True)
        ann.add(kettle)
        bo.add(kettle)
    with (
        time_machine.travel(NOON + dt.timedelta(minutes=30), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        bo.checkout(email="bo@example.com", first_name="Bo", marketing=True)

    beat(NOON + dt.timedelta(hours=1, minutes=1))  # left: the reminder waits for two hours
    assert [m for m in mailoutbox if m.subject == "Your cart is saved for you"] == []
    beat(NOON + dt.timedelta(hours=2, minutes=1))

    reminders = [m for m in mailoutbox if m.subject == "Your cart is saved for you"]
    assert [m.to for m in reminders] == [["ann@example.com"]]
    html = reminders[0].alternatives[0][0]
    # Her own cart, whatever the consent; picks only with the personalisation consent.
    assert "Kettle" in html and "In your cart" in html
    assert "Picked for you" not in html and "Popular right now" not in html
    bo_profile = pzn.Profile.objects.get(email="bo@example.com")
    assert not pzn.Message.objects.filter(
        profile=bo_profile, flow_step__flow__kind=pzn.FlowKind.ABANDONED_CART
    ).exists()
