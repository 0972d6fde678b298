"""Consent capture at sign-up and checkout: what a shopper ticks is recorded with the words they
saw; double opt-in counts only once confirmed; withdrawing is one step and counts at once."""

import re

import pytest
from django.core import mail
from django.template import Context, Template
from django.utils import translation

from personalization.capture.forms import ConsentForm, consent_form_data
from personalization.capture.services import consent_capture
from personalization.capture.wording import consent_wording_current, consent_wording_publish
from personalization.consent import consent_record, consent_state, has_consent
from personalization.exceptions import InvalidInput
from personalization.models import ConsentRecord, ConsentSource, Profile, SuppressionSource
from personalization.preferences.services import unsubscribe_all
from personalization.privacy.erasure import profile_erase

pytestmark = pytest.mark.django_db
EN = {"email_marketing": "email_marketing.en.1", "personalization": "personalization.en.1"}


@pytest.fixture
def double_opt_in(settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
        "SITE_URL": "https://shop.example",
    }


@pytest.fixture
def ann(db):
    return Profile.objects.create(email="ann@example.com", first_name="Ann")


# --- The service --------------------------------------------------------------------------------


def test_a_double_opt_in_purpose_mails_a_link_and_counts_only_once_confirmed(
    ann, double_opt_in, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        [grant] = consent_capture(
            profile=ann,
            shown=EN,
            checked=["email_marketing"],
            source=ConsentSource.SIGNUP,
            ip_address="203.0.113.9",
        )
    assert (grant.wording_version, grant.double_opt_in, grant.source) == (
        "email_marketing.en.1",
        True,
        "signup",
    )
    assert consent_state(profile=ann, purpose="email_marketing") == "pending"
    assert not has_consent(profile=ann, purpose="email_marketing")

    [message] = mail.outbox
    assert message.to == ["ann@example.com"]
    path = re.search(r"https://shop\.example(\S+)", message.body).group(1)
    assert client.post(path).status_code == 200

    assert has_consent(profile=ann, purpose="email_marketing")
    confirmation = ConsentRecord.objects.get(confirms=grant)
    assert confirmation.confirmed_at is not None
    assert confirmation.wording_version == "email_marketing.en.1"


def test_a_purpose_without_double_opt_in_counts_at_once_and_mails_nothing(
    ann, double_opt_in, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        [grant] = consent_capture(
            profile=ann, shown=EN, checked=["personalization"], source="checkout"
        )
    assert not grant.double_opt_in
    assert has_consent(profile=ann, purpose="personalization")
    assert mail.outbox == []


def test_an_unticked_box_records_nothing_and_withdraws_nothing(ann):
    consent_record(profile=ann, purpose="personalization", granted=True, source="banner")
    assert consent_capture(profile=ann, shown=EN, checked=[], source="checkout") == []
    assert ConsentRecord.objects.count() == 1
    assert has_consent(profile=ann, purpose="personalization")


@pytest.mark.parametrize(
    ("shown", "checked", "field"),
    [
        (
            {**EN, "email_marketing": "email_marketing.en.9"},
            ["personalization"],
            "shown[email_marketing]",
        ),
        (
            {**EN, "email_marketing": "personalization.en.1"},
            ["personalization"],
            "shown[email_marketing]",
        ),
        ({**EN, "personalization": 1}, ["email_marketing"], "shown[personalization]"),
        ({"spam": "x"}, [], "purpose"),
        (["email_marketing"], [], "shown"),
        ({"personalization": "personalization.en.1"}, ["email_marketing"], "checked"),
        (EN, "email_marketing", "checked"),
    ],
)
def test_a_wrong_version_or_purpose_names_the_field_and_writes_nothing(ann, shown, checked, field):
    with pytest.raises(InvalidInput) as err:
        consent_capture(profile=ann, shown=shown, checked=checked, source="signup")
    assert err.value.field == field
    assert not ConsentRecord.objects.exists()


def test_an_erased_person_signing_up_again_gives_a_new_consent_that_counts(ann):
    profile_erase(profile=ann, source=SuppressionSource.PREFERENCE_CENTRE)
    again = Profile.objects.create(email="ann@example.com")
    assert (
        consent_capture(profile=again, shown=EN, checked=["personalization"], source="admin") == []
    )
    [grant] = consent_capture(profile=again, shown=EN, checked=["personalization"], source="signup")
    assert has_consent(profile=again, purpose="personalization")


# --- Withdrawal: as easy as granting ------------------------------------------------------------


def test_withdrawing_is_one_call_and_counts_at_once(ann):
    consent_capture(profile=ann, shown=EN, checked=list(EN), source="checkout")
    assert has_consent(profile=ann, purpose="email_marketing")
    unsubscribe_all(profile=ann, source="unsubscribe_link")
    assert consent_state(profile=ann, purpose="email_marketing") == "withdrawn"
    assert not has_consent(profile=ann, purpose="email_marketing")
    consent_record(profile=ann, purpose="personalization", granted=False, source="account")
    assert not has_consent(profile=ann, purpose="personalization")


def test_withdrawing_before_confirming_leaves_the_link_nothing_to_confirm(
    ann, double_opt_in, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        consent_capture(profile=ann, shown=EN, checked=["email_marketing"], source="signup")
    path = re.search(r"https://shop\.example(\S+)", mail.outbox[0].body).group(1)
    unsubscribe_all(profile=ann, source="account")
    assert client.post(path).status_code == 400
    assert consent_state(profile=ann, purpose="email_marketing") == "withdrawn"


# --- The form -----------------------------------------------------------------------------------


def test_the_boxes_are_unticked_and_labelled_with_the_wording_in_the_active_language():
    with translation.override("sv"):
        form = ConsentForm()
        html = str(form)
    assert [row.wording.version for row in form.rows()] == [
        "email_marketing.sv.1",
        "personalization.sv.1",
    ]
    assert "Jag vill få nyheter" in html
    assert "checked" not in html


def test_the_form_records_what_was_ticked_with_the_version_shown(ann):
    data = consent_form_data(checked=["personalization"], language="tr")
    form = ConsentForm(data)
    assert form.is_valid(), form.errors
    [grant] = form.capture(profile=ann, source=ConsentSource.CHECKOUT)
    assert (grant.purpose, grant.wording_version) == ("personalization", "personalization.tr.1")


def test_the_ip_address_comes_from_the_request(ann, rf):
    form = ConsentForm(consent_form_data(checked=["personalization"]))
    assert form.is_valid()
    request = rf.post("/", REMOTE_ADDR="198.51.100.7")
    [grant] = form.capture(profile=ann, source="signup", request=request)
    assert grant.ip_address == "198.51.100.7"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda v: v.replace("email_marketing.en.1", "email_marketing.sv.1"),  # signature breaks
        lambda v: "email_marketing.en.1",  # unsigned
        lambda v: "",  # missing
    ],
)
def test_a_tampered_version_is_a_form_error_and_nothing_is_recorded(ann, tamper):
    data = consent_form_data(checked=["email_marketing", "personalization"])
    data["consent_email_marketing_version"] = tamper(data["consent_email_marketing_version"])
    form = ConsentForm(data)
    assert not form.is_valid()
    assert list(form.errors) == ["consent_email_marketing"]
    with pytest.raises(ValueError):
        form.capture(profile=ann, source="signup")
    assert not ConsentRecord.objects.exists()


def test_a_signed_version_of_another_purpose_is_refused():
    data = consent_form_data(checked=["email_marketing"])
    data["consent_email_marketing_version"] = data["consent_personalization_version"]
    assert list(ConsentForm(data).errors) == ["consent_email_marketing"]


def test_an_unticked_form_records_nothing(ann):
    form = ConsentForm(consent_form_data())
    assert form.is_valid()
    assert form.capture(profile=ann, source="signup") == []
    assert form.consents() == {}
    assert not ConsentRecord.objects.exists()


def test_a_form_sent_after_a_new_wording_was_published_records_the_one_shown(ann):
    data = consent_form_data(checked=["email_marketing"])
    consent_wording_publish(purpose="email_marketing", language="en", text="New words.")
    form = ConsentForm(data)
    assert form.fields["consent_email_marketing"].label.startswith("Email me news")
    assert form.is_valid()
    assert form.consents() == {"email_marketing": "email_marketing.en.1"}
    assert ConsentForm().fields["consent_email_marketing"].label == "New words."


def test_the_template_tag_renders_accessible_boxes():
    form = ConsentForm(purposes=["personalization"], prefix="c")
    html = Template("{% load personalization_tags %}{% consent_fields form %}").render(
        Context({"form": form})
    )
    assert (
        '<input type="checkbox" name="c-consent_personalization" id="id_c-consent_personalization"'
        in html
    )
    assert '<label for="id_c-consent_personalization">' in html
    assert 'type="hidden" name="c-consent_personalization_version"' in html
    assert consent_wording_current(purpose="personalization").text in html
    assert "<legend>" in html and "<script" not in html


def test_the_template_tag_shows_an_error_next_to_its_box():
    data = consent_form_data(checked=["personalization"], purposes=["personalization"])
    data["consent_personalization_version"] = "forged"
    form = ConsentForm(data, purposes=["personalization"])
    form.is_valid()
    html = Template("{% load personalization_tags %}{% consent_fields form %}").render(
        Context({"form": form})
    )
    assert 'role="alert"' in html and "has-error" in html


def test_the_export_of_a_persons_data_has_the_words_they_agreed_to(ann):
    from personalization.privacy.export import profile_export

    consent_capture(profile=ann, shown=EN, checked=["personalization"], source="signup")
    consent_record(
        profile=ann,
        purpose="email_marketing",
        granted=True,
        source="api",
        wording_version="newsletter-2025",
    )
    records = {row["purpose"]: row for row in profile_export(profile=ann)["consent_records"]}
    assert (
        records["personalization"]["wording_text"]
        == consent_wording_current(purpose="personalization", language="en").text
    )
    assert records["email_marketing"]["wording_text"] is None
