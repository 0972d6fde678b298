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
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from django.db import models
from django.db.models import Count, Max, Q, Value
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..conf import app_settings
from ..consent import consented_q, has_consent
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
from ..validation import instance_check
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


def _histories(
    *,
    profile_ids: list[int],
    blocked: set[int],
    now: dt.datetime,
    context: str,
    with_views: bool = True,
) -> dict[int, _History]:
    """Read what each customer bought, has in their cart and viewed: one statement for all of
    them (a ``UNION ALL`` of three reads, each aggregated per customer and product in the
    database). Products in ``blocked`` are neither seeds nor rules' input (they are never
    candidates either)."""
    since = now - dt.timedelta(days=app_settings.RECOMMENDATION_HISTORY_DAYS)
    cooldown_since = now - dt.timedelta(days=app_settings.RECOMMENDATION_DURABLE_COOLDOWN_DAYS)
    histories = {
        pk: _History(excluded=set(), cooling=set(), seeds=defaultdict(float), paths={}, repeats={})
        for pk in profile_ids
    }

    def rows(queryset, owner: str, kind: str, last):
        return (
            queryset.values(owner, *_PRODUCT_FIELDS)
            .annotate(kind=Value(kind, output_field=models.CharField()), last=Max(last))
            .values_list(owner, *_PRODUCT_FIELDS, "kind", "last")
            .order_by()
        )

    reads = [
        rows(
            OrderLine.objects.filter(
                order__profile__in=profile_ids,
                order__status=OrderStatus.PLACED,
                order__placed_at__lte=now,
            ),
            "order__profile_id",
            "purchase",
            "order__placed_at",
        ),
        rows(
            _cart_lines(profile_ids=profile_ids),
            "cart__profile_id",
            "cart",
            "cart__source_updated_at",
        ),
    ]
    if with_views:
        reads.append(
            rows(
                Event.objects.filter(
                    profile__in=profile_ids,
                    name=EventName.PRODUCT_VIEWED,
                    is_sensitive=False,
                    occurred_at__gte=since,
                    occurred_at__lte=now,
                    product__isnull=False,
                ),
                "profile_id",
                "view",
                "occurred_at",
            )
        )
    found = reads[0].union(*reads[1:], all=True)
    for profile_id, product_id, cycle, own_interval, path, kind, last in found:
        if product_id in blocked:
            continue
        history = histories[profile_id]
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
    for history in histories.values():
        history.seeds = dict(history.seeds)
    return histories


def _cart_lines(*, profile_ids: list[int]):
    return CartLine.objects.filter(cart__profile__in=profile_ids, cart__status="open")


# --- Fill-ups that need no one's data ----------------------------------------------------------

# A product's flags the rules read, next to its id, in every read of candidates.
_FLAGS = ("product__category_path", "product__active", "product__in_stock")

# Bestsellers are read in pages of this many, best first, until the rules leave enough.
BESTSELLER_PAGE = 100


class _Bestsellers:
    """The most ordered products, best first, read a page at a time and kept for the call, so
    that one read serves every customer of a batch (each with their own rules).

    Read from the current build's counts (an indexed read of a page or two, whatever the order
    history's size); before the first build they are counted from the orders of the last N
    days."""

    def __init__(self, *, now: dt.datetime):
        self.now = now
        self._pages: dict[tuple[str, int], list[tuple]] = {}
        self._counted: dict[str, list[tuple]] = {}
        self._built: bool | None = None

    def _page(self, category: str, start: int) -> list[tuple]:
        key = (category, start)
        if key not in self._pages:
            counted = ProductPopularity.objects.current()
            if category:
                counted = counted.filter(
                    product__in=ProductCategory.objects.filter(key=category).values("product")
                )
            self._pages[key] = list(
                counted.order_by("rank").values_list("product_id", "orders", *_FLAGS)[
                    start : start + BESTSELLER_PAGE
                ]
            )
        return self._pages[key]

    def _is_built(self, any_rows: bool) -> bool:
        if any_rows:
            return True
        if self._built is None:
            self._built = RecommendationModel.objects.current().exists()
        return self._built

    def best(self, *, rules: _Rules, limit: int, skip: set[int]) -> list[tuple[int, int]]:
        """(product id, orders) of the most ordered products the rules allow, best first."""
        found: list[tuple[int, int]] = []
        start, any_rows = 0, False
        while len(found) < limit:
            page = self._page(rules.category, start)
            any_rows = any_rows or bool(page)
            for product_id, orders, path, active, in_stock in page:
                if product_id not in skip and rules.allows(product_id, path, active, in_stock):
                    found.append((product_id, orders))
            if len(page) < BESTSELLER_PAGE:
                break
            start += BESTSELLER_PAGE
        if self._is_built(any_rows):
            return found[:limit]
        return [
            (product_id, orders)
            for product_id, orders, path, active, in_stock in self._counted_rows(rules.category)
            if product_id not in skip and rules.allows(product_id, path, active, in_stock)
        ][:limit]

    def _counted_rows(self, category: str) -> list[tuple]:
        """Before the first build: counted from the orders of the last N days."""
        if category not in self._counted:
            since = self.now - dt.timedelta(days=app_settings.RECOMMENDATION_BESTSELLER_DAYS)
            lines = OrderLine.objects.filter(
                order__status=OrderStatus.PLACED,
                order__placed_at__gte=since,
                order__placed_at__lte=self.now,
            )
            if category:
                lines = lines.filter(
                    product__in=ProductCategory.objects.filter(key=category).values("product")
                )
            self._counted[category] = list(
                lines.values("product_id", *_FLAGS)
                .annotate(orders=Count("order", distinct=True))
                .order_by("-orders", "product_id")
                .values_list("product_id", "orders", *_FLAGS)
            )
        return self._counted[category]


class _Picks:
    """Collects picks in order, each product once, up to ``limit``."""

    def __init__(self, limit: int, *, personalized: bool = True):
        self.limit = limit
        self.personalized = personalized
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

    def product_ids(self) -> set[int]:
        return {row[0] for row in self.rows} | {row[3] for row in self.rows if row[3]}

    def result(self, products: dict[int, Product]) -> Recommendations:
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
        return Recommendations(items=items, personalized=self.personalized)


def _results(picks_of: dict[int, _Picks]) -> dict[int, Recommendations]:
    """Every collection of picks as a result, its products read in one query."""
    wanted = set().union(*(picks.product_ids() for picks in picks_of.values()))
    products = Product.objects.in_bulk(wanted) if wanted else {}
    return {key: picks.result(products) for key, picks in picks_of.items()}


def _fill(picks: _Picks, *, rules: _Rules, sellers: _Bestsellers, category_path: str = "") -> None:
    """Popular in ``category_path`` first (when given), then bestsellers."""
    if category_path and not picks.full:
        in_category = replace(rules, category=category_key(category_path))
        for product_id, orders in sellers.best(
            rules=in_category, limit=picks.room, skip=picks.seen
        ):
            picks.add(
                product_id, orders, Reason.POPULAR_IN_CATEGORY, None, _category_name(category_path)
            )
    if not picks.full:
        for product_id, orders in sellers.best(rules=rules, limit=picks.room, skip=picks.seen):
            picks.add(product_id, orders, Reason.BESTSELLER)


def _due_of(histories: dict[int, _History], *, now: dt.datetime):
    """Each customer's repeat purchases that are due ({profile: {product: days}}), and the
    flags of all those products (one query for everybody)."""
    due_of = {
        profile_id: due_from_purchases(last_bought=history.repeats, now=now)
        for profile_id, history in histories.items()
        if history.repeats
    }
    wanted = set().union(*due_of.values()) if due_of else set()
    flags = {}
    if wanted:
        flags = {
            pk: rest
            for pk, *rest in Product.objects.filter(pk__in=wanted).values_list(
                "pk", "category_path", "active", "in_stock"
            )
        }
    return due_of, flags


def _restock(
    picks: _Picks, *, history: _History, rules: _Rules, due: dict[int, int], flags: dict
) -> None:
    """Repeat purchases the customer is due to buy again, most overdue first, in at most half
    of the places (the rest is for discovery)."""
    showable = [pk for pk in due if pk in flags and rules.allows(pk, *flags[pk])]
    places = max(1, picks.limit // 2)
    for product_id in sorted(showable, key=lambda pk: (due[pk], pk))[:places]:
        picks.add(product_id, 1.0, Reason.RESTOCK)
        picks.last_bought[product_id] = history.repeats[product_id][0]


def _neighbour_reason(co_purchases: int) -> str:
    return Reason.BOUGHT_TOGETHER if co_purchases else Reason.VIEWED_TOGETHER


def _neighbours(*, seeds: Iterable[int]):
    """(seed, neighbour, score, co-purchases, the neighbour's category path, active, in stock)
    of the seeds in the current model: one indexed read."""
    return (
        ProductNeighbour.objects.current()
        .filter(product__in=list(seeds))
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


def _neighbours_of(seeds: Iterable[int]) -> dict[int, list[tuple]]:
    """The neighbours of every seed, grouped by seed (one read for a whole batch)."""
    grouped: dict[int, list[tuple]] = defaultdict(list)
    for seed, *rest in _neighbours(seeds=seeds):
        grouped[seed].append(rest)
    return grouped


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
        history = _histories(
            profile_ids=[profile.pk],
            blocked=rules.blocked,
            now=now,
            context="general",
            with_views=False,
        )[profile.pk]
        rules.excluded |= history.excluded
        rules.cooling = history.cooling
    picks = _Picks(limit, personalized=consented)
    usable = product.pk not in rules.blocked
    if usable:
        rows = sorted(
            (row for row in _neighbours(seeds=[product.pk]) if rules.allows(row[1], *row[4:])),
            key=lambda row: (-row[2], row[1]),
        )
        for _seed, neighbour_id, score, co_purchases, *_flags in rows:
            picks.add(neighbour_id, score, _neighbour_reason(co_purchases), product.pk)
    _fill(
        picks,
        rules=rules,
        sellers=_Bestsellers(now=now),
        category_path=product.category_path if usable else "",
    )
    return _results({0: picks})[0]


def _popular_picks(*, limit: int, category: str | None, sellers: _Bestsellers) -> _Picks:
    rules = _Rules(
        blocked=_blocked_ids(consented=False),
        category=category_key(category) if category else "",
    )
    picks = _Picks(limit, personalized=False)
    _fill(picks, rules=rules, sellers=sellers, category_path=category or "")
    return picks


def recommend_popular(
    *, limit: int = 10, category: str | None = None, now: dt.datetime | None = None
) -> Recommendations:
    """The non-personal picks: what is popular in ``category`` (when given), then bestsellers,
    as anyone without personalisation consent gets them (never ``personalized``). The same for
    everybody, so a caller with many recipients reads them once."""
    sellers = _Bestsellers(now=now or timezone.now())
    return _results({0: _popular_picks(limit=limit, category=category, sellers=sellers)})[0]


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
    instance_check(profile, Profile, field="profile")
    if profile.pk is None:
        return recommend_popular(limit=limit, category=category, now=now)
    return recommend_for_profiles(
        profiles=[profile], limit=limit, context=context, category=category, now=now
    )[profile.pk]


def recommend_for_profiles(
    *,
    profiles: Iterable[Profile],
    limit: int = 10,
    context: Context | str = "general",
    category: str | None = None,
    now: dt.datetime | None = None,
) -> dict[int, Recommendations]:
    """:func:`recommend_for_profile` for many customers at once ({profile id: picks}), with the
    same rules and results, in the same handful of queries as for one (a mailing's batch
    reads everybody's history, their products' neighbours and the bestsellers once)."""
    now = now or timezone.now()
    profile_ids = list(dict.fromkeys(profile.pk for profile in profiles if profile.pk is not None))
    if not profile_ids:
        return {}
    consenting = set(
        Profile.objects.filter(consented_q(Purpose.PERSONALIZATION), pk__in=profile_ids)
        .values_list("pk", flat=True)
        .order_by()
    )
    sellers = _Bestsellers(now=now)
    picks_of: dict[int, _Picks] = {}
    if len(consenting) < len(profile_ids):
        popular = _popular_picks(limit=limit, category=category, sellers=sellers)
        picks_of.update((pk, popular) for pk in profile_ids if pk not in consenting)
    if consenting:
        picks_of.update(
            _tailored(
                profile_ids=[pk for pk in profile_ids if pk in consenting],
                limit=limit,
                context=context,
                category=category,
                now=now,
                sellers=sellers,
            )
        )
    return _results(picks_of)


def _tailored(
    *,
    profile_ids: list[int],
    limit: int,
    context: str,
    category: str | None,
    now: dt.datetime,
    sellers: _Bestsellers,
) -> dict[int, _Picks]:
    """The picks of customers who consent to personalisation."""
    blocked = _blocked_ids(consented=True)
    category_rule = category_key(category) if category else ""
    histories = _histories(profile_ids=profile_ids, blocked=blocked, now=now, context=context)
    in_cart: dict[int, list[tuple]] = defaultdict(list)
    if context == "cart_reminder":
        for profile_id, product_id, *flags in (
            _cart_lines(profile_ids=profile_ids)
            .order_by("cart__profile_id", "-quantity", "product_id")
            .values_list("cart__profile_id", "product_id", *_FLAGS)
        ):
            in_cart[profile_id].append((product_id, *flags))
    due_of, due_flags = _due_of(histories, now=now)
    neighbours = _neighbours_of(set().union(*(h.seeds for h in histories.values())))

    picks_of = {}
    for profile_id, history in histories.items():
        rules = _Rules(blocked=blocked, cooling=history.cooling, category=category_rule)
        picks = picks_of[profile_id] = _Picks(limit)
        for product_id, *flags in in_cart.get(profile_id, ()):
            if rules.allows(product_id, *flags):
                picks.add(product_id, 1.0, Reason.IN_CART)
        rules.excluded = history.excluded
        if profile_id in due_of:
            _restock(picks, history=history, rules=rules, due=due_of[profile_id], flags=due_flags)
        seeds = history.seeds
        if not seeds and not picks.rows:
            picks.personalized = False
            _fill(picks, rules=rules, sellers=sellers, category_path=category or "")
            continue
        _by_neighbours(picks, seeds=seeds, neighbours=neighbours, rules=rules)
        top_seed_path = ""
        if not picks.full and seeds:
            top_seed = max(seeds, key=lambda pk: (seeds[pk], -pk))
            top_seed_path = category or history.paths.get(top_seed) or ""
        _fill(picks, rules=rules, sellers=sellers, category_path=top_seed_path)
    return picks_of


def _by_neighbours(
    picks: _Picks, *, seeds: dict[int, float], neighbours: dict[int, list], rules: _Rules
) -> None:
    """The seeds' neighbours the rules allow, scored by the seeds' weights."""
    scores: dict[int, float] = defaultdict(float)
    best: dict[int, tuple[float, int, int]] = {}  # candidate → (contribution, seed, co-purchases)
    for seed, weight in seeds.items():
        for neighbour, score, co_purchases, *flags in neighbours.get(seed, ()):
            if not rules.allows(neighbour, *flags):
                continue
            contribution = weight * score
            scores[neighbour] += contribution
            if neighbour not in best or contribution > best[neighbour][0]:
                best[neighbour] = (contribution, seed, co_purchases)
    for neighbour in sorted(scores, key=lambda pk: (-scores[pk], pk)):
        _, seed, co_purchases = best[neighbour]
        picks.add(neighbour, scores[neighbour], _neighbour_reason(co_purchases), seed)
