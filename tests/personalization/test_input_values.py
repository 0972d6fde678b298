"""Values the database or a later read cannot hold are refused at every entry point."""

import datetime as dt
import math

import pytest

from personalization import signals
from personalization.catalogue import product_upsert
from personalization.exceptions import InvalidInput
from personalization.models import Event, Order, Product, Profile
from personalization.tracking import identify, track

pytestmark = pytest.mark.django_db

FAR_EAST = dt.timezone(dt.timedelta(hours=14))
FAR_WEST = dt.timezone(dt.timedelta(hours=-12))


@pytest.fixture
def mug(product_factory):
    return product_factory(external_id="MUG")


def _order(**overrides):
    kwargs = {
        "sender": None,
        "order_id": "O-1",
        "email": "ann@example.com",
        "placed_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "total": "10.00",
        "currency": "EUR",
        "lines": [{"product_id": "MUG", "quantity": 1, "unit_price": "10.00"}],
    }
    kwargs.update(overrides)
    return kwargs


@pytest.mark.parametrize(
    ("value", "field"),
    [
        # Year 1 at +14:00 is year 0 in UTC; year 9999 at -12:00 is year 10000.
        (dt.datetime(1, 1, 1, tzinfo=FAR_EAST), "placed_at"),
        (dt.datetime(9999, 12, 31, 23, tzinfo=FAR_WEST), "placed_at"),
        ("0001-01-01T00:00:00+14:00", "placed_at"),
        ("9999-12-31T23:00:00-12:00", "placed_at"),
    ],
)
def test_an_order_time_outside_years_1_to_9999_in_utc_is_refused(mug, value, field):
    with pytest.raises(InvalidInput) as err:
        signals.order_placed.send(**_order(placed_at=value))
    assert err.value.field == field
    assert not Order.objects.exists() and not Profile.objects.exists()


def test_an_order_placed_far_in_the_future_is_refused(mug):
    with pytest.raises(InvalidInput) as err:
        signals.order_placed.send(**_order(placed_at=dt.datetime(2999, 1, 1, tzinfo=dt.UTC)))
    assert err.value.field == "placed_at"
    assert not Order.objects.exists()


def test_an_event_time_outside_the_years_the_database_holds_is_refused(settings):
    settings.PERSONALIZATION = {"TRACK_WITHOUT_CONSENT": True}
    with pytest.raises(InvalidInput) as err:
        track("searched", anonymous_id="v1", occurred_at=dt.datetime(1, 1, 1, tzinfo=FAR_EAST))
    assert err.value.field == "occurred_at"
    assert not Event.objects.exists()


def test_a_birthday_in_the_future_is_refused():
    with pytest.raises(InvalidInput) as err:
        identify(email="ann@example.com", birthday=dt.date(2999, 1, 1))
    assert err.value.field == "birthday"
    assert not Profile.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"order_id": "O\x00-1"}, "order_id"),
        ({"first_name": "A\x00nn"}, "first_name"),
        (
            {"lines": [{"product_id": "M\x00UG", "quantity": 1, "unit_price": 1}]},
            "lines[0].product_id",
        ),
    ],
)
def test_a_nul_character_in_any_order_string_is_refused(mug, overrides, field):
    with pytest.raises(InvalidInput) as err:
        signals.order_placed.send(**_order(**overrides))
    assert err.value.field == field
    assert not Order.objects.exists() and not Profile.objects.exists()


def test_a_nul_character_in_an_anonymous_id_is_refused(settings):
    settings.PERSONALIZATION = {"TRACK_WITHOUT_CONSENT": True}
    with pytest.raises(InvalidInput) as err:
        track("searched", anonymous_id="v\x001")
    assert err.value.field == "anonymous_id"
    assert not Profile.objects.exists()


@pytest.mark.parametrize(
    "properties",
    [
        {"score": math.nan},
        {"score": math.inf},
        {"nested": [1, -math.inf]},
        {1: "one"},
        {"nested": {2: "two"}},
        {"text": "a\x00b"},
        {"a\x00": "b"},
    ],
)
def test_properties_the_database_cannot_read_back_are_refused(settings, properties):
    settings.PERSONALIZATION = {"TRACK_WITHOUT_CONSENT": True}
    with pytest.raises(InvalidInput) as err:
        track("searched", anonymous_id="v1", properties=properties)
    assert err.value.field == "properties"
    assert not Event.objects.exists() and not Profile.objects.exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"url": "javascript:alert(1)"}, "url"),
        ({"image_url": "ftp://example.com/a.png"}, "image_url"),
        ({"category": ["Home", ""]}, "category"),
        ({"category": ["Home", 3]}, "category"),
        ({"category": "Home >  > Kitchen"}, "category"),
        ({"currency": "XYZ"}, "currency"),
        ({"repurchase_interval_days": 2**31}, "repurchase_interval_days"),
        ({"title": "Mug\x00"}, "title"),
    ],
)
def test_product_values_the_catalogue_cannot_use_are_refused(data, field):
    with pytest.raises(InvalidInput) as err:
        product_upsert(product_id="P1", **{"title": "Mug", **data})
    assert err.value.field == field
    assert not Product.objects.exists()


def test_a_currency_that_is_not_iso_4217_is_refused(mug):
    with pytest.raises(InvalidInput) as err:
        signals.order_placed.send(**_order(currency="ABC"))
    assert err.value.field == "currency"


@pytest.mark.parametrize("country", ["XX", "ZZ", "EU"])
def test_a_country_that_is_not_iso_3166_is_refused(country):
    with pytest.raises(InvalidInput) as err:
        identify(email="ann@example.com", country=country)
    assert err.value.field == "country"
    assert not Profile.objects.exists()


def test_a_required_argument_given_as_none_names_it(mug):
    with pytest.raises(InvalidInput) as err:
        signals.order_placed.send(**_order(total=None))
    assert err.value.field == "total"


def test_a_malformed_ip_address_is_refused(mug):
    from personalization.commerce import order_record
    from personalization.identity import Identity

    kwargs = _order(ip_address="300.1.1.1", identity=Identity(email="ann@example.com"))
    for name in ("sender", "email", "currency"):
        kwargs.pop(name)
    with pytest.raises(InvalidInput) as err:
        order_record(**kwargs)
    assert err.value.field == "ip_address"
    assert not Order.objects.exists()


def test_an_unknown_source_is_refused(mug):
    from personalization.commerce import order_record
    from personalization.identity import Identity

    kwargs = _order(source="webhook", identity=Identity(email="ann@example.com"))
    for name in ("sender", "email", "currency"):
        kwargs.pop(name)
    with pytest.raises(InvalidInput) as err:
        order_record(**kwargs, currency_code="EUR")
    assert err.value.field == "source"
    assert not Order.objects.exists()


@pytest.mark.parametrize("call", ["order_record", "cart_update"])
def test_a_string_where_an_identity_belongs_is_a_type_error_naming_it(mug, call):
    from personalization import commerce

    kwargs = {
        "order_record": {
            "order_id": "O1",
            "placed_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            "total": 1,
            "currency_code": "EUR",
        },
        "cart_update": {
            "cart_id": "C1",
            "updated_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            "lines": [],
        },
    }[call]
    with pytest.raises(TypeError, match="identity"):
        getattr(commerce, call)(identity="ann@example.com", **kwargs)
    assert not Profile.objects.exists()


def test_a_string_where_a_user_belongs_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="user"):
        identify(user="ann")
    assert not Profile.objects.exists()


def test_a_refused_track_leaves_the_callers_transaction_usable(settings):
    from django.db import transaction

    settings.PERSONALIZATION = {"TRACK_WITHOUT_CONSENT": True}
    with transaction.atomic():
        with pytest.raises(InvalidInput):
            track("searched", anonymous_id="v1", properties={"x": math.nan})
        assert track("searched", anonymous_id="v1") is not None
    assert Event.objects.count() == 1
