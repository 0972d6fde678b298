"""Celery tasks: thin wrappers over domain functions, safe to run more than once."""

from __future__ import annotations

from anymail.exceptions import AnymailAPIError
from celery import shared_task

from .commerce import profile_stats_rebuild
from .confirmation import confirmation_send


@shared_task(name="personalization.profile_stats_rebuild")
def profile_stats_rebuild_task() -> int:
    """Recompute every profile's order stats; a nightly safety net behind the live updates."""
    return profile_stats_rebuild()


@shared_task(
    name="personalization.consent_confirmation_send",
    autoretry_for=(AnymailAPIError, OSError),  # the ESP or the network, not our data
    retry_backoff=60,
    max_retries=6,
)
def consent_confirmation_send_task(record_id: int) -> bool:
    """Email the double opt-in link for a pending grant (nothing if it no longer pends)."""
    return confirmation_send(record_id=record_id)
