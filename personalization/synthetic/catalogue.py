"""The catalogue the synthetic customers buy from: generated, or the shop's own mirror."""

from __future__ import annotations

import datetime as dt
import random
from bisect import bisect
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate

from django.utils.translation import gettext as _

from ..catalogue import product_categories_sync
from ..exceptions import InvalidInput
from ..models import Product, PurchaseCycle
from ..models.catalogue import CATEGORY_SEPARATOR
from .vocabulary import CATEGORIES, DURABLE_CATEGORIES

CENT = Decimal("0.01")
DISCOUNT = Decimal("0.90")
# Popularity falls with rank like a Zipf law: a handful of bestsellers, a long tail.
ZIPF_EXPONENT = 1.07
# Sensitive products sell, but less often than their rank alone would say.
SENSITIVE_DAMPING = 0.3
# Each product goes well with a few others of its department (a mug with a coffee, a scarf with
# a sweater): what an item-to-item recommender has to find in the orders.
COMPANIONS_PER_PRODUCT = 4


@dataclass(frozen=True, slots=True)
class Item:
    """A product as the planner needs it: ids, price and what kind of purchase it is."""

    pk: int
    price: Decimal
    discounted: Decimal
    category: str
    repurchase_days: int | None
    available: bool
    sensitive: bool


class Catalogue:
    """Products in popularity order, with cumulative weights for fast weighted draws."""

    def __init__(self, items: list[Item], *, currency: str, search_terms: list[str], seed: int = 0):
        if not items:
            raise InvalidInput(_("The catalogue has no products with a price."), field="products")
        self.items = items
        self.currency = currency
        # What one unit of ``currency`` is worth in the shop's currency (set by the generator).
        self.shop_rate = Decimal(1)
        weights = [
            (SENSITIVE_DAMPING if item.sensitive else 1.0) / (rank + 1) ** ZIPF_EXPONENT
            for rank, item in enumerate(items)
        ]
        self._cum = list(accumulate(weights))
        self.available = [item for item in items if item.available] or items
        self._available_cum = (
            list(accumulate(w for w, item in zip(weights, items, strict=True) if item.available))
            or self._cum
        )
        self.consumables = [item for item in items if item.repurchase_days]
        self._consumable_cum = list(
            accumulate(w for w, item in zip(weights, items, strict=True) if item.repurchase_days)
        )
        self.categories = sorted({item.category for item in items if item.category})
        self.search_terms = search_terms
        self._departments = self._by_department(weights)
        self.tastes = sorted(
            department
            for department, (members, _cum) in self._departments.items()
            if not any(item.sensitive for item in members)
        )
        self._companions = self._pair_companions(seed)

    def _by_department(self, weights: list[float]) -> dict[str, tuple[list[Item], list[float]]]:
        """Available products per top-level category, with their cumulative weights."""
        grouped: dict[str, list[tuple[Item, float]]] = {}
        for weight, item in zip(weights, self.items, strict=True):
            if item.available and item.category:
                grouped.setdefault(department_of(item), []).append((item, weight))
        return {
            department: ([item for item, _ in pairs], list(accumulate(w for _, w in pairs)))
            for department, pairs in grouped.items()
        }

    def _pair_companions(self, seed: int) -> dict[int, tuple[Item, ...]]:
        rng = random.Random(f"{seed}/companions")
        companions = {}
        for item in self.items:
            if item.sensitive or not item.category:
                continue
            members, cum = self._departments.get(department_of(item), ([], []))
            picked: list[Item] = []
            for _draw in range(COMPANIONS_PER_PRODUCT * 3 if members else 0):
                other = self._draw(rng, members, cum)
                if other != item and other not in picked:
                    picked.append(other)
            companions[item.pk] = tuple(picked[:COMPANIONS_PER_PRODUCT])
        return companions

    @staticmethod
    def _draw(rng: random.Random, items: list[Item], cum: list[float]) -> Item:
        return items[bisect(cum, rng.random() * cum[-1], hi=len(cum) - 1)]

    def pick(self, rng: random.Random) -> Item:
        return self._draw(rng, self.items, self._cum)

    def pick_available(self, rng: random.Random) -> Item:
        return self._draw(rng, self.available, self._available_cum)

    def pick_in(self, rng: random.Random, department: str) -> Item:
        """An available product of ``department`` (a top-level category), by popularity."""
        members, cum = self._departments[department]
        return self._draw(rng, members, cum)

    def pick_taste(self, rng: random.Random) -> str | None:
        """The department a customer mostly buys from (never the sensitive one)."""
        return rng.choice(self.tastes) if self.tastes else None

    def companion_of(self, rng: random.Random, item: Item) -> Item | None:
        companions = self._companions.get(item.pk)
        return rng.choice(companions) if companions else None

    def pick_consumable(self, rng: random.Random) -> Item | None:
        if not self.consumables:
            return None
        return self._draw(rng, self.consumables, self._consumable_cum)


def department_of(item: Item) -> str:
    return item.category.split(CATEGORY_SEPARATOR)[0]


def _item(
    pk: int, price: Decimal, category: str, days: int | None, available: bool, sensitive: bool
) -> Item:
    return Item(
        pk=pk,
        price=price,
        discounted=(price * DISCOUNT).quantize(CENT),
        category=category,
        repurchase_days=days,
        available=available,
        sensitive=sensitive,
    )


def _popularity_order(items: list[Item], rng: random.Random) -> list[Item]:
    rng.shuffle(items)
    return items


def _purchase_cycle(template) -> str:
    if template.repurchase_days:
        return PurchaseCycle.REPEAT
    if template.path in DURABLE_CATEGORIES:
        return PurchaseCycle.DURABLE
    return PurchaseCycle.UNKNOWN


def product_external_id(*, seed: int, number: int) -> str:
    return f"G{seed}-P{number:05d}"


def catalogue_generate(
    *, seed: int, count: int, currency: str, until: dt.datetime, batch_size: int
) -> tuple[Catalogue, int]:
    """Create ``count`` products (those not already there) and return (catalogue, created).

    The first products cover every category once, so even a small catalogue has the
    sensitive category and consumables; the rest follow the category weights.
    """
    rng = random.Random(f"{seed}/catalogue")
    cum = list(accumulate(template.weight for template in CATEGORIES))
    rows = []
    for number in range(count):
        if number < len(CATEGORIES):
            template = CATEGORIES[number]
        else:
            template = CATEGORIES[bisect(cum, rng.random() * cum[-1], hi=len(cum) - 1)]
        low, high = template.price_range
        price = Decimal(f"{int(rng.uniform(low, high))}.{rng.choice(('00', '50', '90', '95'))}")
        days = None
        if template.repurchase_days and (number < len(CATEGORIES) or rng.random() < 0.85):
            days = rng.choice(template.repurchase_days)
        external_id = product_external_id(seed=seed, number=number)
        rows.append(
            Product(
                external_id=external_id,
                sku=f"SKU-{seed}-{number:05d}",
                title=f"{rng.choice(template.adjectives)} {rng.choice(template.nouns)}",
                url=f"https://shop.example.com/p/{external_id.lower()}/",
                image_url=f"https://shop.example.com/media/{external_id.lower()}.jpg",
                price=price,
                currency=currency,
                category_path=template.path,
                in_stock=rng.random() >= 0.05,
                active=rng.random() >= 0.02,
                is_sensitive=template.is_sensitive,
                repurchase_interval_days=days,
                purchase_cycle=_purchase_cycle(template),
                source_updated_at=until - dt.timedelta(days=rng.randrange(1, 540)),
            )
        )
    wanted = [row.external_id for row in rows]
    existing: set[str] = set()
    for start in range(0, len(wanted), batch_size):
        existing.update(
            Product.objects.filter(external_id__in=wanted[start : start + batch_size]).values_list(
                "external_id", flat=True
            )
        )
    missing = [row for row in rows if row.external_id not in existing]
    Product.objects.bulk_create(missing, batch_size=batch_size)
    pks: dict[str, int] = {}
    for start in range(0, len(wanted), batch_size):
        pks.update(
            Product.objects.filter(external_id__in=wanted[start : start + batch_size]).values_list(
                "external_id", "pk"
            )
        )
    if missing:
        created = {row.external_id for row in missing}
        product_categories_sync(
            product_ids=[pk for external_id, pk in pks.items() if external_id in created],
            batch_size=batch_size,
        )
    items = [
        _item(
            pks[row.external_id],
            row.price,
            row.category_path,
            row.repurchase_interval_days,
            row.active and row.in_stock,
            row.is_sensitive,
        )
        for row in rows
    ]
    terms = sorted(
        {template.nouns[0].split()[0].lower() for template in CATEGORIES}
        | {template.path.split(CATEGORY_SEPARATOR)[-1].lower() for template in CATEGORIES}
    )
    catalogue = Catalogue(
        _popularity_order(items, rng), currency=currency, search_terms=terms, seed=seed
    )
    return catalogue, len(missing)


def catalogue_load(*, seed: int, currency: str) -> Catalogue:
    """The products already in the catalogue mirror (those with a price), in a seeded order."""
    sensitive = set(Product.objects.sensitive().values_list("pk", flat=True))
    items = []
    currencies: Counter[str] = Counter()
    terms: set[str] = set()
    for pk, price, product_currency, category, days, active, in_stock, title in (
        Product.objects.filter(price__isnull=False)
        .order_by("external_id")
        .values_list(
            "pk",
            "price",
            "currency",
            "category_path",
            "repurchase_interval_days",
            "active",
            "in_stock",
            "title",
        )
        .iterator()
    ):
        items.append(_item(pk, price, category, days, active and in_stock, pk in sensitive))
        if product_currency:
            currencies[product_currency] += 1
        if category:
            terms.add(category.split(CATEGORY_SEPARATOR)[-1].lower())
        if title.split():
            terms.add(title.split()[-1].lower())
    if not items:
        raise InvalidInput(
            _(
                "There are no products with a price in the catalogue mirror to use; "
                "add products first or leave out --existing-catalogue."
            ),
            field="existing_catalogue",
        )
    if currencies:
        currency = sorted(currencies.items(), key=lambda pair: (-pair[1], pair[0]))[0][0]
    rng = random.Random(f"{seed}/catalogue")
    return Catalogue(
        _popularity_order(items, rng), currency=currency, search_terms=sorted(terms), seed=seed
    )
