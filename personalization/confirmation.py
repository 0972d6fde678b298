"""Double opt-in: email a signed link, and record the confirmation when the customer uses it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from anymail.exceptions import AnymailAPIError
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from .conf import app_settings
from .consent import consent_confirm, consent_state, needs_double_opt_in, purpose_clean
from .exceptions import ConfigurationError, InvalidInput
from .jobs import job_enqueue, job_handler
from .models import ConsentRecord, ConsentSource, ConsentState, ConsentStatus, Job, Profile, Purpose

_SALT = "personalization.consent-confirm"
CONFIRMATION_SEND_JOB = "personalization.consent_confirmation_send"


@dataclass(frozen=True)
class ConfirmationRequest:
    profile: Profile
    purpose: str


def confirmation_token(*, profile: Profile, purpose: str) -> str:
    return signing.dumps({"profile": profile.pk, "purpose": purpose}, salt=_SALT, compress=True)


def confirmation_read(token: str) -> ConfirmationRequest:
    """The profile and purpose a token names; InvalidInput if forged, expired or stale."""
    max_age = dt.timedelta(days=app_settings.CONFIRMATION_LINK_MAX_AGE_DAYS)
    try:
        data = signing.loads(token, salt=_SALT, max_age=max_age)
    except signing.SignatureExpired as err:
        raise InvalidInput(
            _("This confirmation link has expired. Subscribe again to get a new one."),
            field="token",
        ) from err
    except signing.BadSignature as err:
        raise InvalidInput(_("This confirmation link is not valid."), field="token") from err
    profile = Profile.objects.filter(pk=data.get("profile")).first()
    if profile is None:
        raise InvalidInput(_("This confirmation link is not valid."), field="token")
    return ConfirmationRequest(profile=profile, purpose=purpose_clean(data.get("purpose")))


def confirmation_accept(*, token: str) -> ConsentRecord | None:
    """Confirm the pending grant a token names. None when it was already confirmed."""
    request = confirmation_read(token)
    state = consent_state(profile=request.profile, purpose=request.purpose)
    if state == ConsentState.GRANTED:
        return None
    if state != ConsentState.PENDING:
        raise InvalidInput(
            _("There is nothing to confirm: the subscription was withdrawn."), field="token"
        )
    return consent_confirm(profile=request.profile, purpose=request.purpose)


def confirmation_enqueue(*, record: ConsentRecord) -> Job | None:
    """Record the job that emails the confirmation link, if this grant awaits one.

    Called for every new ledger record (a receiver of ``consent_recorded``). An imported grant
    never mails: a backfill must not mass-mail customers. One job per record, however often
    this is called.
    """
    if (
        record.status != ConsentStatus.GRANTED
        or record.confirmed_at is not None
        or record.source == ConsentSource.IMPORT
        or not needs_double_opt_in(record.purpose)
    ):
        return None
    return job_enqueue(
        task=CONFIRMATION_SEND_JOB,
        args={"record_id": record.pk},
        key=f"{CONFIRMATION_SEND_JOB}:{record.pk}",
    )


# The ESP or the network fail transiently; anything else (no SITE_URL) needs a human first.
@job_handler(CONFIRMATION_SEND_JOB, retry_for=(AnymailAPIError, OSError), max_attempts=7)
def confirmation_send(*, record_id: int) -> bool:
    """Email the confirmation link for a pending grant. False when nothing needs sending."""
    record = ConsentRecord.objects.select_related("profile").filter(pk=record_id).first()
    if record is None or not needs_double_opt_in(record.purpose):
        return False
    profile = record.profile
    if not profile.email or consent_state(profile=profile, purpose=record.purpose) != (
        ConsentState.PENDING
    ):
        return False
    if not app_settings.SITE_URL:
        raise ConfigurationError(
            "PERSONALIZATION['SITE_URL'] is needed for the links in confirmation emails."
        )
    token = confirmation_token(profile=profile, purpose=record.purpose)
    path = reverse("personalization:consent-confirm", kwargs={"token": token})
    context = {
        "profile": profile,
        "purpose": Purpose(record.purpose).label,
        "link": app_settings.SITE_URL.rstrip("/") + path,
        "max_age_days": app_settings.CONFIRMATION_LINK_MAX_AGE_DAYS,
    }
    with translation.override(profile.locale or None):
        subject = _("Please confirm your subscription")
        text = render_to_string("personalization/email/confirm_consent.txt", context)
        html = render_to_string("personalization/email/confirm_consent.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=[profile.email])
    message.attach_alternative(html, "text/html")
    message.send()
    return True
