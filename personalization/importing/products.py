"""The catalogue mirror rows of the products an import's lines name (for both writers).

Most batches name products an earlier batch already found, so the keys are remembered (a
bounded number of them) and the database is asked only about new ones.
"""

from __future__ import annotations

from collections import OrderedDict

from ..catalogue import product_categories_sync
from ..models import Product
from .reading import ParsedOrder, ProductKey
from .results import BadRow, unknown_product_reason

PRODUCT_CACHE = 100_000  # products remembered, keeping memory flat

# The orders left out because they name an unknown product without a title, with their rows.
Rejected = list[tuple[ParsedOrder, list[BadRow]]]


class ProductKeys:
    """Finds, and creates where missing, the mirror row of every product a batch names."""

    def __init__(self):
        self.known: OrderedDict[ProductKey, int] = OrderedDict()

    def resolve(self, orders: list[ParsedOrder]) -> tuple[dict[ProductKey, int], int, Rejected]:
        """Mirror keys for the products the lines name, how many were created, and the
        orders that cannot be imported.

        A line without a product_id names the product with that id, else the oldest with
        that SKU, else a new one whose product id is the SKU. A product the mirror lacks is
        described by the first line naming it with a title; without any, its orders are
        rejected. Call inside the batch's transaction; :meth:`remember` after it commits.
        """
        wanted: dict[ProductKey, tuple[str, str, str]] = {}
        for order in orders:
            for _line, key, sku, title, category, _qty, _price in order.lines:
                known = wanted.get(key)
                if known is None or (title and not known[1]):
                    wanted[key] = (sku, title, category)
        found = {key: self.known[key] for key in wanted if key in self.known}
        missing = [key for key in wanted if key not in found]
        if missing:
            found.update(_products_find(missing))
        unknown = sorted(key for key in wanted if key not in found)
        untitled = {key for key in unknown if not wanted[key][1]}
        rejected: Rejected = []
        reason = unknown_product_reason()
        for order in orders if untitled else ():
            errors = [
                BadRow(line=line, order_id=order.order_id, reason=reason)
                for line, key, *_rest in order.lines
                if key in untitled
            ]
            if errors:
                rejected.append((order, errors))
        # ("P1", "") and ("", "P1") both make the product whose id is P1: one row.
        creatable: dict[str, list[ProductKey]] = {}
        for key in unknown:
            if key not in untitled:
                creatable.setdefault(key[0] or key[1], []).append(key)
        new_rows = [
            Product(
                external_id=external_id,
                sku=wanted[keys[0]][0],
                title=wanted[keys[0]][1],
                category_path=wanted[keys[0]][2],
            )
            for external_id, keys in creatable.items()
        ]
        bulk_create_with_pks(Product, new_rows, "external_id")
        if new_rows:
            product_categories_sync(product_ids=[row.pk for row in new_rows])
        for row, keys in zip(new_rows, creatable.values(), strict=True):
            found.update((key, row.pk) for key in keys)
        return found, len(new_rows), rejected

    def remember(self, found: dict[ProductKey, int]) -> None:
        self.known.update(found)
        while len(self.known) > PRODUCT_CACHE:
            self.known.popitem(last=False)

    def forget(self) -> None:
        """After a rolled-back batch: the products it created are gone again."""
        self.known.clear()


def _products_find(keys: list[ProductKey]) -> dict[ProductKey, int]:
    found: dict[ProductKey, int] = {}
    by_id = [pid for pid, _sku in keys if pid]
    by_sku = [sku for pid, sku in keys if not pid]
    rows = Product.objects.filter(external_id__in=by_id).values_list("external_id", "pk")
    found.update(((pid, ""), pk) for pid, pk in rows)
    if by_sku:
        # Newest first, so the oldest product with the SKU is written last and wins; a
        # product whose id is the SKU wins over both.
        rows = Product.objects.filter(sku__in=by_sku).order_by("-pk")
        found.update((("", sku), pk) for sku, pk in rows.values_list("sku", "pk"))
        rows = Product.objects.filter(external_id__in=by_sku)
        found.update((("", pid), pk) for pid, pk in rows.values_list("external_id", "pk"))
    return found


def bulk_create_with_pks(model, rows: list, key: str) -> None:
    """bulk_create, then fill in the primary keys if the database did not return them."""
    model.objects.bulk_create(rows)
    if rows and rows[0].pk is None:
        pks = dict(
            model.objects.filter(**{f"{key}__in": [getattr(row, key) for row in rows]}).values_list(
                key, "pk"
            )
        )
        for row in rows:
            row.pk = pks[getattr(row, key)]
