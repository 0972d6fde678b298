"""Replenishment: learned intervals, each customer's due dates and the "due soon" query."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from personalization.consent import consent_record
from personalization.models import (
    LearnedInterval,
    Order,
    OrderLine,
    OrderStatus,
    Profile,
    RecommendationModel,
)
from personalization.recommendations import (
    Reason,
    recommend_for_profile,
    recommendations_build,
    replenishment_due,
    replenishment_for_profile,
)

from .shop import in_cart

pytestmark = pytest.mark.django_db

# In the future of the migrations' real clock, so consent and wordings are in the past.
T0 = dt.datetime(2027, 3, 1, 9, tzinfo=dt.UTC)
_serial = iter(range(1, 10**9))


def customer(*, consents=True) -> Profile:
    profile = Profile.objects.create(email=f"r{next(_serial)}@example.com")
    if consents:
        consent_record(profile=profile, purpose="personalization", granted=True, source="api")
    return profile


def bought(profile, *products, at, status=OrderStatus.PLACED) -> Order:
    order = Order.objects.create(
        external_id=f"R{next(_serial)}",
        profile=profile,
        placed_at=at,
        total=Decimal("10.00"),
        currency="EUR",
        shop_total=Decimal("10.00"),
        source="api",
        status=status,
    )
    OrderLine.objects.bulk_create(
        OrderLine(order=order, product=p, quantity=1, unit_price=Decimal("5.00")) for p in products
    )
    return order


def days(n) -> dt.timedelta:
    return dt.timedelta(days=n)


def due_pairs(**kwargs):
    return [(row["order__profile_id"], row["product_id"]) for row in replenishment_due(**kwargs)]


@pytest.fixture
def beans(product_factory):
    return product_factory(title="Beans", repurchase_interval_days=30)


def test_a_customer_is_due_one_interval_after_their_last_purchase(beans):
    anna = customer()
    bought(anna, beans, at=T0 - days(50))
    bought(anna, beans, at=T0 - days(20))

    with time_machine.travel(T0, tick=False):
        (due,) = replenishment_for_profile(profile=anna)

    assert (due.product, due.last_bought_at, due.interval_days) == (beans, T0 - days(20), 30)
    assert due.due_at == T0 + days(10)
    assert due.learned is False


def test_due_soon_finds_who_is_due_in_the_window_and_not_who_bought_again(beans):
    due_in_5, due_in_9, overdue_3, rebought = customer(), customer(), customer(), customer()
    bought(due_in_5, beans, at=T0 - days(25))
    bought(due_in_9, beans, at=T0 - days(21))
    bought(overdue_3, beans, at=T0 - days(33))
    bought(rebought, beans, at=T0 - days(28))
    bought(rebought, beans, at=T0 - days(2))  # bought again: due in 28 days now

    with time_machine.travel(T0, tick=False):
        assert due_pairs(within_days=7) == [(overdue_3.pk, beans.pk), (due_in_5.pk, beans.pk)]
        assert due_pairs(within_days=7, overdue_days=0) == [(due_in_5.pk, beans.pk)]
        assert (due_in_9.pk, beans.pk) in due_pairs(within_days=10)

    # A week later the customer due in 9 days is due in 2.
    with time_machine.travel(T0 + days(7), tick=False):
        assert (due_in_9.pk, beans.pk) in due_pairs(within_days=7)
        (row,) = [
            r for r in replenishment_due(within_days=7) if r["order__profile_id"] == due_in_9.pk
        ]
        assert row["due_at"] == T0 + days(9)


def test_only_consenting_customers_placed_orders_and_usable_products_are_due(
    beans, product_factory, settings
):
    vitamins = product_factory(
        title="Vitamin D", category_path="Health > Vitamins", repurchase_interval_days=30
    )
    gone = product_factory(title="Old tea", repurchase_interval_days=30, active=False)
    mug = product_factory(title="Mug")  # no interval: never due
    no_consent, cancelled, fine = customer(consents=False), customer(), customer()
    bought(no_consent, beans, at=T0 - days(25))
    bought(cancelled, beans, at=T0 - days(25), status=OrderStatus.CANCELLED)
    bought(fine, beans, vitamins, gone, mug, at=T0 - days(25))
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SENSITIVE_CATEGORIES": ["Health"]}

    with time_machine.travel(T0, tick=False):
        assert due_pairs() == [(fine.pk, beans.pk)]
        assert replenishment_for_profile(profile=no_consent) == []
        assert [d.product for d in replenishment_for_profile(profile=fine)] == [beans]


def test_without_any_interval_nobody_is_due(product_factory):
    bought(customer(), product_factory(title="Mug"), at=T0 - days(25))

    with time_machine.travel(T0, tick=False):
        assert due_pairs() == []


def repeat_buyers(product, gaps):
    """One customer per gap, buying ``product`` twice that many days apart."""
    start = T0 - days(400)
    for gap in gaps:
        someone = customer(consents=False)
        bought(someone, product, at=start)
        bought(someone, product, at=start + dt.timedelta(days=gap))


def learned(product):
    return LearnedInterval.objects.current().filter(product=product).values_list("days", "repeats")


def test_a_build_learns_the_median_gap_once_enough_customers_bought_again(
    product_factory, settings
):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "RECOMMENDATION_INTERVAL_MIN_REPEATS": 5,
    }
    tea, soap, socks = (product_factory(title=t) for t in ("Tea", "Soap", "Socks"))
    repeat_buyers(tea, [20, 25, 40, 41, 200])  # odd: the middle gap
    repeat_buyers(soap, [10, 20, 30, 50, 60, 90])  # even: the mean of the two middle gaps
    repeat_buyers(socks, [60, 70, 80, 90])  # too few
    # Gaps under a day (a split order) say nothing about how long a product lasts.
    repeat_buyers(socks, [0.2])

    recommendations_build(now=T0)

    assert list(learned(tea)) == [(40, 5)]
    assert list(learned(soap)) == [(40, 6)]
    assert list(learned(socks)) == []


def test_a_learned_interval_makes_its_buyers_due_and_the_products_own_wins(
    product_factory, settings
):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "RECOMMENDATION_INTERVAL_MIN_REPEATS": 3,
    }
    tea = product_factory(title="Tea")
    own = product_factory(title="Own", repurchase_interval_days=7)
    repeat_buyers(tea, [30, 30, 30])
    repeat_buyers(own, [30, 30, 30])
    anna = customer()
    bought(anna, tea, own, at=T0 - days(27))
    recommendations_build(now=T0)

    with time_machine.travel(T0, tick=False):
        by_title = {d.product.title: d for d in replenishment_for_profile(profile=anna)}
        assert (by_title["Tea"].interval_days, by_title["Tea"].learned) == (30, True)
        assert by_title["Tea"].due_at == T0 + days(3)
        assert (by_title["Own"].interval_days, by_title["Own"].learned) == (7, False)
        assert (anna.pk, tea.pk) in due_pairs(within_days=7)
        # Anna's own was due 20 days ago: past the default two weeks overdue.
        assert (anna.pk, own.pk) not in due_pairs(within_days=7)
        assert (anna.pk, own.pk) in due_pairs(within_days=7, overdue_days=30)


def test_the_due_query_reads_one_statement_whatever_the_customers(beans, django_assert_num_queries):
    for _ in range(20):
        bought(customer(), beans, at=T0 - days(26))

    with time_machine.travel(T0, tick=False):
        queryset = replenishment_due()  # the longest interval: two small queries
        with django_assert_num_queries(1):
            assert len(list(queryset)) == 20


# --- Restock picks in recommend_for_profile ------------------------------------------------------


def test_for_you_puts_what_is_due_first_and_says_when_it_was_last_ordered(beans, product_factory):
    mug = product_factory(title="Mug")
    anna = customer()
    bought(anna, beans, mug, at=T0 - days(27))

    with time_machine.travel(T0, tick=False):
        picks = recommend_for_profile(profile=anna)

    first = picks.items[0]
    assert (first.product, first.reason) == (beans, Reason.RESTOCK)
    assert first.reason_text == "You last ordered this on Feb. 2, 2027"
    assert mug not in picks.products  # bought, not a repeat purchase: never again


@pytest.mark.parametrize(
    ("last_bought_days_ago", "shown"),
    [(10, False), (22, False), (23, True), (30, True), (44, True), (45, False)],
)
def test_a_repeat_purchase_is_offered_from_a_week_before_until_two_weeks_after_it_is_due(
    beans, last_bought_days_ago, shown
):
    anna = customer()
    bought(anna, beans, at=T0 - days(last_bought_days_ago))

    with time_machine.travel(T0, tick=False):
        reasons = {item.product: item.reason for item in recommend_for_profile(profile=anna)}

    assert (reasons.get(beans) == Reason.RESTOCK) is shown


def test_no_restock_pick_without_consent_out_of_stock_in_the_cart_or_after_buying_again(
    beans, product_factory
):
    tea = product_factory(title="Tea", repurchase_interval_days=30, in_stock=False)
    soap = product_factory(title="Soap", repurchase_interval_days=30)
    oil = product_factory(title="Oil", repurchase_interval_days=30)
    anna, ben = customer(), customer(consents=False)
    for someone in (anna, ben):
        bought(someone, beans, tea, soap, oil, at=T0 - days(28))
    bought(anna, oil, at=T0 - days(3))  # bought again: due in four weeks
    in_cart(anna, soap, at=T0 - days(1))

    with time_machine.travel(T0, tick=False):
        annas = recommend_for_profile(profile=anna)
        bens = recommend_for_profile(profile=ben)

    assert [i.product for i in annas if i.reason == Reason.RESTOCK] == [beans]
    assert not bens.personalized
    assert Reason.RESTOCK not in {item.reason for item in bens}


def test_restock_picks_take_at_most_half_of_the_places(product_factory):
    consumables = [product_factory(title=f"C{n}", repurchase_interval_days=30) for n in range(6)]
    anna = customer()
    bought(anna, *consumables, at=T0 - days(30))

    with time_machine.travel(T0, tick=False):
        picks = recommend_for_profile(profile=anna, limit=4)

    assert [item.reason for item in picks].count(Reason.RESTOCK) == 2


def test_learned_intervals_are_carried_over_for_a_week_then_learned_again(
    product_factory, settings
):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "RECOMMENDATION_INTERVAL_MIN_REPEATS": 3,
    }
    tea = product_factory(title="Tea")
    repeat_buyers(tea, [30, 30, 30])
    recommendations_build(now=T0)
    assert list(learned(tea)) == [(30, 3)]

    repeat_buyers(tea, [60, 60, 60, 60])  # the median moves to 60
    recommendations_build(now=T0 + days(1))
    assert list(learned(tea)) == [(30, 3)]  # carried over: learned a day ago
    assert RecommendationModel.objects.current().get().intervals_learned_at == T0

    recommendations_build(now=T0 + days(8))
    assert list(learned(tea)) == [(60, 7)]
    assert RecommendationModel.objects.current().get().intervals_learned_at == T0 + days(8)


def test_changing_the_minimum_of_repeats_learns_the_intervals_again(product_factory, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "RECOMMENDATION_INTERVAL_MIN_REPEATS": 3,
    }
    tea = product_factory(title="Tea")
    repeat_buyers(tea, [30, 30, 30])
    recommendations_build(now=T0)

    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "RECOMMENDATION_INTERVAL_MIN_REPEATS": 4,
    }
    recommendations_build(now=T0 + days(1))

    assert list(learned(tea)) == []
