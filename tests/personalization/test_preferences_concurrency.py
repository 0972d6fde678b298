"""Concurrent preference updates against real PostgreSQL row locks: none is lost."""

import datetime as dt

import pytest

from personalization.consent import consent_record, has_consent
from personalization.models import PreferenceChange, Profile, TopicPreference
from personalization.preferences.services import preferences_update, unsubscribe_all
from tests.concurrency import run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _update(profile_id, **kwargs):
    def run():
        preferences_update(
            profile=Profile.objects.get(pk=profile_id),
            source="preference_centre",
            wording_version="v1",
            **kwargs,
        )

    return run


def test_updates_of_different_preferences_at_once_all_land(profile_factory, topic_factory):
    topic_factory(slug="news")
    topic_factory(slug="offers")
    profile = profile_factory()

    run_concurrently(
        [
            _update(profile.pk, frequency="weekly"),
            _update(profile.pk, greeting="neutral"),
            _update(profile.pk, topics={"news": False}),
            _update(profile.pk, topics={"offers": False}),
            _update(profile.pk, paused_until=dt.datetime.now(dt.UTC) + dt.timedelta(days=7)),
            _update(profile.pk, channels={"email": False}),
        ]
    )

    stored = Profile.objects.get(pk=profile.pk)
    assert (stored.frequency, stored.greeting) == ("weekly", "neutral")
    assert stored.paused_until is not None
    assert set(TopicPreference.objects.values_list("topic__slug", "subscribed")) == {
        ("news", False),
        ("offers", False),
    }
    assert sorted(PreferenceChange.objects.values_list("field", "subject")) == [
        ("channel", "email"),
        ("frequency", ""),
        ("greeting", ""),
        ("pause", ""),
        ("topic", "news"),
        ("topic", "offers"),
    ]


def test_updates_of_the_same_preference_at_once_chain_in_the_history(profile_factory):
    profile = profile_factory()
    values = ["weekly", "monthly", "default", "weekly", "monthly", "default"]

    run_concurrently([_update(profile.pk, frequency=value) for value in values])

    # Each change saw the one before it: read in order, every old value is the previous new
    # one. Without the lock two would both start from "default", or one would be lost.
    rows = list(PreferenceChange.objects.order_by("pk").values_list("old_value", "new_value"))
    assert rows[0][0] == "default"
    assert all(rows[i][1] == rows[i + 1][0] for i in range(len(rows) - 1))
    assert rows[-1][1] == Profile.objects.get(pk=profile.pk).frequency
    assert 1 <= len(rows) <= len(values)


def test_unsubscribing_while_personalisation_changes_keeps_both(profile_factory):
    profile = profile_factory()
    consent_record(profile=profile, purpose="email_marketing", granted=True, source="checkout")

    run_concurrently(
        [
            lambda: unsubscribe_all(profile=profile, source="unsubscribe_link"),
            lambda: unsubscribe_all(profile=profile, source="unsubscribe_link"),
            _update(profile.pk, personalization=True),
        ]
    )

    assert not has_consent(profile=profile, purpose="email_marketing")
    assert has_consent(profile=profile, purpose="personalization")
    assert profile.consent_records.filter(status="withdrawn").count() == 1
