"""A small shop for the flow tests: customers who can receive marketing email, carts, orders,
and one call for what Beat does each minute."""

import datetime as dt
import itertools
from decimal import Decimal

import time_machine
from django.core import mail

from personalization.flows import flows_run
from personalization.messaging import messages_dispatch
from personalization.models import Cart, Flow, FlowEntry, FlowKind, Message, Order

from ..messaging.shop import T0, customer  # noqa: F401  (re-exported for the tests)

_serial = itertools.count(1)


def beat(at: dt.datetime) -> None:
    """What Beat does in the minute at ``at``: run the flows, then send what is due."""
    with time_machine.travel(at, tick=False):
        flows_run()
        messages_dispatch()


def abandoned_cart(profile, *products, at: dt.datetime) -> Cart:
    cart = Cart.objects.create(
        external_id=f"cart-{next(_serial)}",
        profile=profile,
        currency="EUR",
        total=Decimal("30.00"),
        shop_total=Decimal("30.00"),
        source_updated_at=at,
    )
    for product in products:
        cart.lines.create(product=product, quantity=1, unit_price=product.price)
    return cart


def place_order(profile, *products, at: dt.datetime) -> Order:
    order = Order.objects.create(
        external_id=f"order-{next(_serial)}",
        profile=profile,
        placed_at=at,
        total=Decimal("30.00"),
        currency="EUR",
        shop_total=Decimal("30.00"),
        source="signal",
    )
    for product in products:
        order.lines.create(product=product, quantity=1, unit_price=product.price)
    return order


def entry_of(profile, kind: str) -> FlowEntry:
    return FlowEntry.objects.get(profile=profile, flow__kind=kind)


def flow(kind: str) -> Flow:
    return Flow.objects.get(kind=kind)


def sent_to(profile, kind: str | None = None) -> list[str]:
    """Subjects of the flow emails ``profile`` got, oldest first."""
    messages = Message.objects.filter(profile=profile, state="sent", source="flow")
    if kind:
        messages = messages.filter(flow_step__flow__kind=kind)
    subjects = [m.subject for m in messages.order_by("sent_at", "pk")]
    assert len([m for m in mail.outbox if m.to == [profile.email]]) >= len(subjects)
    return subjects


__all__ = [
    "T0",
    "FlowKind",
    "abandoned_cart",
    "beat",
    "customer",
    "entry_of",
    "flow",
    "place_order",
    "sent_to",
]
