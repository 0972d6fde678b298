"""Per-recipient preview and test sends: exactly what one customer would get, or why nothing.

The preview runs the same policy (:mod:`.policy`) and renderer (:mod:`.render`) as the
dispatcher, on a message that is not written anywhere: what the marketer sees is what the
customer would get if it were sent now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.core.mail import EmailMultiAlternatives
from django.utils import timezone
from django.utils.translation import gettext as _

from ..exceptions import InvalidInput
from ..models import Campaign, MessageKind, Profile
from .campaigns import campaign_audience
from .policy import SEND, SKIP, Candidate, Decision, decide_many, how_to_send, recipients_load
from .render import NO_EXTRAS, Copy, Email, Extras, campaign_copy, email_for


@dataclass(frozen=True)
class Preview:
    profile: Profile
    in_audience: bool
    decision: Decision
    email: Email | None  # None when the policy would skip them

    @property
    def would_send(self) -> bool:
        return self.decision.action == SEND


def message_preview(
    *,
    profile: Profile,
    topic_id: int | None,
    priority: int,
    copy_for: Callable[[str], Copy],
    extras: Extras = NO_EXTRAS,
    in_audience: bool = True,
    now: dt.datetime,
) -> Preview:
    """What ``profile`` would get from a source (a campaign, a flow step) if it went out now:
    the policy's decision and, unless it is a skip, the email rendered from ``copy_for(variant)``
    (for a deferral, what would go out later)."""
    candidate = Candidate(
        pk=0,
        profile_id=profile.pk,
        kind=MessageKind.MARKETING,
        topic_id=topic_id,
        priority=priority,
        not_before=now,
        expires_at=None,
        cancelled=False,
    )
    recipients = recipients_load(profile_ids=[profile.pk], now=now)
    decision = decide_many([candidate], recipients, now=now)[0]
    email = None
    if decision.action != SKIP:
        email = email_for(
            copy=copy_for(decision.variant),
            profile=profile,
            variant=decision.variant,
            by_name=decision.first_name,
            now=now,
            extras=extras,
        )
    return Preview(profile=profile, in_audience=in_audience, decision=decision, email=email)


def campaign_preview(
    *, campaign: Campaign, profile: Profile, now: dt.datetime | None = None
) -> Preview:
    """What ``profile`` would get from ``campaign`` if it went out now (see
    :func:`message_preview`). Compiling the copy raises ``TemplateSyntaxError`` for broken
    copy."""
    return message_preview(
        profile=profile,
        topic_id=campaign.topic_id,
        priority=campaign.priority,
        copy_for=lambda variant: campaign_copy(campaign=campaign, variant=variant),
        in_audience=campaign_audience(campaign=campaign).filter(pk=profile.pk).exists(),
        now=now or timezone.now(),
    )


def campaign_test_send(
    *, campaign: Campaign, profile: Profile, to: str, now: dt.datetime | None = None
) -> Email:
    """Send ``profile``'s version of the campaign to ``to`` (the marketer), marked as a test
    (see :func:`message_test_send`)."""
    return message_test_send(
        profile=profile,
        copy_for=lambda variant: campaign_copy(campaign=campaign, variant=variant),
        to=to,
        now=now,
    )


def message_test_send(
    *,
    profile: Profile,
    copy_for: Callable[[str], Copy],
    to: str,
    extras: Extras = NO_EXTRAS,
    now: dt.datetime | None = None,
) -> Email:
    """Send ``profile``'s version of a source's copy to ``to`` (the marketer), marked as a test.

    Rendered as the preview renders it, whatever the policy says (a test of the copy, not of
    the audience); nothing is written to the ledger and no cap slot is taken.
    """
    now = now or timezone.now()
    recipient = recipients_load(profile_ids=[profile.pk], now=now).get(profile.pk)
    if recipient is None:
        raise InvalidInput(_("The profile no longer exists."), field="profile")
    decision = how_to_send(recipient)
    email = email_for(
        copy=copy_for(decision.variant),
        profile=profile,
        variant=decision.variant,
        by_name=decision.first_name,
        now=now,
        extras=extras,
    )
    mail = EmailMultiAlternatives(
        subject=_("[Test] %(subject)s") % {"subject": email.subject},
        body=email.text,
        to=[to],
        headers=email.headers,
    )
    mail.attach_alternative(email.html, "text/html")
    mail.send()
    return email
