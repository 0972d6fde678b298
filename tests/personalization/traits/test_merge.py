"""Merging two profiles of one person: whose traits survive, and removals stay removals."""

import datetime as dt
from decimal import Decimal

import pytest

from personalization.identity import profile_merge
from personalization.models import Profile, TraitRemoval
from personalization.traits import trait_remove, traits_of, traits_set

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 7, 1, 8, tzinfo=dt.UTC)


def known(profile):
    return {t.key: (t.value, t.source, t.confidence) for t in traits_of(profile=profile)}


@pytest.fixture
def pair(profile_factory):
    return profile_factory(email="old@example.com"), profile_factory(email="new@example.com")


def test_the_survivor_keeps_its_own_traits_and_takes_the_others_missing_ones(pair):
    source, target = pair
    traits_set(profile=source, values={"vip": False, "shoe_size": 38}, source="shop")
    traits_set(profile=target, values={"vip": True}, source="shop")

    merged = profile_merge(source=source, target=target)

    assert known(merged) == {"vip": (True, "shop", None), "shoe_size": (38, "shop", None)}
    assert not Profile.objects.filter(pk=source.pk).exists()


def test_what_the_other_profile_stated_beats_what_the_survivor_only_guessed(pair):
    source, target = pair
    traits_set(profile=source, values={"style": "calm"}, source="given")
    traits_set(profile=target, values={"style": "bold"}, source="inferred", confidence=0.9)
    traits_set(profile=source, values={"size": "M"}, source="inferred", confidence=0.6)
    traits_set(profile=target, values={"size": "L"}, source="inferred", confidence=0.5)

    merged = profile_merge(source=source, target=target)

    assert known(merged) == {
        "style": ("calm", "given", None),
        "size": ("L", "inferred", Decimal("0.50")),  # both guesses: the survivor's stays
    }


def test_a_trait_removed_on_either_profile_stays_removed_after_the_merge(pair):
    source, target = pair
    traits_set(profile=source, values={"style": "bold"}, source="inferred", confidence=0.9, now=T0)
    trait_remove(profile=target, key="style", by="preference_centre", now=T0)
    traits_set(profile=target, values={"budget": "low"}, source="shop", now=T0)
    trait_remove(profile=source, key="budget", by="account", now=T0 + dt.timedelta(days=1))

    merged = profile_merge(source=source, target=target)

    assert known(merged) == {}
    assert set(TraitRemoval.objects.values_list("profile_id", "key")) == {
        (merged.pk, "style"),
        (merged.pk, "budget"),
    }
    # And an inference after the merge does not bring them back.
    assert traits_set(profile=merged, values={"style": "x"}, source="inferred", confidence=1) == []


def test_a_trait_the_customer_gave_after_removing_it_on_the_other_profile_is_kept(pair):
    source, target = pair
    trait_remove(profile=source, key="style", by="account", now=T0)
    traits_set(profile=target, values={"style": "calm"}, source="given", now=T0 + dt.timedelta(1))

    merged = profile_merge(source=source, target=target)

    assert known(merged) == {"style": ("calm", "given", None)}
    assert not TraitRemoval.objects.exists()
