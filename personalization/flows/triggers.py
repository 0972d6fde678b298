"""Who enters which flow: one set-based ``INSERT … SELECT`` per flow, whatever the number.

Each kind of flow has a trigger, read from the shop's own signals: entering a lifecycle segment
(``lead``, ``lapsed``, ``loyal``), an abandoned cart, a first order, repeated views of a
category, a repeat purchase falling due, a birthday. A trigger becomes a ``FlowEntry`` once per
customer and ``trigger_key`` (this cart, this order, this stay in the segment): the unique key
decides, so two Beats, or a trigger seen again a minute later, start nothing twice.

Only customers who can receive marketing email (a current consent) enter; browse abandonment
also needs the personalisation consent, and never looks at sensitive products.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    DateTimeField,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat

from ..conf import app_settings
from ..consent import consented_q
from ..models import (
    CartLine,
    ConsentRecord,
    ConsentStatus,
    Event,
    EventName,
    Flow,
    FlowEntry,
    FlowKind,
    Order,
    Product,
    Profile,
    Purpose,
    SegmentMembership,
)
from ..models.catalogue import category_or_below
from ..recommendations.replenishment import replenishment_due_rows
from ..segments.lifecycle import Lifecycle, abandoned_carts

# What each trigger's select names its columns, in the entry's terms.
COLUMNS = ("t_profile", "t_key", "t_at", "t_cart", "t_order", "t_product", "t_category")

# How far back a trigger is still worth a journey: a flow switched on (or a new install) does
# not write to everyone whose cart was abandoned last month.
WINDOWS = {
    FlowKind.WELCOME: dt.timedelta(days=2),
    FlowKind.ABANDONED_CART: dt.timedelta(days=1),
    FlowKind.POST_PURCHASE: dt.timedelta(days=2),
    FlowKind.WIN_BACK: dt.timedelta(days=7),
    FlowKind.LOYAL: dt.timedelta(days=7),
}


def _reachable() -> QuerySet[Profile]:
    return Profile.objects.filter(consented_q(Purpose.EMAIL_MARKETING)).values("pk")


def _none(field) -> Cast:
    # Typed: PostgreSQL takes an untyped NULL in a subquery for text.
    return Cast(Value(None), field)


def _row(queryset: QuerySet, *, profile, key, at, cart=None, order=None, product=None, category=""):
    """The trigger's rows as the seven columns an entry is made of."""
    return queryset.annotate(
        t_profile=F(profile),
        t_key=key,
        t_at=F(at) if isinstance(at, str) else at,
        t_cart=F(cart) if cart else _none(BigIntegerField()),
        t_order=F(order) if order else _none(BigIntegerField()),
        t_product=F(product) if product else _none(BigIntegerField()),
        t_category=F(category) if category else Value("", output_field=CharField()),
    ).values_list(*COLUMNS)


def _key(prefix: str, field: str) -> Concat:
    """``prefix`` followed by a column's value as text: the trigger's key."""
    return Concat(Value(prefix), Cast(field, CharField()), output_field=CharField())


def _segment_entered(slug: str, kind: str):
    def trigger(now: dt.datetime):
        stays = SegmentMembership.objects.filter(
            segment__slug=slug,
            exited_at__isnull=True,
            entered_at__gte=now - WINDOWS[kind],
            entered_at__lte=now,
            profile__in=_reachable(),
        )
        if kind == FlowKind.WELCOME:
            # A new subscriber: the grant itself is recent. Customers who subscribed long ago
            # and only now reach "lead" (a first segment refresh, an import of the shop's
            # existing list) are not new, and are not welcomed.
            since = now - WINDOWS[kind]
            recent = ConsentRecord.objects.filter(
                Q(recorded_at__gte=since) | Q(confirmed_at__gte=since),  # a late confirmation
                profile=OuterRef("profile"),
                purpose=Purpose.EMAIL_MARKETING,
                status=ConsentStatus.GRANTED,
            )
            stays = stays.filter(Exists(recent))
        return _row(stays, profile="profile_id", key=_key(f"{slug}:", "pk"), at="entered_at")

    return trigger


def _abandoned_cart(now: dt.datetime):
    # A cart of nothing but sensitive products is never reminded of (the reminder would name
    # them); in a mixed cart the reminder shows only the others.
    showable = CartLine.objects.filter(cart=OuterRef("pk")).exclude(
        product__in=Product.objects.sensitive().values("pk")
    )
    carts = abandoned_carts(now).filter(
        Exists(showable),
        profile__in=_reachable(),
        source_updated_at__gte=now - WINDOWS[FlowKind.ABANDONED_CART],
    )
    return _row(
        carts,
        profile="profile_id",
        key=_key("cart:", "pk"),
        at="source_updated_at",
        cart="pk",
    )


def _first_order(now: dt.datetime):
    # Earlier, or at the same moment with a lower id: of two orders placed together (a split
    # order, an import with dates only) one is the first.
    earlier = Order.objects.counted().filter(
        Q(placed_at__lt=OuterRef("placed_at"))
        | Q(placed_at=OuterRef("placed_at"), pk__lt=OuterRef("pk")),
        profile=OuterRef("profile"),
    )
    orders = (
        Order.objects.counted()
        .filter(
            profile__in=_reachable(),
            placed_at__gte=now - WINDOWS[FlowKind.POST_PURCHASE],
            placed_at__lte=now,
        )
        .filter(~Exists(earlier))
    )
    return _row(orders, profile="profile_id", key=_key("order:", "pk"), at="placed_at", order="pk")


def _replenishment(now: dt.datetime):
    # Due now (or overdue, within the recommendations' window), and not bought again since.
    due = replenishment_due_rows(within_days=0, now=now).filter(order__profile__in=_reachable())
    return due.annotate(
        t_profile=F("order__profile_id"),
        t_key=Concat(
            Value("restock:"),
            Cast("product_id", CharField()),
            Value(":"),
            Cast(F("last_bought_at"), CharField()),
            output_field=CharField(),
        ),
        t_at=F("due_at"),
        t_cart=_none(BigIntegerField()),
        t_order=_none(BigIntegerField()),
        t_product=F("product_id"),
        t_category=Value("", output_field=CharField()),
    ).values_list(*COLUMNS)


def _browse(now: dt.datetime):
    """Repeated views of one category by a customer who consents to personalisation, with no
    cart and no order since: one entry per customer, category and ISO week."""
    since = now - dt.timedelta(hours=app_settings.FLOW_BROWSE_WINDOW_HOURS)
    carting = CartLine.objects.filter(cart__profile=OuterRef("profile"), cart__status="open")
    ordered = Order.objects.counted().filter(profile=OuterRef("profile"), placed_at__gte=since)
    year, week, _weekday = now.isocalendar()
    views = (
        Event.objects.filter(
            name=EventName.PRODUCT_VIEWED,
            is_sensitive=False,
            occurred_at__gte=since,
            occurred_at__lte=now,
            product__isnull=False,
            profile__in=Profile.objects.filter(
                consented_q(Purpose.EMAIL_MARKETING), consented_q(Purpose.PERSONALIZATION)
            ).values("pk"),
        )
        .exclude(product__category_path="")
        .exclude(product__in=Product.objects.sensitive().values("pk"))
        .filter(~Exists(carting), ~Exists(ordered))
        .values("profile_id", "product__category_path")
        .annotate(views=Count("pk"), last_view=Max("occurred_at"))
        .filter(views__gte=app_settings.FLOW_BROWSE_MIN_VIEWS)
        .order_by()
    )
    return views.annotate(
        t_profile=F("profile_id"),
        t_key=Concat(
            Value(f"browse:{year}-W{week:02d}:"),
            F("product__category_path"),
            output_field=CharField(),
        ),
        t_at=F("last_view"),
        t_cart=_none(BigIntegerField()),
        t_order=_none(BigIntegerField()),
        t_product=_none(BigIntegerField()),
        t_category=F("product__category_path"),
    ).values_list(*COLUMNS)


def _birthday(now: dt.datetime):
    """Birthdays today and tomorrow (UTC), entered before the day begins where the customer
    lives (or, the day the flow is switched on, while it lasts): the entry's time is midnight
    of the birthday in their zone (an unknown zone: the shop's), so a step at a local time goes
    out that morning, or at once if the morning has passed; never on another day (the step's
    expiry skips a greeting held back past the evening)."""
    rows = None
    for day in (now.date(), now.date() + dt.timedelta(days=1)):
        matches = {"birthday__month": day.month, "birthday__day": day.day}
        people = Profile.objects.filter(consented_q(Purpose.EMAIL_MARKETING), **matches)
        if day.month == 2 and day.day == 28 and not _leap(day.year):
            people = people | Profile.objects.filter(
                consented_q(Purpose.EMAIL_MARKETING), birthday__month=2, birthday__day=29
            )
        midnight = _local_midnights(people, day)
        selected = _row(
            people.alias(t_midnight=midnight).filter(t_midnight__gt=now - dt.timedelta(days=1)),
            profile="pk",
            key=Value(f"birthday:{day.year}", output_field=CharField()),
            at=midnight,
        )
        rows = selected if rows is None else rows.union(selected, all=True)
    return rows


def _local_midnights(people: QuerySet[Profile], day: dt.date) -> Case:
    """The start of ``day`` in each of these customers' time zones, as a CASE over them."""
    shop = zoneinfo.ZoneInfo(settings.TIME_ZONE or "UTC")
    whens = []
    for name in sorted(set(people.order_by().values_list("timezone", flat=True).distinct())):
        try:
            zone = zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue  # an unknown zone: the shop's (the default)
        start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
        whens.append(When(timezone=name, then=Value(start, output_field=DateTimeField())))
    start = dt.datetime.combine(day, dt.time(0), tzinfo=shop)
    return Case(*whens, default=Value(start), output_field=DateTimeField())


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def browse_restart(*, flow: Flow, first_position: int, now: dt.datetime) -> int:
    """Browse abandonment waits for the customer to stop browsing: the first step's delay
    counts from their latest view in the area, not from the view that started the entry."""
    latest = (
        Event.objects.filter(
            category_or_below(OuterRef("category"), "product__category_path"),
            profile=OuterRef("profile"),
            name=EventName.PRODUCT_VIEWED,
            occurred_at__gt=OuterRef("waiting_since"),
            occurred_at__lte=now,
        )
        .order_by("-occurred_at")
        .values("occurred_at")[:1]
    )
    return (
        FlowEntry.objects.filter(flow=flow, state="active", next_position=first_position)
        .filter(Exists(latest))
        .update(waiting_since=Subquery(latest))
    )


TRIGGERS: dict[str, Callable[[dt.datetime], QuerySet]] = {
    FlowKind.WELCOME: _segment_entered(Lifecycle.LEAD, FlowKind.WELCOME),
    FlowKind.ABANDONED_CART: _abandoned_cart,
    FlowKind.BROWSE_ABANDONMENT: _browse,
    FlowKind.POST_PURCHASE: _first_order,
    FlowKind.REPLENISHMENT: _replenishment,
    FlowKind.WIN_BACK: _segment_entered(Lifecycle.LAPSED, FlowKind.WIN_BACK),
    FlowKind.LOYAL: _segment_entered(Lifecycle.LOYAL, FlowKind.LOYAL),
    FlowKind.BIRTHDAY: _birthday,
}


def flow_enter(*, flow: Flow, now: dt.datetime) -> int:
    """Start the flow for everyone its trigger names now and who is not in it for that trigger
    yet: one ``INSERT … SELECT``. Returns how many entered."""
    selected = TRIGGERS[flow.kind](now)
    try:
        inner, params = selected.query.sql_with_params()
    except EmptyResultSet:  # nothing can match (no model built yet, say)
        return 0
    qn = connection.ops.quote_name
    outer = ", ".join(f"q.{qn(column)}" for column in COLUMNS)
    # Why raw SQL: the ORM cannot insert from a select. ON CONFLICT DO NOTHING (PostgreSQL,
    # SQLite 3.24+): the unique (flow, profile, trigger) decides, whoever notices it twice.
    sql = f"""
        INSERT INTO {qn(FlowEntry._meta.db_table)}
            (flow_id, profile_id, trigger_key, triggered_at, cart_id, order_id, product_id,
             category, entered_at, state, next_position, waiting_since, exit_reason, ended_at)
        SELECT %s, {outer}, %s, 'active', 1, q.{qn("t_at")}, '', NULL
        FROM ({inner}) q
        WHERE q.{qn("t_profile")} IS NOT NULL
        ON CONFLICT DO NOTHING
    """
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(sql, [flow.pk, stamp, *params])
        return max(cursor.rowcount, 0)
