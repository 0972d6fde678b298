"""Celery tasks: thin wrappers over domain functions, safe to run more than once."""

from __future__ import annotations

from celery import shared_task

from .commerce import profile_stats_rebuild


@shared_task(name="personalization.profile_stats_rebuild")
def profile_stats_rebuild_task() -> int:
    """Recompute every profile's order stats; a nightly safety net behind the live updates."""
    return profile_stats_rebuild()
