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
from .consent import (
    GrantStatus,
    consent_confirm,
    consent_grant_status,
    consent_pending_grant,
    purpose_clean,
)
from .exceptions import ConfigurationError, InvalidInput
from .jobs import job_enqueue, job_handler
from .models import ConsentRecord, ConsentSource, ConsentStatus, Job, Profile, Purpose
from .validation import ip_address as ip_address_clean

_SALT = "personalization.consent-confirm"
CONFIRMATION_SEND_JOB = "personalization.consent_confirmation_send"


@dataclass(frozen=True)
class ConfirmationRequest:
    grant: ConsentRecord
    status: GrantStatus

    @property
    def profile(self) -> Profile:
        return self.grant.profile

    @property
    def purpose(self) -> str:
        return self.grant.purpose


def confirmation_token(*, grant: ConsentRecord) -> str:
    # The token names the grant, not the profile: it survives a merge and confirms only it.
    return signing.dumps({"grant": grant.pk}, salt=_SALT, compress=True)


def _invalid() -> InvalidInput:
    return InvalidInput(_("This confirmation link is not valid."), field="token")


def confirmation_read(token: str) -> ConfirmationRequest:
    """The grant a token names and where it stands; InvalidInput if forged, expired or stale."""
    max_age = dt.timedelta(days=app_settings.CONFIRMATION_LINK_MAX_AGE_DAYS)
    try:
        data = signing.loads(token, salt=_SALT, max_age=max_age)
    except signing.SignatureExpired as err:
        raise InvalidInput(
            _("This confirmation link has expired. Subscribe again to get a new one."),
            field="token",
        ) from err
    except signing.BadSignature as err:
        raise _invalid() from err
    if not isinstance(data, dict):
        raise _invalid()
    grants = ConsentRecord.objects.select_related("profile").filter(status=ConsentStatus.GRANTED)
    if "grant" in data:
        grant = grants.filter(pk=data["grant"]).first()
    else:  # mailed before links named their grant: {"profile", "purpose"}
        profile = Profile.objects.filter(pk=data.get("profile")).first()
        if profile is None:
            raise _invalid()
        purpose = purpose_clean(data.get("purpose"))
        grant = consent_pending_grant(profile=profile, purpose=purpose) or (
            grants.filter(profile=profile, purpose=purpose).order_by("-ordered_at", "-pk").first()
        )
        if grant is None:
            raise InvalidInput(
                _("There is nothing to confirm: no subscription was asked for."), field="token"
            )
    if grant is None:
        raise _invalid()
    status = consent_grant_status(grant=grant)
    if status == GrantStatus.WITHDRAWN:
        raise InvalidInput(
            _(
                "There is nothing to confirm: the subscription was withdrawn. If you subscribed "
                "again, use the link in the newest email."
            ),
            field="token",
        )
    return ConfirmationRequest(grant=grant, status=status)


def confirmation_accept(*, token: str, ip_address: str | None = None) -> ConsentRecord | None:
    """Confirm the grant a token names. None when it was already confirmed."""
    ip_address = ip_address_clean(ip_address)
    return confirmation_request_accept(request=confirmation_read(token), ip_address=ip_address)


def confirmation_request_accept(
    *, request: ConfirmationRequest, ip_address: str | None = None
) -> ConsentRecord | None:
    """Confirm the grant of a token already read (:func:`confirmation_read`).

    The grant's state is checked again under the profile's lock, so a link used twice at
    once confirms once. None when it was already confirmed."""
    ip_address = ip_address_clean(ip_address)
    if request.status == GrantStatus.CONFIRMED:
        return None
    try:
        return consent_confirm(grant=request.grant, ip_address=ip_address)
    except InvalidInput as err:
        raise InvalidInput(err.message, field="token") from err


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
        or not record.double_opt_in
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
    if record is None or not record.double_opt_in or record.confirmed_at is not None:
        return False
    profile = record.profile
    if not profile.email or consent_grant_status(grant=record) != GrantStatus.AWAITING:
        return False
    if not app_settings.SITE_URL:
        raise ConfigurationError(
            "PERSONALIZATION['SITE_URL'] is needed for the links in confirmation emails."
        )
    token = confirmation_token(grant=record)
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
