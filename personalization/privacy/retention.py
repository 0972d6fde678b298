"""Retention: raw behavioural events are deleted once they are older than the shop keeps them.

``EVENT_RETENTION_DAYS`` (default 365; ``None`` keeps events for ever) sets the period.
Beat runs :func:`events_expire` daily (``personalization.events_expire``); ``manage.py
expire_events`` runs it by hand. Orders, carts and the consent ledger are not events and are
not touched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from ..conf import app_settings
from ..exceptions import InvalidInput
from ..models import Event

#: Events deleted per statement: small enough for short locks and flat memory, large enough
#: that a year's backlog of millions takes a few hundred statements.
EXPIRE_BATCH_SIZE = 10_000


def events_expire_before(*, now: dt.datetime | None = None) -> dt.datetime | None:
    """The time before which events are expired, or None when retention is off."""
    days = app_settings.EVENT_RETENTION_DAYS
    if days is None:
        return None
    return (now or timezone.now()) - dt.timedelta(days=days)


def events_expire(
    *,
    now: dt.datetime | None = None,
    batch_size: int = EXPIRE_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Delete events that occurred more than ``EVENT_RETENTION_DAYS`` before ``now``.

    Deletes in batches of at most ``batch_size`` rows, each one statement in its own
    transaction (``DELETE … WHERE id IN (SELECT id … LIMIT n)``), so no row is read into
    Python, memory stays flat and locks are short; ``progress`` is called with each batch's
    count. Returns how many were deleted; 0 when ``EVENT_RETENTION_DAYS`` is None.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInput("The batch size must be a positive whole number.", field="batch_size")
    before = events_expire_before(now=now)
    if before is None:
        return 0
    expired = Event.objects.filter(occurred_at__lt=before).order_by()
    total = 0
    while True:
        batch = expired.values("pk")[:batch_size]
        with transaction.atomic():
            deleted, _by_model = Event.objects.filter(pk__in=batch).delete()
        if not deleted:
            return total
        total += deleted
        if progress is not None:
            progress(deleted)
        if deleted < batch_size:
            return total
