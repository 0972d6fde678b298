"""Rule segments: validation against the allowlist, category levels, sensitive data, refreshes,
realtime updates, explanations and the segment_define / segment_export commands."""

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from personalization.catalogue import product_upsert
from personalization.commerce import order_record
from personalization.exceptions import InvalidRule
from personalization.identity import Identity
from personalization.models import (
    Event,
    Job,
    ProductCategory,
    Profile,
    Segment,
    SegmentKind,
    SegmentMembership,
)
from personalization.segments import (
    lifecycle_segments_ensure,
    rule_segment_define,
    segment_explain,
    segment_refresh,
    segments_update_for_profiles,
)
from personalization.segments.dependencies import segments_depend_on
from personalization.segments.jobs import segments_update_enqueue
from personalization.segments.rules import rule_evaluate, rule_members, rule_q, rule_validate

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
COFFEE = {"field": "orders.bought_category", "op": "eq", "value": "Food", "within_days": 90}


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture(autouse=True)
def catalogue(db):
    product_upsert(product_id="beans", title="Beans", category="Food > Coffee > Beans")
    product_upsert(product_id="pan", title="Pan", category="Home > Kitchen")
    product_upsert(product_id="test-kit", title="Test kit", category="Health > Pregnancy")


_numbers = iter(range(1, 10**6))


def order(email, product, placed_at, total="20.00"):
    order_record(
        order_id=f"O{next(_numbers)}",
        identity=Identity(email=email),
        placed_at=placed_at,
        total=total,
        currency_code="EUR",
        lines=[{"product_id": product, "quantity": 1, "unit_price": total}],
    )


def members(rule):
    return set(rule_members(rule, now=NOW).values_list("email", flat=True))


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        (
            {"all": [COFFEE, {"field": "stats.shoe_size", "op": "eq", "value": 1}]},
            "all[1].field",
            "Unknown field",
        ),
        (
            {"all": [COFFEE, {"field": "stats.orders_count", "op": "like", "value": 1}]},
            "all[1].op",
            "Unknown operator",
        ),
        (
            {"any": [{"field": "stats.orders_count", "op": "gte", "value": "two"}]},
            "any[0].value",
            "whole number",
        ),
        (
            {"not": {"field": "orders.count", "op": "gte", "value": 1, "within_days": 0}},
            "not.within_days",
            "between",
        ),
        (
            {"field": "profile.country", "op": "eq", "value": "SE", "sql": "1=1"},
            "sql",
            "Unknown key",
        ),
        ({"field": "orders.bought_product", "op": "eq", "value": "nope"}, "value", "No product"),
        ({"field": "stats.total_spent", "op": "gt", "value": "1.005"}, "value", "2 after"),
        ({"all": []}, "all", "non-empty"),
        ({"field": "profile.country", "op": "in", "value": "SE"}, "value", "list"),
        ({"field": "segment", "op": "eq", "value": "ghosts"}, "value", "No segment"),
        ("everyone", "rule", "group"),
    ],
)
def test_a_rule_outside_the_allowlist_is_refused_naming_the_path(rule, path, words):
    with pytest.raises(InvalidRule) as raised:
        rule_validate(rule, slug="new")
    assert raised.value.field == path
    assert words in raised.value.message


def test_sensitive_categories_and_products_are_refused_unless_the_setting_allows_them(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SENSITIVE_CATEGORIES": ["Pregnancy"]}
    by_category = {"field": "events.viewed_category", "op": "eq", "value": "health > pregnancy"}
    by_product = {"field": "cart.contains_product", "op": "eq", "value": "test-kit"}
    for rule in (by_category, by_product):
        with pytest.raises(InvalidRule, match="sensitive") as raised:
            rule_validate(rule)
        assert raised.value.field == "value"
    rule_validate({"field": "orders.bought_category", "op": "eq", "value": "Health"})

    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "SEGMENT_ALLOWED_SENSITIVE_CATEGORIES": ["pregnancy"],
    }
    rule_validate(by_category)
    rule_validate(by_product)


def test_segments_cannot_refer_to_each_other_in_a_circle():
    rule_segment_define(slug="a", rule={"field": "stats.orders_count", "op": "gte", "value": 1})
    rule_segment_define(slug="b", rule={"field": "segment", "op": "eq", "value": "a"})
    with pytest.raises(InvalidRule, match="circle") as raised:
        rule_segment_define(
            slug="a", rule={"all": [COFFEE, {"field": "segment", "op": "in", "value": ["b"]}]}
        )
    assert raised.value.field == "all[1].value[0]"
    assert "a → b → a" in raised.value.message
    assert Segment.objects.get(slug="a").rule["field"] == "stats.orders_count"  # unchanged


def test_the_database_keeps_rules_to_rule_segments():
    lifecycle_segments_ensure()
    with pytest.raises(IntegrityError), transaction.atomic():
        Segment.objects.filter(slug="lead").update(rule={"field": "profile.country"})
    with pytest.raises(IntegrityError), transaction.atomic():
        Segment.objects.create(slug="x", name="x", kind=SegmentKind.RULE)


# --- categories and sensitive data -----------------------------------------------------------


def test_the_catalogue_keeps_one_category_row_per_level():
    levels = ProductCategory.objects.filter(product__external_id="beans").order_by("depth")
    assert list(levels.values_list("path", "key")) == [
        ("Food", "food"),
        ("Food > Coffee", "food > coffee"),
        ("Food > Coffee > Beans", "food > coffee > beans"),
    ]
    product_upsert(product_id="beans", category="Pantry/Coffee")
    assert list(levels.values_list("key", flat=True)) == ["pantry", "pantry > coffee"]


def test_bought_in_a_category_counts_that_level_and_below_case_insensitively_without_like():
    order("ann@example.com", "beans", NOW - 10 * DAY)
    order("bob@example.com", "pan", NOW - 10 * DAY)
    order("cid@example.com", "beans", NOW - 100 * DAY)  # outside the 90 days
    assert members(COFFEE) == {"ann@example.com"}
    assert members({**COFFEE, "value": "food > COFFEE"}) == {"ann@example.com"}
    assert members({**COFFEE, "value": "Coffee"}) == set()  # a path from the top, not a name
    with CaptureQueriesContext(connection) as captured:
        list(rule_members(COFFEE, now=NOW))
    assert "LIKE" not in captured[0]["sql"].upper()


def test_sensitive_products_and_sensitive_events_never_count(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SENSITIVE_CATEGORIES": ["Pregnancy"]}
    order("ann@example.com", "test-kit", NOW - DAY)
    ann = Profile.objects.get(email="ann@example.com")
    Event.objects.create(
        profile=ann,
        name="product_viewed",
        occurred_at=NOW - DAY,
        product_id=ann.orders.get().lines.get().product_id,
    )
    health = {"field": "orders.bought_category", "op": "eq", "value": "Health"}
    viewed = {"field": "events.viewed_category", "op": "eq", "value": "Health"}
    assert members(health) == members(viewed) == set()

    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "SEGMENT_ALLOWED_SENSITIVE_CATEGORIES": ["Pregnancy"],
    }
    assert members(health) == {"ann@example.com"}
    assert members(viewed) == {"ann@example.com"}
    Event.objects.update(is_sensitive=True)  # stored as sensitive: never counts
    assert members(viewed) == set()


# --- membership, realtime, explanations ------------------------------------------------------


def test_a_rule_segment_refreshes_and_follows_a_customer_in_realtime():
    lifecycle_segments_ensure()
    segment, created = rule_segment_define(
        slug="coffee_regulars",
        name="Coffee regulars",
        rule={
            "all": [
                {"field": "stats.orders_count", "op": "gte", "value": 2},
                COFFEE,
                {"not": {"field": "segment", "op": "in", "value": ["lapsed"]}},
            ]
        },
    )
    assert created
    order("ann@example.com", "beans", NOW - 20 * DAY)
    order("ann@example.com", "pan", NOW - 5 * DAY)
    order("bob@example.com", "beans", NOW - 5 * DAY)
    result = segment_refresh(segment=segment, now=NOW)
    assert (result.entered, result.members) == (1, 1)

    order("bob@example.com", "pan", NOW)
    bob = Profile.objects.get(email="bob@example.com")
    changes = segments_update_for_profiles(profile_ids=[bob.pk], now=NOW)
    assert changes["coffee_regulars"] == (frozenset({bob.pk}), frozenset())
    assert set(
        SegmentMembership.objects.current()
        .filter(segment=segment)
        .values_list("profile__email", flat=True)
    ) == {"ann@example.com", "bob@example.com"}


def test_a_refresh_lets_go_of_those_an_any_group_no_longer_holds():
    # An "any" group every member must meet is selected as one set in a refresh; those it
    # no longer holds leave at the next refresh.
    segment, _ = rule_segment_define(
        slug="recent_kitchen",
        rule={
            "all": [
                {"field": "stats.orders_count", "op": "gte", "value": 1},
                {
                    "any": [
                        {
                            "field": "orders.bought_product",
                            "op": "eq",
                            "value": "pan",
                            "within_days": 30,
                        },
                        COFFEE,
                    ]
                },
            ]
        },
    )
    order("ann@example.com", "pan", NOW - 10 * DAY)
    order("bob@example.com", "beans", NOW - 80 * DAY)
    order("cid@example.com", "pan", NOW - 200 * DAY)
    first = segment_refresh(segment=segment, now=NOW)
    assert (first.entered, first.exited, first.members) == (2, 0, 2)
    later = segment_refresh(segment=segment, now=NOW + 15 * DAY)  # Bob's beans are 95 days old
    assert (later.entered, later.exited, later.members) == (0, 1, 1)
    assert set(
        SegmentMembership.objects.current()
        .filter(segment=segment)
        .values_list("profile__email", flat=True)
    ) == {"ann@example.com"}


@pytest.mark.parametrize("op", ["eq", "ne", "gt", "gte", "lt", "lte"])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("orders.count", 0),
        ("orders.count", 1),
        ("orders.count", 2),
        ("orders.sum", 0),
        ("orders.sum", 20),
        ("orders.sum", 40),
    ],
)
def test_counted_orders_every_member_must_have_are_one_grouped_set(op, field, value):
    # For everybody, a count or an amount of orders in a top "all" that zero does not meet
    # is one grouped set (id IN … HAVING); the row form counts each profile's orders. Both
    # select whom the Python evaluation selects, those without recent orders included.
    order("ann@example.com", "beans", NOW - 5 * DAY)
    order("ann@example.com", "pan", NOW - 6 * DAY)
    order("bob@example.com", "beans", NOW - 10 * DAY)
    order("cid@example.com", "pan", NOW - 100 * DAY)  # outside the window
    Profile.objects.create(email="dan@example.com")  # never ordered
    rule = {
        "all": [
            {"field": field, "op": op, "value": value, "within_days": 30},
            {"field": "profile.identified", "op": "eq", "value": True},
        ]
    }
    rule_validate(rule)
    expected = {p.email for p in Profile.objects.all() if rule_evaluate(rule, profile=p, now=NOW)}
    assert members(rule) == expected
    assert set(Profile.objects.filter(rule_q(rule, now=NOW)).values_list("email", flat=True)) == (
        expected
    )
    zero = {"eq": 0 == value, "ne": 0 != value, "gt": 0 > value, "gte": 0 >= value}
    zero_meets = {**zero, "lt": 0 < value, "lte": 0 <= value}[op]
    sql = str(rule_members(rule, now=NOW).query).upper()
    assert ("HAVING" in sql) is not zero_meets


def test_realtime_updates_depend_on_what_the_segments_read():
    lifecycle_segments_ensure()
    ann = Profile.objects.create(email="ann@example.com")
    assert "events" not in segments_depend_on()
    assert segments_update_enqueue(profile_ids=[ann.pk], changes={ann.pk: {"events"}}) is None

    rule_segment_define(
        slug="browsers",
        rule={"field": "events.viewed_product", "op": "eq", "value": "pan", "at_least": 2},
    )
    assert {"events", "orders", "cart", "consent", "merge"} <= segments_depend_on()
    job = segments_update_enqueue(profile_ids=[ann.pk], changes={ann.pk: {"events"}})
    assert isinstance(job, Job)
    assert segments_update_enqueue(profile_ids=[ann.pk], changes={ann.pk: {"preferences"}}) is None


def test_explain_gives_each_conditions_value_and_whether_it_holds():
    lifecycle_segments_ensure()
    segment, _created = rule_segment_define(
        slug="big_coffee",
        rule={
            "all": [
                {"field": "orders.sum", "op": "gte", "value": 50},
                COFFEE,
                {"not": {"field": "profile.country", "op": "eq", "value": "DE"}},
            ]
        },
    )
    order("ann@example.com", "beans", NOW - 10 * DAY, total="30.00")
    ann = Profile.objects.get(email="ann@example.com")
    explained = segment_explain(segment=segment, profile=ann, now=NOW).as_dict()
    assert explained["holds"] is False
    spent, coffee, not_de = explained["children"]
    assert (spent["value"], spent["holds"]) == ("30.00", False)
    assert spent["text"] == "amount ordered is at least 50"
    assert (coffee["value"], coffee["holds"]) == (1, True)
    assert coffee["text"] == "bought in the category is Food, in the last 90 days"
    assert not_de["holds"] is True
    assert not_de["children"][0]["value"] == ""

    loyal = segment_explain(segment=Segment.objects.get(slug="loyal"), profile=ann, now=NOW)
    assert loyal.holds is False
    (reason,) = loyal.children
    assert reason.text == "orders in the last 365 days (needs at least 3)"
    assert (reason.value, reason.holds) == (1, False)


# --- segments as code ------------------------------------------------------------------------


def test_segment_define_and_export_round_trip(tmp_path, capsys):
    rule = {"any": [COFFEE, {"field": "consent.email_marketing", "op": "eq", "value": "granted"}]}
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(rule))
    call_command("segment_define", "coffee", "--file", str(path), "--name", "Coffee people")
    assert "Created coffee" in capsys.readouterr().out
    segment = Segment.objects.get(slug="coffee")
    assert (segment.kind, segment.name, segment.rule) == ("rule", "Coffee people", rule)

    out = io.StringIO()
    call_command("segment_export", "coffee", stdout=out)
    exported = out.getvalue()
    Segment.objects.filter(slug="coffee").update(name="renamed", rule={"not": COFFEE})
    (tmp_path / "export.json").write_text(exported)
    call_command("segment_define", "coffee", "--file", str(tmp_path / "export.json"))
    segment.refresh_from_db()
    assert (segment.name, segment.rule) == ("Coffee people", rule)

    out = io.StringIO()
    call_command("segment_export", stdout=out)
    assert [item["slug"] for item in json.loads(out.getvalue())] == ["coffee"]


def test_segment_define_refuses_a_bad_rule_naming_the_path_and_writes_nothing(tmp_path):
    path = tmp_path / "rule.json"
    path.write_text(json.dumps({"all": [COFFEE, {"field": "orders.sum", "op": "gte"}]}))
    with pytest.raises(CommandError, match=r"all\[1\]\.value: This key is required"):
        call_command("segment_define", "coffee", "--file", str(path))
    path.write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("segment_define", "coffee", "--file", str(path))
    lifecycle_segments_ensure()
    path.write_text(json.dumps(COFFEE))
    with pytest.raises(CommandError, match="lifecycle"):
        call_command("segment_define", "loyal", "--file", str(path))
    assert not Segment.objects.filter(kind=SegmentKind.RULE).exists()
    assert Segment.objects.get(slug="loyal").rule is None


@pytest.mark.django_db(transaction=True)
def test_the_migration_writes_the_category_levels_of_products_already_mirrored():
    from django.db.migrations.executor import MigrationExecutor

    before = [("personalization", "0008_segments")]
    after = [("personalization", "0009_segment_rules_product_categories")]
    ProductCategory.objects.all().delete()
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        apps.get_model("personalization", "Product").objects.create(
            external_id="mill", title="Mill", category_path="Food > Coffee > Mills"
        )
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    levels = ProductCategory.objects.filter(product__external_id="mill").order_by("depth")
    assert list(levels.values_list("key", "name_key")) == [
        ("food", "food"),
        ("food > coffee", "coffee"),
        ("food > coffee > mills", "mills"),
    ]
    assert set(
        ProductCategory.objects.filter(product__external_id="beans").values_list("key", flat=True)
    ) == {"food", "food > coffee", "food > coffee > beans"}


def test_realtime_with_rule_segments_takes_the_same_queries_for_one_profile_or_many():
    lifecycle_segments_ensure()
    rule_segment_define(slug="coffee", rule=COFFEE)
    rule_segment_define(
        slug="coffee_not_loyal",
        rule={
            "all": [
                {"field": "segment", "op": "eq", "value": "coffee"},
                {"not": {"field": "segment", "op": "eq", "value": "loyal"}},
            ]
        },
    )
    for index in range(20):
        order(f"c{index}@example.com", "beans" if index % 2 else "pan", NOW - index * DAY)
    ids = list(Profile.objects.values_list("pk", flat=True))

    def queries(profile_ids):
        with CaptureQueriesContext(connection) as captured:
            segments_update_for_profiles(profile_ids=profile_ids, now=NOW)
        return len(captured)

    one = queries(ids[:1])
    many = queries(ids[1:])
    assert one <= 12
    assert many <= one + 2 * Segment.objects.count()  # at most an insert and an update each
    assert set(
        SegmentMembership.objects.current()
        .filter(segment__slug="coffee_not_loyal")
        .values_list("profile__email", flat=True)
    ) == {f"c{index}@example.com" for index in range(1, 20, 2)}
