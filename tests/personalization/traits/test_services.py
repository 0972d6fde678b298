"""Setting and removing traits: what a customer, the shop and an inference each may change."""

import datetime as dt
from decimal import Decimal

import pytest

from personalization import signals
from personalization.changes import Change
from personalization.exceptions import InvalidInput
from personalization.models import Profile, Trait, TraitRemoval
from personalization.traits import confidence_text, trait_remove, traits_of, traits_set

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 7, 1, 8, tzinfo=dt.UTC)


@pytest.fixture
def profile(profile_factory):
    return profile_factory(email="ann@example.com")


def known(profile):
    return {t.key: (t.value, t.source, t.confidence) for t in traits_of(profile=profile)}


def test_a_value_the_customer_gave_is_never_replaced_by_an_inference(profile):
    traits_set(profile=profile, values={"shoe_size": 38}, source="given", now=T0)

    written = traits_set(
        profile=profile,
        values={"shoe_size": 41, "style": "bold"},
        source="inferred",
        confidence=0.9,
    )

    assert [trait.key for trait in written] == ["style"]
    assert known(profile) == {
        "shoe_size": (38, "given", None),
        "style": ("bold", "inferred", Decimal("0.90")),
    }


def test_a_value_the_shop_recorded_is_never_replaced_by_an_inference(profile):
    traits_set(profile=profile, values={"plan": "gold"}, source="shop")
    traits_set(profile=profile, values={"plan": "silver"}, source="inferred", confidence=1)
    assert known(profile) == {"plan": ("gold", "shop", None)}


def test_a_newer_inference_replaces_an_older_one_and_a_stated_value_replaces_a_guess(profile):
    traits_set(profile=profile, values={"style": "bold"}, source="inferred", confidence=0.5)
    traits_set(profile=profile, values={"style": "calm"}, source="inferred", confidence=0.7)
    assert known(profile) == {"style": ("calm", "inferred", Decimal("0.70"))}

    traits_set(profile=profile, values={"style": "minimal"}, source="given")
    assert known(profile) == {"style": ("minimal", "given", None)}


def test_recorded_keeps_when_the_key_was_first_recorded_and_updated_when_it_changed(profile):
    traits_set(profile=profile, values={"plan": "gold"}, source="shop", now=T0)
    later = T0 + dt.timedelta(days=3)
    assert traits_set(profile=profile, values={"plan": "gold"}, source="shop", now=later) == []
    traits_set(profile=profile, values={"plan": "silver"}, source="shop", now=later)

    trait = Trait.objects.get(profile=profile, key="plan")
    assert (trait.recorded_at, trait.updated_at) == (T0, later)


def test_a_number_and_the_same_digits_as_text_are_different_values(profile):
    traits_set(profile=profile, values={"size": 5}, source="shop")
    assert [t.value for t in traits_set(profile=profile, values={"size": "5"}, source="shop")] == [
        "5"
    ]
    assert [t.value for t in traits_set(profile=profile, values={"size": True}, source="shop")] == [
        True
    ]


def test_a_removed_trait_stays_removed_when_it_is_inferred_or_recorded_again(profile):
    traits_set(profile=profile, values={"style": "bold"}, source="inferred", confidence=0.9)

    assert trait_remove(profile=profile, key="style", by="preference_centre") is True

    assert (
        traits_set(profile=profile, values={"style": "bold"}, source="inferred", confidence=1) == []
    )
    assert traits_set(profile=profile, values={"style": "bold"}, source="shop") == []
    assert known(profile) == {}
    removal = TraitRemoval.objects.get(profile=profile)
    assert (removal.key, removal.by) == ("style", "preference_centre")


def test_the_customer_giving_a_removed_trait_again_records_it(profile):
    trait_remove(profile=profile, key="style", by="account")  # nothing there yet: still kept

    traits_set(profile=profile, values={"style": "calm"}, source="given")

    assert known(profile) == {"style": ("calm", "given", None)}
    assert not TraitRemoval.objects.exists()


def test_confidence_is_kept_to_two_places_never_rounded_up(profile):
    traits_set(profile=profile, values={"style": "bold"}, source="inferred", confidence=0.799)
    assert Trait.objects.get().confidence == Decimal("0.79")
    assert confidence_text(Decimal("0.80")) == "fairly sure (80%)"
    assert confidence_text(Decimal("0.97")) == "almost certain (97%)"
    assert confidence_text(Decimal("0.30")) == "a guess (30%)"
    assert confidence_text(None) == ""


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"values": {"shoe size": 38}, "source": "shop"}, "values"),
        ({"values": {"9lives": 1}, "source": "shop"}, "values"),
        ({"values": {"ok": None}, "source": "shop"}, "values"),
        ({"values": {"ok": [1, 2]}, "source": "shop"}, "values"),
        ({"values": {"ok": float("nan")}, "source": "shop"}, "values"),
        ({"values": {"ok": "x" * 256}, "source": "shop"}, "values"),
        ({"values": {"ok": "a\x00b"}, "source": "shop"}, "values"),
        ({"values": {"ok": "  "}, "source": "shop"}, "values"),
        ({"values": ["ok"], "source": "shop"}, "values"),
        ({"values": {"ok": 1}, "source": "guessed"}, "source"),
        ({"values": {"ok": 1}, "source": "inferred"}, "confidence"),
        ({"values": {"ok": 1}, "source": "inferred", "confidence": 1.5}, "confidence"),
        ({"values": {"ok": 1}, "source": "inferred", "confidence": True}, "confidence"),
        ({"values": {"ok": 1}, "source": "inferred", "confidence": "0.9"}, "confidence"),
        ({"values": {"ok": 1}, "source": "given", "confidence": 0.9}, "confidence"),
        ({"values": {"ok": 1}, "source": "shop", "now": dt.datetime(2026, 7, 1)}, "now"),
    ],
)
def test_bad_input_names_the_argument_and_writes_nothing(profile, kwargs, field):
    with pytest.raises(InvalidInput) as err:
        traits_set(profile=profile, **{"values": {"good": "kept out"}, **kwargs})
    assert err.value.field == field
    assert not Trait.objects.exists()


def test_one_bad_value_among_good_ones_writes_none_of_them(profile):
    with pytest.raises(InvalidInput):
        traits_set(profile=profile, values={"a": 1, "b": {"nested": 1}}, source="shop")
    assert not Trait.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"key": "not a key", "by": "account"}, "key"), ({"key": "style", "by": "email"}, "by")],
)
def test_a_bad_removal_names_the_argument_and_writes_nothing(profile, kwargs, field):
    with pytest.raises(InvalidInput) as err:
        trait_remove(profile=profile, **kwargs)
    assert err.value.field == field
    assert not TraitRemoval.objects.exists()


def test_only_a_saved_profile_has_traits():
    with pytest.raises(TypeError, match="saved Profile"):
        traits_set(profile=Profile(email="x@example.com"), values={"a": 1}, source="shop")


def test_changes_are_announced_after_commit_for_realtime_segments(
    profile, django_capture_on_commit_callbacks
):
    calls = []

    def receiver(sender, profile_ids, changes, **kwargs):
        calls.append(dict(changes))

    signals.profile_changed.connect(receiver, dispatch_uid="test-traits")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            traits_set(profile=profile, values={"plan": "gold"}, source="shop")
        with django_capture_on_commit_callbacks(execute=True):
            traits_set(profile=profile, values={"plan": "gold"}, source="shop")  # no change
        with django_capture_on_commit_callbacks(execute=True):
            trait_remove(profile=profile, key="plan", by="preference_centre")
    finally:
        signals.profile_changed.disconnect(dispatch_uid="test-traits")

    assert calls == [{profile.pk: {Change.TRAITS}}, {profile.pk: {Change.TRAITS}}]


def test_a_trait_goes_with_its_profile(profile):
    traits_set(profile=profile, values={"plan": "gold"}, source="shop")
    trait_remove(profile=profile, key="style", by="account")
    profile.delete()
    assert not Trait.objects.exists() and not TraitRemoval.objects.exists()


def test_the_database_refuses_a_confidence_on_a_stated_trait_and_none_on_an_inferred_one(profile):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Trait.objects.create(profile=profile, key="a", value=1, source="shop", confidence=0.5)
    with pytest.raises(IntegrityError), transaction.atomic():
        Trait.objects.create(profile=profile, key="a", value=1, source="inferred")
    with pytest.raises(IntegrityError), transaction.atomic():
        Trait.objects.create(profile=profile, key="a", value=1, source="inferred", confidence=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Trait.objects.create(profile=profile, key="a", value=1, source="guessed")
