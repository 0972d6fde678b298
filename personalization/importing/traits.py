"""The ``trait.<key>`` columns of an order file: traits of its customers, recorded as the
shop's (source ``shop``), set-based, in the batch's own transaction.

An import is history: like a customer's name, a trait the profile already has (given by the
customer or recorded by the shop) is never changed by it. It adds the keys the customer lacks
and replaces a guess (an ``inferred`` trait: the shop's word beats it), but never a key the
customer removed (as ``traits_set`` does not). Where one file gives a customer a key more than
once, the latest order's value is kept. Running a file again writes nothing new.
"""

from __future__ import annotations

from django.utils import timezone

from ..changes import Change, profile_changed_note
from ..models import Profile, ProfileAlias, Trait, TraitRemoval, TraitSource
from .reading import ParsedOrder


def traits_import(orders: list[ParsedOrder]) -> int:
    """Record the traits of these (written) orders' customers; returns how many were written
    (created or changed). A few queries per batch, whatever its size."""
    wanted: dict[str, dict[str, str]] = {}
    for order in sorted(orders, key=lambda order: order.placed_at):
        if order.traits:
            wanted.setdefault(order.email, {}).update(order.traits)
    if not wanted:
        return 0
    emails = list(wanted)
    profiles = dict(
        Profile.objects.identified().filter(email__in=emails).values_list("email", "pk")
    )
    missing = [email for email in emails if email not in profiles]
    if missing:
        former = ProfileAlias.objects.filter(kind=ProfileAlias.Kind.EMAIL, value__in=missing)
        profiles.update(former.values_list("value", "profile_id"))
    values = {
        (profiles[email], key): value
        for email, traits in wanted.items()
        if email in profiles
        for key, value in traits.items()
    }
    ids = sorted({profile_id for profile_id, _key in values})
    keys = sorted({key for _profile_id, key in values})
    removed = set(
        TraitRemoval.objects.filter(profile_id__in=ids, key__in=keys).values_list(
            "profile_id", "key"
        )
    )
    stated = set(
        Trait.objects.filter(profile_id__in=ids, key__in=keys)
        .given_or_recorded()
        .values_list("profile_id", "key")
    )
    now = timezone.now()
    rows = [
        Trait(
            profile_id=profile_id,
            key=key,
            value=value,
            source=TraitSource.SHOP,
            recorded_at=now,
            updated_at=now,
        )
        for (profile_id, key), value in sorted(values.items())
        if (profile_id, key) not in removed and (profile_id, key) not in stated
    ]
    if not rows:
        return 0
    Trait.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["profile", "key"],
        update_fields=["value", "source", "confidence", "updated_at"],
    )
    profile_changed_note(sorted({row.profile_id for row in rows}), Change.TRAITS)
    return len(rows)


__all__ = ["traits_import"]
