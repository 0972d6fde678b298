"""The shop's write operations. Views parse input, call one of these, and answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from personalization.capture.forms import ConsentForm
from personalization.jobs import job_enqueue
from personalization.models import ConsentSource

from . import integration
from .cart import SessionCart
from .jobs import ORDER_CONFIRMATION_SEND
from .models import Order, OrderLine, Product


class CheckoutError(ValueError):
    """The order cannot be placed as it stands; the message is for the customer."""


@dataclass(frozen=True)
class Customer:
    email: str
    first_name: str
    last_name: str = ""


def order_for_cart(cart_id: str) -> Order | None:
    """The order already placed from this cart, if any (a double submit, a reload)."""
    try:
        return Order.objects.filter(cart_id=uuid.UUID(str(cart_id))).first()
    except ValueError:
        return None


def order_place(
    *, request, cart: SessionCart, customer: Customer, consent: ConsentForm | None = None
) -> tuple[Order, bool]:
    """Turn the session cart into an order, and record the consent boxes ticked on the
    (valid) ``consent`` form with it. Returns (order, created).

    Placing the same cart twice returns the first order: the cart id is unique on orders, so
    even two submits racing each other end with one order.
    """
    existing = order_for_cart(cart.id)
    if existing is not None:
        return existing, False
    lines = cart.lines()
    if not lines:
        raise CheckoutError(_("Your cart is empty."))
    user = request.user if request.user.is_authenticated else None
    try:
        with transaction.atomic():
            order = _order_create(cart=cart, customer=customer, user=user)
            # Inside the transaction on purpose: the shop's order and the app's record of it
            # commit together. integration.send_safely() gives the app its own savepoint and
            # only logs InvalidInput, so malformed marketing data never costs a sale.
            # The consent needs the customer's profile, which the app makes from the order.
            if integration.order_placed(request=request, order=order) and consent is not None:
                integration.consent_given(
                    request=request, form=consent, source=ConsentSource.CHECKOUT, order=order
                )
            # Recorded with the order, handed to Celery after commit: a broker that is down
            # delays the email, it never fails the checkout or loses the email.
            job_enqueue(
                task=ORDER_CONFIRMATION_SEND,
                # The email goes out in the language the customer checked out in.
                args={"order_id": order.pk, "language": get_language()},
                key=f"{ORDER_CONFIRMATION_SEND}:{order.pk}",
            )
    except IntegrityError:
        # Another submit of the same cart won the race; answer with its order.
        existing = order_for_cart(cart.id)
        if existing is None:
            raise
        return existing, False
    return order, True


def _order_create(*, cart: SessionCart, customer: Customer, user) -> Order:
    quantities = {line.product.pk: line.quantity for line in cart.lines()}
    products = Product.objects.select_for_update().in_bulk(list(quantities))
    short = [products[pk] for pk, quantity in quantities.items() if products[pk].stock < quantity]
    if short:
        raise CheckoutError(
            _("Sorry, we don't have enough of: %(titles)s. Please update your cart.")
            % {"titles": ", ".join(p.title for p in short)}
        )
    order = Order.objects.create(
        cart_id=uuid.UUID(cart.id),
        user=user,
        email=customer.email,
        first_name=customer.first_name,
        last_name=customer.last_name,
        total=sum(products[pk].price * qty for pk, qty in quantities.items()),
        currency="EUR",
    )
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            product=products[pk],
            title=products[pk].title,
            quantity=quantity,
            unit_price=products[pk].price,
        )
        for pk, quantity in quantities.items()
    )
    for pk, quantity in quantities.items():
        # The rows are locked, so this read-modify-write is safe; post_save tells the app.
        product = products[pk]
        product.stock -= quantity
        product.save(update_fields=["stock", "updated_at"])
    return order
