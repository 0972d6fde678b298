import re

import pytest
from django.core import mail
from django.urls import reverse

from personalization.confirmation import CONFIRMATION_SEND_JOB, confirmation_token
from personalization.consent import consent_record, consent_state
from personalization.jobs import jobs_retry, jobs_sweep
from personalization.models import ConsentRecord, Job, JobState, Profile
from personalization.tracking import identify

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def double_opt_in(settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
        "SITE_URL": "https://shop.example",
    }


def confirmation_link(django_capture_on_commit_callbacks, **identity):
    with django_capture_on_commit_callbacks(execute=True):
        profile = identify(consents={"email_marketing": "signup-v1"}, **identity)
    [message] = mail.outbox
    return profile, message, re.search(r"https://shop\.example(\S+)", message.body).group(1)


def test_a_grant_needing_double_opt_in_mails_a_link_that_confirms_on_post(
    client, django_capture_on_commit_callbacks
):
    profile, message, path = confirmation_link(
        django_capture_on_commit_callbacks, email="ann@example.com", first_name="Ann"
    )
    assert message.to == ["ann@example.com"]
    assert "Hello Ann" in message.body
    assert consent_state(profile=profile, purpose="email_marketing") == "pending"

    page = client.get(path)  # a mail scanner following the link confirms nothing
    assert page.status_code == 200 and b"ann@example.com" in page.content
    assert consent_state(profile=profile, purpose="email_marketing") == "pending"

    done = client.post(path)
    assert done.status_code == 200
    assert consent_state(profile=profile, purpose="email_marketing") == "granted"
    assert ConsentRecord.objects.filter(confirmed_at__isnull=False).count() == 1
    client.post(path)  # a second click changes nothing
    assert ConsentRecord.objects.count() == 2


def test_a_forged_or_withdrawn_link_is_a_clear_400(client, django_capture_on_commit_callbacks):
    profile, _message, path = confirmation_link(
        django_capture_on_commit_callbacks, email="ann@example.com"
    )
    assert client.post(path[:-3] + "xyz/").status_code == 400
    consent_record(
        profile=profile, purpose="email_marketing", granted=False, source="preference_centre"
    )
    response = client.post(path)
    assert response.status_code == 400
    assert b"withdrawn" in response.content
    assert consent_state(profile=profile, purpose="email_marketing") == "withdrawn"


def test_an_expired_link_asks_to_subscribe_again(client, time_machine):
    profile = Profile.objects.create(email="ann@example.com")
    consent_record(profile=profile, purpose="email_marketing", granted=True, source="checkout")
    time_machine.move_to("2026-01-01T00:00:00Z")
    token = confirmation_token(grant=ConsentRecord.objects.get())
    time_machine.move_to("2026-01-09T00:00:00Z")
    response = client.post(reverse("personalization:consent-confirm", kwargs={"token": token}))
    assert response.status_code == 400 and b"expired" in response.content


def test_imported_consent_never_triggers_mail(django_capture_on_commit_callbacks):
    profile = Profile.objects.create(email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        consent_record(profile=profile, purpose="email_marketing", granted=True, source="import")
    assert mail.outbox == []
    assert not Job.objects.filter(task=CONFIRMATION_SEND_JOB).exists()


def test_a_failing_email_provider_is_retried_then_shows_as_failed(
    settings, django_capture_on_commit_callbacks, time_machine, closed_port
):
    # A real transient failure: the SMTP server does not answer.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port
    time_machine.move_to("2026-07-01T08:00:00Z", tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        identify(email="ann@example.com", consents={"email_marketing": "v1"})
    job = Job.objects.get(task=CONFIRMATION_SEND_JOB)
    assert (job.state, job.attempts) == (JobState.PENDING, 1)
    assert "Connection refused" in job.last_error

    for hour in range(1, job.max_attempts):
        time_machine.move_to(f"2026-07-01T{8 + hour:02}:00:00Z", tick=False)
        jobs_sweep()
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.FAILED, job.max_attempts)
    assert mail.outbox == []

    # The provider is back; the marketer retries the job from the admin's list.
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        jobs_retry(jobs=Job.objects.filter(pk=job.pk))
    [message] = mail.outbox
    assert message.to == ["ann@example.com"]


def test_one_grant_mails_one_link_however_often_it_is_announced(
    django_capture_on_commit_callbacks,
):
    from personalization.signals import consent_recorded

    with django_capture_on_commit_callbacks(execute=True):
        profile = identify(email="ann@example.com", consents={"email_marketing": "v1"})
    record = ConsentRecord.objects.get(profile=profile)
    with django_capture_on_commit_callbacks(execute=True):
        consent_recorded.send(sender=ConsentRecord, record=record)
    assert len(mail.outbox) == 1
    assert Job.objects.filter(task=CONFIRMATION_SEND_JOB).count() == 1


def test_the_confirmation_job_commits_with_the_grant(django_capture_on_commit_callbacks):
    # A process killed right after the commit runs no on_commit callback: the job that mails
    # the link must already be committed with the grant, or the customer never gets it.
    with django_capture_on_commit_callbacks(execute=False):
        identify(email="ann@example.com", consents={"email_marketing": "v1"})
    job = Job.objects.get(task=CONFIRMATION_SEND_JOB)
    assert job.state == JobState.PENDING
    jobs_sweep()
    assert [message.to for message in mail.outbox] == [["ann@example.com"]]


def test_a_grant_rolled_back_leaves_no_confirmation_job():
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        identify(email="ann@example.com", consents={"email_marketing": "v1"})
        raise RuntimeError("the shop's checkout failed after the sign-up")
    assert not Job.objects.exists()
    assert not ConsentRecord.objects.exists()


def test_a_link_still_confirms_after_the_profile_was_merged(
    client, django_capture_on_commit_callbacks
):
    from personalization.identity import profile_merge

    profile, _message, path = confirmation_link(
        django_capture_on_commit_callbacks, email="ann@example.com"
    )
    survivor = Profile.objects.create(email="ann.other@example.com")
    profile_merge(source=profile, target=survivor)
    response = client.post(path)
    assert response.status_code == 200
    assert consent_state(profile=survivor, purpose="email_marketing") == "granted"


def test_a_link_confirms_only_the_grant_it_was_sent_for(client, django_capture_on_commit_callbacks):
    profile, _message, path = confirmation_link(
        django_capture_on_commit_callbacks, email="ann@example.com"
    )
    consent_record(profile=profile, purpose="email_marketing", granted=False, source="admin")
    consent_record(profile=profile, purpose="email_marketing", granted=True, source="checkout")
    response = client.post(path)  # the old link must not confirm the new grant
    assert response.status_code == 400
    assert consent_state(profile=profile, purpose="email_marketing") == "pending"


def test_a_used_link_says_it_is_already_confirmed(client, django_capture_on_commit_callbacks):
    _profile, _message, path = confirmation_link(
        django_capture_on_commit_callbacks, email="ann@example.com"
    )
    client.post(path)
    for again in (client.get(path), client.post(path)):
        assert again.status_code == 200
        assert b"already confirmed" in again.content
    assert ConsentRecord.objects.count() == 2


def test_a_link_for_a_purpose_never_granted_does_not_say_withdrawn(client):
    from django.core import signing

    profile = Profile.objects.create(email="ann@example.com")
    # A link in the form mailed before links named their grant.
    token = signing.dumps(
        {"profile": profile.pk, "purpose": "email_marketing"},
        salt="personalization.consent-confirm",
        compress=True,
    )
    response = client.post(reverse("personalization:consent-confirm", kwargs={"token": token}))
    assert response.status_code == 400
    assert b"withdrawn" not in response.content
    assert not ConsentRecord.objects.exists()


SUBJECTS = {
    "sv": "Bekräfta din prenumeration",
    "tr": "Lütfen aboneliğinizi onaylayın",
    "en": "Please confirm your subscription",
}
PAGES = {  # the page's heading, then its heading once confirmed
    "sv": ("Bekräfta din prenumeration", "Tack – nu är det bekräftat"),
    "tr": ("Aboneliğinizi onaylayın", "Teşekkürler, onayınız alındı"),
    "en": ("Confirm your subscription", "Thank you — you're confirmed"),
}


@pytest.mark.parametrize(
    ("locale", "cookie", "mail_in", "page_in"),
    [
        ("sv-SE", None, "sv", "sv"),  # narrowed to a language the site has
        ("tr", None, "tr", "tr"),
        ("tr", "sv", "tr", "sv"),  # the visitor chose a language with the switcher: it wins
        ("de", None, "en", "en"),  # none that fits: the language of the request
    ],
)
def test_the_confirmation_mail_and_page_are_in_the_profiles_language(
    client, django_capture_on_commit_callbacks, settings, locale, cookie, mail_in, page_in
):
    _profile, message, path = confirmation_link(
        django_capture_on_commit_callbacks, email="ann@example.com", locale=locale
    )
    assert message.subject == SUBJECTS[mail_in]
    if cookie:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = cookie
    heading, done_heading = PAGES[page_in]

    page = client.get(path, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'<html lang="{page_in}">' in page and f"<h1>{heading}</h1>" in page
    done = client.post(path, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"<h1>{done_heading}</h1>" in done
