"""Property: the compiled query (for everyone, and correlated to each profile as the realtime
update runs it) and the Python evaluation of a rule agree for every profile, on random rule
trees over random small shops (run on SQLite and, with DATABASE_URL, on PostgreSQL)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from personalization.catalogue import product_categories_sync
from personalization.models import (
    Cart,
    CartLine,
    ConsentRecord,
    Event,
    Order,
    OrderLine,
    Product,
    Profile,
    Segment,
    SegmentKind,
    SegmentMembership,
    Topic,
    TopicPreference,
    Trait,
)
from personalization.segments import (
    lifecycle_segments_ensure,
    segment_members,
    segments_update_for_profiles,
)
from personalization.segments.rules import rule_evaluate, rule_members, rule_validate

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
PROFILES = 4
PRODUCTS = [
    ("coffee-1", "Food > Coffee", False),
    ("tea-1", "Food > Tea", False),
    ("pan-1", "Home > Kitchen", False),
    ("vit-1", "Health > Vitamins", False),  # Health is a sensitive category below
    ("secret-1", "Home", True),  # flagged by the shop
]
USABLE_PRODUCTS = ["coffee-1", "tea-1", "pan-1"]
CATEGORIES = ["Food", "Food > Coffee", "food > tea", "Home", "Home > Kitchen"]
TOPICS = [("news", True), ("deals", False)]

days = st.integers(min_value=0, max_value=400)
money = st.sampled_from(["0", "10", "19.90", "25.50", "100"])
small = st.integers(min_value=0, max_value=4)
number_op = st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"])
text_op = st.sampled_from(["eq", "ne", "in", "not_in"])
set_op = st.sampled_from(["eq", "in"])
window = st.one_of(st.none(), st.sampled_from([1, 30, 90, 365]))
at_least = st.one_of(st.none(), st.integers(min_value=1, max_value=3))


def _text_condition(field, choices):
    def build(op, values):
        value = values if op in ("in", "not_in") else values[0]
        return {"field": field, "op": op, "value": value}

    return st.builds(build, text_op, st.lists(st.sampled_from(choices), min_size=1, max_size=2))


def _set_condition(field, choices, *, windowed=True):
    def build(op, values, within, needed):
        condition = {"field": field, "op": op, "value": values if op == "in" else values[0]}
        if windowed and within is not None:
            condition["within_days"] = within
        if windowed and needed is not None:
            condition["at_least"] = needed
        return condition

    return st.builds(
        build,
        set_op,
        st.lists(st.sampled_from(choices), min_size=1, max_size=2),
        window,
        at_least,
    )


def _number_condition(field, values, *, windowed=False):
    def build(op, value, within):
        condition = {"field": field, "op": op, "value": value}
        if windowed and within is not None:
            condition["within_days"] = within
        return condition

    return st.builds(build, number_op, values, window)


conditions = st.one_of(
    _text_condition("profile.country", ["SE", "DE", ""]),
    st.builds(lambda v: {"field": "profile.identified", "op": "eq", "value": v}, st.booleans()),
    _text_condition("traits.plan", ["gold", "silver", "5", "Göteborg"]),
    st.builds(lambda v: {"field": "traits.plan", "op": "exists", "value": v}, st.booleans()),
    _number_condition("stats.orders_count", small),
    _number_condition("stats.total_spent", money),
    _number_condition("stats.average_order_value", money),
    _number_condition("stats.days_since_first_order", days),
    _number_condition("stats.days_since_last_order", days),
    _number_condition("orders.count", small, windowed=True),
    _number_condition("orders.sum", money, windowed=True),
    _set_condition("orders.bought_product", USABLE_PRODUCTS),
    _set_condition("orders.bought_category", CATEGORIES),
    _set_condition("events.viewed_product", USABLE_PRODUCTS),
    _set_condition("events.viewed_category", CATEGORIES),
    _number_condition("cart.lines", small),
    _number_condition("cart.value", money),
    _set_condition("cart.contains_product", USABLE_PRODUCTS, windowed=False),
    _set_condition("cart.contains_category", CATEGORIES, windowed=False),
    _text_condition("consent.email_marketing", ["granted", "withdrawn", "none", "pending"]),
    _set_condition("topics.subscribed", [slug for slug, _default in TOPICS], windowed=False),
    _set_condition("segment", ["lapsed", "loyal", "lead", "coffee_fans"], windowed=False),
)


def _groups(children):
    """Groups over ``children``: all, any, not."""
    return st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda items: {"all": items}),
        st.lists(children, min_size=1, max_size=3).map(lambda items: {"any": items}),
        children.map(lambda child: {"not": child}),
    )


rules = st.recursive(conditions, _groups, max_leaves=6)

when = st.integers(min_value=-500, max_value=5)  # days relative to NOW
profile_data = st.fixed_dictionaries(
    {
        "email": st.booleans(),
        "country": st.sampled_from(["SE", "DE", ""]),
        # (key, value, source, confidence): stated, inferred sure enough and not (0.8 is the
        # threshold), a number or true that equals no text.
        "traits": st.lists(
            st.tuples(
                st.sampled_from(["plan", "x"]),
                st.sampled_from(["gold", "silver", "5", 5, True, "Göteborg"]),
                st.sampled_from(
                    [("given", None), ("shop", None), ("inferred", 0.8), ("inferred", 0.79)]
                ),
            ),
            max_size=2,
            unique_by=lambda item: item[0],
        ),
        "stats": st.one_of(
            st.none(), st.tuples(small, money, money, when, when)
        ),  # count, spent, aov, first, last
        "orders": st.lists(
            st.tuples(
                when,
                money,
                st.booleans(),
                st.lists(
                    st.sampled_from(range(len(PRODUCTS))), min_size=1, max_size=2, unique=True
                ),
            ),
            max_size=3,
        ),  # (placed, total, counted, products)
        "views": st.lists(
            st.tuples(when, st.sampled_from(range(len(PRODUCTS))), st.booleans()), max_size=4
        ),  # (when, product, stored as sensitive)
        "carts": st.lists(
            st.tuples(
                st.booleans(),
                money,
                st.lists(st.sampled_from(range(len(PRODUCTS))), max_size=2, unique=True),
            ),
            max_size=2,
        ),  # (open, total, products)
        "consent": st.sampled_from([None, "granted", "withdrawn"]),
        "topics": st.dictionaries(st.sampled_from(["news", "deals"]), st.booleans(), max_size=2),
    }
)

COFFEE_FANS = {"field": "orders.bought_category", "op": "eq", "value": "Food > Coffee"}


def _shop(data: list[dict]) -> list[Profile]:
    products = [
        Product.objects.create(external_id=pid, title=pid, category_path=path, is_sensitive=flag)
        for pid, path, flag in PRODUCTS
    ]
    product_categories_sync()
    topics = {
        slug: Topic.objects.create(slug=slug, name=slug, subscribed_by_default=default)
        for slug, default in TOPICS
    }
    lifecycle_segments_ensure()
    Segment.objects.create(
        slug="coffee_fans", name="Coffee fans", kind=SegmentKind.RULE, rule=COFFEE_FANS
    )
    profiles = []
    for index, item in enumerate(data):
        stats = {}
        if item["stats"]:
            count, spent, aov, first, last = item["stats"]
            stats = {
                "orders_count": count,
                "total_spent": Decimal(spent),
                "average_order_value": Decimal(aov),
                "first_order_at": NOW + dt.timedelta(days=first, hours=index),
                "last_order_at": NOW + dt.timedelta(days=last, minutes=index),
            }
        profile = Profile.objects.create(
            email=f"p{index}@example.com" if item["email"] else "",
            country=item["country"],
            **stats,
        )
        profiles.append(profile)
        for key, value, (source, confidence) in item["traits"]:
            Trait.objects.create(
                profile=profile, key=key, value=value, source=source, confidence=confidence
            )
        for number, (placed, total, counted, lines) in enumerate(item["orders"]):
            order = Order.objects.create(
                external_id=f"O{index}-{number}",
                profile=profile,
                placed_at=NOW + dt.timedelta(days=placed, hours=1),
                total=Decimal(total),
                shop_total=Decimal(total),
                currency="EUR",
                status="placed" if counted else "cancelled",
                source="signal",
            )
            for line in lines:
                OrderLine.objects.create(
                    order=order, product=products[line], quantity=1, unit_price=1
                )
        for at, product, sensitive in item["views"]:
            Event.objects.create(
                profile=profile,
                name="product_viewed",
                occurred_at=NOW + dt.timedelta(days=at),
                product=products[product],
                is_sensitive=sensitive,
            )
        for number, (is_open, total, lines) in enumerate(item["carts"]):
            cart = Cart.objects.create(
                external_id=f"C{index}-{number}",
                profile=profile,
                status="open" if is_open else "converted",
                currency="EUR",
                total=Decimal(total),
                shop_total=Decimal(total),
                source_updated_at=NOW - dt.timedelta(hours=2),
            )
            for line in lines:
                CartLine.objects.create(cart=cart, product=products[line], quantity=1, unit_price=1)
        if item["consent"]:
            ConsentRecord.objects.create(
                profile=profile,
                purpose="email_marketing",
                status=item["consent"],
                source="api",
                recorded_at=NOW - dt.timedelta(days=1),
                written_at=NOW - dt.timedelta(days=1),
            )
        for slug, subscribed in item["topics"].items():
            TopicPreference.objects.create(
                profile=profile, topic=topics[slug], subscribed=subscribed, updated_at=NOW
            )
    return profiles


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rule=rules,
    data=st.lists(profile_data, min_size=PROFILES, max_size=PROFILES),
    later=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=400)),
)
def test_compiled_rule_selects_exactly_the_profiles_the_python_evaluation_accepts(
    rule, data, later, settings
):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "SENSITIVE_CATEGORIES": ["Health"],
    }
    with transaction.atomic():
        profiles = _shop(data)
        rule_validate(rule, slug="under_test")
        selected = set(
            rule_members(rule, now=NOW, profiles=Profile.objects.all()).values_list("pk", flat=True)
        )
        expected = {p.pk for p in profiles if rule_evaluate(rule, profile=p, now=NOW)}
        assert selected == expected
        # The realtime path evaluates the same rule correlated to each profile: same answer.
        segment = Segment.objects.create(
            slug="under_test", name="Under test", kind=SegmentKind.RULE, rule=rule
        )
        segments_update_for_profiles(profile_ids=[p.pk for p in profiles], now=NOW)
        realtime = set(
            SegmentMembership.objects.current()
            .filter(segment=segment)
            .values_list("profile_id", flat=True)
        )
        assert realtime == expected
        # Later, the realtime update reuses the statement it compiled at NOW with its times
        # moved: every segment still holds exactly whom its definition selects then.
        segments_update_for_profiles(profile_ids=[p.pk for p in profiles], now=NOW + later)
        for each in Segment.objects.all():
            stored = set(
                SegmentMembership.objects.current()
                .filter(segment=each)
                .values_list("profile_id", flat=True)
            )
            assert stored == set(
                segment_members(segment=each, now=NOW + later).values_list("pk", flat=True)
            ), each.slug
        assert {p.pk for p in profiles if rule_evaluate(rule, profile=p, now=NOW + later)} == set(
            SegmentMembership.objects.current()
            .filter(segment=segment)
            .values_list("profile_id", flat=True)
        )
        event(f"{len(expected)} of {PROFILES} profiles selected")
        transaction.set_rollback(True)
