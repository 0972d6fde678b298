"""Orders and views written straight to the tables: these tests are about the model's build."""

import datetime as dt
from decimal import Decimal

from personalization.models import (
    Cart,
    CartLine,
    Event,
    EventName,
    Order,
    OrderLine,
    OrderStatus,
    Profile,
)

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
_serial = iter(range(1, 10**9))


def customer() -> Profile:
    return Profile.objects.create(email=f"c{next(_serial)}@example.com")


def order(*products, profile=None, status=OrderStatus.PLACED) -> Order:
    """One order with one line per product given (a product given twice: two lines)."""
    placed = Order.objects.create(
        external_id=f"O{next(_serial)}",
        profile=profile or customer(),
        placed_at=NOW - dt.timedelta(days=3),
        total=Decimal("10.00"),
        currency="EUR",
        shop_total=Decimal("10.00"),
        source="api",
        status=status,
    )
    OrderLine.objects.bulk_create(
        OrderLine(order=placed, product=product, quantity=1, unit_price=Decimal("5.00"))
        for product in products
    )
    return placed


def views(*products, profile=None, days_ago=1) -> Profile:
    """One customer viewing each product given."""
    profile = profile or customer()
    Event.objects.bulk_create(
        Event(
            profile=profile,
            name=EventName.PRODUCT_VIEWED,
            product=product,
            occurred_at=NOW - dt.timedelta(days=days_ago),
        )
        for product in products
    )
    return profile


def neighbours_of(product) -> list:
    from personalization.recommendations import product_neighbours

    return list(product_neighbours(product=product))


def in_cart(profile, *products, at=None):
    """An open cart of ``profile`` holding ``products``, last changed ``at`` (two hours ago)."""
    cart = Cart.objects.create(
        external_id=f"C{profile.pk}-{products[0].pk}",
        profile=profile,
        currency="EUR",
        total=Decimal("5.00"),
        shop_total=Decimal("5.00"),
        source_updated_at=at or NOW - dt.timedelta(hours=2),
    )
    CartLine.objects.bulk_create(
        CartLine(cart=cart, product=p, quantity=1, unit_price=Decimal("5.00")) for p in products
    )
    return cart
