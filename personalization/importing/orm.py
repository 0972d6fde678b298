"""Writing checked orders through the ORM, on any database (PostgreSQL has a faster way:
:mod:`.postgres`).

Each batch is one transaction of a few set-based queries (lookups with ``__in``,
``bulk_create``); a concurrent import of the same orders makes the batch roll back and try
again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import IntegrityError, OperationalError, transaction

from ..models import IngestSource, Order, OrderLine, Profile, ProfileAlias
from .products import ProductKeys, bulk_create_with_pks
from .reading import ParsedOrder
from .results import BadRow, ImportResult
from .stats import STATS_PENDING, profile_stats_recompute

ATTEMPTS = 5  # for a batch that collides with a concurrent import


class OrmWriter:
    """Writes batches of checked orders; remembers products and profiles to recompute."""

    def __init__(self, *, report: Callable[[BadRow], None]):
        self.report = report
        self.products = ProductKeys()
        self.touched: set[int] = set()

    def write(self, orders: list[ParsedOrder], result: ImportResult) -> None:
        orders.sort(key=lambda order: order.order_id)  # one lock order for concurrent imports
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with transaction.atomic():
                    counts, rejected, products, touched = self._write(orders)
                break
            except (IntegrityError, OperationalError):
                # A concurrent import wrote some of the same orders, profiles or products
                # first (or a deadlock was broken). This batch was rolled back; the next
                # attempt finds what the other import wrote.
                self.products.forget()
                if attempt == ATTEMPTS:
                    raise
                time.sleep(0.05 * attempt)
        self.products.remember(products)
        for _order, errors in rejected:
            result.orders_bad += 1
            result.rows_bad += len(errors)
            for bad in errors:
                self.report(bad)
        for name, value in counts.items():
            setattr(result, name, getattr(result, name) + value)
        self.touched |= touched
        if len(self.touched) >= STATS_PENDING:
            self.stats_flush()

    def stats_flush(self) -> None:
        profile_stats_recompute(profile_ids=self.touched)
        self.touched = set()

    def close(self) -> None:
        self.products.forget()

    def _write(self, orders: list[ParsedOrder]):
        present = _orders_present([order.order_id for order in orders])
        touched = set(present.values())
        new = [order for order in orders if order.order_id not in present]
        counts = {"orders_present": len(orders) - len(new)}
        if not new:
            return counts, [], {}, touched
        products, products_created, rejected = self.products.resolve(new)
        if rejected:
            left_out = {id(order) for order, _errors in rejected}
            new = [order for order in new if id(order) not in left_out]
        profiles, counts["profiles_created"] = _profiles_resolve(new)
        order_rows = [
            Order(
                external_id=order.order_id,
                profile_id=profiles[order.email],
                placed_at=order.placed_at,
                total=order.total,
                currency=order.currency,
                status=order.status,
                source=IngestSource.IMPORT,
            )
            for order in new
        ]
        bulk_create_with_pks(Order, order_rows, "external_id")
        line_rows = [
            OrderLine(order_id=row.pk, product_id=products[key], quantity=qty, unit_price=price)
            for row, order in zip(order_rows, new, strict=True)
            for _line, key, _sku, _title, _category, qty, price in order.lines
        ]
        OrderLine.objects.bulk_create(line_rows)
        touched.update(profiles.values())
        counts.update(
            orders_imported=len(order_rows),
            lines_imported=len(line_rows),
            products_created=products_created,
        )
        return counts, rejected, products, touched


def _orders_present(order_ids: list[str]) -> dict[str, int]:
    """The profile of each of these orders already recorded."""
    rows = Order.objects.filter(external_id__in=order_ids).values_list("external_id", "profile_id")
    return dict(rows)


def _profiles_resolve(orders: list[ParsedOrder]) -> tuple[dict[str, int], int]:
    """Profile keys for the orders' emails: by email, then by former email; else created."""
    names: dict[str, tuple[str, str]] = {}
    for order in orders:
        if not any(names.get(order.email, ())):
            names[order.email] = (order.first_name, order.last_name)
    # identified() adds "email <> ''", which lets PostgreSQL use the partial unique index.
    found = dict(
        Profile.objects.identified().filter(email__in=list(names)).values_list("email", "pk")
    )
    missing = [email for email in names if email not in found]
    if missing:
        aliases = ProfileAlias.objects.filter(kind=ProfileAlias.Kind.EMAIL, value__in=missing)
        found.update(aliases.values_list("value", "profile_id"))
    new_rows = [
        Profile(email=email, first_name=names[email][0], last_name=names[email][1])
        for email in sorted(email for email in names if email not in found)
    ]
    bulk_create_with_pks(Profile, new_rows, "email")
    found.update((row.email, row.pk) for row in new_rows)
    return found, len(new_rows)
