"""Record the shop's orders and carts, and keep each profile's order statistics current."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Count,
    DecimalField,
    Func,
    Max,
    Min,
    OuterRef,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Round
from django.utils import timezone
from django.utils.translation import gettext as _

from .catalogue import products_by_external_id
from .changes import Change, changes_collected, profile_changed_note
from .consent import consent_grant_many
from .exceptions import InvalidInput, UnknownOrder
from .identity import Identity, customers_only, profile_resolve, trusted_check
from .models import (
    Cart,
    CartLine,
    CartStatus,
    ConsentSource,
    IngestSource,
    Order,
    OrderLine,
    OrderStatus,
    Profile,
)
from .money import money_convert
from .validation import (
    aware_datetime,
    choice,
    currency,
    external_id,
    instance_check,
    money,
    quantity,
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
    instance_check(identity, Identity, field="identity")
    trusted = trusted_check(trusted)
    source = choice(source, IngestSource.values, field="source")
    ip_address = ip_address_clean(ip_address)
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


@transaction.atomic
def order_status_set(*, order_id: Any, status: str, at: Any = None) -> Order:
    """Mark an order cancelled or refunded (idempotent); its profile's stats drop it."""
    order_id = external_id(order_id, field="order_id")
    if status not in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
        raise InvalidInput(_("An order can only be cancelled or refunded."), field="status")
    at = aware_datetime(at, field="at") if at is not None else timezone.now()
    order = Order.objects.select_for_update().filter(external_id=order_id).first()
    if order is None:
        raise UnknownOrder(_("No order %(id)s was recorded.") % {"id": order_id}, field="order_id")
    if order.status != status:
        order.status = status
        order.status_changed_at = at
        order.save(update_fields=["status", "status_changed_at"])
        profile_stats_refresh(profile_id=order.profile_id)
        profile_changed_note(order.profile_id, Change.ORDERS)
    return order


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
    instance_check(identity, Identity, field="identity")
    updated_at = aware_datetime(updated_at, field="updated_at")
    cleaned_lines = lines_clean(lines)
    if cleaned_lines or currency_code:
        currency_code = currency(currency_code)
    product_pks = products_by_external_id([line.product_id for line in cleaned_lines])
    merged: dict[str, Line] = {}
    for line in cleaned_lines:
        if line.product_id in merged:
            previous = merged[line.product_id]
            line = Line(line.product_id, previous.quantity + line.quantity, line.unit_price)
        merged[line.product_id] = line
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


class _NonInteger(Func):
    """The expression itself, except on SQLite: whole-number decimals are stored there as
    integers, and integer division would truncate the average."""

    template = "%(expressions)s"

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection, template="CAST(%(expressions)s AS REAL)", **extra_context
        )


def _stats_expressions() -> dict[str, Any]:
    """Each stat as a subquery over the profile's counted orders, for one UPDATE."""
    counted = (
        Order.objects.filter(profile=OuterRef("pk"), status=OrderStatus.PLACED)
        .order_by()
        .values("profile")
    )
    money_field = DecimalField(max_digits=14, decimal_places=2)

    def aggregate(expression):
        # No counted orders: the grouped subquery has no row and yields NULL.
        return Subquery(counted.annotate(value=expression).values("value")[:1])

    # In the shop's one currency, whatever each customer paid in.
    spent, count = aggregate(Sum("shop_total")), aggregate(Count("pk"))
    return {
        "orders_count": Coalesce(count, Value(0)),
        "total_spent": Coalesce(spent, Value(Decimal(0)), output_field=money_field),
        # Rounded to cents in SQL, so the live update and the rebuild agree (half away from 0).
        "average_order_value": Coalesce(
            Round(_NonInteger(spent) / count, 2, output_field=money_field),
            Value(Decimal(0)),
            output_field=money_field,
        ),
        "first_order_at": aggregate(Min("placed_at")),
        "last_order_at": aggregate(Max("placed_at")),
    }


def profile_stats_refresh(*, profile_id: int) -> None:
    """Recompute one profile's order statistics (one UPDATE on its own orders)."""
    profile_stats_rebuild(profiles=Profile.objects.filter(pk=profile_id))


def profile_stats_rebuild(*, profiles=None) -> int:
    """Recompute the stats of every profile (or those in ``profiles``) in one UPDATE."""
    queryset = profiles if profiles is not None else Profile.objects.all()
    if connection.vendor == "postgresql":
        return _stats_rebuild_postgresql(queryset)
    return queryset.update(**_stats_expressions())


def _stats_rebuild_postgresql(profiles) -> int:
    """The same UPDATE with one aggregate pass over the orders instead of five subqueries
    per profile: what makes recomputing hundreds of thousands of profiles take seconds."""
    ids_sql, ids_params = profiles.order_by().values("pk").query.sql_with_params()
    profile_table = connection.ops.quote_name(Profile._meta.db_table)
    order_table = connection.ops.quote_name(Order._meta.db_table)
    # Rounded to cents as in _stats_expressions (PostgreSQL's ROUND is half away from 0).
    sql = f"""
        UPDATE {profile_table} p SET
            orders_count = COALESCE(s.orders, 0),
            total_spent = COALESCE(s.spent, 0),
            average_order_value = COALESCE(ROUND(s.spent / s.orders, 2), 0),
            first_order_at = s.first_at,
            last_order_at = s.last_at
        FROM ({ids_sql}) AS t (id)
        LEFT JOIN (
            SELECT profile_id, count(*) AS orders, sum(shop_total) AS spent,
                min(placed_at) AS first_at, max(placed_at) AS last_at
            FROM {order_table}
            WHERE status = %s AND profile_id IN ({ids_sql})
            GROUP BY profile_id
        ) AS s ON s.profile_id = t.id
        WHERE p.id = t.id"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [*ids_params, OrderStatus.PLACED, *ids_params])
        return cursor.rowcount
