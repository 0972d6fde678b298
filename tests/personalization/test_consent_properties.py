"""Property: the Python and the SQL derivation of current consent agree on any ledger."""

import datetime as dt

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personalization.consent import (
    consent_in_states,
    consent_state,
    consent_states,
    consent_states_many,
    profiles_in_consent_state,
    profiles_with_consent,
)
from personalization.models import ConsentRecord, ConsentState, Profile, Purpose

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
PURPOSES = [Purpose.EMAIL_MARKETING, Purpose.PERSONALIZATION]

# Few distinct minutes, so that equal times (ties broken by pk) come up often.
minutes = st.integers(min_value=0, max_value=6)
record = st.fixed_dictionaries(
    {
        "profile": st.integers(min_value=0, max_value=2),
        "purpose": st.sampled_from(PURPOSES),
        "kind": st.sampled_from(["grant", "pending grant", "confirmation", "withdrawal"]),
        "recorded": minutes,
        "written": minutes,
    }
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ledger=st.lists(record, max_size=14))
def test_python_and_sql_derive_the_same_state_for_any_ledger(ledger):
    with transaction.atomic():
        profiles = [Profile.objects.create(email=f"p{i}@example.com") for i in range(3)]
        for entry in ledger:
            at = T0 + dt.timedelta(minutes=entry["recorded"])
            ConsentRecord.objects.create(
                profile=profiles[entry["profile"]],
                purpose=entry["purpose"],
                status="withdrawn" if entry["kind"] == "withdrawal" else "granted",
                double_opt_in=entry["kind"] in ("pending grant", "confirmation"),
                confirmed_at=at if entry["kind"] == "confirmation" else None,
                source="api",
                recorded_at=at,
                written_at=T0 + dt.timedelta(minutes=entry["written"]),
            )
        pks = [p.pk for p in profiles]
        many = consent_states_many(profile_ids=pks)
        for purpose in PURPOSES:
            from_sql = dict(
                profiles_with_consent(Profile.objects.filter(pk__in=pks), purpose).values_list(
                    "pk", f"consent_{purpose}"
                )
            )
            in_state = {
                state: set(
                    Profile.objects.filter(pk__in=pks)
                    .filter(consent_in_states(purpose, [state]))
                    .values_list("pk", flat=True)
                )
                for state in ConsentState.values
            }
            for profile in profiles:
                state = consent_state(profile=profile, purpose=purpose)
                assert from_sql[profile.pk] == state
                assert consent_states(profile=profile)[purpose] == state
                assert many[profile.pk][purpose] == state
                assert {s for s, members in in_state.items() if profile.pk in members} == {state}
            for state in ConsentState.values:
                in_state = profiles_in_consent_state(
                    Profile.objects.filter(pk__in=pks), purpose, state
                )
                assert set(in_state.values_list("pk", flat=True)) == {
                    pk for pk, derived in from_sql.items() if derived == state
                }
        transaction.set_rollback(True)
