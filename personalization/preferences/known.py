"""What we know about a customer and why they hear from us, as the preference centre shows it.

:func:`what_we_know` reads it in a fixed number of queries, whatever the length of the
customer's history: the profile fields we hold, the traits (given, recorded by the shop, or
inferred, with how sure), the consent history (what, when, how, with which wording), and the
products they recently viewed with the date each view will be deleted. Every label is
translated. Items the customer may remove say so (``removable``); the services here and in
:mod:`personalization.traits` remove them:

- a trait: :func:`personalization.traits.trait_remove` (it stays removed);
- a profile field: :func:`profile_fields_forget`;
- viewed products: :func:`recently_viewed_forget` (one product, or all).

The consent history is evidence and not removable: the customer changes their consent (a new
record), or asks to be erased.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, Max
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from ..changes import Change, profile_changed_note
from ..concurrency import atomic_retried, profiles_lock
from ..consent import with_confirmation
from ..exceptions import InvalidInput
from ..models import (
    ConsentRecord,
    ConsentSource,
    ConsentStatus,
    DecisionReason,
    Event,
    EventName,
    Message,
    MessageKind,
    MessageSource,
    MessageState,
    Profile,
    Purpose,
    Trait,
    TraitSource,
)
from ..privacy.retention import events_expire_before
from ..traits import confidence_text, trait_min_confidence
from ..validation import aware_datetime, external_id, saved_instance_check
from .history import choice_label

#: Profile fields shown, in this order; all but the email address can be forgotten.
PROFILE_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "locale",
    "timezone",
    "country",
    "birthday",
)
FORGETTABLE_FIELDS = frozenset(PROFILE_FIELDS) - {"email"}
#: How many recently viewed products are shown.
RECENTLY_VIEWED_LIMIT = 20
#: Messages shown in "why you hear from us": the newest this many of the last N days.
RECENT_MESSAGES_LIMIT = 10
RECENT_MESSAGES_DAYS = 90


@dataclass(frozen=True)
class KnownField:
    name: str  # the Profile field, e.g. "birthday"
    label: str
    value: Any  # text, or a date for the birthday
    removable: bool


@dataclass(frozen=True)
class KnownTrait:
    key: str
    label: str  # the key in words: "shoe size"
    value: str | int | float | bool
    source: str  # TraitSource: "given", "shop" or "inferred"
    source_label: str  # "you told us", "recorded by the shop", "our guess"
    confidence: Decimal | None  # inferred only
    how_sure: str  # "fairly sure (80%)" for an inferred trait, else ""
    used_for_segments: bool  # inferred below TRAIT_MIN_CONFIDENCE: not used
    recorded_at: dt.datetime
    updated_at: dt.datetime
    removable: bool = True


@dataclass(frozen=True)
class ConsentEntry:
    purpose: str
    purpose_label: str
    action: str  # "granted", "withdrawn" or "confirmed"
    action_label: str  # "granted (awaiting confirmation)" for an unconfirmed double opt-in
    at: dt.datetime
    source: str
    source_label: str
    wording_version: str
    removable: bool = False  # evidence: changed by a new choice, never deleted


@dataclass(frozen=True)
class ViewedProduct:
    product_id: str  # the shop's id
    name: str
    viewed_at: dt.datetime  # the latest view
    views: int
    deleted_on: dt.date | None  # when the latest view is deleted; None: events are kept
    removable: bool = True


@dataclass(frozen=True)
class RecentMessage:
    """One message we sent them, or meant to and did not, and why."""

    at: dt.datetime  # sent, or decided
    topic: str  # what it was about (the topic's name)
    subject: str  # as sent; empty when it was not sent
    state: str  # MessageState
    state_label: str
    why: str  # translated: why it went, or why not


@dataclass(frozen=True)
class WhatWeKnow:
    """Everything :func:`what_we_know` returns; each tuple in the order the page shows it."""

    profile_fields: tuple[KnownField, ...]  # only fields that hold a value
    traits: tuple[KnownTrait, ...]  # by key
    consent_history: tuple[ConsentEntry, ...]  # newest first
    recently_viewed: tuple[ViewedProduct, ...]  # newest first, at most RECENTLY_VIEWED_LIMIT
    recently_viewed_total: int  # distinct products viewed, of which the above are the newest
    views_kept_days: int | None  # EVENT_RETENTION_DAYS; None: kept until removed
    at: dt.datetime
    recent_messages: tuple[RecentMessage, ...] = ()  # newest first


def what_we_know(*, profile: Profile, now: dt.datetime | None = None) -> WhatWeKnow:
    """What we know about ``profile`` and why they hear from us; see the module docstring.

    Six queries, whatever the customer's history.
    """
    saved_instance_check(profile, Profile, field="profile")
    now = timezone.now() if now is None else aware_datetime(now, field="now")
    profile = Profile.objects.only(*PROFILE_FIELDS).get(pk=profile.pk)
    viewed, total = _recently_viewed(profile, now=now)
    return WhatWeKnow(
        profile_fields=_fields(profile),
        traits=_traits(profile),
        consent_history=_consent_history(profile),
        recently_viewed=viewed,
        recently_viewed_total=total,
        views_kept_days=_retention_days(now),
        at=now,
        recent_messages=_recent_messages(profile, now=now),
    )


def _language_name(code: str) -> str:
    """A locale in words, in its own language: "sv-SE" → "svenska (sv-SE)"."""
    for candidate in (code, code.replace("_", "-").split("-")[0]):
        try:
            name = translation.get_language_info(candidate.lower())["name_local"]
        except KeyError:
            continue
        return name if candidate == code else f"{name} ({code})"
    return code


def _fields(profile: Profile) -> tuple[KnownField, ...]:
    fields = []
    for name in PROFILE_FIELDS:
        value = getattr(profile, name)
        if value in ("", None):
            continue
        if name == "locale":
            value = _language_name(value)
        label = str(Profile._meta.get_field(name).verbose_name)
        fields.append(
            KnownField(
                name=name,
                label=label[:1].upper() + label[1:],
                value=value,
                removable=name in FORGETTABLE_FIELDS,
            )
        )
    return tuple(fields)


def trait_label(key: str) -> str:
    """A trait's key in words: ``shoe_size`` → "Shoe size"."""
    words = key.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


_SOURCE_LABELS = {
    TraitSource.GIVEN: lambda: _("you told us"),
    TraitSource.SHOP: lambda: _("recorded by the shop"),
    TraitSource.INFERRED: lambda: _("our guess from your activity"),
}


def _traits(profile: Profile) -> tuple[KnownTrait, ...]:
    least = trait_min_confidence()
    return tuple(
        KnownTrait(
            key=trait.key,
            label=trait_label(trait.key),
            value=trait.value,
            source=trait.source,
            source_label=_SOURCE_LABELS[TraitSource(trait.source)](),
            confidence=trait.confidence,
            how_sure=confidence_text(trait.confidence),
            used_for_segments=trait.source != TraitSource.INFERRED or trait.confidence >= least,
            recorded_at=trait.recorded_at,
            updated_at=trait.updated_at,
        )
        for trait in Trait.objects.filter(profile=profile).order_by("key")
    )


def _consent_history(profile: Profile) -> tuple[ConsentEntry, ...]:
    records = with_confirmation(ConsentRecord.objects.filter(profile=profile)).order_by(
        "-ordered_at", "-pk"
    )
    entries = []
    for record in records:
        if record.status == ConsentStatus.WITHDRAWN:
            action, label = "withdrawn", _("withdrawn")
        elif record.confirmed_at is not None:
            action, label = "confirmed", _("confirmed")
        elif record.double_opt_in and not record.confirmed_later:
            action, label = "granted", _("granted (awaiting your confirmation)")
        else:
            action, label = "granted", _("granted")
        entries.append(
            ConsentEntry(
                purpose=record.purpose,
                purpose_label=choice_label(Purpose, record.purpose),
                action=action,
                action_label=str(label),
                at=record.recorded_at,
                source=record.source,
                source_label=choice_label(ConsentSource, record.source),
                wording_version=record.wording_version,
            )
        )
    return tuple(entries)


# What a customer sees of the ledger: what went out, and what the guardrails held back.
SHOWN_STATES = (MessageState.SENT, MessageState.SKIPPED, MessageState.DEFERRED)


def _recent_messages(profile: Profile, *, now: dt.datetime) -> tuple[RecentMessage, ...]:
    rows = (
        Message.objects.filter(
            profile=profile,
            kind=MessageKind.MARKETING,
            state__in=SHOWN_STATES,
            decided_at__gte=now - dt.timedelta(days=RECENT_MESSAGES_DAYS),
        )
        .exclude(source=MessageSource.TEST)
        .select_related("topic")
        .order_by("-decided_at", "-pk")[:RECENT_MESSAGES_LIMIT]
    )
    messages = []
    for message in rows:
        topic = message.topic.name if message.topic else ""
        reason = choice_label(DecisionReason, message.reason) if message.reason else ""
        if message.state == MessageState.SENT:
            why = (
                _("You agreed to marketing emails and get news about “%(topic)s”.")
                % {"topic": topic}
                if topic
                else _("You agreed to marketing emails.")
            )
        elif message.state == MessageState.DEFERRED:
            why = _("Held back until %(when)s: %(reason)s.") % {
                "when": date_format(timezone.localtime(message.not_before), "DATETIME_FORMAT"),
                "reason": reason,
            }
        else:
            why = _("Not sent: %(reason)s.") % {"reason": reason}
        messages.append(
            RecentMessage(
                at=message.sent_at or message.decided_at,
                topic=topic,
                subject=message.subject if message.state == MessageState.SENT else "",
                state=message.state,
                state_label=choice_label(MessageState, message.state),
                why=why,
            )
        )
    return tuple(messages)


def _retention_days(now: dt.datetime) -> int | None:
    before = events_expire_before(now=now)
    return None if before is None else (now - before).days


def _recently_viewed(
    profile: Profile, *, now: dt.datetime
) -> tuple[tuple[ViewedProduct, ...], int]:
    views = (
        Event.objects.filter(profile=profile, name=EventName.PRODUCT_VIEWED, product__isnull=False)
        .values("product_id")
        .order_by()
    )
    total = views.aggregate(n=Count("product_id", distinct=True))["n"]
    rows = (
        views.annotate(last=Max("occurred_at"), views=Count("pk"))
        .values("product__external_id", "product__title", "last", "views")
        .order_by("-last", "product_id")[:RECENTLY_VIEWED_LIMIT]
    )
    before = events_expire_before(now=now)
    keep = None if before is None else now - before
    return (
        tuple(
            ViewedProduct(
                product_id=row["product__external_id"],
                name=row["product__title"],
                viewed_at=row["last"],
                views=row["views"],
                deleted_on=None if keep is None else timezone.localdate(row["last"] + keep),
            )
            for row in rows
        ),
        total,
    )


# --- Removing ---------------------------------------------------------------------------------


def recently_viewed_forget(*, profile: Profile, product_id: str | None = None) -> int:
    """Delete ``profile``'s product views: of the product with the shop's id ``product_id``, or
    all of them (None). Returns how many views were deleted."""
    saved_instance_check(profile, Profile, field="profile")
    if product_id is not None:
        product_id = external_id(product_id, field="product_id")
    return _views_delete(profile_id=profile.pk, product_id=product_id)


@atomic_retried
def _views_delete(*, profile_id: int, product_id: str | None) -> int:
    if not profiles_lock([profile_id]):
        raise InvalidInput(_("The profile no longer exists."), field="profile")
    views = Event.objects.filter(profile_id=profile_id, name=EventName.PRODUCT_VIEWED)
    if product_id is not None:
        views = views.filter(product__external_id=product_id)
    deleted, _by_model = views.delete()
    if deleted:
        profile_changed_note(profile_id, Change.EVENTS)
    return deleted


def profile_fields_forget(*, profile: Profile, fields: Iterable[str]) -> list[str]:
    """Empty these profile fields (names of :data:`FORGETTABLE_FIELDS`: names, locale,
    timezone, country, birthday); returns the ones that held a value. The email address is not
    forgettable this way: the customer changes it in their account, or asks to be erased.

    The shop may record a field again (its own account data, ``identify()``).
    """
    saved_instance_check(profile, Profile, field="profile")
    if isinstance(fields, str) or not isinstance(fields, Iterable):
        raise InvalidInput(_("fields is a list of profile field names."), field="fields")
    names = list(dict.fromkeys(fields))
    unknown = [name for name in names if name not in FORGETTABLE_FIELDS]
    if unknown:
        raise InvalidInput(
            _("These fields cannot be forgotten here: %(names)s.") % {"names": ", ".join(unknown)},
            field="fields",
        )
    return _fields_clear(profile_id=profile.pk, names=names)


@atomic_retried
def _fields_clear(*, profile_id: int, names: list[str]) -> list[str]:
    profile = profiles_lock([profile_id]).get(profile_id)
    if profile is None:
        raise InvalidInput(_("The profile no longer exists."), field="profile")
    cleared = [name for name in names if getattr(profile, name) not in ("", None)]
    for name in cleared:
        setattr(profile, name, None if name == "birthday" else "")
    if cleared:
        profile.save(update_fields=[*cleared, "updated_at"])
        profile_changed_note(profile.pk, Change.PROFILE)
    return cleared
