"""What we know and why you hear from us: the preference centre's account of a customer."""

import datetime as dt
from decimal import Decimal

import pytest

from personalization.consent import consent_confirm, consent_record
from personalization.exceptions import InvalidInput
from personalization.models import Event, Profile
from personalization.preferences.known import (
    RECENTLY_VIEWED_LIMIT,
    profile_fields_forget,
    recently_viewed_forget,
    what_we_know,
)
from personalization.traits import trait_remove, traits_set

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def ann(profile_factory, product_factory, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
        "EVENT_RETENTION_DAYS": 90,
    }
    ann = profile_factory(
        email="ann@example.com", first_name="Ann", country="SE", birthday=dt.date(1990, 4, 2)
    )
    grant = consent_record(
        profile=ann,
        purpose="email_marketing",
        granted=True,
        source="checkout",
        wording_version="checkout-2026-03",
        at=NOW - 10 * DAY,
    )
    consent_confirm(grant=grant)
    consent_record(
        profile=ann, purpose="personalization", granted=False, source="preference_centre"
    )
    traits_set(profile=ann, values={"shoe_size": 38}, source="given")
    traits_set(profile=ann, values={"tier": "gold"}, source="shop")
    traits_set(
        profile=ann,
        values={"favourite_category": "Coffee", "budget": "low"},
        source="inferred",
        confidence=0.8,
    )
    traits_set(profile=ann, values={"budget": "low"}, source="inferred", confidence=0.55)
    mug = product_factory(external_id="mug", title="Blue mug")
    tea = product_factory(external_id="tea", title="Green tea")
    for product, days_ago in ((mug, 30), (tea, 5), (mug, 2)):
        Event.objects.create(
            profile=ann, name="product_viewed", product=product, occurred_at=NOW - days_ago * DAY
        )
    Event.objects.create(profile=ann, name="searched", occurred_at=NOW, properties={"q": "x"})
    return ann


def test_it_shows_the_fields_we_hold_with_labels_and_which_can_be_removed(ann):
    known = what_we_know(profile=ann)

    assert [(f.name, f.label, f.value, f.removable) for f in known.profile_fields] == [
        ("email", "Email", "ann@example.com", False),
        ("first_name", "First name", "Ann", True),
        ("locale", "Locale", "svenska", True),  # the language in its own words
        ("timezone", "Timezone", "Europe/Stockholm", True),
        ("country", "Country", "SE", True),
        ("birthday", "Birthday", dt.date(1990, 4, 2), True),
    ]


def test_each_trait_says_whether_they_told_us_or_we_guessed_and_how_sure(ann):
    known = what_we_know(profile=ann)

    assert [
        (t.key, t.label, t.value, t.source, t.source_label, t.how_sure, t.used_for_segments)
        for t in known.traits
    ] == [
        ("budget", "Budget", "low", "inferred", "our guess from your activity",
         "not very sure (55%)", False),
        ("favourite_category", "Favourite category", "Coffee", "inferred",
         "our guess from your activity", "fairly sure (80%)", True),
        ("shoe_size", "Shoe size", 38, "given", "you told us", "", True),
        ("tier", "Tier", "gold", "shop", "recorded by the shop", "", True),
    ]  # fmt: skip
    assert known.traits[0].confidence == Decimal("0.55")
    assert all(t.removable for t in known.traits)


def test_the_consent_history_says_what_when_how_and_with_which_wording(ann):
    known = what_we_know(profile=ann)

    assert [
        (c.purpose, c.action, c.action_label, c.source_label, c.wording_version, c.removable)
        for c in known.consent_history
    ] == [
        ("personalization", "withdrawn", "withdrawn", "preference centre", "", False),
        ("email_marketing", "confirmed", "confirmed", "checkout", "checkout-2026-03", False),
        ("email_marketing", "granted", "granted", "checkout", "checkout-2026-03", False),
    ]
    assert known.consent_history[-1].at == NOW - 10 * DAY
    assert known.consent_history[-1].purpose_label == "Email marketing"


def test_recently_viewed_products_come_newest_first_with_the_day_they_are_deleted(ann):
    known = what_we_know(profile=ann)

    assert [
        (v.product_id, v.name, v.viewed_at, v.views, v.deleted_on) for v in known.recently_viewed
    ] == [
        ("mug", "Blue mug", NOW - 2 * DAY, 2, (NOW + 88 * DAY).date()),
        ("tea", "Green tea", NOW - 5 * DAY, 1, (NOW + 85 * DAY).date()),
    ]
    assert (known.recently_viewed_total, known.views_kept_days) == (2, 90)


def test_without_a_retention_period_views_have_no_deletion_date(ann, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "EVENT_RETENTION_DAYS": None}
    known = what_we_know(profile=ann)
    assert known.views_kept_days is None
    assert {v.deleted_on for v in known.recently_viewed} == {None}


def test_only_the_newest_viewed_products_are_listed(ann, product_factory):
    for number in range(RECENTLY_VIEWED_LIMIT + 5):
        Event.objects.create(
            profile=ann,
            name="product_viewed",
            product=product_factory(external_id=f"p{number}", title=f"P{number}"),
            occurred_at=NOW - dt.timedelta(minutes=number),
        )
    known = what_we_know(profile=ann)
    assert len(known.recently_viewed) == RECENTLY_VIEWED_LIMIT
    assert known.recently_viewed[0].product_id == "p0"
    assert known.recently_viewed_total == RECENTLY_VIEWED_LIMIT + 5 + 2


def test_it_reads_in_a_bounded_number_of_queries(
    ann, product_factory, django_assert_max_num_queries
):
    for number in range(30):
        product = product_factory(external_id=f"q{number}", title=f"Q{number}")
        Event.objects.create(profile=ann, name="product_viewed", product=product, occurred_at=NOW)
        traits_set(profile=ann, values={f"t{number}": number}, source="shop")
        consent_record(profile=ann, purpose="ad_audiences", granted=bool(number % 2), source="api")
    with django_assert_max_num_queries(6):
        known = what_we_know(profile=ann)
    assert len(known.traits) == 34 and len(known.consent_history) == 33


def test_a_removed_trait_is_no_longer_shown_and_not_guessed_again(ann):
    trait_remove(profile=ann, key="favourite_category", by="preference_centre")
    traits_set(
        profile=ann, values={"favourite_category": "Tea"}, source="inferred", confidence=0.99
    )
    assert "favourite_category" not in {t.key for t in what_we_know(profile=ann).traits}


def test_viewed_products_can_be_forgotten_one_or_all(ann):
    assert recently_viewed_forget(profile=ann, product_id="mug") == 2
    assert [v.product_id for v in what_we_know(profile=ann).recently_viewed] == ["tea"]
    assert recently_viewed_forget(profile=ann) == 1
    assert what_we_know(profile=ann).recently_viewed == ()
    assert Event.objects.filter(profile=ann, name="searched").exists()  # not a product view


def test_profile_fields_can_be_forgotten_but_not_the_email_address(ann):
    profile_fields_forget(profile=ann, fields=["locale"])
    assert profile_fields_forget(profile=ann, fields=["birthday", "first_name", "locale"]) == [
        "birthday",
        "first_name",
    ]
    stored = Profile.objects.get(pk=ann.pk)
    assert (stored.birthday, stored.first_name, stored.email) == (None, "", "ann@example.com")
    with pytest.raises(InvalidInput) as err:
        profile_fields_forget(profile=ann, fields=["email"])
    assert err.value.field == "fields"
    with pytest.raises(InvalidInput):
        profile_fields_forget(profile=ann, fields="birthday")


def test_a_bad_product_id_names_the_argument(ann):
    with pytest.raises(InvalidInput) as err:
        recently_viewed_forget(profile=ann, product_id="")
    assert err.value.field == "product_id"
