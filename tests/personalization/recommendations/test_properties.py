"""The set-based counts equal a plain Python count over the same small, random shop."""

import datetime as dt
import math
from collections import Counter
from itertools import permutations

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personalization.models import OrderStatus, Product, ProductNeighbour
from personalization.recommendations import recommendations_build

from .shop import NOW, customer, order, views

pytestmark = pytest.mark.django_db

PRODUCTS = 6
SENSITIVE = 5  # the last product is flagged sensitive: never counted
WEIGHT, DAYS = 0.25, 90

orders = st.lists(
    st.tuples(
        st.sampled_from(list(OrderStatus)),
        st.lists(st.integers(0, PRODUCTS - 1), min_size=1, max_size=6),  # repeats allowed
    ),
    max_size=12,
)
viewers = st.lists(
    st.lists(
        st.tuples(st.integers(0, PRODUCTS - 1), st.sampled_from([1, 30, 89, 91, 200])),
        min_size=1,
        max_size=6,
    ),
    max_size=8,
)


def expected(order_data, viewer_data):
    """(product, neighbour) → (co_purchases, co_views, score), counted the plain way."""
    baskets = [
        {p for p in lines if p != SENSITIVE}
        for status, lines in order_data
        if status == OrderStatus.PLACED
    ]
    seen = [{p for p, days in viewed if p != SENSITIVE and days < DAYS} for viewed in viewer_data]
    bought, viewed = Counter(), Counter()
    co_bought, co_viewed = Counter(), Counter()
    for basket in baskets:
        bought.update(basket)
        co_bought.update(permutations(basket, 2))
    for products in seen:
        viewed.update(products)
        co_viewed.update(permutations(products, 2))
    result = {}
    for a, b in set(co_bought) | set(co_viewed):
        if co_bought[a, b] + co_viewed[a, b] < 1:
            continue
        alone_a = bought[a] + WEIGHT * viewed[a]
        alone_b = bought[b] + WEIGHT * viewed[b]
        together = co_bought[a, b] + WEIGHT * co_viewed[a, b]
        result[a, b] = (co_bought[a, b], co_viewed[a, b], together / math.sqrt(alone_a * alone_b))
    return result


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(order_data=orders, viewer_data=viewers)
def test_the_stored_counts_and_scores_are_the_plain_count(order_data, viewer_data, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "RECOMMENDATION_MIN_SUPPORT": 1,
        "RECOMMENDATION_NEIGHBOURS": PRODUCTS,  # keep every pair
        "RECOMMENDATION_CO_VIEW_WEIGHT": WEIGHT,
        "RECOMMENDATION_CO_VIEW_DAYS": DAYS,
    }
    with transaction.atomic():
        products = [
            Product.objects.create(
                external_id=f"R{i}", title=f"R{i}", is_sensitive=(i == SENSITIVE)
            )
            for i in range(PRODUCTS)
        ]
        index = {product.pk: i for i, product in enumerate(products)}
        for status, lines in order_data:
            order(*(products[i] for i in lines), status=status)
        for viewed in viewer_data:
            profile = customer()
            for i, days in viewed:
                views(products[i], profile=profile, days_ago=days)

        recommendations_build(now=NOW + dt.timedelta(seconds=1))

        stored = {
            (index[row.product_id], index[row.neighbour_id]): (
                row.co_purchases,
                row.co_views,
                row.score,
            )
            for row in ProductNeighbour.objects.current()
        }
        want = expected(order_data, viewer_data)
        assert stored.keys() == want.keys()
        for key, (co_purchases, co_views, score) in want.items():
            assert stored[key][:2] == (co_purchases, co_views), key
            assert stored[key][2] == pytest.approx(score), key
        transaction.set_rollback(True)
