"""Rule segments over traits: given and recorded traits count, inferred ones only from
TRAIT_MIN_CONFIDENCE on, the same in SQL, in Python, in realtime and in the explanation."""

import datetime as dt

import pytest
from django.core.checks import run_checks

from personalization.models import SegmentMembership
from personalization.segments import (
    rule_segment_define,
    segment_explain,
    segment_refresh,
    segments_update_for_profiles,
)
from personalization.segments.rules import rule_evaluate, rule_members
from personalization.traits import trait_remove, traits_set

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
GOLD = {"field": "traits.plan", "op": "eq", "value": "gold"}
HAS_PLAN = {"field": "traits.plan", "op": "exists", "value": True}
NOT_GOLD = {"field": "traits.plan", "op": "ne", "value": "gold"}


@pytest.fixture
def people(profile_factory):
    people = {
        name: profile_factory(email=f"{name}@example.com")
        for name in ("told", "recorded", "sure", "unsure", "silver", "none")
    }
    traits_set(profile=people["told"], values={"plan": "gold"}, source="given")
    traits_set(profile=people["recorded"], values={"plan": "gold"}, source="shop")
    traits_set(profile=people["sure"], values={"plan": "gold"}, source="inferred", confidence=0.8)
    traits_set(
        profile=people["unsure"], values={"plan": "gold"}, source="inferred", confidence=0.79
    )
    traits_set(profile=people["silver"], values={"plan": "silver"}, source="shop")
    return people


def selected(rule, people):
    in_sql = {p.pk for p in rule_members(rule, now=NOW)}
    in_python = {p.pk for p in people.values() if rule_evaluate(rule, profile=p, now=NOW)}
    assert in_sql == in_python
    return {name for name, p in people.items() if p.pk in in_sql}


def test_an_inferred_trait_counts_only_when_it_is_sure_enough(people):
    assert selected(GOLD, people) == {"told", "recorded", "sure"}
    assert selected(HAS_PLAN, people) == {"told", "recorded", "sure", "silver"}
    # Unknown (an unsure guess, no trait) is neither gold nor "not gold".
    assert selected(NOT_GOLD, people) == {"silver"}
    assert selected({"not": GOLD}, people) == {"unsure", "silver", "none"}


def test_the_threshold_is_a_setting(people, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "TRAIT_MIN_CONFIDENCE": 0.5}
    assert selected(GOLD, people) == {"told", "recorded", "sure", "unsure"}
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "TRAIT_MIN_CONFIDENCE": 1}
    assert selected(GOLD, people) == {"told", "recorded"}


@pytest.mark.parametrize("value", [1.5, -0.1, "0.8", True, None])
def test_a_threshold_outside_0_to_1_is_a_configuration_error(settings, value):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "TRAIT_MIN_CONFIDENCE": value}
    errors = [e for e in run_checks() if e.id == "personalization.E006"]
    assert [e.msg for e in errors] == [
        f"PERSONALIZATION['TRAIT_MIN_CONFIDENCE'] = {value!r} is not a number from 0 to 1, "
        "such as 0.8."
    ]


def test_a_realtime_segment_follows_a_trait_set_and_removed(
    people, django_capture_on_commit_callbacks
):
    segment, _ = rule_segment_define(slug="gold", rule=GOLD)
    segment_refresh(segment=segment, now=NOW)
    members = SegmentMembership.objects.current().filter(segment=segment)
    unsure = people["unsure"]
    assert not members.filter(profile=unsure).exists()

    with django_capture_on_commit_callbacks(execute=True):
        traits_set(profile=unsure, values={"plan": "gold"}, source="inferred", confidence=0.95)
    assert members.filter(profile=unsure).exists()

    with django_capture_on_commit_callbacks(execute=True):
        trait_remove(profile=unsure, key="plan", by="preference_centre")
    assert not members.filter(profile=unsure).exists()


def test_the_realtime_statement_of_a_trait_rule_is_compiled_once(people):
    from personalization.segments import realtime

    rule_segment_define(slug="gold", rule=GOLD)
    realtime._statements.clear()
    ids = [people["told"].pk]
    segments_update_for_profiles(profile_ids=ids, now=NOW)
    segments_update_for_profiles(profile_ids=ids, now=NOW + dt.timedelta(hours=1))
    assert realtime._UNCACHEABLE not in realtime._statements.values()


def test_the_explanation_shows_the_value_and_whether_it_was_given_or_inferred(people):
    segment, _ = rule_segment_define(slug="gold", rule=GOLD)

    told = segment_explain(segment=segment, profile=people["told"], now=NOW)
    sure = segment_explain(segment=segment, profile=people["sure"], now=NOW)
    unsure = segment_explain(segment=segment, profile=people["unsure"], now=NOW)

    assert told.holds and str(told.value) == "'gold' (given by the customer)"
    assert sure.holds and str(sure.value) == "'gold' (inferred, fairly sure (80%))"
    assert not unsure.holds
    assert str(unsure.value) == (
        "'gold' (inferred, not very sure (79%); below the confidence segments need)"
    )
    assert sure.as_dict()["value"] == {
        "value": "gold",
        "source": "inferred",
        "confidence": "0.80",
        "counts": True,
    }
    none = segment_explain(segment=segment, profile=people["none"], now=NOW)
    assert none.value is None and not none.holds
