"""Record the shop's orders and carts, and keep each profile's order statistics current."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .catalogue import products_by_external_id
from .changes import Change, changes_collected, profile_changed_note
from .concurrency import TransactionRetry, atomic_retried, profiles_lock
from .consent import consent_grant_many, consents_clean
from .exceptions import InvalidInput, UnknownOrder
from .identity import Identity, attributes_clean, customers_only, profile_resolve, trusted_check
from .models import (
    Cart,
    CartLine,
    CartStatus,
    ConsentSource,
    IngestSource,
    Order,
    OrderLine,
    OrderStatus,
)
from .money import money_convert
from .stats import profile_stats_refresh
from .validation import (
    MAX_AMOUNT,
    MAX_QUANTITY,
    aware_datetime,
    choice,
    currency,
    external_id,
    identity_clean,
    instance_check,
    money,
    quantity,
    required,
)
from .validation import ip_address as ip_address_clean


@dataclass(frozen=True)
class Line:
    product_id: str
    quantity: int
    unit_price: Decimal


def lines_clean(lines: Any, *, field: str = "lines") -> list[Line]:
    if lines is None:
        return []
    if not isinstance(lines, (list, tuple)):
        raise InvalidInput(
            _("Lines are a list of {product_id, quantity, unit_price}."), field=field
        )
    cleaned = []
    for index, line in enumerate(lines):
        where = f"{field}[{index}]"
        if not isinstance(line, dict):
            raise InvalidInput(
                _("Each line is a {product_id, quantity, unit_price} mapping."), field=where
            )
        cleaned.append(
            Line(
                product_id=external_id(line.get("product_id"), field=f"{where}.product_id"),
                quantity=quantity(line.get("quantity"), field=f"{where}.quantity"),
                unit_price=money(line.get("unit_price"), field=f"{where}.unit_price"),
            )
        )
    return cleaned


@atomic_retried
def order_record(
    *,
    order_id: Any,
    identity: Identity,
    placed_at: Any,
    total: Any,
    currency_code: Any = None,
    lines: Any = None,
    cart_id: Any = None,
    consents: dict[str, str] | None = None,
    attributes: dict[str, Any] | None = None,
    ip_address: str | None = None,
    source: str = IngestSource.SIGNAL,
    trusted: bool = False,
) -> tuple[Order, bool]:
    """Record a placed order once. Returns (order, created); a repeat delivery changes nothing.

    Everything is checked before anything is written. The profile's stats are refreshed, the
    cart (if given) becomes converted, and the consents ticked at checkout are recorded.
    ``attributes`` change an existing customer's profile only when the identity names their
    own account or with ``trusted=True`` (see ``profile_resolve``): a guest checkout with a
    known customer's email adds the order to their profile and leaves their name alone.
    """
    order_id = external_id(order_id, field="order_id")
    identity = identity_clean(instance_check(identity, Identity, field="identity"))
    trusted = trusted_check(trusted)
    source = choice(source, IngestSource.values, field="source")
    ip_address = ip_address_clean(ip_address)
    consents = consents_clean(consents)
    attributes_clean(attributes or {})  # also for a repeat delivery, which writes nothing
    placed_at = aware_datetime(placed_at, field="placed_at", not_future=True)
    total = money(total, field="total")
    currency_code = currency(currency_code)
    cleaned_lines = lines_clean(lines)
    cart_id = external_id(cart_id, field="cart_id") if cart_id not in (None, "") else None
    product_pks = products_by_external_id([line.product_id for line in cleaned_lines])

    existing = Order.objects.filter(external_id=order_id).first()
    if existing:
        return existing, False
    # Converted before anything is written: an unconvertible order leaves no trace.
    shop_total = money_convert(amount=total, currency=currency_code, at=placed_at)
    with transaction.atomic(), changes_collected():
        profile = profile_resolve(identity, attributes=attributes, trusted=trusted)
        try:
            with transaction.atomic():
                order = Order.objects.create(
                    external_id=order_id,
                    profile=profile,
                    placed_at=placed_at,
                    total=total,
                    currency=currency_code,
                    shop_total=shop_total,
                    source=source,
                )
        except IntegrityError:
            # The same order arrived twice at once; the other delivery recorded it.
            return Order.objects.get(external_id=order_id), False
        OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                product_id=product_pks[line.product_id],
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
            for line in cleaned_lines
        )
        if cart_id:
            cart = Cart.objects.select_for_update().filter(external_id=cart_id).first()
            if cart is not None:
                profile_changed_note({cart.profile_id, profile.pk}, Change.CART)
                order.cart = cart
                order.save(update_fields=["cart"])
                cart.status = CartStatus.CONVERTED
                # A cart update older than the order can no longer reopen the cart.
                cart.source_updated_at = max(cart.source_updated_at, placed_at)
                cart.profile = profile
                cart.save(update_fields=["status", "source_updated_at", "profile"])
        imported = source == IngestSource.IMPORT
        consent_grant_many(
            profile=profile,
            consents=consents,
            source=ConsentSource.IMPORT if imported else ConsentSource.CHECKOUT,
            ip_address=ip_address,
            at=placed_at if imported else None,
        )
        profile_stats_refresh(profile_id=profile.pk)
        profile_changed_note(profile.pk, Change.ORDERS)
    return order, True


@atomic_retried
def order_status_set(*, order_id: Any, status: str, at: Any = None) -> Order:
    """Mark an order cancelled or refunded (idempotent); its profile's stats drop it."""
    order_id = external_id(order_id, field="order_id")
    if status not in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
        raise InvalidInput(_("An order can only be cancelled or refunded."), field="status")
    at = aware_datetime(at, field="at", not_future=True) if at is not None else timezone.now()
    found = Order.objects.filter(external_id=order_id).values_list("profile_id").first()
    if found is None:
        raise UnknownOrder(_("No order %(id)s was recorded.") % {"id": order_id}, field="order_id")
    (profile_id,) = found  # None: the customer was erased, the order still counts as revenue
    # The profile before the order (the one lock order): a new order of the same customer
    # recorded meanwhile is then committed, and counted, when the stats are recomputed.
    if profile_id is not None:
        profiles_lock([profile_id])
    order = Order.objects.select_for_update().get(external_id=order_id)
    if order.profile_id != profile_id:
        raise TransactionRetry  # a merge or an erasure moved the order meanwhile
    if order.status != status:
        order.status = status
        order.status_changed_at = at
        order.save(update_fields=["status", "status_changed_at"])
        if profile_id is not None:
            profile_stats_refresh(profile_id=profile_id)
            profile_changed_note(profile_id, Change.ORDERS)
    return order


@atomic_retried
def cart_update(
    *,
    cart_id: Any,
    identity: Identity,
    updated_at: Any,
    lines: Any,
    currency_code: Any = None,
) -> tuple[Cart | None, bool]:
    """Mirror the cart's contents as of ``updated_at``. Returns (cart, applied).

    A late update older than the newest one recorded is ignored, so carts never go back in
    time. An empty cart is marked emptied (a converted one stays converted); a non-empty one
    is open. The cart of a shop user who is not a customer (staff) is not mirrored:
    ``(None, False)``.
    """
    cart_id = external_id(cart_id, field="cart_id")
    identity = identity_clean(instance_check(identity, Identity, field="identity"))
    updated_at = aware_datetime(updated_at, field="updated_at", not_future=True)
    # None is not an empty cart: a shop that forgot the lines must not empty it.
    cleaned_lines = lines_clean(required(lines, field="lines"))
    if cleaned_lines or currency_code:
        currency_code = currency(currency_code)
    product_pks = products_by_external_id([line.product_id for line in cleaned_lines])
    merged: dict[str, Line] = {}
    for line in cleaned_lines:
        if line.product_id in merged:
            previous = merged[line.product_id]
            line = Line(line.product_id, previous.quantity + line.quantity, line.unit_price)
        merged[line.product_id] = line
    _cart_totals_check(merged.values())
    if customers_only(identity).only_not_customer:
        return None, False  # a staff member's cart is nobody's
    total = sum((line.quantity * line.unit_price for line in merged.values()), Decimal(0))
    # A cart with lines has a currency (checked above); an empty one is worth nothing.
    shop_total = (
        money_convert(amount=total, currency=currency_code, at=updated_at, field="lines")
        if total
        else Decimal(0)
    )

    with transaction.atomic(), changes_collected():
        profile = profile_resolve(identity)
        cart, created = Cart.objects.get_or_create(
            external_id=cart_id,
            defaults={"profile": profile, "source_updated_at": updated_at},
        )
        cart = Cart.objects.select_for_update().get(pk=cart.pk)
        if not created and updated_at <= cart.source_updated_at:
            return cart, False
        # A cart that changes hands (a shared device) changes both customers' carts.
        profile_changed_note({cart.profile_id, profile.pk}, Change.CART)
        cart.profile = profile
        cart.source_updated_at = updated_at
        if merged:
            cart.status = CartStatus.OPEN  # a shop that reuses the cart id reopens it
        elif cart.status != CartStatus.CONVERTED:
            # The shop clearing the cart after checkout must not hide that it converted.
            cart.status = CartStatus.EMPTIED
        cart.currency = currency_code or cart.currency
        cart.total, cart.shop_total = total, shop_total
        cart.save()
        cart.lines.all().delete()
        CartLine.objects.bulk_create(
            CartLine(
                cart=cart,
                product_id=product_pks[line.product_id],
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
            for line in merged.values()
        )
    return cart, True


def _cart_totals_check(lines) -> None:
    """The merged quantities and the total must fit their columns too."""
    total = Decimal(0)
    for line in lines:
        if line.quantity > MAX_QUANTITY:
            raise InvalidInput(
                _("The quantities of product %(id)s add up to more than %(max)d.")
                % {"id": line.product_id, "max": MAX_QUANTITY},
                field="lines",
            )
        total += line.quantity * line.unit_price
    if total >= MAX_AMOUNT:
        raise InvalidInput(_("The cart's total is too large."), field="lines")
