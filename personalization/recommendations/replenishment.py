"""Replenishment: when each customer is due to buy a consumable again.

A product's repurchase interval is the one the shop set (``Product.repurchase_interval_days``)
or, failing that, the one the current build learned (:class:`~personalization.models.
LearnedInterval`: the median gap between one customer's consecutive purchases of it, once
customers bought it again ``RECOMMENDATION_INTERVAL_MIN_REPEATS`` times). A customer is due on
the day of their latest purchase of the product plus its interval; buying it again moves the
date, so "not re-bought since" is part of the definition.

Only products that are active and not sensitive are ever due (a reminder about a pregnancy test
is exactly what the app must not send), and only customers with personalisation consent: the
date is worked out from their purchase history. Whether a reminder may be mailed (marketing
consent, pauses, frequency) is decided by messaging, not here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.db.models import (
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    FilteredRelation,
    IntegerField,
    Max,
    Q,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..consent import consented_q, has_consent
from ..models import (
    LearnedInterval,
    OrderLine,
    OrderStatus,
    Product,
    Profile,
    Purpose,
    RecommendationModel,
)

ONE_DAY = dt.timedelta(days=1)
# "Due": from this many days before the due date until this many days after it.
DUE_WITHIN_DAYS = 7
DUE_OVERDUE_DAYS = 14


@dataclass(frozen=True)
class Due:
    """One product a customer is due to buy again."""

    product: Product
    last_bought_at: dt.datetime
    interval_days: int
    learned: bool  # the interval was learned from customers' repeat purchases
    due_at: dt.datetime


# --- Learning intervals (part of a build) ------------------------------------------------------


def _days_between(later: str, earlier: str) -> str:
    """SQL for the number of days (fractional) from ``earlier`` to ``later``."""
    if connection.vendor == "postgresql":
        # EXTRACT gives numeric since PostgreSQL 14: sorting millions of gaps as numeric is
        # several times slower than as double precision.
        return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS DOUBLE PRECISION) / 86400.0"
    return f"(julianday({later}) - julianday({earlier}))"


def intervals_insert(*, build: RecommendationModel, now: dt.datetime, min_repeats: int) -> None:
    """Store, for ``build``, the median repurchase interval of every product customers bought
    again at least ``min_repeats`` times (gaps under a day, such as a split order, do not
    count). One statement; the median is the middle row (or the mean of the two middle rows)
    of each product's sorted gaps, which both PostgreSQL and SQLite can say with windows."""
    qn = connection.ops.quote_name
    purchases_sql, purchases_params = (
        OrderLine.objects.filter(
            order__status=OrderStatus.PLACED,
            order__profile__isnull=False,
            order__placed_at__lte=now,
            product__in=Product.objects.not_sensitive().values("pk"),
        )
        .values_list("order__profile_id", "product_id", "order__placed_at")
        .distinct()
        .order_by()
        .query.sql_with_params()
    )
    gap = _days_between("at_", "LAG(at_) OVER (PARTITION BY holder, product ORDER BY at_)")
    # Why raw SQL: the ORM cannot aggregate over a window function, nor insert from a select.
    sql = f"""
        WITH
        purchases (holder, product, at_) AS ({purchases_sql}),
        gaps (product, days) AS (SELECT product, {gap} FROM purchases),
        ranked (product, days, nth, n) AS (
            SELECT product, days,
                ROW_NUMBER() OVER (PARTITION BY product ORDER BY days),
                COUNT(*) OVER (PARTITION BY product)
            FROM gaps WHERE days >= 1)
        INSERT INTO {qn(LearnedInterval._meta.db_table)} (build_id, product_id, days, repeats)
        SELECT %s, product, CAST(ROUND(AVG(days)) AS INTEGER), MAX(n) FROM ranked
        WHERE nth IN ((n + 1) / 2, (n + 2) / 2) AND n >= %s
        GROUP BY product
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, (*purchases_params, build.pk, min_repeats))


def intervals_carry_over(
    *, build: RecommendationModel, now: dt.datetime, min_repeats: int, relearn_days: int
) -> dt.datetime | None:
    """Copy the current build's learned intervals into ``build`` when they were learned less
    than ``relearn_days`` ago with the same ``min_repeats``; when they were learned, or None
    (nothing copied: learn them now). A median of months of repeat purchases hardly moves in
    a week, and learning it is a sort of every purchase ever made."""
    if relearn_days <= 0:
        return None
    current = (
        RecommendationModel.objects.current()
        .filter(intervals_learned_at__gt=now - dt.timedelta(days=relearn_days))
        .filter(intervals_learned_at__lte=now)
        .values_list("pk", "intervals_learned_at", "settings")
        .first()
    )
    if current is None or current[2].get("interval_min_repeats") != min_repeats:
        return None
    LearnedInterval.objects.bulk_create(
        LearnedInterval(build=build, product_id=product_id, days=days, repeats=repeats)
        for product_id, days, repeats in LearnedInterval.objects.filter(
            build_id=current[0]
        ).values_list("product_id", "days", "repeats")
    )
    return current[1]


# --- Reading due dates -------------------------------------------------------------------------


def _current_build_id() -> int | None:
    return RecommendationModel.objects.current().values_list("pk", flat=True).first()


def _with_due_dates(lines, *, build_id: int | None):
    """Per (customer, product): the latest purchase, the interval and the day it is due.

    The learned interval comes through a join on the current build's rows (one hash join),
    not a subquery per order line."""
    return (
        lines.filter(order__status=OrderStatus.PLACED, product__active=True)
        .filter(product__in=Product.objects.not_sensitive().values("pk"))
        .annotate(
            learned=FilteredRelation(
                "product__learned_intervals",
                condition=Q(product__learned_intervals__build_id=build_id),
            ),
            interval=Coalesce(
                F("product__repurchase_interval_days"),
                F("learned__days"),
                output_field=IntegerField(),
            ),
        )
        .filter(interval__isnull=False)
        .values("order__profile_id", "product_id", "interval")
        .annotate(last_bought_at=Max("order__placed_at"))
        .annotate(
            due_at=ExpressionWrapper(
                F("last_bought_at")
                + ExpressionWrapper(F("interval") * Value(ONE_DAY), output_field=DurationField()),
                output_field=DateTimeField(),
            )
        )
    )


def replenishment_due(
    *,
    within_days: int = DUE_WITHIN_DAYS,
    overdue_days: int = DUE_OVERDUE_DAYS,
    now: dt.datetime | None = None,
):
    """Who is due to buy what again: due within the next ``within_days``, or at most
    ``overdue_days`` ago, and not bought again since.

    A queryset of dicts (``profile_id``, ``product_id``, ``interval``, ``last_bought_at``,
    ``due_at``), one per customer and product, for customers with personalisation consent.
    One set-based statement; only purchases recent enough to fall due in the window are read.
    """
    return (
        replenishment_due_rows(within_days=within_days, overdue_days=overdue_days, now=now)
        .values("order__profile_id", "product_id", "interval", "last_bought_at", "due_at")
        .order_by("due_at", "order__profile_id", "product_id")
    )


def replenishment_due_rows(
    *,
    within_days: int = DUE_WITHIN_DAYS,
    overdue_days: int = DUE_OVERDUE_DAYS,
    now: dt.datetime | None = None,
):
    """:func:`replenishment_due` as order lines grouped per customer (``order__profile_id``)
    and product, annotated ``interval``, ``last_bought_at`` and ``due_at``, unordered: for a
    caller selecting its own columns from it (a flow's trigger)."""
    now = now or timezone.now()
    build_id = _current_build_id()
    longest = _longest_interval(build_id=build_id)
    if longest is None:
        return _with_due_dates(OrderLine.objects.none(), build_id=build_id)
    earliest = now - dt.timedelta(days=overdue_days + longest)
    lines = OrderLine.objects.filter(
        order__placed_at__gte=earliest,
        order__placed_at__lte=now,
        order__profile__in=Profile.objects.filter(consented_q(Purpose.PERSONALIZATION)).values(
            "pk"
        ),
    )
    return (
        _with_due_dates(lines, build_id=build_id)
        .filter(
            due_at__gte=now - dt.timedelta(days=overdue_days),
            due_at__lte=now + dt.timedelta(days=within_days),
        )
        .order_by()
    )


def replenishment_for_profile(*, profile: Profile, now: dt.datetime | None = None) -> list[Due]:
    """The products this customer buys again, with the day each is due, soonest first.

    Empty without personalisation consent. Four queries.
    """
    if not has_consent(profile=profile, purpose=Purpose.PERSONALIZATION):
        return []
    now = now or timezone.now()
    rows = list(
        _with_due_dates(
            OrderLine.objects.filter(order__profile=profile, order__placed_at__lte=now),
            build_id=_current_build_id(),
        )
        .annotate(own=F("product__repurchase_interval_days"))
        .order_by("due_at", "product_id")
    )
    products = Product.objects.in_bulk({row["product_id"] for row in rows})
    return [
        Due(
            product=products[row["product_id"]],
            last_bought_at=row["last_bought_at"],
            interval_days=row["interval"],
            learned=row["own"] is None,
            due_at=row["due_at"],
        )
        for row in rows
    ]


def due_from_purchases(
    *,
    last_bought: dict[int, tuple[dt.datetime, int | None]],
    now: dt.datetime,
    within_days: int = DUE_WITHIN_DAYS,
    overdue_days: int = DUE_OVERDUE_DAYS,
) -> dict[int, dt.datetime]:
    """Of one customer's repeat purchases (product → (latest purchase, the product's own
    interval or None)), those due in the window, with their due dates. Products without an
    interval of their own take the current build's learned one: one query, only then."""
    learned = {}
    unknown = [pk for pk, (_last, own) in last_bought.items() if not own]
    if unknown:
        learned = dict(
            LearnedInterval.objects.current()
            .filter(product__in=unknown)
            .values_list("product_id", "days")
        )
    due = {}
    for product_id, (last, own) in last_bought.items():
        interval = own or learned.get(product_id)
        if interval is None:
            continue
        due_at = last + interval * ONE_DAY
        if now - overdue_days * ONE_DAY <= due_at <= now + within_days * ONE_DAY:
            due[product_id] = due_at
    return due


def _longest_interval(*, build_id: int | None) -> int | None:
    """The longest interval any product has, set or learned (two small queries)."""
    own = Product.objects.filter(repurchase_interval_days__isnull=False).aggregate(
        days=Max("repurchase_interval_days")
    )["days"]
    learned = LearnedInterval.objects.filter(build_id=build_id).aggregate(days=Max("days"))["days"]
    known = [days for days in (own, learned) if days is not None]
    return max(known) if known else None
