"""Recomputing the order statistics of the profiles an import touched."""

from __future__ import annotations

from django.db import transaction

from ..commerce import profile_stats_rebuild
from ..models import Profile

STATS_PENDING = 200_000  # profiles waiting to be recomputed, at most (memory stays flat)
STATS_CHUNK = 10_000  # profiles recomputed per transaction


def profile_stats_recompute(*, profile_ids: set[int] | list[int]) -> None:
    """Recompute the order statistics of these profiles: set-based, a chunk at a time.

    Each chunk first locks its profiles, so a concurrent recomputation of the same customers
    waits, then counts the orders committed meanwhile: no update is lost.
    """
    ids = sorted(profile_ids)
    for start in range(0, len(ids), STATS_CHUNK):
        profiles = Profile.objects.filter(pk__in=ids[start : start + STATS_CHUNK])
        with transaction.atomic():
            list(profiles.select_for_update().order_by("pk").values_list("pk", flat=True))
            profile_stats_rebuild(profiles=profiles)
