"""The five built-in lifecycle segments, each a set-based definition over profiles.

Only orders that count (not cancelled or refunded) are considered. The profile's order
statistics (``orders_count``, ``first_order_at``, ``last_order_at``) already count only those,
and are kept current with every order, so most definitions read them instead of the orders.
Thresholds are settings (``NEW_CUSTOMER_DAYS`` and so on, see ``docs/reference/settings.md``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import StrEnum

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual
from django.utils.translation import gettext_lazy as _

from ..changes import Change
from ..conf import app_settings
from ..consent import consented_q, profiles_consented
from ..models import Cart, CartLine, Order, Profile, Purpose


class Lifecycle(StrEnum):
    """The slugs of the lifecycle segments."""

    LEAD = "lead"
    NEW_CUSTOMER = "new_customer"
    LAPSED = "lapsed"
    LOYAL = "loyal"
    CART_ABANDONER = "cart_abandoner"


# Name and description a new installation starts with; a marketer may rename them.
LIFECYCLE_TEXTS = {
    Lifecycle.LEAD: (
        _("Leads"),
        _("Subscribed to email marketing and has not ordered yet."),
    ),
    Lifecycle.NEW_CUSTOMER: (
        _("New customers"),
        _("Placed their first order within the last NEW_CUSTOMER_DAYS days (default 30)."),
    ),
    Lifecycle.LAPSED: (
        _("Lapsed customers"),
        _("Ordered before, but not in the last LAPSED_AFTER_DAYS days (default 180)."),
    ),
    Lifecycle.LOYAL: (
        _("Loyal customers"),
        _(
            "At least LOYAL_MIN_ORDERS orders (default 3) within the last LOYAL_WITHIN_DAYS "
            "days (default 365)."
        ),
    ),
    Lifecycle.CART_ABANDONER: (
        _("Cart abandoners"),
        _(
            "An open cart last changed between an hour and seven days ago (settings "
            "CART_ABANDONED_AFTER_MINUTES and CART_ABANDONED_WITHIN_DAYS), with no order since."
        ),
    ),
}


def _lead(profiles: QuerySet[Profile], now: dt.datetime) -> QuerySet[Profile]:
    return profiles_consented(profiles.filter(orders_count=0), Purpose.EMAIL_MARKETING)


def _new_customer(profiles: QuerySet[Profile], now: dt.datetime) -> QuerySet[Profile]:
    since = now - dt.timedelta(days=app_settings.NEW_CUSTOMER_DAYS)
    return profiles.filter(first_order_at__gte=since)


def _lapsed(profiles: QuerySet[Profile], now: dt.datetime) -> QuerySet[Profile]:
    before = now - dt.timedelta(days=app_settings.LAPSED_AFTER_DAYS)
    return profiles.filter(orders_count__gt=0, last_order_at__lt=before)


def _loyal(profiles: QuerySet[Profile], now: dt.datetime) -> QuerySet[Profile]:
    since = now - dt.timedelta(days=app_settings.LOYAL_WITHIN_DAYS)
    minimum = app_settings.LOYAL_MIN_ORDERS
    enough_recent_orders = (
        Order.objects.counted()
        # Not the erased customers' orders, which would form a group of their own (NULL).
        .filter(placed_at__gte=since, profile__isnull=False)
        .order_by()
        .values("profile")
        .annotate(recent=Count("pk"))
        .filter(recent__gte=minimum)
        .values("profile")
    )
    # The statistics rule most profiles out before any order is read.
    return profiles.filter(
        orders_count__gte=minimum, last_order_at__gte=since, pk__in=enough_recent_orders
    )


def _cart_abandoner(profiles: QuerySet[Profile], now: dt.datetime) -> QuerySet[Profile]:
    return profiles.filter(pk__in=abandoned_carts(now).values("profile"))


def abandoned_carts(now: dt.datetime) -> QuerySet[Cart]:
    changed_before = now - dt.timedelta(minutes=app_settings.CART_ABANDONED_AFTER_MINUTES)
    changed_after = now - dt.timedelta(days=app_settings.CART_ABANDONED_WITHIN_DAYS)
    ordered_since = Order.objects.counted().filter(
        profile=OuterRef("profile"), placed_at__gt=OuterRef("source_updated_at")
    )
    return (
        Cart.objects.open()
        .filter(source_updated_at__gte=changed_after, source_updated_at__lte=changed_before)
        .filter(Exists(CartLine.objects.filter(cart=OuterRef("pk"))))
        .filter(~Exists(ordered_since))
    )


# What the lifecycle definitions read: a change of anything else (a browse event, a name)
# cannot move a profile in or out of one.
LIFECYCLE_DEPENDS_ON = frozenset({Change.ORDERS, Change.CART, Change.CONSENT, Change.MERGE})

DEFINITIONS: dict[str, Callable[[QuerySet[Profile], dt.datetime], QuerySet[Profile]]] = {
    Lifecycle.LEAD: _lead,
    Lifecycle.NEW_CUSTOMER: _new_customer,
    Lifecycle.LAPSED: _lapsed,
    Lifecycle.LOYAL: _loyal,
    Lifecycle.CART_ABANDONER: _cart_abandoner,
}


# The same definitions as conditions on one profile row, for evaluating a few profiles (the
# realtime update): only correlated subqueries, where the set forms above join or group over
# everybody. Tests hold both forms to the same members.


def _lead_row(now: dt.datetime) -> Q:
    return Q(orders_count=0) & consented_q(Purpose.EMAIL_MARKETING)


def _new_customer_row(now: dt.datetime) -> Q:
    return Q(first_order_at__gte=now - dt.timedelta(days=app_settings.NEW_CUSTOMER_DAYS))


def _lapsed_row(now: dt.datetime) -> Q:
    before = now - dt.timedelta(days=app_settings.LAPSED_AFTER_DAYS)
    return Q(orders_count__gt=0, last_order_at__lt=before)


def _loyal_row(now: dt.datetime) -> Q:
    since = now - dt.timedelta(days=app_settings.LOYAL_WITHIN_DAYS)
    minimum = app_settings.LOYAL_MIN_ORDERS
    recent = Subquery(
        Order.objects.counted()
        .filter(profile=OuterRef("pk"), placed_at__gte=since)
        .order_by()
        .values("profile")
        .annotate(recent=Count("pk"))
        .values("recent"),
        output_field=IntegerField(),
    )
    return Q(orders_count__gte=minimum, last_order_at__gte=since) & Q(
        GreaterThanOrEqual(Coalesce(recent, 0), minimum)
    )


def _cart_abandoner_row(now: dt.datetime) -> Q:
    return Q(Exists(abandoned_carts(now).filter(profile=OuterRef("pk"))))


ROW_DEFINITIONS: dict[str, Callable[[dt.datetime], Q]] = {
    Lifecycle.LEAD: _lead_row,
    Lifecycle.NEW_CUSTOMER: _new_customer_row,
    Lifecycle.LAPSED: _lapsed_row,
    Lifecycle.LOYAL: _loyal_row,
    Lifecycle.CART_ABANDONER: _cart_abandoner_row,
}


def lifecycle_q(slug: str, *, now: dt.datetime) -> Q:
    """Lifecycle segment ``slug`` at ``now`` as a condition on one profile row."""
    return ROW_DEFINITIONS[slug](now)


def lifecycle_members(
    slug: str, *, now: dt.datetime, profiles: QuerySet[Profile] | None = None
) -> QuerySet[Profile]:
    """The profiles (of ``profiles``, default all) in lifecycle segment ``slug`` at ``now``."""
    profiles = Profile.objects.all() if profiles is None else profiles
    return DEFINITIONS[slug](profiles, now)


__all__ = [
    "DEFINITIONS",
    "LIFECYCLE_DEPENDS_ON",
    "LIFECYCLE_TEXTS",
    "Lifecycle",
    "lifecycle_members",
    "lifecycle_q",
]
