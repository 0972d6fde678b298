"""The item-to-item model: what is counted, how it is scored, what is kept and what never is."""

import datetime as dt
import math

import pytest

from personalization.models import (
    BuildStatus,
    OrderStatus,
    ProductNeighbour,
    ProductPopularity,
    RecommendationModel,
)
from personalization.recommendations import build as build_module
from personalization.recommendations import recommendations_build

from .shop import NOW, neighbours_of, order, views

pytestmark = pytest.mark.django_db


@pytest.fixture
def products(product_factory):
    return [product_factory(title=f"Product {i}") for i in range(8)]


def configure(settings, **values):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        **{f"RECOMMENDATION_{key.upper()}": value for key, value in values.items()},
    }


def pair(product, neighbour) -> ProductNeighbour:
    return ProductNeighbour.objects.current().get(product=product, neighbour=neighbour)


def test_an_order_counts_once_however_many_lines_name_the_products(products):
    a, b = products[:2]
    for _ in range(3):
        order(a, a, b, b, a)

    recommendations_build(now=NOW)

    assert (pair(a, b).co_purchases, pair(b, a).co_purchases) == (3, 3)
    assert pair(a, b).score == pytest.approx(1.0)  # always bought together


def test_cancelled_and_refunded_orders_do_not_count(products):
    a, b = products[:2]
    order(a, b)
    order(a, b, status=OrderStatus.CANCELLED)
    order(a, b, status=OrderStatus.REFUNDED)

    recommendations_build(now=NOW)

    assert neighbours_of(a) == []  # one counted order is below the minimum support of 2


def test_co_views_weigh_less_than_co_purchases(products, settings):
    a, bought, viewed = products[:3]
    for _ in range(2):
        order(a, bought)
        views(a, viewed)

    recommendations_build(now=NOW)

    first, second = neighbours_of(a)
    assert (first.neighbour, first.co_purchases, first.co_views) == (bought, 2, 0)
    assert (second.neighbour, second.co_purchases, second.co_views) == (viewed, 0, 2)
    assert first.score > second.score
    # alone(a) = 2 orders + 0.25 × 2 viewers; alone(bought) = 2; alone(viewed) = 0.25 × 2.
    assert first.score == pytest.approx(2 / math.sqrt(2.5 * 2))
    assert second.score == pytest.approx(0.5 / math.sqrt(2.5 * 0.5))

    configure(settings, co_view_weight=1)
    recommendations_build(now=NOW)
    assert pair(a, bought).score == pytest.approx(pair(a, viewed).score)


def test_views_outside_the_window_or_stored_as_sensitive_do_not_count(products, settings):
    a, b = products[:2]
    for _ in range(2):
        views(a, b, days_ago=91)
    recommendations_build(now=NOW)
    assert neighbours_of(a) == []

    configure(settings, co_view_days=120)
    recommendations_build(now=NOW)
    assert pair(a, b).co_views == 2

    configure(settings, co_view_weight=0)
    recommendations_build(now=NOW)
    assert neighbours_of(a) == []


def test_a_bestseller_does_not_become_everybodys_first_neighbour(products):
    a, c, d, e, bestseller = products[:5]
    for one, other in ((a, c), (d, e)):
        for _ in range(3):
            order(one, other, bestseller)
        for _ in range(2):
            order(one, bestseller)
    for _ in range(30):
        order(bestseller)  # bought by nearly everybody, with or without anything else

    recommendations_build(now=NOW)

    for product, partner in ((a, c), (d, e)):
        # By raw counts the bestseller is the closest product (5 orders against 3)...
        assert pair(product, bestseller).co_purchases > pair(product, partner).co_purchases
        # ...but normalised by its popularity it is not.
        assert neighbours_of(product)[0].neighbour == partner
    for product in (c, e):
        assert neighbours_of(product)[0].neighbour != bestseller


def test_sensitive_products_are_not_in_the_model_at_all(products, product_factory, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SENSITIVE_CATEGORIES": ["Health"]}
    a, b = products[:2]
    flagged = product_factory(title="Flagged", is_sensitive=True)
    by_category = product_factory(title="Vitamins", category_path="Health > Vitamins")
    for _ in range(4):
        order(a, b, flagged, by_category)
        views(flagged, by_category)

    recommendations_build(now=NOW)

    sensitive = [flagged.pk, by_category.pk]
    assert ProductNeighbour.objects.exists()
    assert not ProductNeighbour.objects.filter(product__in=sensitive).exists()
    assert not ProductNeighbour.objects.filter(neighbour__in=sensitive).exists()
    # Their orders do not even shape the others' scores: a and b are alone together.
    assert pair(a, b).score == pytest.approx(1.0)


def test_inactive_products_are_never_neighbours(products):
    a, retired = products[:2]
    retired.active = False
    retired.save()
    for _ in range(2):
        order(a, retired)

    recommendations_build(now=NOW)

    assert neighbours_of(a) == []
    assert [row.neighbour for row in neighbours_of(retired)] == [a]


def test_each_product_keeps_its_k_best_neighbours(products, settings):
    configure(settings, neighbours=2)
    a, *rest = products[:5]
    for times, other in zip((2, 5, 3, 4), rest, strict=True):
        for _ in range(times):
            order(a, other)

    recommendations_build(now=NOW)

    kept = neighbours_of(a)
    assert [(row.rank, row.neighbour) for row in kept] == [(1, rest[1]), (2, rest[3])]
    assert ProductNeighbour.objects.filter(product=a).count() == 2


def test_a_pair_below_the_minimum_support_is_dropped(products, settings):
    a, b, c = products[:3]
    order(a, b)
    for _ in range(3):
        order(a, c)

    recommendations_build(now=NOW)
    assert [row.neighbour for row in neighbours_of(a)] == [c]

    configure(settings, min_support=1)
    recommendations_build(now=NOW)
    assert [row.neighbour for row in neighbours_of(a)] == [c, b]


def test_the_build_ranks_bestsellers_by_recent_placed_orders(products):
    a, b, c = products[:3]
    order(a, a, b)  # two lines, one order
    order(a)
    order(b, status=OrderStatus.CANCELLED)
    old = order(c)
    old.placed_at = NOW - dt.timedelta(days=31)
    old.save(update_fields=["placed_at"])

    recommendations_build(now=NOW)

    assert list(ProductPopularity.objects.current().values_list("product", "orders", "rank")) == [
        (a.pk, 2, 1),
        (b.pk, 1, 2),
    ]


def test_a_new_build_replaces_the_old_one(products):
    a, b = products[:2]
    for _ in range(2):
        order(a, b)
    first = recommendations_build(now=NOW)

    second = recommendations_build(now=NOW)

    assert (first.removed, second.removed) == (0, 1)
    assert list(RecommendationModel.objects.values_list("pk", "is_current")) == [
        (second.build_id, True)
    ]
    assert set(ProductNeighbour.objects.values_list("build", flat=True)) == {second.build_id}
    assert set(ProductPopularity.objects.values_list("build", flat=True)) == {second.build_id}
    build = RecommendationModel.objects.get()
    assert (build.status, build.products, build.neighbours) == (BuildStatus.COMPLETE, 2, 2)
    assert build.settings == {
        "neighbours": 20,
        "co_view_weight": 0.25,
        "co_view_days": 90,
        "min_support": 2,
        "bestseller_days": 30,
        "interval_min_repeats": 20,
        "interval_relearn_days": 7,
    }


def test_a_failed_build_leaves_the_previous_model_current(products, monkeypatch):
    a, b = products[:2]
    for _ in range(2):
        order(a, b)
    good = recommendations_build(now=NOW)
    insert = build_module.neighbours_insert

    def insert_then_fail(**kwargs):
        insert(**kwargs)  # rows written, then the build breaks before the switch
        raise RuntimeError("disk full")

    monkeypatch.setattr(build_module, "neighbours_insert", insert_then_fail)
    order(a, b)

    with pytest.raises(RuntimeError):
        recommendations_build(now=NOW)

    assert RecommendationModel.objects.current().get().pk == good.build_id
    assert set(ProductNeighbour.objects.values_list("build", flat=True)) == {good.build_id}
    assert pair(a, b).co_purchases == 2
    failed = RecommendationModel.objects.get(status=BuildStatus.FAILED)
    assert (failed.is_current, failed.error) == (False, "RuntimeError: disk full")

    monkeypatch.undo()
    recommendations_build(now=NOW)
    # The next good build replaces the model and clears the failure it superseded.
    assert RecommendationModel.objects.get().status == BuildStatus.COMPLETE
    assert pair(a, b).co_purchases == 3


def test_without_any_build_nothing_is_read(products):
    assert neighbours_of(products[0]) == []
    assert not RecommendationModel.objects.current().exists()


def test_the_progress_callable_hears_every_step(products):
    heard = []
    recommendations_build(now=NOW, progress=heard.append)
    assert [(p.step, p.done, p.total) for p in heard] == [
        ("lock", 1, 4),
        ("count", 2, 4),
        ("switch", 3, 4),
        ("clean", 4, 4),
    ]
