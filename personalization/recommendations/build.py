"""Build the item-to-item model: co-purchases and co-views, normalised, top K per product.

The counting is one set-based statement: no Python loop over products or pairs. Which rows
count is said through the ORM (counted orders, product views in the window, products the model
may use); the rest is SQL the ORM cannot say, written once for PostgreSQL and SQLite alike:
a self-join of a derived table, ``UNION ALL``, ``ROW_NUMBER()`` and ``INSERT … SELECT``.

Scores. For products ``a`` and ``b``:

- ``co_purchases(a, b)``: placed orders containing both (an order counts once, however many of
  its lines name either product);
- ``co_views(a, b)``: customers who viewed both within ``RECOMMENDATION_CO_VIEW_DAYS``;
- ``together(a, b) = co_purchases + RECOMMENDATION_CO_VIEW_WEIGHT × co_views``, and
  ``alone(a) = orders(a) + RECOMMENDATION_CO_VIEW_WEIGHT × viewers(a)``;
- ``score(a, b) = together(a, b) / sqrt(alone(a) × alone(b))`` (cosine similarity).

Cosine rather than raw counts: a bestseller is in most baskets, so by raw counts it would be
everybody's first neighbour; dividing by ``sqrt(alone(b))`` takes that popularity out. Cosine
rather than lift (``together × N / (alone(a) × alone(b))``): lift divides by the full
popularity and so rewards rare products seen together once or twice, which a minimum support
only partly tames; cosine stays between 0 and 1 and is the classic item-to-item measure.

The same build counts the bestsellers (:func:`popularity_insert`): orders per product in the
last ``RECOMMENDATION_BESTSELLER_DAYS``, so that a read never aggregates the order history,
and learns repurchase intervals for replenishment (:mod:`.replenishment`), or carries the
current ones over while they are younger than ``RECOMMENDATION_INTERVAL_RELEARN_DAYS``.

Pairs seen together fewer than ``RECOMMENDATION_MIN_SUPPORT`` times (orders plus viewers) are
dropped. Sensitive products (``Product.objects.sensitive()``) are not in the model at all: not
as a product, not as a neighbour, and their orders and views do not count. Inactive products
are never neighbours.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from ..conf import app_settings
from ..models import (
    BuildStatus,
    Event,
    EventName,
    LearnedInterval,
    Order,
    OrderLine,
    Product,
    ProductNeighbour,
    ProductPopularity,
    RecommendationModel,
)
from .replenishment import intervals_carry_over, intervals_insert

logger = logging.getLogger(__name__)

# Advisory lock (PostgreSQL) held by a build until it commits: (namespace, key). Its own
# namespace ("pzr"), apart from the segments' per-segment locks and from the shop's.
ADVISORY_LOCK = (0x707A72, 1)

STEPS = ("lock", "count", "switch", "clean")


@dataclass(frozen=True)
class BuildProgress:
    """What a build reports to its ``progress`` callable after each step."""

    step: str  # one of STEPS
    done: int  # steps finished, 1 … total
    total: int
    seconds: float  # since the build began


@dataclass
class BuildReport:
    """What a build did. ``skipped``: another build held the lock, nothing was written."""

    skipped: bool = False
    build_id: int | None = None
    products: int = 0
    neighbours: int = 0
    removed: int = 0  # earlier builds deleted
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)


def build_settings() -> dict[str, Any]:
    """The settings a build uses, as stored on the build."""
    return {
        "neighbours": app_settings.RECOMMENDATION_NEIGHBOURS,
        "co_view_weight": app_settings.RECOMMENDATION_CO_VIEW_WEIGHT,
        "co_view_days": app_settings.RECOMMENDATION_CO_VIEW_DAYS,
        "min_support": app_settings.RECOMMENDATION_MIN_SUPPORT,
        "bestseller_days": app_settings.RECOMMENDATION_BESTSELLER_DAYS,
        "interval_min_repeats": app_settings.RECOMMENDATION_INTERVAL_MIN_REPEATS,
        "interval_relearn_days": app_settings.RECOMMENDATION_INTERVAL_RELEARN_DAYS,
    }


def recommendations_build(
    *,
    now: dt.datetime | None = None,
    progress: Callable[[BuildProgress], None] | None = None,
) -> BuildReport:
    """Build the model from the orders and views up to ``now`` and make it current.

    Everything happens in one transaction: readers keep the previous model until the new one
    is complete, and a build that fails leaves it in place (a ``failed`` row records why). On
    PostgreSQL a build that finds another one running skips (``report.skipped``) rather than
    count the same data twice.
    """
    started = time.monotonic()
    settings = build_settings()
    report = BuildReport(settings=settings)

    def step(name: str) -> None:
        if progress is not None:
            progress(
                BuildProgress(
                    step=name,
                    done=STEPS.index(name) + 1,
                    total=len(STEPS),
                    seconds=time.monotonic() - started,
                )
            )

    now = now or timezone.now()
    try:
        with transaction.atomic():
            if not _lock_taken():
                report.skipped = True
                report.seconds = time.monotonic() - started
                return report
            step("lock")
            build = RecommendationModel.objects.create(
                started_at=now, status=BuildStatus.COMPLETE, settings=settings
            )
            report.build_id = build.pk
            neighbours_insert(
                build=build,
                now=now,
                neighbours=settings["neighbours"],
                co_view_weight=settings["co_view_weight"],
                co_view_days=settings["co_view_days"],
                min_support=settings["min_support"],
            )
            popularity_insert(build=build, now=now, days=settings["bestseller_days"])
            learned_at = intervals_carry_over(
                build=build,
                now=now,
                min_repeats=settings["interval_min_repeats"],
                relearn_days=settings["interval_relearn_days"],
            )
            if learned_at is None:
                intervals_insert(build=build, now=now, min_repeats=settings["interval_min_repeats"])
                learned_at = now
            step("count")
            counts = ProductNeighbour.objects.filter(build=build).aggregate(
                rows=Count("pk"), products=Count("product", distinct=True)
            )
            report.products, report.neighbours = counts["products"], counts["rows"]
            # The switch: the old pointer off, then the new one on (one current at a time).
            RecommendationModel.objects.current().update(is_current=False)
            report.seconds = time.monotonic() - started
            RecommendationModel.objects.filter(pk=build.pk).update(
                is_current=True,
                intervals_learned_at=learned_at,
                built_at=timezone.now(),
                products=report.products,
                neighbours=report.neighbours,
                seconds=report.seconds,
            )
            step("switch")
            report.removed = _earlier_builds_delete(build=build)
            step("clean")
    except Exception as err:
        _failure_record(
            started_at=now, settings=settings, seconds=time.monotonic() - started, err=err
        )
        raise
    report.seconds = time.monotonic() - started
    return report


def _failure_record(
    *, started_at: dt.datetime, settings: dict[str, Any], seconds: float, err: Exception
) -> None:
    """Record a failed build for the admin; never hide the build's own error behind this."""
    try:
        RecommendationModel.objects.create(
            started_at=started_at,
            status=BuildStatus.FAILED,
            settings=settings,
            seconds=seconds,
            error=f"{type(err).__name__}: {err}"[:2000],
        )
    except DatabaseError:  # the connection is gone, or the caller's transaction is broken
        logger.exception("Could not record the failed recommendation build")


def _lock_taken() -> bool:
    """Take the build's advisory lock until commit; False when another build holds it.

    SQLite lets one writer in at a time anyway: the second build waits for the first (up to
    the connection's timeout).
    """
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", list(ADVISORY_LOCK))
        return bool(cursor.fetchone()[0])


def _earlier_builds_delete(*, build: RecommendationModel) -> int:
    """Delete the builds this one replaces: complete ones, and failures from before it."""
    earlier = RecommendationModel.objects.exclude(pk=build.pk).filter(
        Q(status=BuildStatus.COMPLETE) | Q(started_at__lte=build.started_at)
    )
    ids = list(earlier.values_list("pk", flat=True))
    # Their rows first, in one statement each (no per-row cascade), then the builds.
    ProductNeighbour.objects.filter(build__in=ids).delete()
    ProductPopularity.objects.filter(build__in=ids).delete()
    LearnedInterval.objects.filter(build__in=ids).delete()
    deleted, _by_model = RecommendationModel.objects.filter(pk__in=ids).delete()
    return deleted


def _sql(queryset) -> tuple[str, tuple]:
    sql, params = queryset.order_by().query.sql_with_params()
    return sql, tuple(params)


def model_products():
    """Products the model may use at all: every product that is not sensitive."""
    return Product.objects.not_sensitive().values("pk")


def baskets():
    """(order, product) once per pair, for placed orders and products the model may use."""
    return (
        OrderLine.objects.filter(
            order__in=Order.objects.counted().values("pk"), product__in=model_products()
        )
        .values("order_id", "product_id")
        .distinct()
    )


def viewings(*, since: dt.datetime, until: dt.datetime):
    """(customer, product) once per pair, for product views between ``since`` and ``until``."""
    return (
        Event.objects.named(EventName.PRODUCT_VIEWED)
        .not_sensitive()
        .between(since, until)
        .filter(product__in=model_products())
        .values("profile_id", "product_id")
        .distinct()
    )


def neighbours_insert(
    *,
    build: RecommendationModel,
    now: dt.datetime,
    neighbours: int,
    co_view_weight: float,
    co_view_days: int,
    min_support: int,
) -> None:
    """Count, score and store the top ``neighbours`` of every product for ``build``."""
    qn = connection.ops.quote_name
    table = qn(ProductNeighbour._meta.db_table)
    baskets_sql, baskets_params = _sql(baskets())
    active_sql, active_params = _sql(Product.objects.filter(active=True).values("pk"))
    with_views = co_view_weight > 0 and co_view_days > 0
    weight = float(co_view_weight) if with_views else 0.0
    if with_views:
        since = now - dt.timedelta(days=co_view_days)
        views_sql, views_params = _sql(viewings(since=since, until=now))
        # A pair counted by customers, a customer once per pair of products they viewed.
        view_ctes = f"""
        views (holder, product) AS ({views_sql}),
        co_views (product, neighbour, n) AS (
            SELECT a.product, b.product, COUNT(*) FROM views a
            JOIN views b ON b.holder = a.holder AND b.product <> a.product
            GROUP BY a.product, b.product),
        viewed (product, n) AS (SELECT product, COUNT(*) FROM views GROUP BY product),"""
        view_pairs = "UNION ALL SELECT product, neighbour, 0, n FROM co_views"
        view_alone = "UNION ALL SELECT product, 0, n FROM viewed"
    else:
        views_params = ()
        view_ctes = view_pairs = view_alone = ""
    # Why raw SQL: the ORM cannot join a derived table to itself, union two aggregates, filter
    # on a window function or insert from a select. Both backends run this statement (SQLite
    # has window functions since 3.25; Django gives every SQLite connection SQRT()).
    sql = f"""
        WITH
        baskets (holder, product) AS ({baskets_sql}),
        co_purchases (product, neighbour, n) AS (
            SELECT a.product, b.product, COUNT(*) FROM baskets a
            JOIN baskets b ON b.holder = a.holder AND b.product <> a.product
            GROUP BY a.product, b.product),
        bought (product, n) AS (SELECT product, COUNT(*) FROM baskets GROUP BY product),
        {view_ctes}
        pairs (product, neighbour, co_purchases, co_views) AS (
            SELECT product, neighbour, SUM(cp), SUM(cv) FROM (
                SELECT product, neighbour, n AS cp, 0 AS cv FROM co_purchases
                {view_pairs}) u
            WHERE neighbour IN ({active_sql})
            GROUP BY product, neighbour
            HAVING SUM(cp) + SUM(cv) >= %s),
        alone (product, n) AS (
            SELECT product, SUM(b) + %s * SUM(v) FROM (
                SELECT product, n AS b, 0 AS v FROM bought
                {view_alone}) u
            GROUP BY product),
        ranked AS (
            SELECT p.product, p.neighbour, p.co_purchases, p.co_views,
                (p.co_purchases + %s * p.co_views) / SQRT(pa.n * pb.n) AS score,
                ROW_NUMBER() OVER (
                    PARTITION BY p.product
                    ORDER BY (p.co_purchases + %s * p.co_views) / SQRT(pa.n * pb.n) DESC,
                        p.co_purchases DESC, p.neighbour
                ) AS rank
            FROM pairs p
            JOIN alone pa ON pa.product = p.product
            JOIN alone pb ON pb.product = p.neighbour)
        INSERT INTO {table}
            (build_id, product_id, neighbour_id, rank, score, co_purchases, co_views)
        SELECT %s, product, neighbour, rank, score, co_purchases, co_views
        FROM ranked WHERE rank <= %s
    """
    params = (
        *baskets_params,
        *views_params,
        *active_params,
        min_support,
        weight,
        weight,
        weight,
        build.pk,
        neighbours,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def popularity_insert(*, build: RecommendationModel, now: dt.datetime, days: int) -> None:
    """Store how many placed orders of the ``days`` before ``now`` named each product, ranked.

    Every product ordered counts here, sensitive ones too: what a reader may show is decided
    when it reads (a sensitive category the shop allows, for a customer who consented).
    """
    qn = connection.ops.quote_name
    ordered_sql, ordered_params = _sql(
        OrderLine.objects.filter(
            order__in=Order.objects.counted()
            .filter(placed_at__gte=now - dt.timedelta(days=days), placed_at__lte=now)
            .values("pk")
        )
        .values("product_id")
        .annotate(orders=Count("order_id", distinct=True))
        .values_list("product_id", "orders")
    )
    sql = f"""
        WITH ordered (product, n) AS ({ordered_sql})
        INSERT INTO {qn(ProductPopularity._meta.db_table)} (build_id, product_id, orders, rank)
        SELECT %s, product, n, ROW_NUMBER() OVER (ORDER BY n DESC, product) FROM ordered
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, (*ordered_params, build.pk))


def cosine(together: float, alone_a: float, alone_b: float) -> float:
    """The score of a pair, as the statement computes it (for tests and explanations)."""
    return together / math.sqrt(alone_a * alone_b)
