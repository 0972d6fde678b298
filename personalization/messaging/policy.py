"""The guardrail policy: for every message, at send time, send, defer until, or skip and why.

One module, called by the dispatcher for every message and by the admin's preview; nothing
sends around it. It reads what it needs for a whole batch of messages at once
(:func:`recipients_load`: a handful of queries however many messages) and then decides each
message in plain Python (:func:`decide_many`), so the rules can be read, and tested, in one
place:

1. transactional mail: only an address is needed; never capped, never blocked by a marketing
   unsubscribe;
2. no address → skip; suppressed (unsubscribed, hard bounce, complaint, erased) → skip;
3. no current email-marketing consent (double opt-in confirmed where the shop requires it)
   → skip;
4. the topic opted out of in the preference centre (or off by default and never chosen)
   → skip;
5. paused → skip (a campaign held back for weeks would arrive out of its time; a flow step
   may say otherwise when flows come);
6. the rolling frequency cap across all marketing mail (``MESSAGE_FREQUENCY_CAP`` per
   ``MESSAGE_FREQUENCY_WINDOW_DAYS``) and the customer's own stricter choice (a week, a
   month): when full, defer until a slot frees; when several messages compete for the last
   slots, the lower ``priority`` number goes first (flows before campaigns by default);
7. quiet hours in the recipient's time zone (``MESSAGE_QUIET_HOURS``; an unknown zone falls
   back to the shop's): defer to the end of the quiet hours, never drop;
8. a deferral past the message's ``expires_at`` becomes a skip (with the same reason): a
   campaign a week late is worse than none;
9. then how: the tailored variant with the personalisation consent, else the generic one; a
   first-name greeting per the customer's choice, or the locale's default (off in
   ``MESSAGE_NO_FIRST_NAME_LOCALES``).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from django.conf import settings

from ..conf import app_settings
from ..consent import consent_states_many
from ..models import (
    CAP_STATES,
    ConsentState,
    DecisionReason,
    Frequency,
    Greeting,
    Message,
    MessageKind,
    Profile,
    Purpose,
    Topic,
    TopicPreference,
    Variant,
)
from ..privacy.suppression import emails_suppression_reasons

SEND, DEFER, SKIP = "send", "defer", "skip"
# A customer's own choice of pace: at most one marketing email per this many days.
CUSTOMER_WINDOW_DAYS = {Frequency.WEEKLY: 7, Frequency.MONTHLY: 30}


SUPPRESSION_REASONS = {
    "unsubscribed": DecisionReason.UNSUBSCRIBED,
    "hard_bounce": DecisionReason.HARD_BOUNCE,
    "complaint": DecisionReason.COMPLAINT,
    "erased": DecisionReason.ERASED,
}


@dataclass(frozen=True)
class Decision:
    action: str  # SEND, DEFER or SKIP
    reason: str = ""
    not_before: dt.datetime | None = None  # DEFER: until when
    variant: str = ""  # SEND: Variant
    first_name: bool = False  # SEND: greet by first name


@dataclass
class Recipient:
    """What the policy knows of one customer, read for a whole batch at once."""

    profile_id: int
    email: str
    timezone: str
    locale: str
    frequency: str
    greeting: str
    paused_until: dt.datetime | None
    consents: dict[str, str]  # purpose → ConsentState
    suppressed: str = ""  # SuppressionReason, "" when not suppressed
    topics: dict[int, bool] = field(default_factory=dict)  # topic id → subscribed (chosen)
    # When each of their marketing messages took a cap slot (sent, sending, or unknown), in
    # the longest window any rule looks at; the decisions of this batch are added as made.
    taken: list[dt.datetime] = field(default_factory=list)


@dataclass(frozen=True)
class Candidate:
    """The part of a message the policy reads (a ``Message`` has all of it)."""

    pk: int
    profile_id: int
    kind: str
    topic_id: int | None
    priority: int
    not_before: dt.datetime
    expires_at: dt.datetime | None
    cancelled: bool = False

    @classmethod
    def of(cls, message: Message, *, cancelled: bool = False) -> Candidate:
        return cls(
            pk=message.pk,
            profile_id=message.profile_id,
            kind=message.kind,
            topic_id=message.topic_id,
            priority=message.priority,
            not_before=message.not_before,
            expires_at=message.expires_at,
            cancelled=cancelled,
        )


# --- Reading what the rules need, for a batch ---------------------------------------------------


def _longest_window_days() -> int:
    return max([app_settings.MESSAGE_FREQUENCY_WINDOW_DAYS, *CUSTOMER_WINDOW_DAYS.values()])


def recipients_load(
    *, profile_ids: Iterable[int], now: dt.datetime, exclude_message_ids: Iterable[int] = ()
) -> dict[int, Recipient]:
    """Everything the policy needs about these customers: five queries, whatever their number.

    ``exclude_message_ids``: messages being decided now, which must not count as taken."""
    ids = sorted(set(profile_ids))
    rows = Profile.objects.filter(pk__in=ids).values_list(
        "pk", "email", "timezone", "locale", "frequency", "greeting", "paused_until"
    )
    recipients = {
        pk: Recipient(pk, email or "", tz, locale, frequency, greeting, paused, consents={})
        for pk, email, tz, locale, frequency, greeting, paused in rows
    }
    for pk, states in consent_states_many(profile_ids=ids).items():
        recipients[pk].consents = states
    by_email = defaultdict(list)
    for recipient in recipients.values():
        if recipient.email:
            by_email[recipient.email].append(recipient)
    for email, reason in emails_suppression_reasons(emails=list(by_email)).items():
        for recipient in by_email[email]:
            recipient.suppressed = reason
    for profile_id, topic_id, subscribed in TopicPreference.objects.filter(
        profile__in=ids
    ).values_list("profile_id", "topic_id", "subscribed"):
        recipients[profile_id].topics[topic_id] = subscribed
    since = now - dt.timedelta(days=_longest_window_days())
    taken = (
        Message.objects.filter(
            profile__in=ids,
            kind=MessageKind.MARKETING,
            state__in=CAP_STATES,
            decided_at__gt=since,
            decided_at__lte=now,
        )
        .exclude(pk__in=list(exclude_message_ids))
        .values_list("profile_id", "decided_at")
    )
    for profile_id, at in taken:
        recipients[profile_id].taken.append(at)
    return recipients


def topic_defaults(topic_ids: Iterable[int]) -> dict[int, tuple[bool, bool]]:
    """topic id → (active, subscribed by default): one query."""
    return {
        pk: (active, default)
        for pk, active, default in Topic.objects.filter(pk__in=set(topic_ids)).values_list(
            "pk", "is_active", "subscribed_by_default"
        )
    }


# --- The rules ----------------------------------------------------------------------------------


def recipient_zone(name: str) -> zoneinfo.ZoneInfo:
    """The customer's time zone; an empty or unknown one is the shop's."""
    for candidate in (name, settings.TIME_ZONE or "UTC", "UTC"):
        try:
            return zoneinfo.ZoneInfo(candidate)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    raise AssertionError("UTC is always known")


def _hm(value: str) -> dt.time:
    return dt.time.fromisoformat(value)


def quiet_until(*, now: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """The end of the quiet hours when ``now`` falls in them where the customer lives."""
    start, end = (_hm(value) for value in app_settings.MESSAGE_QUIET_HOURS)
    if start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    quiet = (start <= clock or clock < end) if start > end else (start <= clock < end)
    if not quiet:
        return None
    day = local.date() if clock < end else local.date() + dt.timedelta(days=1)
    # A local wall-clock time, resolved in the zone (a skipped hour moves forward).
    wake = dt.datetime.combine(day, end, tzinfo=zone)
    return wake.astimezone(dt.UTC)


def first_name_greeting(*, greeting: str, locale: str) -> bool:
    """Greet by first name? The customer's own choice wins; else the locale's default."""
    if greeting == Greeting.FIRST_NAME:
        return True
    if greeting == Greeting.NEUTRAL:
        return False
    language = (locale or settings.LANGUAGE_CODE or "en").replace("_", "-").split("-")[0]
    return language.lower() not in {
        code.lower() for code in app_settings.MESSAGE_NO_FIRST_NAME_LOCALES
    }


def _cap_frees_at(
    taken: Sequence[dt.datetime], *, now: dt.datetime, days: int, cap: int
) -> dt.datetime | None:
    """None when a slot is free in the ``days`` window; else when the next one frees."""
    window = dt.timedelta(days=days)
    recent = sorted(at for at in taken if at > now - window)
    if len(recent) < cap:
        return None
    return recent[len(recent) - cap] + window


def _pace(recipient: Recipient, *, now: dt.datetime) -> tuple[str, dt.datetime] | None:
    """(reason, when a slot frees) when the customer has had enough marketing mail."""
    frees = _cap_frees_at(
        recipient.taken,
        now=now,
        days=app_settings.MESSAGE_FREQUENCY_WINDOW_DAYS,
        cap=app_settings.MESSAGE_FREQUENCY_CAP,
    )
    own_days = CUSTOMER_WINDOW_DAYS.get(recipient.frequency)
    own = _cap_frees_at(recipient.taken, now=now, days=own_days, cap=1) if own_days else None
    if own is not None and (frees is None or own > frees):
        return DecisionReason.OWN_FREQUENCY, own
    if frees is not None:
        return DecisionReason.FREQUENCY_CAP, frees
    return None


def how_to_send(recipient: Recipient) -> Decision:
    """A SEND in the variant and with the greeting this recipient gets."""
    personalised = recipient.consents.get(Purpose.PERSONALIZATION) == ConsentState.GRANTED
    return Decision(
        SEND,
        variant=Variant.TAILORED if personalised else Variant.GENERIC,
        first_name=first_name_greeting(greeting=recipient.greeting, locale=recipient.locale),
    )


def _defer(candidate: Candidate, how: Decision, reason: str, until: dt.datetime) -> Decision:
    if candidate.expires_at is not None and until > candidate.expires_at:
        return Decision(SKIP, reason)
    return replace(how, action=DEFER, reason=reason, not_before=until)


def decide(
    candidate: Candidate,
    recipient: Recipient | None,
    *,
    now: dt.datetime,
    topics: dict[int, tuple[bool, bool]],
) -> Decision:
    """The decision for one message. Pure: reads only its arguments. A SEND for marketing mail
    does not record its slot: :func:`decide_many` does, so competing messages see it. A
    DEFER carries the variant and greeting it would be sent with now."""
    if candidate.cancelled:
        return Decision(SKIP, DecisionReason.CANCELLED)
    if recipient is None or not recipient.email:
        return Decision(SKIP, DecisionReason.NO_EMAIL)
    how = how_to_send(recipient)
    if candidate.kind == MessageKind.TRANSACTIONAL:
        return how
    if recipient.suppressed:
        return Decision(SKIP, SUPPRESSION_REASONS[recipient.suppressed])
    consent = recipient.consents.get(Purpose.EMAIL_MARKETING, ConsentState.NONE)
    if consent == ConsentState.PENDING:
        return Decision(SKIP, DecisionReason.CONSENT_PENDING)
    if consent != ConsentState.GRANTED:
        return Decision(SKIP, DecisionReason.NO_CONSENT)
    if candidate.topic_id is not None:
        active, by_default = topics.get(candidate.topic_id, (False, False))
        if not active or not recipient.topics.get(candidate.topic_id, by_default):
            return Decision(SKIP, DecisionReason.TOPIC_OFF)
    if recipient.paused_until is not None and recipient.paused_until > now:
        return Decision(SKIP, DecisionReason.PAUSED)
    pace = _pace(recipient, now=now)
    if pace is not None:
        return _defer(candidate, how, *pace)
    wake = quiet_until(now=now, zone=recipient_zone(recipient.timezone))
    if wake is not None:
        return _defer(candidate, how, DecisionReason.QUIET_HOURS, wake)
    return how


def decide_many(
    candidates: Iterable[Candidate], recipients: dict[int, Recipient], *, now: dt.datetime
) -> dict[int, Decision]:
    """Decide a batch: each customer's messages in priority order (the lower number first,
    then the older), each SEND of marketing mail taking a slot the next ones see."""
    ordered = sorted(candidates, key=lambda c: (c.profile_id, c.priority, c.not_before, c.pk))
    topics = topic_defaults(c.topic_id for c in ordered if c.topic_id is not None)
    decisions = {}
    for candidate in ordered:
        recipient = recipients.get(candidate.profile_id)
        decision = decide(candidate, recipient, now=now, topics=topics)
        if decision.action == SEND and candidate.kind == MessageKind.MARKETING:
            recipient.taken.append(now)
        decisions[candidate.pk] = decision
    return decisions
