"""Read and change a customer's preferences: topics, channels, frequency, pause, greeting and
the personalisation switch; unsubscribe from all marketing.

Every change is written in one transaction with the profile locked (the lock order of
:mod:`personalization.concurrency`), only what changed, each change to the preference history
(:mod:`.history`) with its source and wording version. The personalisation switch and the
unsubscribe are consent: they go to the consent ledger (``consent_record``), not the history.
All input is checked before anything is written; a bad value raises ``InvalidInput`` naming
the argument, and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from django.utils import timezone
from django.utils.translation import gettext as _

from ..changes import Change, profile_changed_note
from ..concurrency import atomic_retried, profiles_lock
from ..consent import consent_record, consent_state, consent_states
from ..exceptions import InvalidInput
from ..models import (
    Channel,
    ChannelPreference,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    Frequency,
    Greeting,
    PreferenceChange,
    PreferenceField,
    PreferenceSource,
    Profile,
    Purpose,
    Topic,
    TopicPreference,
)
from ..validation import aware_datetime, choice, saved_instance_check, text
from ..validation import ip_address as ip_address_clean
from .history import pause_text, preference_change_build, switch_text

# The longest pause a customer can choose at once.
MAX_PAUSE = dt.timedelta(days=365)

# Where a preference change came from, as the consent ledger names it.
CONSENT_SOURCES: Final = {
    PreferenceSource.PREFERENCE_CENTRE: ConsentSource.PREFERENCE_CENTRE,
    PreferenceSource.ACCOUNT: ConsentSource.ACCOUNT,
    PreferenceSource.API: ConsentSource.API,
    PreferenceSource.ADMIN: ConsentSource.ADMIN,
}
# unsubscribe_all() also comes from the one-click link in an email (RFC 8058).
UNSUBSCRIBE_SOURCES: Final = [
    *PreferenceSource.values,
    ConsentSource.UNSUBSCRIBE_LINK,
    ConsentSource.EMAIL_SERVICE,
]

_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
# Consent states in which the customer has said yes (a pending grant awaits confirmation).
_SAID_YES = (ConsentState.GRANTED, ConsentState.PENDING)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()  # paused_until's default: leave the pause as it is


# --- Reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicState:
    slug: str
    name: str
    description: str
    subscribed: bool  # hears about it: chose it, or never chose and it is on by default


@dataclass(frozen=True)
class ChannelState:
    channel: str
    label: str
    enabled: bool  # no choice made: enabled


@dataclass(frozen=True)
class PreferenceState:
    """What the preference centre shows: everything the customer can change, as it is now."""

    topics: tuple[TopicState, ...]
    channels: tuple[ChannelState, ...]
    frequency: str
    paused_until: dt.datetime | None  # None when not paused (or the pause is over)
    greeting: str
    personalization: str  # ConsentState of the personalisation purpose
    email_marketing: str  # ConsentState of email marketing ("withdrawn" after unsubscribe_all)

    @property
    def personalization_on(self) -> bool:
        """Whether the switch shows "on": the customer said yes (a pending grant counts)."""
        return self.personalization in _SAID_YES


def preferences_read(*, profile: Profile, now: dt.datetime | None = None) -> PreferenceState:
    """``profile``'s preferences as the preference centre shows them.

    Active topics only, in the marketer's order; a topic without a choice of the customer's
    counts as its ``subscribed_by_default`` (as the segment rule ``topics_subscribed`` does).
    """
    saved_instance_check(profile, Profile, field="profile")
    now = _now_clean(now)
    profile = Profile.objects.get(pk=profile.pk)
    chosen = dict(
        TopicPreference.objects.filter(profile=profile).values_list("topic_id", "subscribed")
    )
    topics = tuple(
        TopicState(
            slug=topic.slug,
            name=topic.name,
            description=topic.description,
            subscribed=chosen.get(topic.pk, topic.subscribed_by_default),
        )
        for topic in Topic.objects.filter(is_active=True).order_by("position", "name", "pk")
    )
    enabled = dict(
        ChannelPreference.objects.filter(profile=profile).values_list("channel", "enabled")
    )
    channels = tuple(
        ChannelState(channel=value, label=str(label), enabled=enabled.get(value, True))
        for value, label in Channel.choices
    )
    states = consent_states(profile=profile)
    paused = profile.paused_until
    return PreferenceState(
        topics=topics,
        channels=channels,
        frequency=profile.frequency,
        paused_until=paused if paused is not None and paused > now else None,
        greeting=profile.greeting,
        personalization=states[Purpose.PERSONALIZATION],
        email_marketing=states[Purpose.EMAIL_MARKETING],
    )


# --- Changing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Update:
    source: str
    wording_version: str
    consent_wording_version: str
    topics: dict[str, bool] | None
    channels: dict[str, bool] | None
    frequency: str | None
    paused_until: dt.datetime | None | _Unset
    greeting: str | None
    personalization: bool | None
    ip_address: str | None
    now: dt.datetime


def preferences_update(
    *,
    profile: Profile,
    source: str,
    wording_version: str,
    consent_wording_version: str | None = None,
    topics: Mapping[str, bool] | None = None,
    channels: Mapping[str, bool] | None = None,
    frequency: str | None = None,
    paused_until: dt.datetime | None | _Unset = UNSET,
    greeting: str | None = None,
    personalization: bool | None = None,
    ip_address: str | None = None,
    now: dt.datetime | None = None,
) -> list[PreferenceChange]:
    """Change what is given (None, or ``UNSET`` for ``paused_until``: leave it); returns the
    history rows written, one per preference that changed (empty when nothing did).

    - ``source``: a :class:`PreferenceSource` value (``"preference_centre"``, ``"account"``,
      ``"api"``, ``"admin"``); ``wording_version``: the text the customer was shown (≤ 64).
      ``consent_wording_version``: the wording of the personalisation switch, when it has a
      version of its own (``personalization.capture.wording``); the ledger gets it, and
      ``wording_version`` when it is None.
    - ``topics``: ``{slug: True/False}`` for active topics; ``channels``: ``{channel: bool}``
      for :class:`Channel` values. Only the named ones change.
    - ``frequency``: a :class:`Frequency` value; ``greeting``: a :class:`Greeting` value.
    - ``paused_until``: the end of a pause of all marketing, in the future and at most 365 days
      ahead; ``None`` ends a pause.
    - ``personalization``: the use of their activity to tailor content, on or off; recorded in
      the consent ledger (purpose ``personalization``), not in the history.
    - ``ip_address``: kept with a consent record as evidence.

    The profile instance passed in is updated to the values written.
    """
    saved_instance_check(profile, Profile, field="profile")
    update = _update_clean(
        source=source,
        wording_version=wording_version,
        consent_wording_version=consent_wording_version,
        topics=topics,
        channels=channels,
        frequency=frequency,
        paused_until=paused_until,
        greeting=greeting,
        personalization=personalization,
        ip_address=ip_address,
        now=now,
    )
    changes, written = _update_write(profile_id=profile.pk, update=update)
    for name in ("frequency", "paused_until", "greeting", "updated_at"):
        setattr(profile, name, getattr(written, name))
    return changes


def preferences_check(
    *,
    frequency: str | None = None,
    paused_until: dt.datetime | None | _Unset = UNSET,
    greeting: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Raise ``InvalidInput`` (naming the argument) where ``preferences_update`` would for these
    values; write nothing. For forms that validate before they save, such as the admin's."""
    _update_clean(
        source=PreferenceSource.ADMIN,
        wording_version="",
        consent_wording_version=None,
        topics=None,
        channels=None,
        frequency=frequency,
        paused_until=paused_until,
        greeting=greeting,
        personalization=None,
        ip_address=None,
        now=now,
    )


def _update_clean(
    *,
    source: Any,
    wording_version: Any,
    consent_wording_version: Any,
    topics: Any,
    channels: Any,
    frequency: Any,
    paused_until: Any,
    greeting: Any,
    personalization: Any,
    ip_address: Any,
    now: Any,
) -> _Update:
    now = _now_clean(now)
    if paused_until is not UNSET and paused_until is not None:
        paused_until = aware_datetime(paused_until, field="paused_until")
        if paused_until <= now:
            raise InvalidInput(_("A pause must end in the future."), field="paused_until")
        if paused_until > now + MAX_PAUSE:
            raise InvalidInput(
                _("A pause lasts at most %(days)d days.") % {"days": MAX_PAUSE.days},
                field="paused_until",
            )
    if personalization is not None and not isinstance(personalization, bool):
        raise InvalidInput(
            _("personalization must be True, False or None, not %(value)r.")
            % {"value": personalization},
            field="personalization",
        )
    wording_version = text(wording_version, field="wording_version", max_length=64)
    return _Update(
        source=choice(source, PreferenceSource.values, field="source"),
        wording_version=wording_version,
        consent_wording_version=wording_version
        if consent_wording_version is None
        else text(consent_wording_version, field="consent_wording_version", max_length=64),
        topics=_switches_clean(topics, field="topics", key_ok=_SLUG.match),
        channels=_switches_clean(
            channels, field="channels", key_ok=lambda key: key in Channel.values
        ),
        frequency=None
        if frequency is None
        else choice(frequency, Frequency.values, field="frequency"),
        paused_until=paused_until,
        greeting=None if greeting is None else choice(greeting, Greeting.values, field="greeting"),
        personalization=personalization,
        ip_address=ip_address_clean(ip_address),
        now=now,
    )


def _now_clean(now: Any) -> dt.datetime:
    return timezone.now() if now is None else aware_datetime(now, field="now")


def _switches_clean(value: Any, *, field: str, key_ok) -> dict[str, bool] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInput(
            _("%(field)s is a mapping of names to True or False.") % {"field": field},
            field=field,
        )
    for key, on in value.items():
        if not isinstance(key, str) or not key_ok(key):
            raise InvalidInput(_("Unknown name %(key)r.") % {"key": key}, field=field)
        if not isinstance(on, bool):
            raise InvalidInput(
                _("%(key)s must be True or False, not %(value)r.") % {"key": key, "value": on},
                field=field,
            )
    return dict(value)


@atomic_retried
def _update_write(*, profile_id: int, update: _Update) -> tuple[list[PreferenceChange], Profile]:
    profile = profiles_lock([profile_id]).get(profile_id)
    if profile is None:
        raise InvalidInput(_("The profile no longer exists."), field="profile")
    topics = _topics_for(update.topics)  # before any write: an unknown topic writes nothing
    changes: list[PreferenceChange] = []

    def change(field: str, old: str, new: str, subject: str = "") -> None:
        changes.append(
            preference_change_build(
                profile=profile,
                field=field,
                subject=subject,
                old_value=old,
                new_value=new,
                source=update.source,
                wording_version=update.wording_version,
                changed_at=update.now,
            )
        )

    fields = []
    if update.frequency is not None and update.frequency != profile.frequency:
        change(PreferenceField.FREQUENCY, profile.frequency, update.frequency)
        profile.frequency = update.frequency
        fields.append("frequency")
    if update.paused_until is not UNSET:
        # A pause already over counts as no pause: ending it changes (and writes) nothing.
        old = profile.paused_until if _paused(profile, now=update.now) else None
        if update.paused_until != old:
            change(PreferenceField.PAUSE, pause_text(old), pause_text(update.paused_until))
            profile.paused_until = update.paused_until
            fields.append("paused_until")
    if update.greeting is not None and update.greeting != profile.greeting:
        change(PreferenceField.GREETING, profile.greeting, update.greeting)
        profile.greeting = update.greeting
        fields.append("greeting")
    if fields:
        profile.save(update_fields=[*fields, "updated_at"])

    if topics:
        chosen = {
            choice.topic_id: choice
            for choice in TopicPreference.objects.filter(profile=profile, topic__in=topics)
        }
        for topic in topics:
            made = chosen.get(topic.pk)
            old = made.subscribed if made is not None else topic.subscribed_by_default
            new = update.topics[topic.slug]
            if new != old:
                change(PreferenceField.TOPIC, switch_text(old), switch_text(new), topic.slug)
                TopicPreference.objects.update_or_create(
                    profile=profile,
                    topic=topic,
                    defaults={"subscribed": new, "updated_at": update.now},
                )
    if update.channels:
        chosen = {
            choice.channel: choice
            for choice in ChannelPreference.objects.filter(
                profile=profile, channel__in=list(update.channels)
            )
        }
        for channel in Channel.values:  # in a fixed order
            if channel not in update.channels:
                continue
            made = chosen.get(channel)
            old = made.enabled if made is not None else True
            new = update.channels[channel]
            if new != old:
                change(PreferenceField.CHANNEL, switch_text(old), switch_text(new), channel)
                ChannelPreference.objects.update_or_create(
                    profile=profile,
                    channel=channel,
                    defaults={"enabled": new, "updated_at": update.now},
                )

    if changes:
        PreferenceChange.objects.bulk_create(changes)
        profile_changed_note(profile.pk, Change.PREFERENCES)
    if update.personalization is not None:
        said_yes = consent_state(profile=profile, purpose=Purpose.PERSONALIZATION) in _SAID_YES
        if update.personalization != said_yes:
            # consent_record notes Change.CONSENT itself.
            consent_record(
                profile=profile,
                purpose=Purpose.PERSONALIZATION,
                granted=update.personalization,
                source=CONSENT_SOURCES[PreferenceSource(update.source)],
                wording_version=update.consent_wording_version,
                ip_address=update.ip_address,
                at=update.now,
            )
    return changes, profile


def _topics_for(slugs: dict[str, bool] | None) -> list[Topic]:
    if not slugs:
        return []
    topics = list(
        Topic.objects.filter(slug__in=list(slugs), is_active=True).order_by("position", "pk")
    )
    unknown = set(slugs) - {topic.slug for topic in topics}
    if unknown:
        raise InvalidInput(
            _("No such topic: %(slugs)s.") % {"slugs": ", ".join(sorted(unknown))},
            field="topics",
        )
    return topics


def _paused(profile: Profile, *, now: dt.datetime) -> bool:
    return profile.paused_until is not None and profile.paused_until > now


def unsubscribe_all(
    *,
    profile: Profile,
    source: str,
    ip_address: str | None = None,
    now: dt.datetime | None = None,
) -> ConsentRecord | None:
    """Withdraw email-marketing consent, at once, as one click on the page or in an email does.

    Records the withdrawal in the consent ledger and returns it; None (nothing written) when
    consent is already withdrawn. ``source``: a :class:`PreferenceSource` value or
    ``"unsubscribe_link"`` (the one-click link in an email). Only marketing stops:
    transactional mail (orders, confirmations) does not ask for this consent.
    """
    saved_instance_check(profile, Profile, field="profile")
    source = choice(source, UNSUBSCRIBE_SOURCES, field="source")
    ip_address = ip_address_clean(ip_address)
    now = _now_clean(now)
    return _unsubscribe_write(profile_id=profile.pk, source=source, ip_address=ip_address, now=now)


@atomic_retried
def _unsubscribe_write(
    *, profile_id: int, source: str, ip_address: str | None, now: dt.datetime
) -> ConsentRecord | None:
    profile = profiles_lock([profile_id]).get(profile_id)
    if profile is None:
        raise InvalidInput(_("The profile no longer exists."), field="profile")
    if consent_state(profile=profile, purpose=Purpose.EMAIL_MARKETING) == ConsentState.WITHDRAWN:
        return None
    return consent_record(
        profile=profile,
        purpose=Purpose.EMAIL_MARKETING,
        granted=False,
        source=CONSENT_SOURCES.get(source, source),
        ip_address=ip_address,
        at=now,
    )
