"""The dispatcher: claim due messages, decide them, render, send once, record.

One pass (:func:`messages_dispatch_batch`) handles up to ``MESSAGE_BATCH_SIZE`` messages:

1. **claim** (one short transaction): due ``planned``/``deferred`` rows, oldest first, locked
   with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so concurrent dispatchers take disjoint rows,
   marked ``claimed`` with this pass's token and a lease;
2. **decide** (one short transaction): the recipients' profiles locked in ascending id order
   (the app's lock order: profile before message), the policy run for the whole batch, and
   every outcome written: ``skipped`` and ``deferred`` with their reason, the ones to send
   ``ready``, which takes their frequency-cap slot so a concurrent dispatcher sees it;
3. **render** each ``ready`` message (a failure fails that message alone);
4. **send**: the batch is marked ``sending`` in one statement, then handed to the email
   backend over one connection, and the outcomes written in bulk: ``sent`` with the ESP's
   message id, ``failed`` for refused recipients, back to ``deferred`` with a growing pause
   for transient errors (429, 5xx, timeouts) until ``MESSAGE_MAX_ATTEMPTS``.

Every step after the claim acts only on rows still holding this pass's token, so a message
whose lease ran out and went to another dispatcher is never moved on by this one. A message
that was ``sending`` when its dispatcher died may or may not have gone out: the sweep
(:mod:`.sweep`) marks it ``unknown`` and it is never sent again.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import smtplib
import time
from collections import defaultdict
from dataclasses import dataclass, field

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ..concurrency import profiles_lock
from ..conf import app_settings
from ..models import (
    Campaign,
    CampaignStatus,
    FlowStep,
    Message,
    MessageKind,
    MessageState,
    Profile,
    Variant,
)
from .policy import DEFER, SEND, SKIP, Candidate, DecisionReason, decide_many, recipients_load
from .render import (
    NO_EXTRAS,
    OWN_PICKS_FLOWS,
    Copy,
    Email,
    Extras,
    campaign_copy,
    email_for,
    flow_extras,
    recommendations_prefetch,
    step_copy,
)
from .sources import source_verdicts

logger = logging.getLogger(__name__)


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: DispatchReport) -> None:
        for name in ("claimed", "sent", "deferred", "skipped", "failed", "retried"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n


# --- 1. Claim ----------------------------------------------------------------------------------


def messages_claim(*, now: dt.datetime, size: int, token: str) -> list[int]:
    """Claim up to ``size`` due messages for ``token``; their ids."""
    lease = dt.timedelta(seconds=app_settings.MESSAGE_LEASE_SECONDS)
    due = Q(state__in=(MessageState.PLANNED, MessageState.DEFERRED), not_before__lte=now)
    with transaction.atomic():
        ids = list(
            Message.objects.filter(due)
            .order_by("not_before", "priority", "pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:size]
        )
        if not ids:
            return []
        # The state condition again: SQLite has no row locks, and a writer that came first
        # has already moved the row on.
        Message.objects.filter(due, pk__in=ids).update(
            state=MessageState.CLAIMED, claim_token=token, claimed_until=now + lease
        )
    return list(
        Message.objects.filter(claim_token=token, state=MessageState.CLAIMED).values_list(
            "pk", flat=True
        )
    )


# --- 2. Decide ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToSend:
    message: Message
    first_name: bool


def messages_decide(
    *, token: str, now: dt.datetime, report: DispatchReport
) -> tuple[list[ToSend], dict]:
    """Run the policy over this pass's claimed messages and write every outcome."""
    with transaction.atomic():
        profile_ids = set(
            Message.objects.filter(claim_token=token, state=MessageState.CLAIMED).values_list(
                "profile_id", flat=True
            )
        )
        profiles = profiles_lock(profile_ids)
        messages = list(
            Message.objects.select_related("flow_entry").filter(
                claim_token=token, state=MessageState.CLAIMED
            )
        )
        cancelled = set(
            Campaign.objects.filter(
                pk__in={m.campaign_id for m in messages if m.campaign_id},
                status=CampaignStatus.CANCELLED,
            ).values_list("pk", flat=True)
        )
        recipients = recipients_load(
            profile_ids=profile_ids, now=now, exclude_message_ids=[m.pk for m in messages]
        )
        # The sources' own rules first (a flow's exits, limit and pacing), then the policy.
        decisions = source_verdicts(messages, now=now)
        decisions.update(
            decide_many(
                [
                    Candidate.of(m, cancelled=m.campaign_id in cancelled)
                    for m in messages
                    if m.pk not in decisions
                ],
                recipients,
                now=now,
            )
        )
        to_send = []
        for message in messages:
            decision = decisions[message.pk]
            message.decided_at = now
            message.reason = decision.reason
            if decision.action == SEND:
                message.state = MessageState.READY
                message.variant = decision.variant
                to_send.append(ToSend(message, decision.first_name))
                continue
            message.claim_token, message.claimed_until = "", None
            report.reasons[decision.reason] = report.reasons.get(decision.reason, 0) + 1
            if decision.action == DEFER:
                message.state, message.not_before = MessageState.DEFERRED, decision.not_before
                report.deferred += 1
            else:
                assert decision.action == SKIP
                message.state = MessageState.SKIPPED
                report.skipped += 1
        _outcomes_write(messages, now=now)
    return to_send, profiles


def _outcomes_write(messages: list[Message], *, now: dt.datetime) -> None:
    """Write the decisions: one UPDATE per kind of outcome (sent: per variant; skipped: per
    reason), and the deferrals, whose times differ, in one bulk update. A bulk update of
    every field of every row builds a CASE per row and column: slower than the statements."""
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    deferred = []
    for message in messages:
        if message.state == MessageState.DEFERRED:
            deferred.append(message)
        else:
            groups[(message.state, message.reason, message.variant)].append(message.pk)
    for (state, reason, variant), ids in groups.items():
        held = {} if state == MessageState.READY else {"claim_token": "", "claimed_until": None}
        Message.objects.filter(pk__in=ids).update(
            state=state, reason=reason, variant=variant, decided_at=now, **held
        )
    if deferred:
        Message.objects.bulk_update(
            deferred,
            [
                "state",
                "reason",
                "decided_at",
                "variant",
                "not_before",
                "claim_token",
                "claimed_until",
            ],
        )


# --- 3. Render ---------------------------------------------------------------------------------


class _Copies:
    """Each campaign's or flow step's copy, compiled once per pass and variant."""

    def __init__(self):
        self._compiled: dict[tuple[str, int, str], Copy] = {}
        self._steps: dict[int, FlowStep] = {}

    def step(self, message: Message) -> FlowStep | None:
        if message.flow_step_id is None:
            return None
        if message.flow_step_id not in self._steps:
            self._steps[message.flow_step_id] = FlowStep.objects.select_related("flow__topic").get(
                pk=message.flow_step_id
            )
        return self._steps[message.flow_step_id]

    def get(self, message: Message) -> Copy:
        step = self.step(message)
        if step is not None:
            key = ("step", step.pk, message.variant)
            if key not in self._compiled:
                self._compiled[key] = step_copy(step=step, variant=message.variant)
            return self._compiled[key]
        key = ("campaign", message.campaign_id, message.variant)
        if key not in self._compiled:
            campaign = Campaign.objects.select_related("topic").get(pk=message.campaign_id)
            self._compiled[key] = campaign_copy(campaign=campaign, variant=message.variant)
        return self._compiled[key]

    def own_picks(self, message: Message) -> bool:
        """Whether the message picks its own products (not from the batch's prefetch)."""
        step = self.step(message)
        return step is not None and step.flow.kind in OWN_PICKS_FLOWS

    def extras(self, message: Message, profile: Profile) -> Extras:
        step = self.step(message)
        if step is None:
            return NO_EXTRAS
        return flow_extras(
            step=step, entry=message.flow_entry, profile=profile, key=message.dedupe_key
        )


def _fail(message: Message, *, reason: str, error: str, now: dt.datetime) -> None:
    message.state, message.reason, message.last_error = MessageState.FAILED, reason, error[:2000]
    message.claim_token, message.claimed_until, message.decided_at = "", None, now


def _picks_prefetch(
    *, to_send: list[ToSend], profiles: dict, copies: _Copies, shared: dict, now: dt.datetime
) -> None:
    """Every tailored recipient's picks in one go, when their copy shows picks. Should this
    fail, each message reads its own and fails alone (``render_error``)."""
    try:
        wanted = [
            profiles[item.message.profile_id]
            for item in to_send
            if item.message.variant == Variant.TAILORED
            and item.message.profile_id in profiles
            and copies.get(item.message).needs_recommendations
            and not copies.own_picks(item.message)
        ]
        recommendations_prefetch(shared=shared, profiles=wanted, now=now)
    except Exception:
        logger.exception("Reading a batch's recommendations failed; reading them one by one")


def messages_render(
    *, to_send: list[ToSend], profiles: dict, now: dt.datetime, report: DispatchReport
) -> list[tuple[Message, Email]]:
    copies, shared = _Copies(), {}
    rendered, failed = [], []
    # The links' versions, read now for the batch (a revocation since the decision counts).
    versions = dict(Profile.objects.filter(pk__in=list(profiles)).values_list("pk", "link_version"))
    for profile_id, version in versions.items():
        profiles[profile_id].link_version = version
    _picks_prefetch(to_send=to_send, profiles=profiles, copies=copies, shared=shared, now=now)
    for item in to_send:
        message, profile = item.message, profiles.get(item.message.profile_id)
        try:
            email = email_for(
                copy=copies.get(message),
                profile=profile,
                variant=message.variant,
                by_name=item.first_name,
                now=now,
                shared=shared,
                version_read=item.message.profile_id in versions,
                extras=copies.extras(message, profile),
            )
            rendered.append((message, email))
        except Exception as err:  # one broken message must not hold up the batch
            logger.exception("Rendering message %s failed", message.pk)
            _fail(
                message,
                reason=DecisionReason.RENDER_ERROR,
                error=f"{type(err).__name__}: {err}",
                now=now,
            )
            failed.append(message)
    if failed:
        Message.objects.bulk_update(
            failed, ["state", "reason", "last_error", "claim_token", "claimed_until", "decided_at"]
        )
        report.failed += len(failed)
    return rendered


# --- 4. Send -----------------------------------------------------------------------------------


def _transient(err: Exception) -> bool:
    """Worth another attempt later: throttled, the ESP's own failure, the network."""
    if isinstance(err, AnymailRecipientsRefused):
        return False
    if isinstance(err, AnymailAPIError):
        status = getattr(err, "status_code", None)
        return status is None or status == 429 or status >= 500
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return False
    return isinstance(err, (OSError, smtplib.SMTPException, TimeoutError))


def _mail(message: Message, email: Email, connection) -> EmailMultiAlternatives:
    mail = EmailMultiAlternatives(
        subject=email.subject,
        body=email.text,
        to=[email.to],
        headers=email.headers if message.kind == MessageKind.MARKETING else {},
        connection=connection,
    )
    mail.attach_alternative(email.html, "text/html")
    # Anymail passes these to the ESP; tracking events bring them back.
    mail.metadata = {"pzn_message": str(message.pk)}
    mail.tags = [message.source]
    return mail


def messages_send(
    *, rendered: list[tuple[Message, Email]], token: str, now: dt.datetime, report: DispatchReport
) -> None:
    if not rendered:
        return
    by_pk = {message.pk: (message, email) for message, email in rendered}
    # Handed over only while still ours and while the campaign still stands.
    live = Q(campaign__isnull=True) | ~Q(campaign__status=CampaignStatus.CANCELLED)
    Message.objects.filter(
        live, pk__in=list(by_pk), claim_token=token, state=MessageState.READY
    ).update(
        state=MessageState.SENDING,
        attempts=F("attempts") + 1,
        # A fresh lease for the handing over: the sweep must not take a slow batch for a lost one.
        claimed_until=timezone.now() + dt.timedelta(seconds=app_settings.MESSAGE_LEASE_SECONDS),
    )
    sending = set(
        Message.objects.filter(
            pk__in=list(by_pk), claim_token=token, state=MessageState.SENDING
        ).values_list("pk", flat=True)
    )
    stale = [by_pk[pk][0] for pk in by_pk if pk not in sending]
    Message.objects.filter(
        pk__in=[m.pk for m in stale], claim_token=token, state=MessageState.READY
    ).update(
        state=MessageState.SKIPPED,
        reason=DecisionReason.CANCELLED,
        claim_token="",
        claimed_until=None,
    )
    outcomes = []
    connection = get_connection()
    connection.open()
    try:
        for pk in sorted(sending):
            message, email = by_pk[pk]
            message.attempts += 1
            message.to_email, message.subject = email.to, email.subject[:255]
            message.claim_token, message.claimed_until = "", None
            try:
                mail = _mail(message, email, connection)
                mail.send()
                status = getattr(mail, "anymail_status", None)
                message.state, message.sent_at = MessageState.SENT, timezone.now()
                esp_id = status.message_id if status is not None else None
                message.esp_message_id = "" if esp_id is None else str(esp_id)
                message.last_error = ""
                report.sent += 1
            except Exception as err:
                _send_failed(message, err, now=now, report=report)
            outcomes.append(message)
    finally:
        connection.close()
        _results_write(outcomes)


def _results_write(outcomes: list[Message]) -> None:
    """Write what the email service said: the sent ones' state in one UPDATE and their own
    values (address, subject, ESP id, time) in one bulk update; the few others whole."""
    sent = [message for message in outcomes if message.state == MessageState.SENT]
    others = [message for message in outcomes if message.state != MessageState.SENT]
    if sent:
        Message.objects.filter(pk__in=[message.pk for message in sent]).update(
            state=MessageState.SENT, reason="", last_error="", claim_token="", claimed_until=None
        )
        Message.objects.bulk_update(sent, ["to_email", "subject", "sent_at", "esp_message_id"])
    if others:
        Message.objects.bulk_update(
            others,
            [
                "state",
                "reason",
                "attempts",
                "to_email",
                "subject",
                "sent_at",
                "esp_message_id",
                "last_error",
                "not_before",
                "claim_token",
                "claimed_until",
                "decided_at",
            ],
        )


def _describe(err: Exception) -> str:
    """The error for the ledger. An Anymail error without a response cannot say itself
    (its ``__str__`` reads the response): its arguments then."""
    try:
        text = str(err)
    except Exception:  # noqa: BLE001  (whatever breaks the error's own __str__)
        text = ", ".join(str(arg) for arg in err.args)
    return f"{type(err).__name__}: {text}"[:2000]


def _send_failed(message: Message, err: Exception, *, now: dt.datetime, report) -> None:
    """A transient error: deferred with a growing pause, until MESSAGE_MAX_ATTEMPTS. Anything
    else (a refused address, a bad request): failed at once."""
    error = _describe(err)
    transient = _transient(err)
    if transient and message.attempts < app_settings.MESSAGE_MAX_ATTEMPTS:
        pause = app_settings.MESSAGE_RETRY_BACKOFF_SECONDS * 2 ** (message.attempts - 1)
        message.state, message.reason = MessageState.DEFERRED, DecisionReason.ESP_UNAVAILABLE
        message.not_before = now + dt.timedelta(seconds=pause)
        message.last_error = error
        report.retried += 1
        return
    reason = DecisionReason.ESP_UNAVAILABLE if transient else DecisionReason.REFUSED
    _fail(message, reason=reason, error=error, now=now)
    report.failed += 1


# --- One pass, and as many as there is work ----------------------------------------------------


def messages_dispatch_batch(
    *, now: dt.datetime | None = None, size: int | None = None
) -> DispatchReport:
    """Claim, decide, render and send one batch of due messages."""
    now = now or timezone.now()
    token = secrets.token_hex(16)
    report = DispatchReport()
    claimed = messages_claim(now=now, size=size or app_settings.MESSAGE_BATCH_SIZE, token=token)
    report.claimed = len(claimed)
    if not claimed:
        return report
    to_send, profiles = messages_decide(token=token, now=now, report=report)
    rendered = messages_render(to_send=to_send, profiles=profiles, now=now, report=report)
    messages_send(rendered=rendered, token=token, now=now, report=report)
    return report


def messages_dispatch(
    *, now: dt.datetime | None = None, max_batches: int | None = None, seconds: float | None = None
) -> DispatchReport:
    """Dispatch batches until no message is due (or ``max_batches``, or ``seconds`` spent)."""
    started = time.monotonic()
    total = DispatchReport()
    batches = 0
    while True:
        report = messages_dispatch_batch(now=now)
        total.add(report)
        batches += 1
        if not report.claimed:
            break
        if max_batches is not None and batches >= max_batches:
            break
        if seconds is not None and time.monotonic() - started >= seconds:
            break
    return total
