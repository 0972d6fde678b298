import datetime as dt

import pytest

from personalization.consent import consent_record
from personalization.exceptions import InvalidInput, UnknownProduct
from personalization.models import Event, Profile
from personalization.tracking import identify, track

pytestmark = pytest.mark.django_db


def test_behaviour_is_not_stored_without_the_personalisation_consent(product_factory):
    product = product_factory()
    identify(email="ann@example.com")
    assert track("product_viewed", email="ann@example.com", product_id=product.external_id) is None
    # An unknown visitor is not even given a profile for it.
    assert track("product_viewed", anonymous_id="stranger1") is None
    assert not Event.objects.exists()
    assert Profile.objects.count() == 1


def test_behaviour_is_stored_with_consent_and_stops_when_it_is_withdrawn(product_factory):
    product = product_factory()
    profile = identify(email="ann@example.com", consents={"personalization": "v1"})
    event = track(
        "product_viewed",
        email="ann@example.com",
        product_id=product.external_id,
        properties={"source": "newsletter"},
    )
    assert event.profile == profile and event.product == product
    assert event.properties == {"source": "newsletter"}

    consent_record(
        profile=profile, purpose="personalization", granted=False, source="preference_centre"
    )
    assert track("searched", email="ann@example.com", properties={"q": "mug"}) is None
    assert Event.objects.count() == 1


def test_a_documented_other_legal_basis_stores_behaviour_without_consent(settings):
    settings.PERSONALIZATION = {"TRACK_WITHOUT_CONSENT": True}
    event = track("searched", anonymous_id="visitor7", properties={"q": "tea"})
    assert event is not None
    assert Profile.objects.get().aliases.get().value == "visitor7"


def test_a_new_anonymous_id_of_a_known_customer_joins_their_profile():
    profile = identify(email="ann@example.com", consents={"personalization": "v1"})
    track("searched", email="ann@example.com", anonymous_id="phone-1")
    assert profile.aliases.get().value == "phone-1"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "Product Viewed"}, "name"),
        ({"properties": {"when": dt.date(2026, 1, 1)}}, "properties"),
        ({"properties": ["not", "a", "mapping"]}, "properties"),
        ({"occurred_at": dt.datetime(2026, 1, 1)}, "occurred_at"),
        ({"product_id": "missing"}, "product_id"),
    ],
)
def test_bad_events_raise_a_clear_error(kwargs, field):
    identify(email="ann@example.com", consents={"personalization": "v1"})
    kwargs = {"name": "product_viewed", "email": "ann@example.com", **kwargs}
    with pytest.raises(InvalidInput) as err:
        track(kwargs.pop("name"), **kwargs)
    assert err.value.field == field
    assert not Event.objects.exists()


def test_unknown_product_is_also_a_lookup_error():
    with pytest.raises(LookupError):
        track("product_viewed", email="a@example.com", product_id="nope")
    assert issubclass(UnknownProduct, ValueError)


def test_consent_given_on_a_shared_device_is_not_lent_to_the_next_person():
    identify(email="ann@example.com", anonymous_id="family-pc", consents={"personalization": "v1"})
    assert track("searched", email="ben@example.com", anonymous_id="family-pc") is None
    assert not Event.objects.exists()


def test_anonymous_consent_counts_for_the_visitor_who_then_identifies():
    identify(
        anonymous_id="visitor3", consents={"personalization": "banner-v1"}, consent_source="api"
    )
    event = track("searched", email="new@example.com", anonymous_id="visitor3")
    assert event is not None and event.profile.email == "new@example.com"


def test_a_customer_browsing_on_after_checkout_is_still_themselves():
    guest = identify(
        email="guest@example.com",
        anonymous_id="device-9",
        consents={"personalization": "checkout-v1"},
    )
    event = track("searched", anonymous_id="device-9", properties={"q": "tea"})
    assert event.profile_id == guest.pk
    assert Profile.objects.count() == 1


def test_a_view_of_a_sensitive_product_is_stored_flagged_and_left_out_downstream(
    product_factory, settings
):
    settings.PERSONALIZATION = {"TRACK_WITHOUT_CONSENT": True, "SENSITIVE_CATEGORIES": ["Health"]}
    flagged = product_factory(is_sensitive=True)
    health = product_factory(category_path="Health > Vitamins")
    mug = product_factory()
    for product in (flagged, health, mug):
        track("product_viewed", anonymous_id="v1", product_id=product.external_id)
    assert set(Event.objects.filter(is_sensitive=True).values_list("product", flat=True)) == {
        flagged.pk,
        health.pk,
    }
    assert list(Event.objects.not_sensitive().values_list("product", flat=True)) == [mug.pk]


def test_with_sensitive_events_drop_a_view_of_a_sensitive_product_is_not_stored(
    product_factory, settings
):
    settings.PERSONALIZATION = {"TRACK_WITHOUT_CONSENT": True, "SENSITIVE_EVENTS": "drop"}
    flagged = product_factory(is_sensitive=True)
    assert track("product_viewed", anonymous_id="v1", product_id=flagged.external_id) is None
    assert not Event.objects.exists()
