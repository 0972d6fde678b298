"""Property: any sequence of preference updates, good or bad, leaves a history that tells the
story exactly: one row per value that changed, none for the rest, and nothing at all for a call
with a bad argument, which names that argument."""

import datetime as dt

import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personalization.exceptions import InvalidInput
from personalization.models import (
    ConsentRecord,
    PreferenceChange,
    Profile,
    Topic,
)
from personalization.preferences.services import UNSET, preferences_read, preferences_update

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 7, 1, 8, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
TOPICS = {"news": True, "offers": False}  # slug: subscribed_by_default

switches = st.booleans()
good = {
    "topics": st.dictionaries(st.sampled_from(sorted(TOPICS)), switches, min_size=1),
    "channels": st.dictionaries(st.sampled_from(["email", "sms", "push"]), switches, min_size=1),
    "frequency": st.sampled_from(["default", "weekly", "monthly"]),
    # Hours from the time of the call: within a year, in the future.
    "paused_until": st.one_of(st.none(), st.integers(min_value=1, max_value=365 * 24)),
    "greeting": st.sampled_from(["default", "first_name", "neutral"]),
    "personalization": st.booleans(),
}
bad = {
    "topics": st.one_of(
        st.dictionaries(
            st.text(max_size=70).filter(lambda s: s not in TOPICS), switches, min_size=1
        ),
        st.dictionaries(st.sampled_from(sorted(TOPICS)), st.integers() | st.text(), min_size=1),
        st.lists(st.sampled_from(sorted(TOPICS)), min_size=1),
        st.text(),
    ),
    "channels": st.one_of(
        st.dictionaries(
            st.text().filter(lambda s: s not in ("email", "sms", "push")), switches, min_size=1
        ),
        st.dictionaries(st.sampled_from(["email"]), st.none() | st.integers(), min_size=1),
    ),
    "frequency": st.one_of(st.text(), st.integers(), st.just("few_per_week")).filter(
        lambda v: v not in ("default", "weekly", "monthly")
    ),
    # Hours from the time of the call: now or the past, or more than a year ahead.
    "paused_until": st.one_of(
        st.integers(min_value=-(10**6), max_value=0),
        st.integers(min_value=365 * 24 + 1, max_value=10**6),
        st.just("tomorrow"),
        st.just(dt.datetime(2026, 8, 1)),
    ),
    "greeting": st.one_of(st.text(), st.integers()).filter(
        lambda v: v not in ("default", "first_name", "neutral")
    ),
    "personalization": st.one_of(st.integers(), st.text(), st.just([])),
    "source": st.text().filter(lambda v: v not in ("preference_centre", "account", "api", "admin")),
    "wording_version": st.one_of(
        st.text(min_size=65, max_size=80).filter(lambda v: len(v.strip()) > 64), st.integers()
    ),
}


@st.composite
def calls(draw):
    kwargs = {name: draw(strategy) for name, strategy in good.items() if draw(st.booleans())}
    broken = draw(st.none() | st.sampled_from(sorted(bad)))
    if broken is not None:
        kwargs[broken] = draw(bad[broken])
    return kwargs, broken


def _when(hours, now):
    if isinstance(hours, int) and not isinstance(hours, bool):
        return now + dt.timedelta(hours=hours)
    return hours


def _state(profile):
    state = preferences_read(profile=profile)
    return {
        **{("topic", t.slug): t.subscribed for t in state.topics},
        **{("channel", c.channel): c.enabled for c in state.channels},
        ("frequency", ""): state.frequency,
        ("pause", ""): state.paused_until,
        ("greeting", ""): state.greeting,
        "personalization": state.personalization_on,
    }


def _as_text(key, value):
    if key[0] in ("topic", "channel"):
        return "on" if value else "off"
    if key[0] == "pause":
        return value.astimezone(dt.UTC).isoformat() if value else ""
    return value


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(calls(), min_size=1, max_size=5))
def test_the_history_records_exactly_what_each_call_changed(sequence):
    with transaction.atomic(), time_machine.travel(T0, tick=False) as clock:
        for slug, default in TOPICS.items():
            Topic.objects.create(slug=slug, name=slug.title(), subscribed_by_default=default)
        profile = Profile.objects.create(email="ann@example.com")
        for step, (kwargs, broken) in enumerate(sequence):
            now = T0 + step * 10 * DAY
            clock.move_to(now)
            before = _state(profile)
            rows_before = PreferenceChange.objects.count()
            consent_before = ConsentRecord.objects.count()
            args = {**kwargs}
            if "paused_until" in args:
                args["paused_until"] = _when(args["paused_until"], now)
            args.setdefault("source", "api")
            args.setdefault("wording_version", f"v{step}")

            if broken is not None:
                with pytest.raises(InvalidInput) as caught:
                    preferences_update(profile=profile, **args)
                assert caught.value.field == broken
                assert _state(profile) == before
                assert PreferenceChange.objects.count() == rows_before
                assert ConsentRecord.objects.count() == consent_before
                continue

            changes = preferences_update(profile=profile, **args)

            expected = dict(before)
            for name, value in args.items():
                if name in ("topics", "channels"):
                    for subject, on in value.items():
                        expected[(name[:-1], subject)] = on
                elif name == "paused_until" and value is not UNSET:
                    expected[("pause", "")] = value
                elif name in ("frequency", "greeting"):
                    expected[(name, "")] = value
                elif name == "personalization":
                    expected["personalization"] = value
            assert _state(profile) == expected
            written = {
                (c.field, c.subject): (c.old_value, c.new_value, c.source, c.wording_version)
                for c in PreferenceChange.objects.filter(changed_at=now)
            }
            assert written == {
                key: (_as_text(key, before[key]), _as_text(key, value), "api", f"v{step}")
                for key, value in expected.items()
                if key != "personalization" and value != before[key]
            }
            assert len(changes) == len(written)
            consent_written = ConsentRecord.objects.count() - consent_before
            assert consent_written == int(expected["personalization"] != before["personalization"])
        transaction.set_rollback(True)
