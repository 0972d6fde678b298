"""Writing traits: set (upsert), remove at the customer's request, and merge two profiles'.

Precedence. A ``given`` (the customer told us) or ``shop`` (the shop recorded it) value
replaces whatever the key held; an ``inferred`` one only replaces another inferred one, never
a value someone stated.

Removal. When the customer removes a trait (the preference centre, their account), the row is
deleted and a :class:`~personalization.models.TraitRemoval` marker is kept for its key. While
the marker exists, ``traits_set`` leaves the key alone for ``inferred`` and ``shop`` values
(an inference, a nightly import or shop code do not silently add it back); only the customer
giving it again (``given``) records it, and deletes the marker.

Every write takes the profile's lock first (:mod:`personalization.concurrency`), checks all
its input before writing anything (``InvalidInput`` naming the argument), and notes
``Change.TRAITS`` so that realtime segments follow after commit.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from ..changes import Change, profile_changed_note
from ..concurrency import atomic_retried, profiles_lock
from ..exceptions import InvalidInput
from ..models import (
    TRAIT_KEY,
    PreferenceSource,
    Profile,
    Trait,
    TraitRemoval,
    TraitSource,
)
from ..models.traits import TRAIT_TEXT_MAX_LENGTH
from ..validation import MAX_JSON_FLOAT, aware_datetime, choice, no_nul, saved_instance_check

#: What a trait's value may be.
TraitScalar = str | int | float | bool

#: Most keys one call may set (a profile has tens, not thousands).
MAX_KEYS = 100
_HUNDREDTH = Decimal("0.01")


@dataclass(frozen=True)
class _Values:
    values: dict[str, TraitScalar]
    source: str
    confidence: Decimal | None
    now: dt.datetime


def traits_set(
    *,
    profile: Profile,
    values: Mapping[str, TraitScalar],
    source: str,
    confidence: float | Decimal | None = None,
    now: dt.datetime | None = None,
) -> list[Trait]:
    """Record ``values`` (``{key: value}``) about ``profile``; returns the rows written (created
    or changed; a value that is already there, or that precedence or a removal keeps out, is
    not written).

    - keys: a letter, then letters, digits or ``_``, at most 64 (as rules name them);
    - values: text (at most 255 characters), a number or True/False; not None (to forget a
      key, the customer removes it: :func:`trait_remove`);
    - ``source``: a :class:`~personalization.models.TraitSource` value: ``"given"`` (the
      customer told us: signup, the preference centre, the API on their behalf), ``"shop"``
      (import, admin, shop code) or ``"inferred"``;
    - ``confidence``: for ``"inferred"`` only, and required there: how sure, from 0 to 1. Kept
      to two places, rounded down (an inference is never stated surer than it is).
    """
    saved_instance_check(profile, Profile, field="profile")
    cleaned = _values_clean(values=values, source=source, confidence=confidence, now=now)
    if not cleaned.values:
        return []
    return _set_write(profile_id=profile.pk, cleaned=cleaned)


def _values_clean(*, values: Any, source: Any, confidence: Any, now: Any) -> _Values:
    source = choice(source, TraitSource.values, field="source")
    if not isinstance(values, Mapping):
        raise InvalidInput(_("values is a mapping of trait keys to values."), field="values")
    if len(values) > MAX_KEYS:
        raise InvalidInput(_("At most %(max)d traits at once.") % {"max": MAX_KEYS}, field="values")
    cleaned = {key_clean(key, field="values"): value_clean(value) for key, value in values.items()}
    return _Values(
        values=cleaned,
        source=source,
        confidence=_confidence_clean(confidence, source=source),
        now=timezone.now() if now is None else aware_datetime(now, field="now"),
    )


def key_clean(key: Any, *, field: str = "key") -> str:
    """A trait key as rules name it, or InvalidInput."""
    if not isinstance(key, str) or not TRAIT_KEY.match(key):
        raise InvalidInput(
            _(
                "%(key)r is not a trait key: a letter, then letters, digits or _ "
                "(at most 64 characters)."
            )
            % {"key": key},
            field=field,
        )
    return key


def value_clean(value: Any, *, field: str = "values") -> TraitScalar:
    """A trait value: text, a finite number or True/False (a Decimal becomes a number)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidInput(_("Numbers must be finite."), field=field)
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(_("Numbers must be finite (no NaN or Infinity)."), field=field)
        if abs(value) >= MAX_JSON_FLOAT:
            raise InvalidInput(_("Numbers of 10^16 or more must be whole numbers."), field=field)
        return value
    if isinstance(value, str):
        value = no_nul(value.strip(), field=field)
        if not value:
            raise InvalidInput(_("A trait's text cannot be empty."), field=field)
        if len(value) > TRAIT_TEXT_MAX_LENGTH:
            raise InvalidInput(
                _("A trait's text has at most %(max)d characters.")
                % {"max": TRAIT_TEXT_MAX_LENGTH},
                field=field,
            )
        return value
    raise InvalidInput(
        _("A trait's value is text, a number or True/False, not %(value)r.") % {"value": value},
        field=field,
    )


def _confidence_clean(confidence: Any, *, source: str) -> Decimal | None:
    if source != TraitSource.INFERRED:
        if confidence is not None:
            raise InvalidInput(
                _("Only an inferred trait has a confidence; a %(source)s one is known.")
                % {"source": source},
                field="confidence",
            )
        return None
    if confidence is None:
        raise InvalidInput(
            _("An inferred trait needs a confidence from 0 to 1."), field="confidence"
        )
    if isinstance(confidence, bool) or not isinstance(confidence, int | float | Decimal):
        raise InvalidInput(
            _("A confidence is a number from 0 to 1, not %(value)r.") % {"value": confidence},
            field="confidence",
        )
    try:
        value = Decimal(str(confidence))
    except InvalidOperation as err:  # pragma: no cover  (str of a number is a number)
        raise InvalidInput(_("A confidence is a number."), field="confidence") from err
    if not value.is_finite() or not Decimal(0) <= value <= Decimal(1):
        raise InvalidInput(
            _("A confidence is from 0 to 1, not %(value)s.") % {"value": confidence},
            field="confidence",
        )
    return value.quantize(_HUNDREDTH, rounding=ROUND_FLOOR)


@atomic_retried
def _set_write(*, profile_id: int, cleaned: _Values) -> list[Trait]:
    profile = profiles_lock([profile_id]).get(profile_id)
    if profile is None:
        raise InvalidInput(_("The profile no longer exists."), field="profile")
    keys = sorted(cleaned.values)
    existing = {trait.key: trait for trait in Trait.objects.filter(profile=profile, key__in=keys)}
    removed = set(
        TraitRemoval.objects.filter(profile=profile, key__in=keys).values_list("key", flat=True)
    )
    inferred = cleaned.source == TraitSource.INFERRED
    created: list[Trait] = []
    changed: list[Trait] = []
    for key in keys:
        value = cleaned.values[key]
        if key in removed and cleaned.source != TraitSource.GIVEN:
            continue  # the customer removed it; only they can give it again
        trait = existing.get(key)
        if trait is None:
            created.append(
                Trait(
                    profile=profile,
                    key=key,
                    value=value,
                    source=cleaned.source,
                    confidence=cleaned.confidence,
                    recorded_at=cleaned.now,
                    updated_at=cleaned.now,
                )
            )
            continue
        if inferred and trait.source != TraitSource.INFERRED:
            continue  # never overwrite what someone stated with a guess
        same = (
            _same_value(trait.value, value)
            and trait.source == cleaned.source
            and trait.confidence == cleaned.confidence
        )
        if same:
            continue
        trait.value, trait.source = value, cleaned.source
        trait.confidence, trait.updated_at = cleaned.confidence, cleaned.now
        changed.append(trait)
    if cleaned.source == TraitSource.GIVEN and removed:
        TraitRemoval.objects.filter(profile=profile, key__in=sorted(removed)).delete()
    if created:
        Trait.objects.bulk_create(created)
    if changed:
        Trait.objects.bulk_update(changed, ["value", "source", "confidence", "updated_at"])
    written = sorted([*created, *changed], key=lambda trait: trait.key)
    if written:
        profile_changed_note(profile.pk, Change.TRAITS)
    return written


def _same_value(old: Any, new: Any) -> bool:
    # 1 == True in Python; a trait's type is part of its value.
    return type(old) is type(new) and old == new


def trait_remove(*, profile: Profile, key: str, by: str, now: dt.datetime | None = None) -> bool:
    """The customer removes the trait ``key`` from what we know about them.

    The trait is deleted, and the removal is kept (a
    :class:`~personalization.models.TraitRemoval`), so that neither an inference nor the
    shop records the key again; only the customer giving it again does. ``by``: a
    :class:`~personalization.models.PreferenceSource` value (where they removed it:
    ``"preference_centre"``, ``"account"``, ``"api"``, ``"admin"`` on their behalf). Returns
    whether a trait was deleted (the removal is kept either way).
    """
    saved_instance_check(profile, Profile, field="profile")
    key = key_clean(key)
    by = choice(by, PreferenceSource.values, field="by")
    now = timezone.now() if now is None else aware_datetime(now, field="now")
    return _remove_write(profile_id=profile.pk, key=key, by=by, now=now)


@atomic_retried
def _remove_write(*, profile_id: int, key: str, by: str, now: dt.datetime) -> bool:
    profile = profiles_lock([profile_id]).get(profile_id)
    if profile is None:
        raise InvalidInput(_("The profile no longer exists."), field="profile")
    deleted, _by_model = Trait.objects.filter(profile=profile, key=key).delete()
    TraitRemoval.objects.update_or_create(
        profile=profile, key=key, defaults={"by": by, "removed_at": now}
    )
    if deleted:
        profile_changed_note(profile.pk, Change.TRAITS)
    return bool(deleted)


def traits_merge(*, source: Profile, target: Profile) -> None:
    """Fold ``source``'s traits and removals into ``target`` (both locked by the caller, in
    its transaction; ``profile_merge`` calls it before it deletes ``source``).

    The target keeps its own keys and takes the source's missing ones; where the target only
    inferred a key that the source has stated (given or recorded), the stated value wins.
    Removals of either apply to the merged profile: a key removed by one is dropped from the
    other too, unless the customer gave it after removing it.
    """
    sources = Trait.objects.filter(profile=source)
    targets = Trait.objects.filter(profile=target)
    # Where the target only guessed what the source knows, the source's value wins.
    targets.filter(source=TraitSource.INFERRED).filter(
        Exists(sources.exclude(source=TraitSource.INFERRED).filter(key=OuterRef("key")))
    ).delete()
    sources.filter(Exists(targets.filter(key=OuterRef("key")))).delete()
    sources.update(profile=target)

    removals = TraitRemoval.objects.filter(profile=target)
    TraitRemoval.objects.filter(profile=source).filter(
        Exists(removals.filter(key=OuterRef("key")))
    ).delete()
    TraitRemoval.objects.filter(profile=source).update(profile=target)
    # Given again after the removal: the customer changed their mind, the removal goes.
    removals.filter(
        Exists(
            targets.filter(
                key=OuterRef("key"), source=TraitSource.GIVEN, updated_at__gt=OuterRef("removed_at")
            )
        )
    ).delete()
    targets.filter(Exists(removals.filter(key=OuterRef("key")))).delete()
