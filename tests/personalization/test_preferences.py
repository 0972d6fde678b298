"""The preference domain: what preferences_update writes (only changes, each to the history,
consent to the ledger), what preferences_read shows, and unsubscribe_all."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from personalization import signals
from personalization.changes import Change
from personalization.consent import consent_record, consent_state, has_consent
from personalization.exceptions import InvalidInput
from personalization.identity import profile_merge
from personalization.models import (
    ChannelPreference,
    ConsentRecord,
    ConsentState,
    Frequency,
    PreferenceChange,
    PreferenceSource,
    Profile,
    Topic,
    TopicPreference,
)
from personalization.preferences.history import preference_history
from personalization.preferences.services import (
    preferences_read,
    preferences_update,
    unsubscribe_all,
)
from personalization.segments.rules.compile import rule_members

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 7, 1, 8, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _clock(time_machine):
    time_machine.move_to(T0, tick=False)


@pytest.fixture
def profile(profile_factory):
    return profile_factory(email="ann@example.com")


@pytest.fixture
def news(topic_factory):
    return topic_factory(slug="news", name="News", description="What is new", position=1)


@pytest.fixture
def offers(topic_factory):
    return topic_factory(
        slug="offers", name="Offers", description="Deals", position=2, subscribed_by_default=False
    )


@pytest.fixture
def announced():
    calls = []

    def receiver(sender, changes, **kwargs):
        calls.append(dict(changes))

    signals.profile_changed.connect(receiver, dispatch_uid="test-preferences-announced")
    yield calls
    signals.profile_changed.disconnect(dispatch_uid="test-preferences-announced")


def update(profile, **kwargs):
    kwargs.setdefault("source", "preference_centre")
    kwargs.setdefault("wording_version", "prefs-2026-07")
    return preferences_update(profile=profile, **kwargs)


def _history(profile):
    return list(
        PreferenceChange.objects.filter(profile=profile).values_list(
            "field", "subject", "old_value", "new_value", "source", "wording_version", "changed_at"
        )
    )


# --- Every field round-trips ------------------------------------------------------------------


def _topic_choice(profile, slug):
    return TopicPreference.objects.get(profile=profile, topic__slug=slug).subscribed


CASES = [
    pytest.param(
        {"topics": {"news": False}},
        ("topic", "news", "on", "off"),
        lambda p, state: (_topic_choice(p, "news"), _topics(state)["news"]),
        (False, False),
        id="topic on by default, turned off",
    ),
    pytest.param(
        {"topics": {"offers": True}},
        ("topic", "offers", "off", "on"),
        lambda p, state: (_topic_choice(p, "offers"), _topics(state)["offers"]),
        (True, True),
        id="topic off by default, turned on",
    ),
    pytest.param(
        {"channels": {"email": False}},
        ("channel", "email", "on", "off"),
        lambda p, state: (
            ChannelPreference.objects.get(profile=p, channel="email").enabled,
            {c.channel: c.enabled for c in state.channels}["email"],
        ),
        (False, False),
        id="channel",
    ),
    pytest.param(
        {"frequency": "weekly"},
        ("frequency", "", "default", "weekly"),
        lambda p, state: (Profile.objects.get(pk=p.pk).frequency, state.frequency),
        ("weekly", "weekly"),
        id="frequency weekly",
    ),
    pytest.param(
        {"frequency": "monthly"},
        ("frequency", "", "default", "monthly"),
        lambda p, state: (Profile.objects.get(pk=p.pk).frequency, state.frequency),
        ("monthly", "monthly"),
        id="frequency monthly",
    ),
    pytest.param(
        {"paused_until": T0 + 14 * DAY},
        ("pause", "", "", "2026-07-15T08:00:00+00:00"),
        lambda p, state: (Profile.objects.get(pk=p.pk).paused_until, state.paused_until),
        (T0 + 14 * DAY, T0 + 14 * DAY),
        id="pause",
    ),
    pytest.param(
        {"greeting": "first_name"},
        ("greeting", "", "default", "first_name"),
        lambda p, state: (Profile.objects.get(pk=p.pk).greeting, state.greeting),
        ("first_name", "first_name"),
        id="greeting",
    ),
]


def _topics(state):
    return {topic.slug: topic.subscribed for topic in state.topics}


@pytest.mark.parametrize("source", PreferenceSource.values)
@pytest.mark.parametrize(("kwargs", "row", "stored", "expected"), CASES)
def test_each_preference_is_written_with_its_history_row_and_source(
    profile, news, offers, source, kwargs, row, stored, expected
):
    changes = update(profile, source=source, **kwargs)

    assert _history(profile) == [(*row, source, "prefs-2026-07", T0)]
    assert [change.pk for change in changes] == list(
        PreferenceChange.objects.filter(profile=profile).values_list("pk", flat=True)
    )
    assert stored(profile, preferences_read(profile=profile)) == expected
    assert not ConsentRecord.objects.exists()  # preferences are not consent


def test_ending_a_pause_is_recorded_and_unpauses(profile):
    update(profile, paused_until=T0 + 30 * DAY)

    changes = update(profile, paused_until=None, wording_version="v2")

    assert [(c.field, c.old_value, c.new_value) for c in changes] == [
        ("pause", "2026-07-31T08:00:00+00:00", "")
    ]
    assert Profile.objects.get(pk=profile.pk).paused_until is None
    assert preferences_read(profile=profile).paused_until is None


def test_a_pause_in_another_timezone_is_the_same_moment(profile):
    stockholm = dt.timezone(dt.timedelta(hours=2))
    update(profile, paused_until=dt.datetime(2026, 7, 20, 10, tzinfo=stockholm))

    assert Profile.objects.get(pk=profile.pk).paused_until == T0 + 19 * DAY
    assert PreferenceChange.objects.get().new_value == "2026-07-20T08:00:00+00:00"


def test_a_pause_that_is_over_shows_as_none_and_ending_it_records_nothing(profile, time_machine):
    update(profile, paused_until=T0 + 2 * DAY)
    time_machine.move_to(T0 + 3 * DAY, tick=False)

    assert preferences_read(profile=profile).paused_until is None
    updated_at = Profile.objects.get(pk=profile.pk).updated_at
    assert update(profile, paused_until=None) == []
    assert PreferenceChange.objects.count() == 1
    assert Profile.objects.get(pk=profile.pk).updated_at == updated_at


def test_several_changes_at_once_are_one_row_each(
    profile, news, offers, announced, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        changes = update(
            profile,
            topics={"news": False, "offers": True},
            channels={"email": False, "sms": False},
            frequency="monthly",
            greeting="neutral",
        )

    assert sorted((c.field, c.subject) for c in changes) == [
        ("channel", "email"),
        ("channel", "sms"),
        ("frequency", ""),
        ("greeting", ""),
        ("topic", "news"),
        ("topic", "offers"),
    ]
    assert PreferenceChange.objects.count() == 6
    assert announced == [{profile.pk: frozenset({Change.PREFERENCES})}]


def test_the_profile_passed_in_shows_the_new_values(profile):
    update(profile, frequency="weekly", greeting="neutral", paused_until=T0 + DAY)
    assert (profile.frequency, profile.greeting, profile.paused_until) == (
        "weekly",
        "neutral",
        T0 + DAY,
    )


def test_history_is_read_newest_first(profile, time_machine):
    update(profile, frequency="weekly")
    time_machine.move_to(T0 + DAY, tick=False)
    update(profile, frequency="monthly", source="account")

    assert [(c.old_value, c.new_value, c.source) for c in preference_history(profile=profile)] == [
        ("weekly", "monthly", "account"),
        ("default", "weekly", "preference_centre"),
    ]


# --- Unchanged values write nothing -----------------------------------------------------------


def test_values_as_they_are_write_nothing(
    profile, news, offers, announced, django_capture_on_commit_callbacks
):
    before = Profile.objects.get(pk=profile.pk).updated_at

    with django_capture_on_commit_callbacks(execute=True):
        changes = update(
            profile,
            topics={"news": True, "offers": False},  # as their defaults say
            channels={"email": True, "sms": True},
            frequency="default",
            paused_until=None,
            greeting="default",
            personalization=False,  # never asked: already off
        )

    assert changes == []
    assert not PreferenceChange.objects.exists()
    assert not TopicPreference.objects.exists()
    assert not ChannelPreference.objects.exists()
    assert not ConsentRecord.objects.exists()
    assert announced == []
    assert Profile.objects.get(pk=profile.pk).updated_at == before


def test_repeating_an_update_writes_it_once(profile, news):
    kwargs = {
        "topics": {"news": False},
        "frequency": "weekly",
        "paused_until": T0 + DAY,
        "personalization": True,
    }
    update(profile, **kwargs)
    update(profile, **kwargs)

    assert PreferenceChange.objects.count() == 3
    assert ConsentRecord.objects.count() == 1


# --- Personalisation goes to the consent ledger -----------------------------------------------


@pytest.mark.parametrize("source", PreferenceSource.values)
def test_personalisation_on_and_off_is_consent_in_the_ledger_not_history(profile, source):
    changes = update(profile, personalization=True, source=source, ip_address="192.0.2.1")

    assert changes == []
    assert not PreferenceChange.objects.exists()
    record = ConsentRecord.objects.get()
    assert (record.purpose, record.status, record.source, record.wording_version) == (
        "personalization",
        "granted",
        source,
        "prefs-2026-07",
    )
    assert record.ip_address == "192.0.2.1"
    assert has_consent(profile=profile, purpose="personalization")
    assert preferences_read(profile=profile).personalization_on

    update(profile, personalization=False, source=source)

    assert not has_consent(profile=profile, purpose="personalization")
    state = preferences_read(profile=profile)
    assert (state.personalization, state.personalization_on) == (ConsentState.WITHDRAWN, False)


def test_a_consent_change_is_announced_with_the_preferences(
    profile, announced, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        update(profile, personalization=True, greeting="neutral")

    assert announced == [{profile.pk: frozenset({Change.PREFERENCES, Change.CONSENT})}]


def test_personalisation_awaiting_confirmation_counts_as_on(profile, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["personalization"],
        "SITE_URL": "https://shop.example",
    }
    update(profile, personalization=True)
    assert consent_state(profile=profile, purpose="personalization") == ConsentState.PENDING

    update(profile, personalization=True)  # no second grant, no second confirmation email
    assert ConsentRecord.objects.count() == 1
    assert preferences_read(profile=profile).personalization_on

    update(profile, personalization=False)
    assert consent_state(profile=profile, purpose="personalization") == ConsentState.WITHDRAWN


# --- Bad values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"paused_until": T0 - DAY}, "paused_until"),
        ({"paused_until": T0}, "paused_until"),
        ({"paused_until": T0 + 365 * DAY + dt.timedelta(seconds=1)}, "paused_until"),
        ({"paused_until": dt.datetime(2026, 8, 1)}, "paused_until"),  # naive
        ({"paused_until": "next week"}, "paused_until"),
        ({"frequency": "few_per_week"}, "frequency"),
        ({"frequency": "daily"}, "frequency"),
        ({"greeting": "hi"}, "greeting"),
        ({"topics": {"nope": True}}, "topics"),
        ({"topics": {"archived": False}}, "topics"),  # inactive: hidden from customers
        ({"topics": {"news": "yes"}}, "topics"),
        ({"topics": ["news"]}, "topics"),
        ({"topics": {"ne\x00ws": True}}, "topics"),
        ({"channels": {"fax": True}}, "channels"),
        ({"channels": {"email": 1}}, "channels"),
        ({"personalization": "on"}, "personalization"),
        ({"source": "newsletter"}, "source"),
        ({"wording_version": "v" * 65}, "wording_version"),
        ({"ip_address": "localhost"}, "ip_address"),
        ({"now": dt.datetime(2026, 7, 1)}, "now"),
    ],
)
def test_a_bad_value_names_its_argument_and_nothing_is_written(
    profile, news, topic_factory, kwargs, field
):
    topic_factory(slug="archived", is_active=False)
    valid = {
        "frequency": "weekly",
        "greeting": "neutral",
        "topics": {"news": False},
        "personalization": True,
        "paused_until": T0 + DAY,
    }

    with pytest.raises(InvalidInput) as caught:
        update(profile, **{**valid, **kwargs})

    assert caught.value.field == field
    assert not PreferenceChange.objects.exists()
    assert not TopicPreference.objects.exists()
    assert not ConsentRecord.objects.exists()
    stored = Profile.objects.get(pk=profile.pk)
    assert (stored.frequency, stored.greeting, stored.paused_until) == ("default", "default", None)
    assert (profile.frequency, profile.greeting) == ("default", "default")


def test_a_pause_of_exactly_365_days_is_allowed(profile):
    update(profile, paused_until=T0 + 365 * DAY)
    assert Profile.objects.get(pk=profile.pk).paused_until == T0 + 365 * DAY


def test_a_profile_that_is_gone_is_named(profile):
    Profile.objects.filter(pk=profile.pk).delete()
    with pytest.raises(InvalidInput) as caught:
        update(profile, frequency="weekly")
    assert caught.value.field == "profile"


def test_an_unsaved_profile_is_a_type_error():
    with pytest.raises(TypeError):
        update(Profile(email="x@example.com"), frequency="weekly")


# --- Reading ----------------------------------------------------------------------------------


def test_read_shows_active_topics_in_order_with_their_descriptions(
    profile, news, offers, topic_factory
):
    topic_factory(slug="archived", is_active=False)
    topic_factory(slug="first", name="First", position=0, description="")

    state = preferences_read(profile=profile)

    assert [(t.slug, t.name, t.description, t.subscribed) for t in state.topics] == [
        ("first", "First", "", True),
        ("news", "News", "What is new", True),
        ("offers", "Offers", "Deals", False),
    ]
    assert [(c.channel, c.enabled) for c in state.channels] == [
        ("email", True),
        ("sms", True),
        ("push", True),
    ]
    assert (state.frequency, state.paused_until, state.greeting) == ("default", None, "default")
    assert (state.personalization, state.email_marketing) == (ConsentState.NONE,) * 2
    with pytest.raises(AttributeError):
        state.frequency = "weekly"  # frozen


def test_read_agrees_with_the_topics_subscribed_rule(profile_factory, news, offers):
    profiles = [profile_factory() for _ in range(4)]
    update(profiles[1], topics={"news": False})
    update(profiles[2], topics={"offers": True})
    update(profiles[3], topics={"news": False, "offers": True})
    Topic.objects.filter(slug="news").update(subscribed_by_default=False)  # default changes
    Topic.objects.filter(slug="offers").update(subscribed_by_default=True)

    for slug in ("news", "offers"):
        rule = {"field": "topics.subscribed", "op": "eq", "value": slug}
        by_rule = set(rule_members(rule, now=T0).values_list("pk", flat=True))
        by_read = {p.pk for p in profiles if _topics(preferences_read(profile=p))[slug]}
        assert by_read == by_rule
    assert _topics(preferences_read(profile=profiles[0])) == {"news": False, "offers": True}


# --- Unsubscribe from all marketing -----------------------------------------------------------


def test_unsubscribe_all_ends_email_marketing_consent_at_once(profile):
    consent_record(profile=profile, purpose="email_marketing", granted=True, source="checkout")
    consent_record(profile=profile, purpose="personalization", granted=True, source="checkout")
    assert has_consent(profile=profile, purpose="email_marketing")

    record = unsubscribe_all(profile=profile, source="unsubscribe_link", ip_address="192.0.2.9")

    assert not has_consent(profile=profile, purpose="email_marketing")
    assert (record.purpose, record.status, record.source, record.ip_address) == (
        "email_marketing",
        "withdrawn",
        "unsubscribe_link",
        "192.0.2.9",
    )
    assert record.recorded_at == T0
    # Only marketing mail stops; the customer's other choices stay as they were.
    assert has_consent(profile=profile, purpose="personalization")
    assert preferences_read(profile=profile).email_marketing == ConsentState.WITHDRAWN


def test_unsubscribing_twice_records_once(profile):
    consent_record(profile=profile, purpose="email_marketing", granted=True, source="checkout")

    assert unsubscribe_all(profile=profile, source="preference_centre") is not None
    assert unsubscribe_all(profile=profile, source="preference_centre") is None
    assert ConsentRecord.objects.filter(status="withdrawn").count() == 1


def test_unsubscribing_without_consent_records_the_refusal(profile):
    record = unsubscribe_all(profile=profile, source="account")
    assert record.source == "account"
    assert consent_state(profile=profile, purpose="email_marketing") == ConsentState.WITHDRAWN


def test_unsubscribe_all_refuses_an_unknown_source(profile):
    with pytest.raises(InvalidInput) as caught:
        unsubscribe_all(profile=profile, source="checkout")
    assert caught.value.field == "source"
    assert not ConsentRecord.objects.exists()


# --- Elsewhere: merge, admin, migration -------------------------------------------------------


def test_a_merge_keeps_the_history_of_both_profiles(profile, profile_factory):
    other = profile_factory()
    update(other, frequency="weekly")
    update(profile, greeting="neutral")

    merged = profile_merge(source=other, target=profile)

    assert sorted(c.field for c in preference_history(profile=merged)) == [
        "frequency",
        "greeting",
    ]


def test_the_profile_admin_shows_the_history(admin_client, profile, news):
    update(profile, topics={"news": False}, wording_version="centre-v3")

    response = admin_client.get(reverse("admin:personalization_profile_change", args=[profile.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "preference history" in page.lower()
    assert "centre-v3" in page
    assert "preference centre" in page


@pytest.mark.django_db(transaction=True)
def test_the_migration_folds_few_per_week_into_weekly():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("personalization", "0011_profile_search_indexes")]
    after = [("personalization", "0012_preference_history_tokens")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        old = apps.get_model("personalization", "Profile")
        for email, frequency in (
            ("a@example.com", "few_per_week"),
            ("b@example.com", "monthly"),
            ("c@example.com", "default"),
        ):
            old.objects.create(email=email, frequency=frequency, total_spent=Decimal(0))
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert dict(Profile.objects.values_list("email", "frequency")) == {
        "a@example.com": Frequency.WEEKLY,
        "b@example.com": Frequency.MONTHLY,
        "c@example.com": Frequency.DEFAULT,
    }
    assert set(Profile.objects.values_list("link_version", flat=True)) == {1}


def test_a_topic_segment_follows_the_change_after_commit(
    profile, news, django_capture_on_commit_callbacks
):
    from personalization.models import SegmentMembership
    from personalization.segments.definitions import rule_segment_define
    from personalization.segments.membership import segment_refresh

    segment, _ = rule_segment_define(
        slug="news_readers", rule={"field": "topics.subscribed", "op": "eq", "value": "news"}
    )
    segment_refresh(segment=segment, now=T0)
    members = SegmentMembership.objects.current().filter(segment=segment)
    assert set(members.values_list("profile_id", flat=True)) == {profile.pk}

    with django_capture_on_commit_callbacks(execute=True):
        update(profile, topics={"news": False})

    assert not members.exists()


def test_the_history_reads_in_words(profile, news):
    from personalization.preferences.history import preference_change_texts

    preferences_update(
        profile=profile,
        source="preference_centre",
        wording_version="v1",
        topics={"news": False},
        frequency="monthly",
        paused_until=T0 + 14 * DAY,
    )
    texts = {preference_change_texts(change) for change in preference_history(profile=profile)}
    assert ("Topic: News", "on", "off") in texts
    assert ("Frequency", "As it happens", "At most one email a month") in texts
    [pause] = [t for t in texts if t[0] == "Pause"]
    assert pause[1] == "no break" and pause[2].startswith("break until ")
