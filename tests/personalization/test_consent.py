import datetime as dt

import pytest
import time_machine

from personalization.consent import (
    consent_confirm,
    consent_in_states,
    consent_pending_grant,
    consent_record,
    consent_state,
    consent_states,
    profiles_consented,
    profiles_with_consent,
)
from personalization.exceptions import ImmutableRecord, InvalidInput
from personalization.models import ConsentRecord, Profile

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)

# Each step: ("grant" | "withdraw" | "confirm"). The expected state after all steps.
SCENARIOS = {
    "never asked": ([], "none", "none"),
    "granted": (["grant"], "granted", "pending"),
    "withdrawn": (["grant", "withdraw"], "withdrawn", "withdrawn"),
    "granted again": (["grant", "withdraw", "grant"], "granted", "pending"),
    "confirmed": (["grant", "confirm"], "granted", "granted"),
    "confirmed then withdrawn": (["grant", "confirm", "withdraw"], "withdrawn", "withdrawn"),
    "re-granted after withdrawal needs a new confirmation": (
        ["grant", "confirm", "withdraw", "grant"],
        "granted",
        "pending",
    ),
    "re-confirmed": (["grant", "confirm", "withdraw", "grant", "confirm"], "granted", "granted"),
    "granted again while confirmed": (["grant", "confirm", "grant"], "granted", "granted"),
}


def _apply(profile, steps, *, double_opt_in, clock):
    for step in steps:
        if step == "confirm":
            if double_opt_in:
                consent_confirm(
                    grant=consent_pending_grant(profile=profile, purpose="email_marketing")
                )
        else:
            consent_record(
                profile=profile,
                purpose="email_marketing",
                granted=step == "grant",
                source="preference_centre",
                wording_version="v1",
            )
        clock.shift(dt.timedelta(minutes=1))


@pytest.mark.parametrize("double_opt_in", [False, True], ids=["single", "double opt-in"])
def test_current_consent_is_derived_from_the_ledger_the_same_in_python_and_sql(
    settings, double_opt_in
):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"] if double_opt_in else [],
    }
    expected = {}
    with time_machine.travel(T0, tick=False) as clock:
        for name, (steps, single, double) in SCENARIOS.items():
            profile = Profile.objects.create(email=f"{len(expected)}@example.com")
            _apply(profile, steps, double_opt_in=double_opt_in, clock=clock)
            expected[profile.pk] = (name, double if double_opt_in else single)

    from_sql = dict(
        profiles_with_consent(Profile.objects.all(), "email_marketing").values_list(
            "pk", "consent_email_marketing"
        )
    )
    for pk, (name, state) in expected.items():
        profile = Profile.objects.get(pk=pk)
        assert consent_state(profile=profile, purpose="email_marketing") == state, name
        assert from_sql[pk] == state, name
    consented = set(
        profiles_consented(Profile.objects.all(), "email_marketing").values_list("pk", flat=True)
    )
    assert consented == {pk for pk, (_, state) in expected.items() if state == "granted"}


def test_records_made_in_the_same_instant_are_ordered_by_when_they_were_written():
    profile = Profile.objects.create(email="a@example.com")
    with time_machine.travel(T0, tick=False):
        consent_record(profile=profile, purpose="personalization", granted=True, source="api")
        consent_record(profile=profile, purpose="personalization", granted=False, source="api")
    assert consent_state(profile=profile, purpose="personalization") == "withdrawn"
    annotated = profiles_with_consent(Profile.objects.all(), "personalization").get()
    assert annotated.consent_personalization == "withdrawn"


def test_the_consented_filter_orders_records_of_the_same_instant_by_when_they_were_written():
    withdrawn, regranted = (Profile.objects.create(email=f"{n}@example.com") for n in "ab")
    with time_machine.travel(T0, tick=False):
        for granted in (True, False):
            consent_record(
                profile=withdrawn, purpose="personalization", granted=granted, source="api"
            )
        for granted in (True, False, True):
            consent_record(
                profile=regranted, purpose="personalization", granted=granted, source="api"
            )
    consented = profiles_consented(Profile.objects.all(), "personalization")
    assert list(consented.values_list("email", flat=True)) == ["b@example.com"]
    assert consent_state(profile=regranted, purpose="personalization") == "granted"


def test_the_ledger_is_evidence_and_never_changes():
    profile = Profile.objects.create(email="ann@example.com")
    record = consent_record(
        profile=profile,
        purpose="email_marketing",
        granted=True,
        source="checkout",
        wording_version="checkout-2026-11",
        ip_address="203.0.113.9",
    )
    record.refresh_from_db()
    assert (record.email, record.source, record.wording_version, record.ip_address) == (
        "ann@example.com",
        "checkout",
        "checkout-2026-11",
        "203.0.113.9",
    )
    record.status = "withdrawn"
    with pytest.raises(ImmutableRecord):
        record.save()
    assert ConsentRecord.objects.get().status == "granted"


def test_confirming_without_a_pending_grant_is_refused(settings):
    settings.PERSONALIZATION = {"DOUBLE_OPT_IN_PURPOSES": ["email_marketing"]}
    profile = Profile.objects.create(email="a@example.com")
    assert consent_pending_grant(profile=profile, purpose="email_marketing") is None
    consent_record(profile=profile, purpose="email_marketing", granted=False, source="api")
    with pytest.raises(InvalidInput) as err:
        consent_confirm(grant=ConsentRecord.objects.get())
    assert err.value.field == "grant"
    assert ConsentRecord.objects.count() == 1


def test_confirmation_is_recorded_with_its_time(settings):
    settings.PERSONALIZATION = {"DOUBLE_OPT_IN_PURPOSES": ["email_marketing"]}
    profile = Profile.objects.create(email="a@example.com")
    with time_machine.travel(T0, tick=False):
        consent_record(
            profile=profile,
            purpose="email_marketing",
            granted=True,
            source="checkout",
            wording_version="v2",
        )
    with time_machine.travel(T0 + dt.timedelta(hours=3), tick=False):
        grant = consent_pending_grant(profile=profile, purpose="email_marketing")
        confirmation = consent_confirm(grant=grant)
    assert confirmation.confirmed_at == T0 + dt.timedelta(hours=3)
    assert (confirmation.wording_version, confirmation.confirms) == ("v2", grant)
    assert ConsentRecord.objects.count() == 2


def test_unknown_purpose_and_source_are_refused():
    profile = Profile.objects.create(email="a@example.com")
    with pytest.raises(InvalidInput) as err:
        consent_record(profile=profile, purpose="telepathy", granted=True, source="api")
    assert err.value.field == "purpose"
    with pytest.raises(InvalidInput) as err:
        consent_record(profile=profile, purpose="email_marketing", granted=True, source="psychic")
    assert err.value.field == "source"
    assert not ConsentRecord.objects.exists()


def test_consent_states_reports_every_purpose():
    profile = Profile.objects.create(email="a@example.com")
    consent_record(profile=profile, purpose="ad_audiences", granted=False, source="api")
    assert consent_states(profile=profile) == {
        "email_marketing": "none",
        "personalization": "none",
        "ad_audiences": "withdrawn",
    }


def test_a_confirmation_time_without_a_timezone_is_refused(settings):
    from personalization.exceptions import NaiveDatetime

    settings.PERSONALIZATION = {"DOUBLE_OPT_IN_PURPOSES": ["email_marketing"], "SITE_URL": "x"}
    profile = Profile.objects.create(email="a@example.com")
    grant = consent_record(
        profile=profile, purpose="email_marketing", granted=True, source="checkout"
    )
    with pytest.raises(NaiveDatetime):
        consent_confirm(grant=grant, at=dt.datetime(2026, 1, 1))
    assert ConsentRecord.objects.count() == 1


@pytest.mark.parametrize("granted", ["no", None, 0, 1, "false"])
def test_granted_must_be_a_real_boolean(granted):
    profile = Profile.objects.create(email="a@example.com")
    with pytest.raises(InvalidInput) as err:
        consent_record(profile=profile, purpose="email_marketing", granted=granted, source="api")
    assert err.value.field == "granted"
    assert not ConsentRecord.objects.exists()


def test_the_ledger_cannot_be_changed_through_the_queryset_either():
    profile = Profile.objects.create(email="a@example.com")
    consent_record(profile=profile, purpose="email_marketing", granted=True, source="api")
    with pytest.raises(ImmutableRecord):
        ConsentRecord.objects.filter(profile=profile).update(status="withdrawn")
    with pytest.raises(ImmutableRecord):
        ConsentRecord.objects.all().delete()
    with pytest.raises(ImmutableRecord):
        ConsentRecord.objects.get().delete()
    with pytest.raises(ImmutableRecord):
        ConsentRecord._base_manager.update(status="withdrawn")
    assert consent_state(profile=profile, purpose="email_marketing") == "granted"


def test_erasure_and_merge_are_the_ledgers_only_changes():
    from personalization.identity import profile_merge

    source = Profile.objects.create(email="a@example.com")
    target = Profile.objects.create(email="b@example.com")
    consent_record(profile=source, purpose="email_marketing", granted=True, source="api")
    profile_merge(source=source, target=target)
    assert ConsentRecord.objects.get().profile == target
    target.delete()  # erasure
    assert not ConsentRecord.objects.exists()


def test_a_grant_dated_in_the_future_is_refused_and_cannot_outrank_a_later_withdrawal():
    profile = Profile.objects.create(email="a@example.com")
    with time_machine.travel(T0, tick=False) as clock:
        with pytest.raises(InvalidInput) as err:
            consent_record(
                profile=profile,
                purpose="personalization",
                granted=True,
                source="api",
                at=T0 + dt.timedelta(days=365),
            )
        assert err.value.field == "at"
        assert not ConsentRecord.objects.exists()
        # Within the allowed clock skew: accepted, but ordered by when it was written.
        consent_record(
            profile=profile,
            purpose="personalization",
            granted=True,
            source="api",
            at=T0 + dt.timedelta(minutes=4),
        )
        clock.shift(dt.timedelta(minutes=1))
        consent_record(profile=profile, purpose="personalization", granted=False, source="api")
    assert consent_state(profile=profile, purpose="personalization") == "withdrawn"
    annotated = profiles_with_consent(Profile.objects.all(), "personalization").get()
    assert annotated.consent_personalization == "withdrawn"


def test_a_backdated_record_takes_its_place_in_the_past():
    profile = Profile.objects.create(email="a@example.com")
    with time_machine.travel(T0, tick=False):
        consent_record(profile=profile, purpose="personalization", granted=False, source="api")
        consent_record(
            profile=profile,
            purpose="personalization",
            granted=True,
            source="import",
            at=T0 - dt.timedelta(days=30),
        )
    assert consent_state(profile=profile, purpose="personalization") == "withdrawn"


def test_double_opt_in_is_decided_when_the_grant_is_written(settings):
    settings.PERSONALIZATION = {"DOUBLE_OPT_IN_PURPOSES": []}
    granted = Profile.objects.create(email="a@example.com")
    consent_record(profile=granted, purpose="email_marketing", granted=True, source="api")
    settings.PERSONALIZATION = {"DOUBLE_OPT_IN_PURPOSES": ["email_marketing"]}
    pending = Profile.objects.create(email="b@example.com")
    consent_record(profile=pending, purpose="email_marketing", granted=True, source="api")
    for setting in ([], ["email_marketing"]):
        settings.PERSONALIZATION = {"DOUBLE_OPT_IN_PURPOSES": setting}
        assert consent_state(profile=granted, purpose="email_marketing") == "granted"
        assert consent_state(profile=pending, purpose="email_marketing") == "pending"
        from_sql = dict(
            profiles_with_consent(Profile.objects.all(), "email_marketing").values_list(
                "email", "consent_email_marketing"
            )
        )
        assert from_sql == {"a@example.com": "granted", "b@example.com": "pending"}


@pytest.mark.postgres
def test_postgres_itself_refuses_to_change_a_ledger_row_but_allows_a_merge(settings):
    from django.db import DatabaseError, connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")
    profile = Profile.objects.create(email="a@example.com")
    other = Profile.objects.create(email="b@example.com")
    record = consent_record(profile=profile, purpose="email_marketing", granted=True, source="api")
    table = ConsentRecord._meta.db_table
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET status = 'withdrawn' WHERE id = %s", [record.pk])
    ConsentRecord.objects.filter(pk=record.pk).merge_into(profile=other)
    assert ConsentRecord.objects.get().status == "granted"
    assert consent_state(profile=other, purpose="email_marketing") == "granted"


def test_consent_in_states_refuses_an_unknown_state():
    with pytest.raises(InvalidInput) as caught:
        consent_in_states("email_marketing", ["granted", "maybe"])
    assert caught.value.field == "states"
