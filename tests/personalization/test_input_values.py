"""Values the database or a later read cannot hold are refused at every entry point."""

import datetime as dt
import math
from decimal import Decimal

import pytest

from personalization import signals
from personalization.catalogue import product_upsert
from personalization.exceptions import InvalidInput
from personalization.models import Cart, ConsentRecord, Event, Order, Product, Profile
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
        {"score": 1e23},  # reads back from PostgreSQL's jsonb as the integer 10**23
        {"nested": [-1e308]},
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


# --- Consent, IP addresses and profile arguments ------------------------------------------------


@pytest.fixture
def ann(profile_factory):
    return profile_factory(email="ann@example.com")


@pytest.mark.parametrize(
    "ip", ["300.1.1.1", "1.2.3.4:5678", "fe80::1%eth0", "not an ip", "1.2.3.4\x00", 16909060]
)
@pytest.mark.parametrize("call", ["consent_record", "consent_grant_many"])
def test_a_malformed_ip_address_for_consent_is_refused_and_nothing_written(ann, call, ip):
    from personalization import consent

    kwargs = {"profile": ann, "source": "api", "ip_address": ip}
    if call == "consent_record":
        kwargs.update(purpose="email_marketing", granted=True)
    else:
        kwargs.update(consents={"email_marketing": "v1"})
    with pytest.raises(InvalidInput) as err:
        getattr(consent, call)(**kwargs)
    assert err.value.field == "ip_address"
    assert not ConsentRecord.objects.exists()


def test_an_ip_address_is_stored_normalised(ann):
    from personalization.consent import consent_record

    record = consent_record(
        profile=ann,
        purpose="email_marketing",
        granted=True,
        source="api",
        ip_address=" 2001:DB8::1 ",
    )
    assert ConsentRecord.objects.get(pk=record.pk).ip_address == "2001:db8::1"


def test_a_malformed_client_address_of_a_request_is_logged_and_not_stored(rf, caplog):
    # REMOTE_ADDR is the server's to get right: a proxy misconfiguration must not refuse the
    # shopper's signup, so the consent is recorded without the evidence and it is logged.
    request = rf.post("/signup", REMOTE_ADDR="unix:/run/gunicorn.sock")
    with caplog.at_level("WARNING", logger="personalization.validation"):
        profile = identify(
            request=request, email="ann@example.com", consents={"email_marketing": "v1"}
        )
    record = ConsentRecord.objects.get(profile=profile)
    assert record.ip_address is None
    assert "unix:/run/gunicorn.sock" in caplog.text


def test_a_request_client_address_is_stored_with_the_consent(rf):
    request = rf.post("/signup", REMOTE_ADDR="203.0.113.7")
    identify(request=request, email="ann@example.com", consents={"email_marketing": "v1"})
    assert ConsentRecord.objects.get().ip_address == "203.0.113.7"


def test_a_malformed_explicit_ip_address_for_a_confirmation_is_refused(ann, settings):
    from personalization.confirmation import confirmation_accept, confirmation_token
    from personalization.consent import consent_record

    settings.PERSONALIZATION = {"DOUBLE_OPT_IN_PURPOSES": ["email_marketing"]}
    grant = consent_record(profile=ann, purpose="email_marketing", granted=True, source="api")
    with pytest.raises(InvalidInput) as err:
        confirmation_accept(token=confirmation_token(grant=grant), ip_address="999.0.0.1")
    assert err.value.field == "ip_address"
    assert ConsentRecord.objects.count() == 1


@pytest.mark.parametrize("profile", ["ann@example.com", 7, None, object()])
@pytest.mark.parametrize(
    "call",
    [
        "consent_record",
        "consent_grant_many",
        "consent_state",
        "consent_states",
        "consent_pending_grant",
    ],
)
def test_a_profile_argument_of_the_wrong_type_is_a_type_error_naming_it(db, call, profile):
    from personalization import consent

    kwargs = {
        "consent_record": {"purpose": "email_marketing", "granted": True, "source": "api"},
        "consent_grant_many": {"consents": {"email_marketing": "v1"}, "source": "api"},
        "consent_state": {"purpose": "email_marketing"},
        "consent_states": {},
        "consent_pending_grant": {"purpose": "email_marketing"},
    }[call]
    with pytest.raises(TypeError, match="profile"):
        getattr(consent, call)(profile=profile, **kwargs)
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize("call", ["consent_record", "consent_grant_many", "consent_state"])
def test_an_unsaved_profile_is_a_type_error_naming_it(db, call):
    from personalization import consent

    kwargs = {
        "consent_record": {"purpose": "email_marketing", "granted": True, "source": "api"},
        "consent_grant_many": {"consents": {"email_marketing": "v1"}, "source": "api"},
        "consent_state": {"purpose": "email_marketing"},
    }[call]
    with pytest.raises(TypeError, match="profile must be a saved Profile"):
        getattr(consent, call)(profile=Profile(email="ann@example.com"), **kwargs)
    assert not Profile.objects.exists() and not ConsentRecord.objects.exists()


@pytest.mark.parametrize("profile", ["ann@example.com", 7])
def test_has_consent_refuses_a_profile_of_the_wrong_type(db, profile):
    from personalization.consent import has_consent

    with pytest.raises(TypeError, match="profile"):
        has_consent(profile=profile, purpose="email_marketing")


def test_has_consent_answers_no_for_none_and_an_unsaved_profile(db):
    from personalization.consent import has_consent

    assert has_consent(profile=None, purpose="email_marketing") is False
    assert has_consent(profile=Profile(), purpose="email_marketing") is False


@pytest.mark.parametrize(
    ("wording", "field"),
    [("v\x001", "wording_version"), ("x" * 65, "wording_version"), (["v1"], "wording_version")],
)
def test_a_wording_version_the_ledger_cannot_hold_is_refused(ann, wording, field):
    from personalization.consent import consent_record

    with pytest.raises(InvalidInput) as err:
        consent_record(
            profile=ann,
            purpose="email_marketing",
            granted=True,
            source="api",
            wording_version=wording,
        )
    assert err.value.field == field
    assert not ConsentRecord.objects.exists()


def test_consent_grant_many_writes_all_grants_or_none(ann):
    from personalization.consent import consent_grant_many

    # The second grant is bad: the first must not be written on its own.
    consents = {"email_marketing": "v1", "personalization": "v\x00"}
    with pytest.raises(InvalidInput) as err:
        consent_grant_many(profile=ann, consents=consents, source="api")
    assert err.value.field == "consents[personalization]"
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"at": dt.datetime(2999, 1, 1, tzinfo=dt.UTC)}, "at"),
        ({"at": dt.datetime(9999, 12, 31, 23, tzinfo=FAR_WEST)}, "at"),
        ({"at": "0001-01-01T00:00:00+14:00"}, "at"),
        ({"source": "webhook"}, "source"),
        ({"source": None}, "source"),
        ({"consents": ["email_marketing"]}, "consents"),
        ({"consents": {"email_marketing": {"v": 1}}}, "consents[email_marketing]"),
    ],
)
def test_consent_grant_many_refuses_what_the_ledger_cannot_hold(ann, kwargs, field):
    from personalization.consent import consent_grant_many

    arguments = {"consents": {"email_marketing": "v1"}, "source": "import", **kwargs}
    with pytest.raises(InvalidInput) as err:
        consent_grant_many(profile=ann, **arguments)
    assert err.value.field == field
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"consent_source": "webhook"}, "consent_source"),
        ({"consents": {"email_marketing": "v\x00"}}, "consents[email_marketing]"),
        ({"consents": {"newsletter": "v1"}}, "purpose"),
        ({"consents": "email_marketing"}, "consents"),
    ],
)
def test_identify_checks_its_consents_before_it_writes_anything(kwargs, field):
    arguments = {"consents": {"email_marketing": "v1"}, **kwargs}
    with pytest.raises(InvalidInput) as err:
        identify(email="ann@example.com", **arguments)
    assert err.value.field == field
    assert not Profile.objects.exists() and not ConsentRecord.objects.exists()


def test_an_imported_order_placed_in_the_future_records_no_consent(mug):
    from personalization.commerce import order_record
    from personalization.identity import Identity

    with pytest.raises(InvalidInput) as err:
        order_record(
            order_id="O1",
            identity=Identity(email="ann@example.com"),
            placed_at=dt.datetime(2999, 1, 1, tzinfo=dt.UTC),
            total="1.00",
            currency_code="EUR",
            consents={"email_marketing": "v1"},
            source="import",
        )
    assert err.value.field == "placed_at"
    assert not ConsentRecord.objects.exists() and not Profile.objects.exists()


def test_order_record_checks_its_consents_before_it_writes_anything(mug):
    with pytest.raises(InvalidInput) as err:
        signals.order_placed.send(**_order(consents={"email_marketing": "x" * 65}))
    assert err.value.field == "consents[email_marketing]"
    assert not Order.objects.exists() and not Profile.objects.exists()


# --- Identity arguments -----------------------------------------------------------------------


@pytest.mark.parametrize("anonymous_id", [{"id": 1}, ["v1"], b"v1", 1.5])
def test_an_anonymous_id_that_is_not_text_is_refused(settings, anonymous_id):
    settings.PERSONALIZATION = {"TRACK_WITHOUT_CONSENT": True}
    with pytest.raises(InvalidInput) as err:
        track("searched", anonymous_id=anonymous_id)
    assert err.value.field == "anonymous_id"
    assert not Profile.objects.exists()


def test_an_unsaved_user_is_a_type_error_naming_it(db):
    from django.contrib.auth import get_user_model

    with pytest.raises(TypeError, match="user"):
        identify(user=get_user_model()(username="ann", email="ann@example.com"))
    assert not Profile.objects.exists()


@pytest.mark.parametrize("attributes", ["first_name", ["first_name"], 3])
def test_attributes_that_are_not_a_mapping_are_refused(mug, attributes):
    from personalization.commerce import order_record
    from personalization.identity import Identity

    with pytest.raises(InvalidInput) as err:
        order_record(
            order_id="O1",
            identity=Identity(email="ann@example.com"),
            placed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            total="1.00",
            currency_code="EUR",
            attributes=attributes,
        )
    assert err.value.field == "attributes"
    assert not Order.objects.exists() and not Profile.objects.exists()


# --- Times ahead of the clock that would freeze a mirror --------------------------------------

AHEAD = dt.timedelta(minutes=6)  # past the 5 minutes of clock skew allowed


def test_a_cart_update_dated_in_the_future_is_refused(mug):
    # Accepted, it would make every real update after it look older, and be ignored.
    from django.utils import timezone

    with pytest.raises(InvalidInput) as err:
        signals.cart_updated.send(
            sender=None,
            cart_id="C1",
            anonymous_id="v1",
            updated_at=timezone.now() + AHEAD,
            lines=[{"product_id": "MUG", "quantity": 1, "unit_price": "1.00"}],
            currency="EUR",
        )
    assert err.value.field == "updated_at"
    assert not Cart.objects.exists() and not Profile.objects.exists()


def test_a_cart_update_a_little_ahead_of_the_clock_is_accepted(mug):
    from django.utils import timezone

    signals.cart_updated.send(
        sender=None,
        cart_id="C1",
        anonymous_id="v1",
        updated_at=timezone.now() + dt.timedelta(minutes=4),
        lines=[],
    )
    assert Cart.objects.exists()


def test_a_cart_update_without_lines_is_refused_rather_than_emptying_the_cart(mug):
    with pytest.raises(InvalidInput) as err:
        signals.cart_updated.send(
            sender=None,
            cart_id="C1",
            anonymous_id="v1",
            updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
    assert err.value.field == "lines"
    assert not Cart.objects.exists() and not Profile.objects.exists()


def test_a_product_change_dated_in_the_future_is_refused():
    from django.utils import timezone

    with pytest.raises(InvalidInput) as err:
        product_upsert(product_id="P1", title="Mug", updated_at=timezone.now() + AHEAD)
    assert err.value.field == "updated_at"
    assert not Product.objects.exists()


def test_a_cancellation_dated_in_the_future_is_refused(mug):
    from django.utils import timezone

    signals.order_placed.send(**_order())
    with pytest.raises(InvalidInput) as err:
        signals.order_cancelled.send(sender=None, order_id="O-1", at=timezone.now() + AHEAD)
    assert err.value.field == "at"
    order = Order.objects.get()
    assert order.status == "placed" and order.status_changed_at is None


def test_an_event_dated_in_the_future_is_refused(settings):
    from django.utils import timezone

    settings.PERSONALIZATION = {"TRACK_WITHOUT_CONSENT": True}
    with pytest.raises(InvalidInput) as err:
        track("searched", anonymous_id="v1", occurred_at=timezone.now() + AHEAD)
    assert err.value.field == "occurred_at"
    assert not Event.objects.exists() and not Profile.objects.exists()


@pytest.mark.parametrize(
    "value",
    [dt.datetime(1, 1, 1, tzinfo=FAR_EAST), "9999-12-31T23:00:00-12:00", dt.datetime(2026, 1, 1)],
)
def test_a_cancellation_time_the_database_cannot_hold_is_refused(mug, value):
    signals.order_placed.send(**_order())
    with pytest.raises(InvalidInput) as err:
        signals.order_cancelled.send(sender=None, order_id="O-1", at=value)
    assert err.value.field == "at"
    assert Order.objects.get().status == "placed"


# --- Text no driver can encode; sums past their column ------------------------------------------

LONE_SURROGATE = "a\ud800b"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: identify(email="ann@example.com", first_name=LONE_SURROGATE), "first_name"),
        (lambda: track("searched", anonymous_id=LONE_SURROGATE), "anonymous_id"),
        (
            lambda: track("searched", anonymous_id="v1", properties={"q": LONE_SURROGATE}),
            "properties",
        ),
        (
            lambda: track("searched", anonymous_id="v1", properties={LONE_SURROGATE: 1}),
            "properties",
        ),
        (lambda: product_upsert(product_id="P1", title=LONE_SURROGATE), "title"),
        (lambda: product_upsert(product_id="P1", title="M", category=[LONE_SURROGATE]), "category"),
        (lambda: signals.order_placed.send(**_order(order_id=LONE_SURROGATE)), "order_id"),
    ],
)
def test_a_lone_surrogate_in_any_string_is_refused(mug, settings, call, field):
    settings.PERSONALIZATION = {"TRACK_WITHOUT_CONSENT": True}
    with pytest.raises(InvalidInput) as err:
        call()
    assert err.value.field == field
    assert not Profile.objects.exists() and not Event.objects.exists()
    assert not Order.objects.exists() and list(Product.objects.all()) == [mug]


def test_a_lone_surrogate_in_a_wording_version_is_refused(ann):
    from personalization.consent import consent_record

    with pytest.raises(InvalidInput) as err:
        consent_record(
            profile=ann,
            purpose="email_marketing",
            granted=True,
            source="api",
            wording_version=LONE_SURROGATE,
        )
    assert err.value.field == "wording_version"
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize(
    "lines",
    [
        # Each quantity fits the column; added up, they do not.
        [{"product_id": "MUG", "quantity": 2**31 - 1, "unit_price": "0.00"}] * 2,
        # The quantity fits, the cart's total (quantity × price) does not.
        [{"product_id": "MUG", "quantity": 2**31 - 1, "unit_price": "9.99"}],
    ],
)
def test_a_cart_whose_sums_do_not_fit_their_column_is_refused(mug, lines):
    with pytest.raises(InvalidInput) as err:
        signals.cart_updated.send(
            sender=None,
            cart_id="C1",
            anonymous_id="v1",
            updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            lines=lines,
            currency="EUR",
        )
    assert err.value.field == "lines"
    assert not Cart.objects.exists() and not Profile.objects.exists()


@pytest.mark.parametrize(
    ("identity", "field"),
    [
        ({"email": "ann\x00@example.com"}, "email"),
        ({"email": "not an address"}, "email"),
        ({"anonymous_id": "v\x001"}, "anonymous_id"),
        ({"anonymous_id": "v" * 65}, "anonymous_id"),
    ],
)
def test_an_identity_built_by_hand_gets_the_same_checks(mug, identity, field):
    from personalization.commerce import order_record
    from personalization.identity import Identity

    with pytest.raises(InvalidInput) as err:
        order_record(
            order_id="O1",
            identity=Identity(**identity),
            placed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            total="1.00",
            currency_code="EUR",
        )
    assert err.value.field == field
    assert not Order.objects.exists() and not Profile.objects.exists()


def test_an_identity_built_by_hand_has_its_email_normalised(mug):
    from personalization.commerce import cart_update
    from personalization.identity import Identity

    cart, _applied = cart_update(
        cart_id="C1",
        identity=Identity(email=" Ann@Example.COM "),
        updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        lines=[],
    )
    assert Profile.objects.get(pk=cart.profile_id).email == "ann@example.com"


@pytest.mark.parametrize("amount", ["1E+1000", Decimal("1E+1000"), 1e300])
def test_a_huge_amount_is_refused_as_too_large(mug, amount):
    with pytest.raises(InvalidInput) as err:
        signals.order_placed.send(**_order(total=amount))
    assert err.value.field == "total"
    assert not Order.objects.exists() and not Profile.objects.exists()


# --- A refused call leaves the caller's transaction usable ------------------------------------
#
# Each bad value below used to reach the database (a DataError or UnicodeEncodeError on
# PostgreSQL aborts the whole transaction); refused up front, the caller's block goes on.


def _hand_built(**identity):
    from personalization.identity import Identity

    return Identity(**identity)


def _refused_calls(ann):
    from personalization.commerce import cart_update, order_record, order_status_set
    from personalization.consent import consent_grant_many, consent_record

    in_a_year = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    return {
        "signal order_placed": lambda: signals.order_placed.send(
            **_order(order_id="O-2", first_name=LONE_SURROGATE)
        ),
        "order_record": lambda: order_record(
            order_id="O2",
            identity=_hand_built(email="Ann@Example.com\x00"),
            placed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            total="1.00",
            currency_code="EUR",
        ),
        "order_status_set": lambda: order_status_set(
            order_id="O-1", status="cancelled", at=in_a_year
        ),
        "cart_update": lambda: cart_update(
            cart_id="C1",
            identity=_hand_built(anonymous_id="v1"),
            updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            lines=[{"product_id": "MUG", "quantity": 2**31 - 1, "unit_price": "0"}] * 2,
            currency_code="EUR",
        ),
        "track": lambda: track("searched", anonymous_id="v1", properties={"q": LONE_SURROGATE}),
        "identify": lambda: identify(email="bob@example.com", last_name=LONE_SURROGATE),
        "product_upsert": lambda: product_upsert(product_id="P9", title=LONE_SURROGATE),
        "consent_record": lambda: consent_record(
            profile=ann, purpose="email_marketing", granted=True, source="api", ip_address="1.2.3"
        ),
        "consent_grant_many": lambda: consent_grant_many(
            profile=ann,
            consents={"email_marketing": "v1", "personalization": "v\x00"},
            source="api",
        ),
    }


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ("signal order_placed", "first_name"),
        ("order_record", "email"),
        ("order_status_set", "at"),
        ("cart_update", "lines"),
        ("track", "properties"),
        ("identify", "last_name"),
        ("product_upsert", "title"),
        ("consent_record", "ip_address"),
        ("consent_grant_many", "consents[personalization]"),
    ],
)
def test_a_refused_call_leaves_the_callers_transaction_usable(mug, settings, call, field):
    from django.db import transaction

    from personalization.consent import consent_record

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "TRACK_WITHOUT_CONSENT": True}
    signals.order_placed.send(**_order())
    ann = Profile.objects.get(email="ann@example.com")
    with transaction.atomic():
        with pytest.raises(InvalidInput) as err:
            _refused_calls(ann)[call]()
        assert err.value.field == field
        # The same block goes on writing.
        consent_record(profile=ann, purpose="email_marketing", granted=True, source="api")
    assert ConsentRecord.objects.filter(profile=ann).count() == 1
    assert Order.objects.get().status == "placed"
    assert Profile.objects.count() == 1


def test_a_refused_import_row_leaves_the_callers_transaction_usable(mug):
    from io import StringIO

    from django.db import transaction

    from personalization.importing import orders_import

    stream = StringIO(
        "order_id,email,placed_at,total,currency\n"
        "1,ann@example.com,2024-03-01T10:00:00+00:00,1.00,EUR\n"
        "2\udcff,bob@example.com,9999-12-31T23:00:00-12:00,1.00,EUR\n"
    )
    with transaction.atomic():
        result = orders_import(stream=stream)
        assert (result.orders_imported, result.orders_bad) == (1, 1)
        Profile.objects.create(email="cem@example.com")
    assert list(Order.objects.values_list("external_id", flat=True)) == ["1"]
    assert Profile.objects.filter(email="cem@example.com").exists()


def test_a_repeated_order_with_a_bad_attribute_is_refused_too(mug):
    # signals.md: "The payload is still validated first, so a repeat with bad data raises."
    signals.order_placed.send(**_order())
    with pytest.raises(InvalidInput) as err:
        signals.order_placed.send(**_order(first_name="A\x00nn"))
    assert err.value.field == "first_name"
    assert Profile.objects.get().first_name == ""


@pytest.mark.parametrize("call", ["profile_find", "profile_resolve"])
@pytest.mark.parametrize("identity", ["ann@example.com", None, {"email": "ann@example.com"}])
def test_an_identity_argument_of_the_wrong_type_is_a_type_error_naming_it(db, call, identity):
    from personalization import identity as identity_module

    with pytest.raises(TypeError, match="identity must be an Identity"):
        getattr(identity_module, call)(identity)
    assert not Profile.objects.exists()


@pytest.mark.parametrize("which", ["source", "target"])
@pytest.mark.parametrize("wrong", ["ann@example.com", 7, None, "unsaved"])
def test_profile_merge_refuses_a_profile_argument_of_the_wrong_type(ann, which, wrong):
    from personalization.identity import profile_merge

    other = Profile(email="bob@example.com") if wrong == "unsaved" else wrong
    arguments = {"source": ann, "target": ann, which: other}
    with pytest.raises(TypeError, match=f"{which} must be a saved Profile"):
        profile_merge(**arguments)
    assert list(Profile.objects.all()) == [ann]


def _nested(depth):
    value = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [33, 5000])
def test_properties_nested_too_deep_are_refused_not_a_recursion_error(settings, depth):
    settings.PERSONALIZATION = {"TRACK_WITHOUT_CONSENT": True}
    with pytest.raises(InvalidInput) as err:
        track("searched", anonymous_id="v1", properties={"deep": _nested(depth)})
    assert err.value.field == "properties"
    assert not Event.objects.exists() and not Profile.objects.exists()


def test_properties_that_contain_themselves_are_refused(settings):
    settings.PERSONALIZATION = {"TRACK_WITHOUT_CONSENT": True}
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(InvalidInput) as err:
        track("searched", anonymous_id="v1", properties=loop)
    assert err.value.field == "properties"


def test_properties_nested_32_levels_are_stored(settings):
    settings.PERSONALIZATION = {"TRACK_WITHOUT_CONSENT": True}
    event = track("searched", anonymous_id="v1", properties={"deep": _nested(31)})
    assert Event.objects.get(pk=event.pk).properties == {"deep": _nested(31)}


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("2001:0DB8::0001", "2001:db8::1"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_the_ip_address_in_hand_is_the_one_read_back(ann, given, stored):
    from personalization.consent import consent_record

    record = consent_record(
        profile=ann, purpose="email_marketing", granted=True, source="api", ip_address=given
    )
    assert record.ip_address == stored
    assert ConsentRecord.objects.get(pk=record.pk).ip_address == stored
