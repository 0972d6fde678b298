"""Versioned consent wordings: the text shown is the latest in the customer's language, and a
published text can be shown again, exactly, for ever."""

import datetime as dt
import importlib

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone, translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personalization.capture.defaults import DEFAULT_WORDINGS, consent_wordings_ensure_defaults
from personalization.capture.wording import (
    consent_wording_current,
    consent_wording_for,
    consent_wording_publish,
    wording_languages,
)
from personalization.consent import consent_record
from personalization.exceptions import ImmutableRecord, InvalidInput, NoConsentWording
from personalization.models import ConsentWording, Profile, Purpose

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def test_the_default_wordings_ship_in_english_swedish_and_turkish():
    for purpose in (Purpose.EMAIL_MARKETING, Purpose.PERSONALIZATION):
        for language in ("en", "sv", "tr"):
            wording = consent_wording_current(purpose=purpose, language=language)
            assert wording.language == language
            assert wording.version == f"{purpose}.{language}.1"
    assert consent_wording_current(purpose="email_marketing", language="sv").text.startswith(
        "Jag vill få nyheter"
    )


@pytest.mark.parametrize(
    ("asked", "shown"),
    [
        ("sv", "sv"),
        ("sv-se", "sv"),
        ("sv_SE", "sv"),
        ("SV", "sv"),
        ("tr-TR", "tr"),
        ("de", "en"),  # not a language of the shop: LANGUAGE_CODE
        ("", "en"),
        ("x" * 600, "en"),
    ],
)
def test_a_language_falls_back_to_its_generic_form_then_language_code(asked, shown):
    assert consent_wording_current(purpose="personalization", language=asked).language == shown


def test_no_language_means_the_active_one():
    with translation.override("tr"):
        assert consent_wording_current(purpose="email_marketing").language == "tr"


def test_the_fallback_is_language_code_before_english(settings):
    settings.LANGUAGE_CODE = "sv"
    assert consent_wording_current(purpose="email_marketing", language="de").language == "sv"


def test_a_language_without_its_own_wording_falls_back(settings):
    settings.LANGUAGES = [*settings.LANGUAGES, ("fi", "Suomi")]
    assert wording_languages("fi") == ["fi", "en"]
    assert consent_wording_current(purpose="email_marketing", language="fi").language == "en"
    consent_wording_publish(purpose="email_marketing", language="fi", text="Lähetä minulle…")
    assert consent_wording_current(purpose="email_marketing", language="fi").language == "fi"


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    language=st.one_of(
        st.none(),
        st.text(max_size=12),
        st.from_regex(r"\A(en|sv|tr|de|fi|zz)([-_][A-Za-z]{2,4})?\Z"),
    )
)
def test_any_language_code_gets_the_best_wording_there_is(language):
    wording = consent_wording_current(purpose="email_marketing", language=language)
    code = (language or "").strip().lower().replace("_", "-").split("-")[0]
    expected = code if code in ("sv", "tr") and language is not None else "en"
    assert wording.language == expected


def test_an_unknown_purpose_or_a_purpose_without_wording_is_a_clear_error():
    with pytest.raises(InvalidInput) as err:
        consent_wording_current(purpose="spam", language="en")
    assert err.value.field == "purpose"
    with pytest.raises(NoConsentWording, match="ad_audiences"):
        consent_wording_current(purpose=Purpose.AD_AUDIENCES, language="en")


def test_publishing_makes_a_new_current_version_and_keeps_the_old_one():
    old = consent_wording_current(purpose="email_marketing", language="sv")
    new = consent_wording_publish(
        purpose="email_marketing", language="sv", text="  Skicka mig erbjudanden.  ", now=T0
    )
    assert (new.version, new.number, new.text) == (
        "email_marketing.sv.2",
        2,
        "Skicka mig erbjudanden.",
    )
    assert consent_wording_current(purpose="email_marketing", language="sv") == new
    assert consent_wording_for(version=old.version).text == old.text
    # The same text again publishes nothing.
    assert (
        consent_wording_publish(
            purpose="email_marketing", language="sv", text="Skicka mig erbjudanden."
        )
        == new
    )
    assert ConsentWording.objects.filter(purpose="email_marketing", language="sv").count() == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"language": "de"}, "language"),
        ({"language": None}, "language"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 2001}, "text"),
        ({"text": 3}, "text"),
        ({"purpose": "spam"}, "purpose"),
    ],
)
def test_publishing_checks_its_input(kwargs, field):
    args = {"purpose": "email_marketing", "language": "en", "text": "Mail me.", **kwargs}
    with pytest.raises(InvalidInput) as err:
        consent_wording_publish(**args)
    assert err.value.field == field
    assert ConsentWording.objects.count() == 6


def test_consent_wording_for_an_unknown_version_is_none():
    assert consent_wording_for(version="checkout-2026-03") is None
    assert consent_wording_for(version="") is None
    assert consent_wording_for(version=None) is None


def test_a_published_wording_is_never_edited_or_deleted():
    wording = consent_wording_current(purpose="email_marketing", language="en")
    wording.text = "Something else"
    with pytest.raises(ImmutableRecord):
        wording.save()
    with pytest.raises(ImmutableRecord):
        wording.delete()
    with pytest.raises(ImmutableRecord):
        ConsentWording.objects.filter(pk=wording.pk).update(text="Something else")
    with pytest.raises(ImmutableRecord):
        ConsentWording.objects.all().delete()
    assert consent_wording_for(version=wording.version).text.startswith("Email me news")


def test_the_database_refuses_a_version_given_twice():
    with pytest.raises(IntegrityError), transaction.atomic():
        ConsentWording.objects.create(
            purpose="email_marketing",
            language="en",
            number=7,
            version="email_marketing.en.1",
            text="Other words",
        )


# --- Admin ------------------------------------------------------------------------------------


def admin_url(model, view="changelist", *args):
    return reverse(f"admin:personalization_{model}_{view}", args=args)


def test_the_admin_publishes_a_new_version_and_shows_old_ones_read_only(admin_client):
    response = admin_client.post(
        admin_url("consentwording", "add"),
        {"purpose": "personalization", "language": "tr", "text": "Önerileri bana göre seç."},
    )
    assert response.status_code == 302
    new = consent_wording_current(purpose="personalization", language="tr")
    assert (new.version, new.text) == ("personalization.tr.2", "Önerileri bana göre seç.")

    listing = admin_client.get(admin_url("consentwording"))
    assert b"personalization.tr.2" in listing.content and b"personalization.tr.1" in listing.content

    old = consent_wording_for(version="personalization.tr.1")
    page = admin_client.get(admin_url("consentwording", "change", old.pk))
    assert page.status_code == 200
    assert b'name="text"' not in page.content  # read-only: no field to edit
    assert b"Records given with this wording" in page.content
    edit = admin_client.post(admin_url("consentwording", "change", old.pk), {"text": "Changed"})
    assert edit.status_code == 403
    assert admin_client.post(admin_url("consentwording", "delete", old.pk)).status_code == 403
    assert consent_wording_for(version="personalization.tr.1").text == old.text


def test_the_admin_add_form_refuses_a_language_the_shop_does_not_have(admin_client):
    response = admin_client.post(
        admin_url("consentwording", "add"),
        {"purpose": "personalization", "language": "de", "text": "Bitte."},
    )
    assert response.status_code == 200
    assert ConsentWording.objects.count() == 6


def test_the_ledger_shows_the_words_a_record_was_given_with(admin_client):
    profile = Profile.objects.create(email="ann@example.com")
    record = consent_record(
        profile=profile,
        purpose="email_marketing",
        granted=True,
        source="signup",
        wording_version="email_marketing.sv.1",
    )
    page = admin_client.get(admin_url("consentrecord", "change", record.pk))
    assert "Jag vill få nyheter" in page.content.decode()
    other = consent_record(
        profile=profile,
        purpose="personalization",
        granted=True,
        source="api",
        wording_version="checkout-2026-03",
    )
    page = admin_client.get(admin_url("consentrecord", "change", other.pk))
    assert b"not a version published here" in page.content


def test_the_migration_publishes_the_same_defaults_the_code_restores():
    migration = importlib.import_module("personalization.migrations.0015_consent_wording")
    assert migration.DEFAULT_WORDINGS == DEFAULT_WORDINGS


def test_the_defaults_come_back_after_a_flush_and_never_replace_a_shops_own(settings):
    consent_wording_publish(purpose="email_marketing", language="sv", text="Egna ord.")
    assert consent_wordings_ensure_defaults() == 0
    with connection.cursor() as cursor:  # as a flush between transactional tests does
        cursor.execute(f"DELETE FROM {ConsentWording._meta.db_table} WHERE language = 'tr'")
    assert consent_wordings_ensure_defaults() == 2
    assert consent_wording_current(purpose="personalization", language="tr").number == 1
    assert consent_wording_current(purpose="email_marketing", language="sv").text == "Egna ord."


def test_publishing_a_new_version_in_the_admin_starts_from_the_latest_words(admin_client):
    old = consent_wording_for(version="email_marketing.sv.1")
    page = admin_client.get(admin_url("consentwording", "change", old.pk)).content.decode()
    assert "Publish a new version of this wording" in page
    add = admin_client.get(
        admin_url("consentwording", "add"), {"purpose": "email_marketing", "language": "sv"}
    )
    assert old.text in add.content.decode()


def test_a_wording_is_shown_from_its_publication_on(time_machine):
    tomorrow = timezone.now() + dt.timedelta(days=1)
    consent_wording_publish(
        purpose="personalization", language="en", text="Later words.", now=tomorrow
    )
    assert consent_wording_current(purpose="personalization", language="en").number == 1
    time_machine.move_to(tomorrow, tick=False)
    assert consent_wording_current(purpose="personalization", language="en").text == "Later words."
