"""A flow step for one customer: exactly what they would get now, or why nothing; test sends.

The same policy and renderer as the dispatcher (:func:`~personalization.messaging.preview.
message_preview`), with the step's copy and the customer's latest way through the flow (its
cart, its category). The shop's adapter is asked for an incentive with a key starting
``preview:``, so that it can give a sample instead of issuing a real code.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from ..messaging.preview import Preview, message_preview, message_test_send
from ..messaging.render import Email, flow_extras, step_copy
from ..models import EntryState, FlowEntry, FlowStep, Profile


def _latest_entry(step: FlowStep, profile: Profile) -> FlowEntry | None:
    return (
        FlowEntry.objects.filter(flow_id=step.flow_id, profile=profile)
        .order_by("-entered_at", "-pk")
        .first()
    )


def step_preview(*, step: FlowStep, profile: Profile, now: dt.datetime | None = None) -> Preview:
    """What ``profile`` would get from ``step`` if it went out now; ``in_audience`` says
    whether they are in the flow now."""
    entry = _latest_entry(step, profile)
    return message_preview(
        profile=profile,
        topic_id=step.flow.topic_id,
        priority=step.flow.priority,
        copy_for=lambda variant: step_copy(step=step, variant=variant),
        extras=flow_extras(
            step=step, entry=entry, profile=profile, key=f"preview:{step.pk}:{profile.pk}"
        ),
        in_audience=entry is not None and entry.state == EntryState.ACTIVE,
        now=now or timezone.now(),
    )


def step_test_send(
    *, step: FlowStep, profile: Profile, to: str, now: dt.datetime | None = None
) -> Email:
    """Send ``profile``'s version of the step to ``to`` (the marketer), marked as a test;
    nothing is written to the ledger."""
    return message_test_send(
        profile=profile,
        copy_for=lambda variant: step_copy(step=step, variant=variant),
        to=to,
        extras=flow_extras(
            step=step,
            entry=_latest_entry(step, profile),
            profile=profile,
            key=f"preview:{step.pk}:{profile.pk}",
        ),
        now=now,
    )
