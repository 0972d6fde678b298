"""Beat's sweep of the ledger: what no worker finished, and campaigns that are done.

A dispatcher that died (or lost its database connection) leaves messages it held:

- ``claimed`` or ``ready`` past their lease were never handed to the email service: they go
  back to ``planned`` and the next pass decides them again (a ``ready`` one gives its
  frequency-cap slot back);
- ``sending`` past its lease may or may not have gone out: it is marked ``unknown`` and
  reported, never sent again. A customer getting a message twice is worse than one missing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.utils import timezone

from ..models import DecisionReason, Message, MessageState
from .campaigns import campaigns_finish

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    returned: int  # claimed or ready, back to planned
    unknown: int  # sending when their worker went away
    campaigns_finished: int


def messages_sweep(*, now: dt.datetime | None = None) -> SweepReport:
    now = now or timezone.now()
    expired = Message.objects.filter(claimed_until__lt=now)
    returned = expired.filter(state__in=(MessageState.CLAIMED, MessageState.READY)).update(
        state=MessageState.PLANNED, claim_token="", claimed_until=None
    )
    unknown = expired.filter(state=MessageState.SENDING).update(
        state=MessageState.UNKNOWN,
        reason=DecisionReason.WORKER_LOST,
        claim_token="",
        claimed_until=None,
        decided_at=now,
    )
    if unknown:
        logger.warning(
            "%d messages were being sent when their worker went away; they are marked "
            "'unknown' and will not be sent again (see the message ledger in the admin).",
            unknown,
        )
    return SweepReport(
        returned=returned, unknown=unknown, campaigns_finished=campaigns_finish(now=now)
    )
