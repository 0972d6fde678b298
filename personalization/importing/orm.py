"""Writing checked orders through the ORM, on any database (PostgreSQL has a faster way:
:mod:`.postgres`).

Each batch is one transaction of a few set-based queries (lookups with ``__in``,
``bulk_create``); a concurrent import of the same orders makes the batch roll back and try
again.
"""

from __future__ import annotations

from collections.abc import Callable

from ..models import IngestSource, Order, OrderLine, Profile, ProfileAlias
from .products import bulk_create_with_pks
from .reading import ParsedOrder
from .results import BadRow
from .stats import profile_stats_recompute
from .writing import BatchWriter, Written, orders_suppressed_count


class OrmWriter(BatchWriter):
    """Writes batches of checked orders through the ORM."""

    def __init__(self, *, report: Callable[[BadRow], None]):
        super().__init__(report=report)
        self.touched: set[int] = set()

    def _touched_add(self, touched: set[int]) -> int:
        self.touched |= touched
        return len(self.touched)

    def stats_flush(self) -> None:
        profile_stats_recompute(profile_ids=self.touched)
        self.touched = set()

    def _write(self, orders: list[ParsedOrder], *, nested: bool) -> Written:
        present = _orders_present([order.order_id for order in orders])
        # An erased customer's orders are present without a profile: nobody's stats to redo.
        touched = {pk for pk in present.values() if pk is not None}
        new = [order for order in orders if order.order_id not in present]
        counts = {"orders_present": len(orders) - len(new)}
        if not new:
            return counts, [], {}, touched
        products, products_created, rejected = self.products.resolve(new)
        if rejected:
            left_out = {id(order) for order, _errors in rejected}
            new = [order for order in new if id(order) not in left_out]
        counts["orders_suppressed"] = orders_suppressed_count(new)
        profiles, counts["profiles_created"] = _profiles_resolve(new)
        order_rows = [
            Order(
                external_id=order.order_id,
                profile_id=profiles[order.email],
                placed_at=order.placed_at,
                total=order.total,
                currency=order.currency,
                shop_total=order.shop_total,
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
    """The profile of each of these orders already recorded (None: its customer was erased)."""
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
