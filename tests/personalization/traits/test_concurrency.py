"""Concurrent trait writes against real PostgreSQL row locks: none is lost."""

import pytest

from personalization.models import Profile, Trait, TraitRemoval
from personalization.traits import trait_remove, traits_set
from tests.concurrency import run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _set(profile_id, values, source="shop", confidence=None):
    def run():
        traits_set(
            profile=Profile.objects.get(pk=profile_id),
            values=values,
            source=source,
            confidence=confidence,
        )

    return run


def test_two_writers_of_the_same_profile_at_once_both_land(profile_factory):
    profile = profile_factory()

    run_concurrently(
        [
            _set(profile.pk, {"plan": "gold", "shoe_size": 38}),
            _set(profile.pk, {"style": "bold", "colour": "blue"}, "inferred", 0.9),
        ]
    )

    assert dict(Trait.objects.values_list("key", "source")) == {
        "plan": "shop",
        "shoe_size": "shop",
        "style": "inferred",
        "colour": "inferred",
    }


def test_a_guess_racing_the_customers_answer_never_replaces_it(profile_factory):
    profile = profile_factory()
    for _round in range(5):
        Trait.objects.filter(profile=profile).delete()
        run_concurrently(
            [
                _set(profile.pk, {"style": "calm"}, "given"),
                _set(profile.pk, {"style": "bold"}, "inferred", 0.99),
            ]
        )
        # Whichever came first, the customer's own value is what stays.
        assert list(Trait.objects.values_list("value", "source")) == [("calm", "given")]


def test_a_guess_racing_a_removal_does_not_bring_the_trait_back(profile_factory):
    profile = profile_factory()
    traits_set(profile=profile, values={"style": "bold"}, source="inferred", confidence=0.9)

    run_concurrently(
        [
            lambda: trait_remove(
                profile=Profile.objects.get(pk=profile.pk), key="style", by="preference_centre"
            ),
            _set(profile.pk, {"style": "bolder"}, "inferred", 0.95),
        ]
    )

    # Either the guess was written first and then removed, or it found the removal.
    assert not Trait.objects.exists()
    assert TraitRemoval.objects.filter(key="style").exists()
