"""Property-based: for any input, the documented exception or rows that read back equal."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personalization.catalogue import product_upsert
from personalization.exceptions import InvalidInput
from personalization.models import Event, Product
from personalization.tracking import track

settings.register_profile(
    "pzn",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("pzn")

pytestmark = pytest.mark.django_db(transaction=False)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats()
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=10) | st.integers(), children, max_size=3)
    ),
    max_leaves=8,
)


@given(properties=st.dictionaries(st.text(max_size=10) | st.integers(), json_values, max_size=4))
def test_track_stores_properties_that_read_back_equal_or_refuses_them(properties):
    from django.test import override_settings

    with override_settings(PERSONALIZATION={"TRACK_WITHOUT_CONSENT": True}):
        try:
            event = track("searched", anonymous_id="visitor", properties=properties)
        except InvalidInput as err:
            assert err.field == "properties"
            return
    assert Event.objects.get(pk=event.pk).properties == properties
    Event.objects.all().delete()


@given(
    occurred_at=st.datetimes(
        timezones=st.timezones() | st.just(dt.timezone(dt.timedelta(hours=14)))
    )
)
def test_track_stores_any_time_it_accepts_and_reads_it_back_equal(occurred_at):
    from django.test import override_settings

    with override_settings(PERSONALIZATION={"TRACK_WITHOUT_CONSENT": True}):
        try:
            event = track("searched", anonymous_id="visitor", occurred_at=occurred_at)
        except InvalidInput as err:
            assert err.field == "occurred_at"
            return
    # Compared in UTC: an ambiguous wall time (the hour DST ends) never equals a time in
    # another zone (PEP 495), even when it is the same instant.
    assert Event.objects.get(pk=event.pk).occurred_at == occurred_at.astimezone(dt.UTC)
    Event.objects.all().delete()


@given(
    title=st.text(max_size=30),
    url=st.text(max_size=30) | st.just("https://shop.example/p/1"),
    category=st.text(max_size=20) | st.lists(st.text(max_size=8), max_size=3),
    price=st.decimals(allow_nan=True, places=3) | st.none(),
)
def test_product_upsert_stores_what_it_accepts_or_refuses_it(title, url, category, price):
    try:
        product, _applied = product_upsert(
            product_id="P1", title=title, url=url, category=category, price=price
        )
    except InvalidInput as err:
        assert err.field in {"title", "url", "category", "price"}
        assert not Product.objects.exists()
        return
    stored = Product.objects.get(pk=product.pk)
    assert (stored.title, stored.url, stored.category_path) == (
        product.title,
        product.url,
        product.category_path,
    )
    assert stored.price == (None if price is None else Decimal(price))
    Product.objects.all().delete()
