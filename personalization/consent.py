"""Consent: append to the ledger and derive the current state from it.

The current state for a purpose is derived from the ledger, never stored. Records are read in
ledger order: ``ordered_at`` (the earlier of the time the caller reported and the time the
server wrote the record), then pk. So a backdated record takes its place in the past, while a
record dated ahead (at most ``CLOCK_SKEW`` is accepted) cannot outrank one written after it.

- no record: ``none``;
- the latest record is a withdrawal: ``withdrawn``;
- the latest record is a grant: ``granted`` — unless every grant since the last withdrawal
  was written needing double opt-in (``double_opt_in``, decided from
  ``DOUBLE_OPT_IN_PURPOSES`` when it was written) and none is confirmed: then ``pending``.

``consent_state()`` answers for one profile; ``profiles_with_consent()`` annotates a queryset
of profiles with the same answer in SQL, and ``consent_in_states()`` filters on it, for
segments and sends over many profiles.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.db.models import (
    Case,
    CharField,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone
from django.utils.translation import gettext as _

from .changes import Change, profile_changed_note
from .conf import app_settings
from .exceptions import InvalidInput
from .models import (
    ConsentRecord,
    ConsentSource,
    ConsentState,
    ConsentStatus,
    Profile,
    Purpose,
)
from .privacy.suppression import suppression_blocks_grant
from .signals import consent_recorded
from .validation import aware_datetime, instance_check, saved_instance_check, text
from .validation import ip_address as ip_address_clean

_ORDER = ("-ordered_at", "-pk")
_DERIVE_FIELDS = ("status", "double_opt_in", "confirmed_at")
# How far ahead of the server's clock a reported time may be (clocks of shop servers drift).
CLOCK_SKEW = dt.timedelta(minutes=5)


def purpose_clean(value: Any) -> str:
    if value not in Purpose.values:
        raise InvalidInput(
            _("Unknown consent purpose %(value)r; choose one of %(choices)s.")
            % {"value": value, "choices": ", ".join(Purpose.values)},
            field="purpose",
        )
    return value


def needs_double_opt_in(purpose: str) -> bool:
    return purpose in app_settings.DOUBLE_OPT_IN_PURPOSES


def consent_source_clean(value: Any, *, field: str = "source") -> str:
    if value not in ConsentSource.values:
        raise InvalidInput(_("Unknown consent source %(value)r.") % {"value": value}, field=field)
    return value


def consents_clean(consents: Any) -> dict[str, str]:
    """``{purpose: wording_version}`` as sent with checkout and sign-up, checked ({} if None)."""
    if consents in (None, {}, "", [], ()):
        return {}
    if not isinstance(consents, dict):
        raise InvalidInput(
            _("Consents are a {purpose: wording_version} mapping."), field="consents"
        )
    cleaned = {}
    for purpose, version in consents.items():
        purpose_clean(purpose)
        if isinstance(version, int) and not isinstance(version, bool):
            version = str(version)
        cleaned[purpose] = text(version, field=f"consents[{purpose}]", max_length=64)
    return cleaned


def consent_record(
    *,
    profile: Profile,
    purpose: str,
    granted: bool,
    source: str,
    wording_version: str = "",
    ip_address: str | None = None,
    at: dt.datetime | None = None,
) -> ConsentRecord | None:
    """Append a grant or a withdrawal to the ledger.

    Returns None, writing nothing, for a grant the suppression list refuses: the address was
    erased and ``source`` is not a new consent of the person's own (an import, the admin; see
    ``personalization.privacy.suppression.suppression_blocks_grant``).
    """
    saved_instance_check(profile, Profile, field="profile")
    if not isinstance(granted, bool):  # "no" or None must never count as a grant or withdrawal
        raise InvalidInput(
            _("granted must be True or False, not %(value)r.") % {"value": granted},
            field="granted",
        )
    purpose_clean(purpose)
    consent_source_clean(source)
    wording_version = text(wording_version, field="wording_version", max_length=64)
    ip_address = ip_address_clean(ip_address)
    now = timezone.now()
    at = _at_clean(at, now=now)
    if granted and suppression_blocks_grant(email=profile.email, source=source):
        return None
    record = ConsentRecord(
        profile=profile,
        purpose=purpose,
        status=ConsentStatus.GRANTED if granted else ConsentStatus.WITHDRAWN,
        double_opt_in=granted and needs_double_opt_in(purpose),
        written_at=now,
        source=source,
        wording_version=wording_version,
        recorded_at=at,
        email=profile.email,
        ip_address=ip_address,
    )
    return _append(record)


def _at_clean(at: Any, *, now: dt.datetime) -> dt.datetime:
    if at is None:
        return now
    at = aware_datetime(at, field="at")
    if at > now + CLOCK_SKEW:
        raise InvalidInput(
            _("%(at)s is ahead of the server's clock; consent cannot be dated in the future.")
            % {"at": at.isoformat()},
            field="at",
        )
    return at


def consent_grant_many(
    *,
    profile: Profile,
    consents: dict[str, str] | None,
    source: str,
    ip_address: str | None = None,
    at: dt.datetime | None = None,
) -> list[ConsentRecord]:
    """Record a grant per ``{purpose: wording_version}``, as sent with checkout and sign-up.

    Every grant is checked before the first is written: all are recorded, or none. Returns the
    records written: none for an erased address when ``source`` is not a new consent of the
    person's own (see :func:`consent_record`).
    """
    saved_instance_check(profile, Profile, field="profile")
    consents = consents_clean(consents)
    consent_source_clean(source)
    ip_address = ip_address_clean(ip_address)
    _at_clean(at, now=timezone.now())
    if not consents:
        return []
    with transaction.atomic():
        records = [
            consent_record(
                profile=profile,
                purpose=purpose,
                granted=True,
                source=source,
                wording_version=version,
                ip_address=ip_address,
                at=at,
            )
            for purpose, version in consents.items()
        ]
    return [record for record in records if record is not None]


class GrantStatus(StrEnum):
    """Where one grant stands as far as its double opt-in confirmation goes."""

    AWAITING = "awaiting"  # can be confirmed now
    CONFIRMED = "confirmed"  # confirmed, or needs no confirmation (consent is granted)
    WITHDRAWN = "withdrawn"  # a withdrawal came after it: there is nothing to confirm


def _after(record: ConsentRecord) -> Q:
    return Q(ordered_at__gt=record.ordered_at) | Q(ordered_at=record.ordered_at, pk__gt=record.pk)


def consent_grant_status(*, grant: ConsentRecord) -> GrantStatus:
    """Whether ``grant`` awaits confirmation, was confirmed, or was withdrawn since."""
    if ConsentRecord.objects.filter(confirms=grant).exists():
        return GrantStatus.CONFIRMED
    later = ConsentRecord.objects.filter(profile_id=grant.profile_id, purpose=grant.purpose)
    if later.filter(_after(grant), status=ConsentStatus.WITHDRAWN).exists():
        return GrantStatus.WITHDRAWN
    if not grant.double_opt_in or (
        consent_state(profile=grant.profile, purpose=grant.purpose) == ConsentState.GRANTED
    ):
        return GrantStatus.CONFIRMED
    return GrantStatus.AWAITING


def with_confirmation(queryset: QuerySet[ConsentRecord]) -> QuerySet[ConsentRecord]:
    """Annotate each record with whether a confirmation of the same purpose came after it.

    Read from the order of the records rather than ``confirms``, which confirmations written
    before it existed do not have."""
    later = ConsentRecord.objects.filter(
        profile=OuterRef("profile"), purpose=OuterRef("purpose"), confirmed_at__isnull=False
    ).filter(
        Q(ordered_at__gt=OuterRef("ordered_at"))
        | Q(ordered_at=OuterRef("ordered_at"), pk__gt=OuterRef("pk"))
    )
    return queryset.annotate(confirmed_later=Exists(later))


def record_status(record: ConsentRecord) -> str:
    """What this one record is, in words (after ``with_confirmation``): a grant awaiting
    confirmation is not shown as granted."""
    if record.status == ConsentStatus.WITHDRAWN:
        return ConsentStatus.WITHDRAWN.label
    if record.confirmed_at is not None:
        return _("confirmation")
    if record.double_opt_in and not getattr(record, "confirmed_later", False):
        return ConsentState.PENDING.label
    if record.double_opt_in:
        return _("granted, confirmed")
    return ConsentStatus.GRANTED.label


def consent_pending_grant(*, profile: Profile, purpose: str) -> ConsentRecord | None:
    """The latest grant awaiting confirmation for ``purpose``, if consent is pending."""
    saved_instance_check(profile, Profile, field="profile")
    purpose_clean(purpose)
    if consent_state(profile=profile, purpose=purpose) != ConsentState.PENDING:
        return None
    return (
        ConsentRecord.objects.filter(
            profile=profile, purpose=purpose, status=ConsentStatus.GRANTED, double_opt_in=True
        )
        .order_by(*_ORDER)
        .first()
    )


def consent_confirm(
    *, grant: ConsentRecord, at: dt.datetime | None = None, ip_address: str | None = None
) -> ConsentRecord | None:
    """Record the customer's double opt-in confirmation of ``grant``, and only of it.

    None (nothing written) when it is already confirmed; InvalidInput(field="grant") when it
    was withdrawn since, or is not a grant.
    """
    if not isinstance(grant, ConsentRecord) or grant.pk is None:
        raise TypeError("grant must be a saved ConsentRecord.")
    ip_address = ip_address_clean(ip_address)
    now = timezone.now()
    at = _at_clean(at, now=now)
    with transaction.atomic():
        # Lock the profile, as every write to it does: two clicks confirm once.
        grant = ConsentRecord.objects.select_related("profile").get(pk=grant.pk)
        profile = Profile.objects.select_for_update().get(pk=grant.profile_id)
        if grant.status != ConsentStatus.GRANTED:
            raise InvalidInput(_("Only a grant can be confirmed."), field="grant")
        status = consent_grant_status(grant=grant)
        if status == GrantStatus.CONFIRMED:
            return None
        if status == GrantStatus.WITHDRAWN:
            raise InvalidInput(
                _("There is nothing to confirm: the subscription was withdrawn."), field="grant"
            )
        record = ConsentRecord(
            profile=profile,
            purpose=grant.purpose,
            status=ConsentStatus.GRANTED,
            double_opt_in=True,
            confirms=grant,
            written_at=now,
            source=grant.source,
            wording_version=grant.wording_version,
            recorded_at=at,
            confirmed_at=at,
            email=profile.email,
            ip_address=ip_address if ip_address is not None else grant.ip_address,
        )
        return _append(record)


def _append(record: ConsentRecord) -> ConsentRecord:
    # Sent inside the transaction, as Django's post_save is: the confirmation email's job is
    # recorded by a receiver and must commit (or roll back) together with the grant.
    with transaction.atomic():
        record.save()
        profile_changed_note(record.profile_id, Change.CONSENT)
        consent_recorded.send(sender=ConsentRecord, record=record)
    return record


def consent_state(*, profile: Profile, purpose: str) -> str:
    """The current :class:`ConsentState` of one profile for one purpose."""
    saved_instance_check(profile, Profile, field="profile")
    records = list(
        ConsentRecord.objects.filter(profile=profile, purpose=purpose)
        .order_by(*_ORDER)
        .values(*_DERIVE_FIELDS)
    )
    return _derive(records)


def consent_states(*, profile: Profile) -> dict[str, str]:
    """The current state for every purpose, in one query."""
    saved_instance_check(profile, Profile, field="profile")
    by_purpose: dict[str, list[dict]] = {purpose: [] for purpose in Purpose.values}
    for row in (
        ConsentRecord.objects.filter(profile=profile)
        .order_by(*_ORDER)
        .values("purpose", *_DERIVE_FIELDS)
    ):
        if row["purpose"] in by_purpose:  # a purpose since removed from the code is ignored
            by_purpose[row["purpose"]].append(row)
    return {purpose: _derive(rows) for purpose, rows in by_purpose.items()}


def consent_states_many(*, profile_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """The current state for every purpose of each of a few profiles (a page of a list), in
    one query: {profile id: {purpose: state}}. Profiles that do not exist are left out."""
    profiles = Profile.objects.filter(pk__in=list(profile_ids))
    for purpose in Purpose.values:
        profiles = profiles_with_consent(profiles, purpose, name=f"state_{purpose}")
    names = [f"state_{purpose}" for purpose in Purpose.values]
    return {
        row[0]: dict(zip(Purpose.values, row[1:], strict=True))
        for row in profiles.values_list("pk", *names)
    }


def has_consent(*, profile: Profile | None, purpose: str) -> bool:
    """Whether ``profile`` (None or unsaved: no) currently consents to ``purpose``."""
    if profile is not None:
        instance_check(profile, Profile, field="profile")
    if profile is None or profile.pk is None:
        return False
    return consent_state(profile=profile, purpose=purpose) == ConsentState.GRANTED


def _derive(records_latest_first: list[dict]) -> str:
    # Keep in step with profiles_with_consent() and consent_in_states(): a property test
    # checks they agree.
    if not records_latest_first:
        return ConsentState.NONE
    if records_latest_first[0]["status"] == ConsentStatus.WITHDRAWN:
        return ConsentState.WITHDRAWN
    for record in records_latest_first:
        if record["status"] == ConsentStatus.WITHDRAWN:
            break
        if not record["double_opt_in"] or record["confirmed_at"] is not None:
            return ConsentState.GRANTED
    return ConsentState.PENDING


def profiles_with_consent(
    queryset: QuerySet[Profile], purpose: str, *, name: str | None = None
) -> QuerySet[Profile]:
    """Annotate each profile with its current consent state for ``purpose`` (same rules)."""
    purpose_clean(purpose)
    name = name or f"consent_{purpose}"
    records = ConsentRecord.objects.filter(profile=OuterRef("pk"), purpose=purpose)
    latest_status = Subquery(records.order_by(*_ORDER).values("status")[:1])
    queryset = queryset.alias(**{f"_{name}_status": latest_status})
    last_withdrawal = records.filter(status=ConsentStatus.WITHDRAWN).order_by(*_ORDER)
    queryset = queryset.alias(
        **{
            f"_{name}_w_at": Subquery(last_withdrawal.values("ordered_at")[:1]),
            f"_{name}_w_pk": Subquery(last_withdrawal.values("pk")[:1]),
        }
    )
    confirmed = records.filter(
        Q(status=ConsentStatus.GRANTED) & (Q(double_opt_in=False) | Q(confirmed_at__isnull=False))
    )
    confirmed_after_withdrawal = confirmed.filter(
        Q(ordered_at__gt=OuterRef(f"_{name}_w_at"))
        | Q(ordered_at=OuterRef(f"_{name}_w_at"), pk__gt=OuterRef(f"_{name}_w_pk"))
    )
    when_granted = [
        When(
            Q(**{f"_{name}_w_at__isnull": True}) & Exists(confirmed),
            then=Value(ConsentState.GRANTED),
        ),
        When(Exists(confirmed_after_withdrawal), then=Value(ConsentState.GRANTED)),
    ]
    return queryset.annotate(
        **{
            name: Case(
                When(**{f"_{name}_status__isnull": True}, then=Value(ConsentState.NONE)),
                When(
                    **{f"_{name}_status": ConsentStatus.WITHDRAWN},
                    then=Value(ConsentState.WITHDRAWN),
                ),
                *when_granted,
                default=Value(ConsentState.PENDING),
                output_field=CharField(),
            )
        }
    )


def profiles_consented(queryset: QuerySet[Profile], purpose: str) -> QuerySet[Profile]:
    """Only the profiles whose current consent for ``purpose`` is granted (see
    :func:`consented_q`)."""
    return queryset.filter(consented_q(purpose))


def consented_q(purpose: str) -> Q:
    """True for a profile whose current consent for ``purpose`` is granted.

    The same verdict as :func:`consent_state` (a test holds them together), said the short
    way: a grant that counts (no double opt-in, or confirmed) with no withdrawal after it in
    ledger order. One semi-join that PostgreSQL runs with hashes for a million profiles, where
    the state annotation of :func:`profiles_with_consent` costs several index probes per
    profile (9 times as long for the ``lead`` segment).
    """
    return consent_in_states(purpose, [ConsentState.GRANTED])


def consent_in_states(purpose: str, states: Iterable[str]) -> Q:
    """The condition on profiles that their current consent for ``purpose`` is one of
    ``states`` (:class:`ConsentState` values); never unknown, so it can be negated.

    The same verdict as :func:`consent_state`, each state said directly as ``EXISTS`` over the
    ledger (in ledger order, ``ordered_at`` then pk), which the database runs as semi- and
    anti-joins rather than deriving every profile's state (:func:`profiles_with_consent`):

    - ``none``: no record;
    - ``withdrawn``: a withdrawal with no record after it;
    - ``granted``: a grant that counts (no double opt-in, or confirmed) with no withdrawal
      after it;
    - ``pending``: a record, and neither of the two above.
    """
    purpose_clean(purpose)
    records = ConsentRecord.objects.filter(profile=OuterRef("pk"), purpose=purpose)

    # The records after the (outer) record in ledger order.
    later = ConsentRecord.objects.filter(profile=OuterRef("profile"), purpose=purpose).filter(
        Q(ordered_at__gt=OuterRef("ordered_at"))
        | Q(ordered_at=OuterRef("ordered_at"), pk__gt=OuterRef("pk"))
    )
    withdrawn = Exists(records.filter(status=ConsentStatus.WITHDRAWN).filter(~Exists(later)))
    granted = Exists(
        records.filter(
            Q(double_opt_in=False) | Q(confirmed_at__isnull=False),
            status=ConsentStatus.GRANTED,
        ).filter(~Exists(later.filter(status=ConsentStatus.WITHDRAWN)))
    )
    conditions = {
        ConsentState.NONE: ~Exists(records),
        ConsentState.WITHDRAWN: Q(withdrawn),
        ConsentState.GRANTED: Q(granted),
        ConsentState.PENDING: Q(Exists(records)) & ~Q(withdrawn) & ~Q(granted),
    }
    states = set(states)
    if unknown := states - set(conditions):
        raise InvalidInput(
            _("Unknown consent state %(value)r; choose among %(choices)s.")
            % {"value": sorted(unknown)[0], "choices": ", ".join(ConsentState.values)},
            field="states",
        )
    chosen = [conditions[state] for state in sorted(states)]
    result = chosen[0] if chosen else Q(pk__in=[])
    for condition in chosen[1:]:
        result |= condition
    return result


def profiles_in_consent_state(
    queryset: QuerySet[Profile], purpose: str, state: str
) -> QuerySet[Profile]:
    """Only the profiles whose current consent for ``purpose`` is ``state`` (a
    :class:`ConsentState`): for filtering a list of a million profiles, where filtering on the
    annotation of :func:`profiles_with_consent` derives every profile's state first."""
    return queryset.filter(consent_in_states(purpose, [state]))
