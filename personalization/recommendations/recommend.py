"""Reading recommendations: what to show a customer, or next to a product, and why.

Built on the item-to-item model (:func:`~.selectors.product_neighbours`) and filled up with
what sells. Every call runs a bounded number of set-based queries, whatever the size of the
catalogue or of the customer's history.

Rules, in the order they apply:

- only products that are active, in stock and not sensitive are returned; a product in a
  category of ``RECOMMENDATION_ALLOWED_SENSITIVE_CATEGORIES`` only to a customer with
  personalisation consent, and a product the shop flagged ``is_sensitive`` never;
- without that consent the customer's data is not read at all: the picks are bestsellers
  (optionally in a category) and the result says ``personalized=False``;
- a product the customer bought is not shown again unless it is a repeat purchase
  (``purchase_cycle`` ``repeat`` or a ``repurchase_interval_days``); after a ``durable`` one,
  its category rests for ``RECOMMENDATION_DURABLE_COOLDOWN_DAYS``;
- what is in the customer's open cart is left out, unless ``context="cart_reminder"``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from django.db import models
from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..conf import app_settings
from ..consent import has_consent
from ..models import (
    CartLine,
    Event,
    EventName,
    OrderLine,
    OrderStatus,
    Product,
    ProductCategory,
    ProductNeighbour,
    ProductPopularity,
    Profile,
    PurchaseCycle,
    Purpose,
    RecommendationModel,
)
from ..models.catalogue import CATEGORY_SEPARATOR, category_key, category_matches
from .replenishment import due_from_purchases

Context = Literal["general", "cart_reminder"]

# What each kind of history weighs as a starting point, before its age halves it.
SEED_WEIGHTS = {"purchase": 1.0, "cart": 0.8, "view": 0.3}


class Reason(models.TextChoices):
    """Why a product was picked: for the "why am I seeing this" text and for audits."""

    RESTOCK = "restock", _("bought regularly and due again")
    BOUGHT_TOGETHER = "bought_together", _("often bought together")
    VIEWED_TOGETHER = "viewed_together", _("often viewed together")
    IN_CART = "in_cart", _("in the customer's cart")
    POPULAR_IN_CATEGORY = "popular_in_category", _("popular in its category")
    BESTSELLER = "bestseller", _("bestseller")


@dataclass(frozen=True)
class Recommendation:
    """One pick. ``score`` orders picks of one result; it is not comparable across results."""

    product: Product
    score: float
    reason: str
    because_of: Product | None = None
    category: str = ""
    last_bought_at: dt.datetime | None = None

    @property
    def reason_text(self) -> str:
        """The translated "why am I seeing this" line."""
        if self.reason == Reason.RESTOCK and self.last_bought_at is not None:
            return gettext("You last ordered this on %(date)s") % {
                "date": date_format(timezone.localdate(self.last_bought_at))
            }
        if self.reason == Reason.BOUGHT_TOGETHER and self.because_of is not None:
            return gettext("Often bought with %(product)s") % {"product": self.because_of.title}
        if self.reason == Reason.VIEWED_TOGETHER and self.because_of is not None:
            return gettext("Often viewed with %(product)s") % {"product": self.because_of.title}
        if self.reason == Reason.IN_CART:
            return gettext("Still in your cart")
        if self.reason == Reason.POPULAR_IN_CATEGORY and self.category:
            return gettext("Popular in %(category)s") % {"category": self.category}
        return gettext("A bestseller")


@dataclass(frozen=True)
class Recommendations:
    """The picks, best first. ``personalized`` is False when the customer's own data was not
    used (no consent, no profile, or nothing to start from): never imply tailoring then."""

    items: tuple[Recommendation, ...]
    personalized: bool

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def products(self) -> list[Product]:
        return [item.product for item in self.items]


# --- What may be shown -------------------------------------------------------------------------


def _sensitive_condition(*, consented: bool) -> Q:
    """Q for the products this customer must not be shown or profiled from."""
    allowed = (
        {name.casefold() for name in app_settings.RECOMMENDATION_ALLOWED_SENSITIVE_CATEGORIES}
        if consented
        else set()
    )
    condition = Q(is_sensitive=True)
    for name in app_settings.SENSITIVE_CATEGORIES:
        if name.casefold() not in allowed:
            condition |= category_matches(name)
    return condition


def _usable(*, consented: bool):
    """Products that may be built from (in or out of stock)."""
    return Product.objects.exclude(_sensitive_condition(consented=consented))


def _showable(*, consented: bool, category: str | None):
    rows = _usable(consented=consented).filter(active=True, in_stock=True)
    if category:
        rows = rows.filter(
            pk__in=ProductCategory.objects.filter(key=category_key(category)).values("product")
        )
    return rows


def _category_name(path: str) -> str:
    return path.split(CATEGORY_SEPARATOR)[-1] if path else ""


# --- What this customer did, and should not see again -----------------------------------------


@dataclass
class _History:
    """One customer's purchases, cart and views as the rules and the seeds need them."""

    excluded: set[int]  # bought (not repeat) or in the cart
    cooling: set[str]  # category keys resting after a durable purchase
    seeds: dict[int, float]  # product → weight as a starting point
    paths: dict[int, str]  # product → category path, for the seeds
    repeats: dict[int, tuple[dt.datetime, int | None]]  # repeat purchase → (last, own interval)

    @property
    def cooling_condition(self) -> Q:
        if not self.cooling:
            return Q(pk__in=[])
        return Q(pk__in=ProductCategory.objects.filter(key__in=self.cooling).values("product"))


def _age_weight(kind: str, last: dt.datetime | None, now: dt.datetime) -> float:
    half_life = float(app_settings.RECOMMENDATION_HALF_LIFE_DAYS)
    age_days = max((now - (last or now)).total_seconds() / 86400, 0.0)
    return SEED_WEIGHTS[kind] * 0.5 ** (age_days / half_life)


def _history(
    *, profile: Profile, consented: bool, now: dt.datetime, context: str, with_views: bool = True
) -> _History:
    """Read what the customer bought, has in their cart and viewed: one query each, each
    aggregated per product in the database. Only products that may be used for this customer
    are read (a sensitive product is never a candidate either, so it need not be excluded)."""
    usable = _usable(consented=consented).values("pk")
    since = now - dt.timedelta(days=app_settings.RECOMMENDATION_HISTORY_DAYS)
    cooldown_since = now - dt.timedelta(days=app_settings.RECOMMENDATION_DURABLE_COOLDOWN_DAYS)
    history = _History(
        excluded=set(), cooling=set(), seeds=defaultdict(float), paths={}, repeats={}
    )

    bought = (
        OrderLine.objects.filter(
            order__profile=profile,
            order__status=OrderStatus.PLACED,
            order__placed_at__lte=now,
            product__in=usable,
        )
        .values(
            "product_id",
            "product__purchase_cycle",
            "product__repurchase_interval_days",
            "product__category_path",
        )
        .annotate(last=Max("order__placed_at"))
    )
    for row in bought:
        product_id, cycle, path = (
            row["product_id"],
            row["product__purchase_cycle"],
            row["product__category_path"],
        )
        own_interval = row["product__repurchase_interval_days"]
        if cycle == PurchaseCycle.REPEAT or own_interval:
            history.repeats[product_id] = (row["last"], own_interval)
        else:
            history.excluded.add(product_id)
        if cycle == PurchaseCycle.DURABLE and path and row["last"] >= cooldown_since:
            history.cooling.add(category_key(path))
        if row["last"] >= since:
            history.seeds[product_id] += _age_weight("purchase", row["last"], now)
            history.paths[product_id] = path

    in_cart = (
        _cart_lines(profile=profile)
        .filter(product__in=usable)
        .values("product_id", "product__category_path")
        .annotate(last=Max("cart__source_updated_at"))
    )
    for row in in_cart:
        if context != "cart_reminder":
            history.excluded.add(row["product_id"])
        history.seeds[row["product_id"]] += _age_weight("cart", row["last"], now)
        history.paths[row["product_id"]] = row["product__category_path"]

    if with_views:
        viewed = (
            Event.objects.filter(
                profile=profile,
                name=EventName.PRODUCT_VIEWED,
                is_sensitive=False,
                occurred_at__gte=since,
                occurred_at__lte=now,
                product__in=usable,
            )
            .values("product_id", "product__category_path")
            .annotate(last=Max("occurred_at"))
        )
        for row in viewed:
            history.seeds[row["product_id"]] += _age_weight("view", row["last"], now)
            history.paths[row["product_id"]] = row["product__category_path"]
    history.seeds = dict(history.seeds)
    return history


def _cart_lines(*, profile: Profile):
    return CartLine.objects.filter(cart__profile=profile, cart__status="open")


# --- Fill-ups that need no one's data ----------------------------------------------------------


def _bestsellers(*, candidates, now: dt.datetime, limit: int, category_key_: str | None = None):
    """(product id, orders) of the most ordered candidates: one query.

    Read from the current build's counts (one indexed query, whatever the order history's
    size); before the first build they are counted from the orders of the last N days.
    """
    in_category = (
        ProductCategory.objects.filter(key=category_key_).values("product")
        if category_key_
        else None
    )
    counted = ProductPopularity.objects.current().filter(product__in=candidates.values("pk"))
    if in_category is not None:
        counted = counted.filter(product__in=in_category)
    rows = list(counted.order_by("rank").values_list("product_id", "orders")[:limit])
    if rows or RecommendationModel.objects.current().exists():
        return rows
    since = now - dt.timedelta(days=app_settings.RECOMMENDATION_BESTSELLER_DAYS)
    lines = OrderLine.objects.filter(
        order__status=OrderStatus.PLACED,
        order__placed_at__gte=since,
        order__placed_at__lte=now,
        product__in=candidates.values("pk"),
    )
    if in_category is not None:
        lines = lines.filter(product__in=in_category)
    return list(
        lines.values("product_id")
        .annotate(orders=Count("order", distinct=True))
        .order_by("-orders", "product_id")
        .values_list("product_id", "orders")[:limit]
    )


class _Picks:
    """Collects picks in order, each product once, up to ``limit``."""

    def __init__(self, limit: int):
        self.limit = limit
        self.rows: list[tuple[int, float, str, int | None, str]] = []
        self.seen: set[int] = set()
        self.last_bought: dict[int, dt.datetime] = {}

    @property
    def full(self) -> bool:
        return len(self.rows) >= self.limit

    def add(self, product_id, score, reason, because_of=None, category=""):
        if product_id in self.seen or self.full:
            return
        self.seen.add(product_id)
        self.rows.append((product_id, float(score), reason, because_of, category))

    def result(self, *, personalized: bool) -> Recommendations:
        ids = {row[0] for row in self.rows} | {row[3] for row in self.rows if row[3]}
        products = Product.objects.in_bulk(ids)
        items = tuple(
            Recommendation(
                product=products[product_id],
                score=score,
                reason=reason,
                because_of=products.get(because) if because else None,
                category=category,
                last_bought_at=self.last_bought.get(product_id),
            )
            for product_id, score, reason, because, category in self.rows
            if product_id in products
        )
        return Recommendations(items=items, personalized=personalized)


def _fill(picks: _Picks, *, candidates, now: dt.datetime, category_path: str = "") -> None:
    """Popular in ``category_path`` first (when given), then bestsellers."""
    if category_path and not picks.full:
        rows = _bestsellers(
            candidates=candidates.exclude(pk__in=picks.seen),
            now=now,
            limit=picks.limit,
            category_key_=category_key(category_path),
        )
        for product_id, orders in rows:
            picks.add(
                product_id, orders, Reason.POPULAR_IN_CATEGORY, None, _category_name(category_path)
            )
    if not picks.full:
        rows = _bestsellers(
            candidates=candidates.exclude(pk__in=picks.seen), now=now, limit=picks.limit
        )
        for product_id, orders in rows:
            picks.add(product_id, orders, Reason.BESTSELLER)


def _restock(picks: _Picks, *, history: _History, candidates, now: dt.datetime) -> None:
    """Repeat purchases the customer is due to buy again, most overdue first, in at most half
    of the places (the rest is for discovery)."""
    due = due_from_purchases(last_bought=history.repeats, now=now)
    if not due:
        return
    showable = set(candidates.filter(pk__in=list(due)).values_list("pk", flat=True))
    places = max(1, picks.limit // 2)
    for product_id in sorted(showable, key=lambda pk: (due[pk], pk))[:places]:
        picks.add(product_id, 1.0, Reason.RESTOCK)
        picks.last_bought[product_id] = history.repeats[product_id][0]


def _neighbour_reason(co_purchases: int) -> str:
    return Reason.BOUGHT_TOGETHER if co_purchases else Reason.VIEWED_TOGETHER


# --- Public -----------------------------------------------------------------------------------


def recommend_for_product(
    *,
    product: Product,
    limit: int = 10,
    profile: Profile | None = None,
    now: dt.datetime | None = None,
) -> Recommendations:
    """Products to show next to ``product``: its neighbours, then what is popular in its
    category, then bestsellers.

    With a ``profile`` that consents to personalisation, what they bought, what rests after a
    durable purchase and their cart are left out too, and the result is ``personalized``.
    A sensitive product is never built from: its page gets bestsellers.
    """
    now = now or timezone.now()
    consented = profile is not None and has_consent(
        profile=profile, purpose=Purpose.PERSONALIZATION
    )
    candidates = _showable(consented=consented, category=None).exclude(pk=product.pk)
    if consented:
        history = _history(
            profile=profile, consented=True, now=now, context="general", with_views=False
        )
        candidates = candidates.exclude(pk__in=history.excluded).exclude(history.cooling_condition)
    picks = _Picks(limit)
    usable = _usable(consented=consented).filter(pk=product.pk).exists()
    if usable:
        rows = (
            ProductNeighbour.objects.current()
            .filter(product=product, neighbour__in=candidates.values("pk"))
            .order_by("-score", "rank")
            .values_list("neighbour_id", "score", "co_purchases")[:limit]
        )
        for neighbour_id, score, co_purchases in rows:
            picks.add(neighbour_id, score, _neighbour_reason(co_purchases), product.pk)
    _fill(
        picks, candidates=candidates, now=now, category_path=product.category_path if usable else ""
    )
    return picks.result(personalized=consented)


def recommend_for_profile(
    *,
    profile: Profile,
    limit: int = 10,
    context: Context | str = "general",
    category: str | None = None,
    now: dt.datetime | None = None,
) -> Recommendations:
    """Products for this customer, best first, from their recent purchases, views and cart
    (weighted by recency), filled up with what is popular.

    ``context="cart_reminder"`` puts what is in their cart first instead of leaving it out.
    ``category`` (a category path, e.g. ``"Food > Coffee"``) keeps picks within it. Without
    personalisation consent, or with nothing to start from, the picks are bestsellers and the
    result is not ``personalized``.
    """
    now = now or timezone.now()
    consented = has_consent(profile=profile, purpose=Purpose.PERSONALIZATION)
    candidates = _showable(consented=consented, category=category)
    picks = _Picks(limit)
    if not consented:
        _fill(picks, candidates=candidates, now=now, category_path=category or "")
        return picks.result(personalized=False)

    history = _history(profile=profile, consented=True, now=now, context=context)
    candidates = candidates.exclude(history.cooling_condition)
    if context == "cart_reminder":
        in_cart = (
            _cart_lines(profile=profile)
            .filter(product__in=candidates.values("pk"))
            .order_by("-quantity", "product_id")
            .values_list("product_id", flat=True)
        )
        for product_id in in_cart:
            picks.add(product_id, 1.0, Reason.IN_CART)
    candidates = candidates.exclude(pk__in=history.excluded)
    if history.repeats:
        _restock(picks, history=history, candidates=candidates, now=now)
    seeds = history.seeds
    if not seeds and not picks.rows:
        _fill(picks, candidates=candidates, now=now, category_path=category or "")
        return picks.result(personalized=False)

    scores: dict[int, float] = defaultdict(float)
    best: dict[int, tuple[float, int, int]] = {}  # candidate → (contribution, seed, co-purchases)
    rows = (
        ProductNeighbour.objects.current()
        .filter(product__in=list(seeds), neighbour__in=candidates.values("pk"))
        .values_list("product_id", "neighbour_id", "score", "co_purchases")
    )
    for seed, neighbour, score, co_purchases in rows:
        contribution = seeds[seed] * score
        scores[neighbour] += contribution
        if neighbour not in best or contribution > best[neighbour][0]:
            best[neighbour] = (contribution, seed, co_purchases)
    for neighbour in sorted(scores, key=lambda pk: (-scores[pk], pk)):
        _, seed, co_purchases = best[neighbour]
        picks.add(neighbour, scores[neighbour], _neighbour_reason(co_purchases), seed)

    top_seed_path = ""
    if not picks.full and seeds:
        top_seed = max(seeds, key=lambda pk: (seeds[pk], -pk))
        top_seed_path = category or history.paths.get(top_seed) or ""
    _fill(picks, candidates=candidates, now=now, category_path=top_seed_path)
    return picks.result(personalized=True)
