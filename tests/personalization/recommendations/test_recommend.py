"""Reading recommendations: every rule of what is (not) shown, consent, cold start, reasons."""

import datetime as dt

import pytest
import time_machine

from personalization.consent import consent_record
from personalization.models import OrderStatus, PurchaseCycle
from personalization.recommendations import (
    Reason,
    recommend_for_product,
    recommend_for_profile,
    recommend_for_profiles,
    recommendations_build,
)

from .shop import NOW, customer, in_cart, order, views

pytestmark = pytest.mark.django_db


def consenting():
    profile = customer()
    consent_record(profile=profile, purpose="personalization", granted=True, source="api")
    return profile


def configure(settings, **values):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, **values}


def bought(profile, *products, days_ago=3):
    placed = order(*products, profile=profile)
    placed.placed_at = NOW - dt.timedelta(days=days_ago)
    placed.save(update_fields=["placed_at"])
    return placed


@pytest.fixture
def coffee(product_factory):
    """A machine bought with beans and a grinder; a mug sometimes."""
    machine = product_factory(title="Machine", category_path="Kitchen > Machines")
    beans = product_factory(title="Beans", category_path="Food > Coffee")
    grinder = product_factory(title="Grinder", category_path="Kitchen > Grinders")
    mug = product_factory(title="Mug", category_path="Kitchen > Mugs")
    for _ in range(3):
        order(machine, beans, grinder)
    order(machine, mug)
    order(machine, mug)
    with time_machine.travel(NOW, tick=False):
        recommendations_build(now=NOW)
    return machine, beans, grinder, mug


def titles(result):
    return [item.product.title for item in result]


def test_product_recommendations_are_its_neighbours_with_a_reason(coffee):
    machine, beans, grinder, mug = coffee

    result = recommend_for_product(product=machine, now=NOW)

    assert titles(result)[:3] == ["Beans", "Grinder", "Mug"]
    first = result.items[0]
    assert first.reason == Reason.BOUGHT_TOGETHER
    assert first.because_of == machine
    assert first.reason_text == "Often bought with Machine"
    assert result.personalized is False  # no profile


def test_a_product_with_no_neighbours_gets_popular_in_its_category_then_bestsellers(
    coffee, product_factory
):
    machine, beans, grinder, mug = coffee
    lonely = product_factory(title="Kettle", category_path="Kitchen > Machines")

    result = recommend_for_product(product=lonely, now=NOW)

    assert result.items[0].product == machine
    assert result.items[0].reason == Reason.POPULAR_IN_CATEGORY
    assert result.items[0].reason_text == "Popular in Machines"
    assert {item.reason for item in result.items[1:]} == {Reason.BESTSELLER}
    assert result.items[1].reason_text == "A bestseller"


def test_out_of_stock_and_inactive_products_are_never_shown(coffee):
    machine, beans, grinder, mug = coffee
    beans.in_stock = False
    beans.save()
    grinder.active = False
    grinder.save()

    assert titles(recommend_for_product(product=machine, now=NOW)) == ["Mug"]


def test_sensitive_products_are_never_shown_or_built_from(coffee, product_factory, settings):
    machine, beans, grinder, mug = coffee
    configure(settings, SENSITIVE_CATEGORIES=["Coffee"])
    pills = product_factory(title="Pills", is_sensitive=True, category_path="Kitchen > Machines")
    order(pills)
    order(pills)

    assert "Beans" not in titles(recommend_for_product(product=machine, now=NOW))
    assert "Pills" not in titles(recommend_for_profile(profile=customer(), now=NOW))
    # Its page shows bestsellers, nothing in its category.
    result = recommend_for_product(product=pills, now=NOW)
    assert {item.reason for item in result} == {Reason.BESTSELLER}
    assert "Pills" not in titles(result)


def test_an_allowed_sensitive_category_needs_the_customers_consent(
    coffee, product_factory, settings
):
    machine, beans, grinder, mug = coffee
    configure(
        settings,
        SENSITIVE_CATEGORIES=["Coffee"],
        RECOMMENDATION_ALLOWED_SENSITIVE_CATEGORIES=["coffee"],
    )

    assert "Beans" not in titles(recommend_for_profile(profile=customer(), now=NOW))
    assert "Beans" not in titles(recommend_for_product(product=machine, now=NOW))
    profile = consenting()
    views(mug, profile=profile)
    assert "Beans" in titles(recommend_for_profile(profile=profile, now=NOW))


def test_without_consent_the_picks_are_bestsellers_and_say_so(coffee):
    machine, beans, grinder, mug = coffee
    profile = customer()
    bought(profile, machine)

    result = recommend_for_profile(profile=profile, now=NOW)

    assert result.personalized is False
    assert {item.reason for item in result} == {Reason.BESTSELLER}
    assert titles(result)[0] == "Machine"  # their own purchase is not even read


def test_without_consent_a_category_keeps_bestsellers_within_it(coffee):
    result = recommend_for_profile(profile=customer(), category="Kitchen", now=NOW)

    assert set(titles(result)) == {"Machine", "Grinder", "Mug"}
    assert result.items[0].reason_text == "Popular in Kitchen"


def test_cold_start_is_bestsellers_and_not_personalized(coffee):
    result = recommend_for_profile(profile=consenting(), now=NOW)

    assert result.personalized is False
    assert titles(result)[0] == "Machine"


def test_withdrawn_consent_stops_personalisation(coffee):
    machine, beans, grinder, mug = coffee
    profile = consenting()
    views(machine, profile=profile)
    assert recommend_for_profile(profile=profile, now=NOW).personalized is True

    consent_record(profile=profile, purpose="personalization", granted=False, source="api")

    assert recommend_for_profile(profile=profile, now=NOW).personalized is False


def test_picks_follow_the_history_and_name_the_product_behind_them(coffee):
    machine, beans, grinder, mug = coffee
    profile = consenting()
    views(machine, profile=profile)

    result = recommend_for_profile(profile=profile, now=NOW)

    assert result.personalized is True
    assert titles(result)[:3] == ["Beans", "Grinder", "Mug"]
    assert result.items[0].because_of == machine


def test_recent_history_weighs_more_than_old(product_factory):
    a, a_friend, b, b_friend = (product_factory(title=t) for t in ("A", "A+", "B", "B+"))
    for _ in range(2):
        order(a, a_friend)
        order(b, b_friend)
    recommendations_build(now=NOW)
    profile = consenting()
    views(a, profile=profile, days_ago=60)
    views(b, profile=profile, days_ago=1)

    with time_machine.travel(NOW, tick=False):
        assert titles(recommend_for_profile(profile=profile, limit=2)) == ["B+", "A+"]
    with time_machine.travel(NOW + dt.timedelta(days=400), tick=False):
        # Both are past RECOMMENDATION_HISTORY_DAYS: nothing to start from.
        assert recommend_for_profile(profile=profile).personalized is False


def test_what_was_bought_is_not_shown_again_unless_it_is_a_repeat_purchase(coffee):
    machine, beans, grinder, mug = coffee
    profile = consenting()
    bought(profile, machine, grinder)
    bought(profile, beans)
    beans.purchase_cycle = PurchaseCycle.REPEAT
    beans.save()

    result = titles(recommend_for_profile(profile=profile, now=NOW))

    assert "Grinder" not in result and "Machine" not in result
    assert "Beans" in result
    assert "Beans" in titles(recommend_for_product(product=machine, profile=profile, now=NOW))
    assert "Grinder" not in titles(recommend_for_product(product=machine, profile=profile, now=NOW))


def test_a_repurchase_interval_also_makes_a_repeat_purchase(coffee):
    machine, beans, grinder, mug = coffee
    beans.repurchase_interval_days = 30
    beans.save()
    profile = consenting()
    bought(profile, machine, beans)

    assert "Beans" in titles(recommend_for_profile(profile=profile, now=NOW))


def test_cancelled_orders_are_not_purchases(coffee):
    machine, beans, grinder, mug = coffee
    profile = consenting()
    order(grinder, profile=profile, status=OrderStatus.CANCELLED)
    views(machine, profile=profile)

    assert "Grinder" in titles(recommend_for_profile(profile=profile, now=NOW))


def test_a_durable_purchase_rests_its_category_for_the_cool_down(coffee, product_factory):
    machine, beans, grinder, mug = coffee
    other_machine = product_factory(title="Other machine", category_path="Kitchen > Machines")
    order(other_machine, beans)
    order(other_machine, beans)
    recommendations_build(now=NOW)
    machine.purchase_cycle = PurchaseCycle.DURABLE
    machine.save()
    profile = consenting()
    bought(profile, machine, days_ago=10)
    views(beans, profile=profile)

    with time_machine.travel(NOW, tick=False):
        result = titles(recommend_for_profile(profile=profile))
    assert "Other machine" not in result
    assert "Grinder" in result  # another category

    # 180 days (the default) after the purchase, the category is back.
    with time_machine.travel(NOW + dt.timedelta(days=171), tick=False):
        views(beans, profile=profile, days_ago=-171)
        assert "Other machine" in titles(recommend_for_profile(profile=profile))


def test_an_unknown_purchase_cycle_leaves_out_only_the_product(coffee, product_factory):
    machine, beans, grinder, mug = coffee
    other_machine = product_factory(title="Other machine", category_path="Kitchen > Machines")
    order(other_machine, beans)
    order(other_machine, beans)
    recommendations_build(now=NOW)
    profile = consenting()
    bought(profile, machine)
    views(beans, profile=profile)

    assert "Other machine" in titles(recommend_for_profile(profile=profile, now=NOW))


def test_the_cart_is_left_out_unless_a_cart_reminder_asks_for_it(coffee):
    machine, beans, grinder, mug = coffee
    profile = consenting()
    in_cart(profile, beans)
    views(machine, profile=profile)

    assert "Beans" not in titles(recommend_for_profile(profile=profile, now=NOW))
    reminder = recommend_for_profile(profile=profile, context="cart_reminder", now=NOW)
    assert reminder.items[0].product == beans
    assert reminder.items[0].reason == Reason.IN_CART
    assert reminder.items[0].reason_text == "Still in your cart"


def test_the_cart_seeds_picks(coffee):
    machine, beans, grinder, mug = coffee
    profile = consenting()
    in_cart(profile, machine)

    result = recommend_for_profile(profile=profile, now=NOW)

    assert result.personalized is True
    assert titles(result)[0] == "Beans"
    assert "Machine" not in titles(result)


def test_bestsellers_count_only_recent_placed_orders(product_factory, settings):
    old, new = product_factory(title="Old"), product_factory(title="New")
    for _ in range(3):
        bought(customer(), old, days_ago=40)
    bought(customer(), new, days_ago=1)
    order(old, status=OrderStatus.REFUNDED)

    assert titles(recommend_for_profile(profile=customer(), now=NOW)) == ["New"]
    configure(settings, RECOMMENDATION_BESTSELLER_DAYS=60)
    assert titles(recommend_for_profile(profile=customer(), now=NOW)) == ["Old", "New"]


def test_with_a_model_bestsellers_are_the_builds_counts_until_the_next_build(product_factory):
    old, new = product_factory(title="Old"), product_factory(title="New")
    for _ in range(2):
        bought(customer(), old, days_ago=2)
    bought(customer(), new, days_ago=40)
    recommendations_build(now=NOW)
    for _ in range(3):
        bought(customer(), new, days_ago=1)

    # The read does not count orders: it takes the build's list, with the order counts.
    result = recommend_for_profile(profile=customer(), now=NOW)
    assert [(item.product.title, item.score) for item in result] == [("Old", 2.0)]

    recommendations_build(now=NOW)
    assert titles(recommend_for_profile(profile=customer(), now=NOW)) == ["New", "Old"]


def test_queries_are_bounded_whatever_the_history(
    coffee, product_factory, django_assert_max_num_queries
):
    machine, beans, grinder, mug = coffee
    profile = consenting()
    many = [product_factory(title=f"Extra {i}") for i in range(15)]
    for product in many:
        bought(profile, product, machine)
        views(product, profile=profile)
    in_cart(profile, mug)

    with django_assert_max_num_queries(15):
        recommend_for_profile(profile=profile, now=NOW)
    with django_assert_max_num_queries(15):
        recommend_for_product(product=machine, profile=profile, now=NOW)


def picks(result):
    return result.personalized, [
        (item.product.title, item.reason, getattr(item.because_of, "title", None))
        for item in result
    ]


@pytest.mark.parametrize("context", ["general", "cart_reminder"])
def test_a_batch_gets_what_each_customer_would_get_alone(
    coffee, product_factory, context, django_assert_max_num_queries
):
    machine, beans, grinder, mug = coffee
    refill = product_factory(title="Refill", purchase_cycle=PurchaseCycle.REPEAT)
    buyer, viewer, carter, cold, stranger = (consenting() for _ in range(5))
    bought(buyer, machine)
    bought(buyer, refill, days_ago=60)
    bought(buyer, refill, days_ago=30)
    views(beans, profile=viewer)
    in_cart(carter, machine, grinder)
    not_asked = customer()  # no personalisation consent: bestsellers
    bought(not_asked, machine)
    batch = [buyer, viewer, carter, cold, stranger, not_asked]

    with django_assert_max_num_queries(12):
        together = recommend_for_profiles(profiles=batch, limit=4, context=context, now=NOW)

    for profile in batch:
        alone = recommend_for_profile(profile=profile, limit=4, context=context, now=NOW)
        assert picks(together[profile.pk]) == picks(alone), profile
    assert picks(together[not_asked.pk])[0] is False
    assert "Machine" not in titles(together[buyer.pk])


def test_the_reason_text_is_translated(coffee):
    from django.utils import translation

    machine = coffee[0]
    first = recommend_for_product(product=machine, now=NOW).items[0]

    with translation.override("sv"):
        assert first.reason_text == "Köps ofta med Machine"
