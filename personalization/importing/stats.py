"""Recomputing the order statistics of the profiles an import touched."""

from __future__ import annotations

from django.db import connection
from django.db.models.expressions import RawSQL

from ..changes import Change, profile_changed_note
from ..concurrency import atomic_retried
from ..models import Profile
from ..stats import profile_stats_rebuild

STATS_PENDING = 200_000  # profiles waiting to be recomputed, at most (memory stays flat)
STATS_CHUNK = 10_000  # profiles recomputed per transaction


def profile_stats_recompute(*, profile_ids: set[int] | list[int]) -> None:
    """Recompute the order statistics of these profiles: set-based, a chunk at a time.

    Each chunk first locks its profiles, so a concurrent recomputation of the same customers
    waits, then counts the orders committed meanwhile: no update is lost.
    """
    ids = sorted(profile_ids)
    for start in range(0, len(ids), STATS_CHUNK):
        chunk_ids = ids[start : start + STATS_CHUNK]
        chunk = chunk_ids
        if connection.vendor == "postgresql":
            # One array parameter rather than 10,000 (each sent, parsed and planned).
            chunk = RawSQL("SELECT unnest(%s::bigint[])", [chunk_ids])
        _chunk_recompute(Profile.objects.filter(pk__in=chunk), chunk_ids)


@atomic_retried
def _chunk_recompute(profiles, chunk_ids: list[int]) -> None:
    # Locked in ascending pk, the one lock order, before the UPDATE counts their orders.
    list(profiles.select_for_update().order_by("pk").values_list("pk", flat=True))
    profile_stats_rebuild(profiles=profiles)
    # Announced once the statistics are right, a chunk's profiles in one signal.
    profile_changed_note(chunk_ids, Change.ORDERS)
