"""Signed preference links: one neutral refusal whatever is wrong, two lifetimes, revocation,
and key rotation through SECRET_KEY_FALLBACKS."""

import pytest
from django.core import signing
from django.core.exceptions import PermissionDenied

from personalization.confirmation import confirmation_token
from personalization.consent import consent_record
from personalization.exceptions import InvalidInput, InvalidLink, PersonalizationError
from personalization.identity import profile_merge
from personalization.models import Profile
from personalization.preferences.tokens import (
    preference_links_revoke,
    preference_token,
    preference_token_read,
)

pytestmark = pytest.mark.django_db
OLD_KEY = "old-secret-key-" + "x" * 40
NEW_KEY = "new-secret-key-" + "y" * 40


@pytest.fixture
def profile(profile_factory):
    return profile_factory(email="ann@example.com")


def _refused(token, *, purpose="manage") -> InvalidLink:
    with pytest.raises(InvalidLink) as caught:
        preference_token_read(token, purpose=purpose)
    return caught.value


def test_a_token_reads_back_as_its_profile_for_both_purposes(profile):
    token = preference_token(profile=profile)

    assert preference_token_read(token, purpose="manage") == profile
    assert preference_token_read(token, purpose="unsubscribe") == profile


def test_a_token_does_not_carry_the_email_address_in_the_clear(profile):
    token = preference_token(profile=profile)
    assert "ann" not in token and "example" not in token


def test_edits_stop_after_30_days_but_unsubscribing_works_for_400(profile, time_machine):
    time_machine.move_to("2026-01-01T00:00:00Z", tick=False)
    token = preference_token(profile=profile)

    time_machine.move_to("2026-01-30T23:00:00Z", tick=False)  # 29 days, 23 hours
    assert preference_token_read(token, purpose="manage") == profile

    time_machine.move_to("2026-01-31T00:00:01Z", tick=False)  # 30 days and a second
    _refused(token, purpose="manage")
    assert preference_token_read(token, purpose="unsubscribe") == profile

    time_machine.move_to("2027-02-04T23:00:00Z", tick=False)  # 399 days, 23 hours
    assert preference_token_read(token, purpose="unsubscribe") == profile

    time_machine.move_to("2027-02-05T00:00:01Z", tick=False)  # 400 days and a second
    _refused(token, purpose="unsubscribe")


def test_the_lifetimes_follow_the_settings(profile, settings, time_machine):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PREFERENCE_LINK_EDIT_DAYS": 2,
        "PREFERENCE_LINK_UNSUBSCRIBE_DAYS": 5,
    }
    time_machine.move_to("2026-01-01T00:00:00Z", tick=False)
    token = preference_token(profile=profile)

    time_machine.move_to("2026-01-04T00:00:00Z", tick=False)
    _refused(token, purpose="manage")
    assert preference_token_read(token, purpose="unsubscribe") == profile
    time_machine.move_to("2026-01-07T00:00:00Z", tick=False)
    _refused(token, purpose="unsubscribe")


def test_revoking_ends_every_earlier_link_and_later_links_work(profile):
    before = preference_token(profile=profile)

    assert preference_links_revoke(profile=profile) == 2

    _refused(before, purpose="manage")
    _refused(before, purpose="unsubscribe")
    after = preference_token(profile=profile)
    assert preference_token_read(after, purpose="manage") == profile


def test_a_token_made_from_a_stale_instance_after_revoking_still_works(profile):
    stale = Profile.objects.get(pk=profile.pk)
    preference_links_revoke(profile=profile)

    token = preference_token(profile=stale)

    assert preference_token_read(token, purpose="manage") == profile


def _tampered(token: str) -> str:
    value, _, rest = token.partition(":")
    # Another profile's id in the payload, the original signature kept.
    forged = signing.b64_encode(b'{"p":999,"v":1}').decode()
    assert forged != value
    return f"{forged}:{rest}"


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(
            lambda token, profile: token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
            id="signature changed",
        ),
        pytest.param(lambda token, profile: _tampered(token), id="payload changed"),
        pytest.param(
            lambda token, profile: signing.dumps({"p": profile.pk, "v": 1}, key="guessed" * 8),
            id="forged with another key",
        ),
        pytest.param(
            lambda token, profile: signing.dumps({"p": profile.pk, "v": 1}, salt="other"),
            id="signed for another purpose",
        ),
        pytest.param(
            lambda token, profile: signing.dumps(
                {"p": profile.pk, "v": 1}, salt="personalization.consent-confirm"
            ),
            id="a confirmation link's salt",
        ),
        pytest.param(
            lambda token, profile: signing.dumps(
                [profile.pk, 1], salt="personalization.preferences.link"
            ),
            id="signed, but not our shape",
        ),
        pytest.param(lambda token, profile: "", id="empty"),
        pytest.param(lambda token, profile: "not-a-token", id="garbage"),
        pytest.param(lambda token, profile: token * 10, id="far too long"),
        pytest.param(lambda token, profile: None, id="None"),
        pytest.param(lambda token, profile: 12345, id="a number"),
    ],
)
def test_every_bad_token_gets_the_same_neutral_refusal(profile, make_bad):
    good = preference_token(profile=profile)
    reference = _refused("garbage")

    refusal = _refused(make_bad(good, profile))

    assert str(refusal) == str(reference)
    assert "ann@example.com" not in str(refusal)
    assert isinstance(refusal, PermissionDenied) and isinstance(refusal, PersonalizationError)


def test_a_confirmation_link_is_no_preference_link(profile):
    grant = consent_record(
        profile=profile, purpose="email_marketing", granted=True, source="checkout"
    )
    expected = str(_refused("garbage"))
    assert str(_refused(confirmation_token(grant=grant))) == expected


def test_the_refusal_is_the_same_for_expired_revoked_and_deleted(
    profile, profile_factory, time_machine
):
    time_machine.move_to("2026-01-01T00:00:00Z", tick=False)
    expired = preference_token(profile=profile)
    revoked_profile = profile_factory()
    revoked = preference_token(profile=revoked_profile)
    preference_links_revoke(profile=revoked_profile)
    deleted_profile = profile_factory()
    deleted = preference_token(profile=deleted_profile)
    deleted_profile.delete()
    time_machine.move_to("2026-03-01T00:00:00Z", tick=False)

    messages = {str(_refused(token)) for token in (expired, revoked, deleted, "garbage")}

    assert len(messages) == 1


def test_a_link_of_a_profile_merged_away_no_longer_works(profile, profile_factory):
    other = profile_factory()
    token = preference_token(profile=other)

    profile_merge(source=other, target=profile)

    _refused(token)


def test_an_unknown_purpose_is_the_callers_mistake(profile):
    token = preference_token(profile=profile)
    with pytest.raises(InvalidInput) as caught:
        preference_token_read(token, purpose="edit")
    assert caught.value.field == "purpose"
    assert not isinstance(caught.value, InvalidLink)


def test_an_old_key_in_the_fallbacks_still_reads_and_dropping_it_ends_the_links(profile, settings):
    settings.SECRET_KEY = OLD_KEY
    settings.SECRET_KEY_FALLBACKS = []
    token = preference_token(profile=profile)

    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]
    assert preference_token_read(token, purpose="manage") == profile
    # New links are signed with the new key and survive the old one's removal.
    fresh = preference_token(profile=profile)

    settings.SECRET_KEY_FALLBACKS = []
    _refused(token)
    assert preference_token_read(fresh, purpose="manage") == profile
