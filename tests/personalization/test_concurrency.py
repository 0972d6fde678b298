"""Concurrent deliveries against real PostgreSQL row locks and unique indexes."""

import datetime as dt

import pytest

from personalization import signals
from personalization.models import Cart, Order, Profile
from personalization.tracking import identify
from tests.concurrency import run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
T0 = dt.datetime(2026, 7, 1, 8, tzinfo=dt.UTC)


def test_the_same_order_sent_by_several_workers_at_once_is_recorded_once(product_factory):
    product_factory(external_id="mug")

    def deliver():
        signals.order_placed.send(
            sender=None,
            order_id="race-1",
            email="ann@example.com",
            placed_at=T0,
            total="12.50",
            currency="EUR",
            lines=[{"product_id": "mug", "quantity": 1, "unit_price": "12.50"}],
        )

    run_concurrently([deliver] * 6)

    assert Order.objects.count() == 1
    assert Order.objects.get().lines.count() == 1
    profile = Profile.objects.get()
    assert profile.orders_count == 1


def test_simultaneous_first_visits_with_one_email_make_one_profile():
    run_concurrently([lambda: identify(email="Ann@Example.com")] * 6)
    assert Profile.objects.count() == 1


def test_cart_updates_racing_each_other_end_with_the_newest(product_factory):
    product_factory(external_id="mug")

    def update(minute):
        return lambda: signals.cart_updated.send(
            sender=None,
            cart_id="cart-race",
            email="ann@example.com",
            currency="EUR",
            updated_at=T0 + dt.timedelta(minutes=minute),
            lines=[{"product_id": "mug", "quantity": minute, "unit_price": "1.00"}],
        )

    run_concurrently([update(minute) for minute in (3, 1, 5, 2, 4)])

    cart = Cart.objects.get()
    assert cart.lines.get().quantity == 5
    assert cart.source_updated_at == T0 + dt.timedelta(minutes=5)
