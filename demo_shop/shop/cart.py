"""The session cart: a cart id (a UUID) and product quantities kept in the session.

Prices are always the product's current price; nothing about money is trusted from the session.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from .models import Product

SESSION_KEY = "shop_cart"
MAX_QUANTITY = 99


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def unit_price(self) -> Decimal:
        return self.product.price

    @property
    def line_total(self) -> Decimal:
        return self.quantity * self.product.price


class SessionCart:
    def __init__(self, session):
        self.session = session
        data = session.get(SESSION_KEY)
        if not isinstance(data, dict) or not _is_uuid(data.get("id")):
            data = {"id": uuid.uuid4().hex, "items": {}}
        self._data = data
        self._lines: list[CartLine] | None = None

    @property
    def id(self) -> str:
        return self._data["id"]

    @property
    def items(self) -> dict[str, int]:
        return self._data["items"]

    def quantity_of(self, product: Product) -> int:
        return self.items.get(str(product.pk), 0)

    def set(self, product: Product, quantity: int) -> int:
        """Set a product's quantity (0 removes it), capped at stock. Returns what was set."""
        quantity = max(0, min(quantity, product.stock, MAX_QUANTITY))
        if quantity:
            self.items[str(product.pk)] = quantity
        else:
            self.items.pop(str(product.pk), None)
        self._save()
        return quantity

    def add(self, product: Product, quantity: int = 1) -> int:
        return self.set(product, self.quantity_of(product) + quantity)

    def remove(self, product: Product) -> None:
        self.set(product, 0)

    def lines(self) -> list[CartLine]:
        """The cart's lines, for products that are still for sale."""
        if self._lines is None:
            products = Product.objects.active().in_bulk([int(pk) for pk in self.items])
            self._lines = [
                CartLine(product=products[int(pk)], quantity=quantity)
                for pk, quantity in self.items.items()
                if int(pk) in products
            ]
        return self._lines

    @property
    def total(self) -> Decimal:
        return sum((line.line_total for line in self.lines()), Decimal(0))

    @property
    def count(self) -> int:
        """Items in the cart (for the header); products no longer for sale don't count."""
        return sum(line.quantity for line in self.lines()) if self.items else 0

    def __bool__(self) -> bool:
        return bool(self.items)

    def start_new(self) -> None:
        """After checkout: the old cart became an order; the next one gets a new id."""
        self._data = {"id": uuid.uuid4().hex, "items": {}}
        self._save()

    def _save(self) -> None:
        self._lines = None
        self.session[SESSION_KEY] = self._data
        self.session.modified = True


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
