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
from dataclasses import dataclass, field, replace
from typing import Literal

from django.db import models
from django.db.models import Count, Max, Q, Value
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


# --- What may be shown ---------------------------------------------------------------------------
#
# The rules are applied in Python to the few rows each query returns (a customer's history, a
# product's neighbours, a page of bestsellers), each row carrying the product's flags: a read
# then costs a handful of short statements instead of subqueries compiled for every call.


def _blocked_ids(*, consented: bool) -> set[int]:
    """Products this customer must not be shown or profiled from: flagged by the shop, or in a
    SENSITIVE_CATEGORIES category the shop did not allow for consenting customers (one query,
    a few rows)."""
    allowed = (
        {name.casefold() for name in app_settings.RECOMMENDATION_ALLOWED_SENSITIVE_CATEGORIES}
        if consented
        else set()
    )
    condition = Q(is_sensitive=True)
    for name in app_settings.SENSITIVE_CATEGORIES:
        if name.casefold() not in allowed:
            condition |= category_matches(name)
    return set(Product.objects.filter(condition).values_list("pk", flat=True))


def _under(path_key: str, keys: set[str]) -> bool:
    """Whether the category ``path_key`` is one of ``keys`` or below one of them."""
    return any(path_key == key or path_key.startswith(key + CATEGORY_SEPARATOR) for key in keys)


@dataclass
class _Rules:
    """What may be shown to this customer (or on this page), decided row by row."""

    blocked: set[int]  # sensitive for this customer
    excluded: set[int] = field(default_factory=set)  # bought (not repeat), in the cart, …
    cooling: set[str] = field(default_factory=set)  # category keys resting after a durable
    category: str = ""  # a category key the picks must be in (or below)

    def allows(self, pk: int, path: str, active: bool, in_stock: bool) -> bool:
        if not (active and in_stock) or pk in self.blocked or pk in self.excluded:
            return False
        key = category_key(path) if path else ""
        if self.cooling and key and _under(key, self.cooling):
            return False
        return not self.category or (bool(key) and _under(key, {self.category}))


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
    in_cart: list[int] = field(default_factory=list)  # in the open cart, most wanted first


def _age_weight(kind: str, last: dt.datetime | None, now: dt.datetime) -> float:
    half_life = float(app_settings.RECOMMENDATION_HALF_LIFE_DAYS)
    age_days = max((now - (last or now)).total_seconds() / 86400, 0.0)
    return SEED_WEIGHTS[kind] * 0.5 ** (age_days / half_life)


_PRODUCT_FIELDS = (
    "product_id",
    "product__purchase_cycle",
    "product__repurchase_interval_days",
    "product__category_path",
)


def _history(
    *, profile: Profile, blocked: set[int], now: dt.datetime, context: str, with_views: bool = True
) -> _History:
    """Read what the customer bought, has in their cart and viewed: one statement (a
    ``UNION ALL`` of three reads, each aggregated per product in the database). Products in
    ``blocked`` are neither seeds nor rules' input (they are never candidates either)."""
    since = now - dt.timedelta(days=app_settings.RECOMMENDATION_HISTORY_DAYS)
    cooldown_since = now - dt.timedelta(days=app_settings.RECOMMENDATION_DURABLE_COOLDOWN_DAYS)
    history = _History(
        excluded=set(), cooling=set(), seeds=defaultdict(float), paths={}, repeats={}
    )

    def rows(queryset, kind: str, last):
        return (
            queryset.values(*_PRODUCT_FIELDS)
            .annotate(kind=Value(kind, output_field=models.CharField()), last=Max(last))
            .values_list(*_PRODUCT_FIELDS, "kind", "last")
            .order_by()
        )

    reads = [
        rows(
            OrderLine.objects.filter(
                order__profile=profile, order__status=OrderStatus.PLACED, order__placed_at__lte=now
            ),
            "purchase",
            "order__placed_at",
        ),
        rows(_cart_lines(profile=profile), "cart", "cart__source_updated_at"),
    ]
    if with_views:
        reads.append(
            rows(
                Event.objects.filter(
                    profile=profile,
                    name=EventName.PRODUCT_VIEWED,
                    is_sensitive=False,
                    occurred_at__gte=since,
                    occurred_at__lte=now,
                    product__isnull=False,
                ),
                "view",
                "occurred_at",
            )
        )
    for product_id, cycle, own_interval, path, kind, last in reads[0].union(*reads[1:], all=True):
        if product_id in blocked:
            continue
        if kind == "purchase":
            if cycle == PurchaseCycle.REPEAT or own_interval:
                history.repeats[product_id] = (last, own_interval)
            else:
                history.excluded.add(product_id)
            if cycle == PurchaseCycle.DURABLE and path and last >= cooldown_since:
                history.cooling.add(category_key(path))
            if last < since:
                continue
        elif kind == "cart":
            history.in_cart.append(product_id)
            if context != "cart_reminder":
                history.excluded.add(product_id)
        history.seeds[product_id] += _age_weight(kind, last, now)
        history.paths[product_id] = path
    history.seeds = dict(history.seeds)
    return history


def _cart_lines(*, profile: Profile):
    return CartLine.objects.filter(cart__profile=profile, cart__status="open")


# --- Fill-ups that need no one's data ----------------------------------------------------------

# A product's flags the rules read, next to its id, in every read of candidates.
_FLAGS = ("product__category_path", "product__active", "product__in_stock")

# Bestsellers are read in pages of this many, best first, until the rules leave enough.
BESTSELLER_PAGE = 100


def _bestsellers(*, rules: _Rules, now: dt.datetime, limit: int, skip: set[int]):
    """(product id, orders) of the most ordered products the rules allow, best first.

    Read from the current build's counts (an indexed read of a page or two, whatever the order
    history's size); before the first build they are counted from the orders of the last N
    days."""
    found: list[tuple[int, int]] = []
    counted = ProductPopularity.objects.current()
    if rules.category:
        counted = counted.filter(
            product__in=ProductCategory.objects.filter(key=rules.category).values("product")
        )
    fields = (
        "product_id",
        "orders",
        "product__category_path",
        "product__active",
        "product__in_stock",
    )
    start, any_rows = 0, False
    while len(found) < limit:
        page = list(counted.order_by("rank").values_list(*fields)[start : start + BESTSELLER_PAGE])
        any_rows = any_rows or bool(page)
        for product_id, orders, path, active, in_stock in page:
            if product_id not in skip and rules.allows(product_id, path, active, in_stock):
                found.append((product_id, orders))
        if len(page) < BESTSELLER_PAGE:
            break
        start += BESTSELLER_PAGE
    if any_rows or RecommendationModel.objects.current().exists():
        return found[:limit]
    return _bestsellers_counted(rules=rules, now=now, limit=limit, skip=skip)


def _bestsellers_counted(*, rules: _Rules, now: dt.datetime, limit: int, skip: set[int]):
    """Before the first build: counted from the orders of the last N days."""
    since = now - dt.timedelta(days=app_settings.RECOMMENDATION_BESTSELLER_DAYS)
    lines = OrderLine.objects.filter(
        order__status=OrderStatus.PLACED, order__placed_at__gte=since, order__placed_at__lte=now
    )
    if rules.category:
        lines = lines.filter(
            product__in=ProductCategory.objects.filter(key=rules.category).values("product")
        )
    counted = (
        lines.values("product_id", *_FLAGS)
        .annotate(orders=Count("order", distinct=True))
        .order_by("-orders", "product_id")
    )
    found = [
        (product_id, orders)
        for product_id, path, active, in_stock, orders in counted.values_list(
            "product_id", *_FLAGS, "orders"
        )
        if product_id not in skip and rules.allows(product_id, path, active, in_stock)
    ]
    return found[:limit]


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

    @property
    def room(self) -> int:
        return self.limit - len(self.rows)

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


def _fill(picks: _Picks, *, rules: _Rules, now: dt.datetime, category_path: str = "") -> None:
    """Popular in ``category_path`` first (when given), then bestsellers."""
    if category_path and not picks.full:
        in_category = replace(rules, category=category_key(category_path))
        rows = _bestsellers(rules=in_category, now=now, limit=picks.room, skip=picks.seen)
        for product_id, orders in rows:
            picks.add(
                product_id, orders, Reason.POPULAR_IN_CATEGORY, None, _category_name(category_path)
            )
    if not picks.full:
        rows = _bestsellers(rules=rules, now=now, limit=picks.room, skip=picks.seen)
        for product_id, orders in rows:
            picks.add(product_id, orders, Reason.BESTSELLER)


def _restock(picks: _Picks, *, history: _History, rules: _Rules, now: dt.datetime) -> None:
    """Repeat purchases the customer is due to buy again, most overdue first, in at most half
    of the places (the rest is for discovery)."""
    due = due_from_purchases(last_bought=history.repeats, now=now)
    if not due:
        return
    flags = Product.objects.filter(pk__in=list(due)).values_list(
        "pk", "category_path", "active", "in_stock"
    )
    showable = [
        pk for pk, path, active, in_stock in flags if rules.allows(pk, path, active, in_stock)
    ]
    places = max(1, picks.limit // 2)
    for product_id in sorted(showable, key=lambda pk: (due[pk], pk))[:places]:
        picks.add(product_id, 1.0, Reason.RESTOCK)
        picks.last_bought[product_id] = history.repeats[product_id][0]


def _neighbour_reason(co_purchases: int) -> str:
    return Reason.BOUGHT_TOGETHER if co_purchases else Reason.VIEWED_TOGETHER


def _neighbours(*, seeds: list[int]):
    """(seed, neighbour, score, co-purchases, the neighbour's category path, active, in stock)
    of the seeds in the current model: one indexed read."""
    return (
        ProductNeighbour.objects.current()
        .filter(product__in=seeds)
        .values_list(
            "product_id",
            "neighbour_id",
            "score",
            "co_purchases",
            "neighbour__category_path",
            "neighbour__active",
            "neighbour__in_stock",
        )
    )


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
    rules = _Rules(blocked=_blocked_ids(consented=consented), excluded={product.pk})
    if consented:
        history = _history(
            profile=profile, blocked=rules.blocked, now=now, context="general", with_views=False
        )
        rules.excluded |= history.excluded
        rules.cooling = history.cooling
    picks = _Picks(limit)
    usable = product.pk not in rules.blocked
    if usable:
        rows = sorted(
            (row for row in _neighbours(seeds=[product.pk]) if rules.allows(row[1], *row[4:])),
            key=lambda row: (-row[2], row[1]),
        )
        for _seed, neighbour_id, score, co_purchases, *_flags in rows:
            picks.add(neighbour_id, score, _neighbour_reason(co_purchases), product.pk)
    _fill(picks, rules=rules, now=now, category_path=product.category_path if usable else "")
    return picks.result(personalized=consented)


def recommend_popular(
    *, limit: int = 10, category: str | None = None, now: dt.datetime | None = None
) -> Recommendations:
    """The non-personal picks: what is popular in ``category`` (when given), then bestsellers,
    as anyone without personalisation consent gets them (never ``personalized``). The same for
    everybody, so a caller with many recipients reads them once."""
    now = now or timezone.now()
    rules = _Rules(
        blocked=_blocked_ids(consented=False),
        category=category_key(category) if category else "",
    )
    picks = _Picks(limit)
    _fill(picks, rules=rules, now=now, category_path=category or "")
    return picks.result(personalized=False)


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
    if not consented:
        return recommend_popular(limit=limit, category=category, now=now)
    rules = _Rules(
        blocked=_blocked_ids(consented=consented),
        category=category_key(category) if category else "",
    )
    picks = _Picks(limit)
    history = _history(profile=profile, blocked=rules.blocked, now=now, context=context)
    rules.cooling = history.cooling
    if context == "cart_reminder":
        in_cart = (
            _cart_lines(profile=profile)
            .order_by("-quantity", "product_id")
            .values_list("product_id", *_FLAGS)
        )
        for product_id, *flags in in_cart:
            if rules.allows(product_id, *flags):
                picks.add(product_id, 1.0, Reason.IN_CART)
    rules.excluded = history.excluded
    if history.repeats:
        _restock(picks, history=history, rules=rules, now=now)
    seeds = history.seeds
    if not seeds and not picks.rows:
        _fill(picks, rules=rules, now=now, category_path=category or "")
        return picks.result(personalized=False)

    scores: dict[int, float] = defaultdict(float)
    best: dict[int, tuple[float, int, int]] = {}  # candidate → (contribution, seed, co-purchases)
    for seed, neighbour, score, co_purchases, *flags in _neighbours(seeds=list(seeds)):
        if not rules.allows(neighbour, *flags):
            continue
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
    _fill(picks, rules=rules, now=now, category_path=top_seed_path)
    return picks.result(personalized=True)
