"""A flow's own rules for its messages at send time, before the guardrail policy.

Registered with the dispatcher (:mod:`personalization.messaging.sources`). For a batch's flow
messages, in a handful of set-based statements:

- the flow's exits run again for their entries (a customer who ordered since the step was
  planned leaves now): a message whose entry ended, or whose flow is off, is skipped
  (``flow_exited``; the entry says why);
- the per-flow limit: a customer who already got ``limit_messages`` of this flow within
  ``limit_days`` is skipped (``flow_limit``);
- a later step goes no sooner than its delay after the previous step was sent, and waits
  while the previous one is still held back (``flow_previous_step``);
- a later step's condition (the previous email not clicked, or not opened) is judged then,
  from the previous message's tracking: not met, it is skipped (``flow_condition``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Count

from ..messaging.policy import DEFER, SKIP, Decision
from ..models import (
    CAP_STATES,
    OPEN_STATES,
    DecisionReason,
    EntryState,
    Flow,
    FlowEntry,
    FlowStep,
    Message,
    MessageState,
    StepCondition,
)
from .advance import entries_exit

# How long a step waits, at most, before looking again at a previous step still held back.
PREVIOUS_STEP_RETRY = dt.timedelta(hours=1)


def flow_message_checks(*, messages: list[Message], now: dt.datetime) -> dict[int, Decision]:
    steps = FlowStep.objects.in_bulk({m.flow_step_id for m in messages if m.flow_step_id})
    flows = Flow.objects.in_bulk({step.flow_id for step in steps.values()})
    verdicts: dict[int, Decision] = {}
    entry_ids = {m.flow_entry_id for m in messages if m.flow_entry_id}
    for flow in flows.values():
        entries_exit(
            flow=flow,
            entries=FlowEntry.objects.filter(pk__in=entry_ids),
            now=now,
            states=(EntryState.ACTIVE, EntryState.COMPLETED),
        )
    ended = set(
        FlowEntry.objects.filter(pk__in=entry_ids, state=EntryState.EXITED).values_list(
            "pk", flat=True
        )
    )
    for message in messages:
        step = steps.get(message.flow_step_id)
        if step is None or not flows[step.flow_id].enabled or message.flow_entry_id in ended:
            verdicts[message.pk] = Decision(SKIP, DecisionReason.FLOW_EXITED)
    rest = [m for m in messages if m.pk not in verdicts]
    verdicts.update(_over_limit(rest, steps=steps, flows=flows, now=now))
    rest = [m for m in rest if m.pk not in verdicts]
    verdicts.update(_previous_steps(rest, steps=steps, now=now))
    return verdicts


def _over_limit(messages, *, steps, flows, now) -> dict[int, Decision]:
    """Customers who had their fill of a flow within its window."""
    verdicts = {}
    by_flow: dict[int, list[Message]] = defaultdict(list)
    for message in messages:
        by_flow[steps[message.flow_step_id].flow_id].append(message)
    for flow_id, own in by_flow.items():
        flow = flows[flow_id]
        counts = dict(
            Message.objects.filter(
                flow_step__flow=flow,
                profile__in={m.profile_id for m in own},
                state__in=CAP_STATES,
                decided_at__gt=now - dt.timedelta(days=flow.limit_days),
            )
            .exclude(pk__in=[m.pk for m in own])
            .values_list("profile_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for message in sorted(own, key=lambda m: (m.not_before, m.pk)):
            taken = counts.get(message.profile_id, 0)
            if taken >= flow.limit_messages:
                verdicts[message.pk] = Decision(SKIP, DecisionReason.FLOW_LIMIT)
            else:
                counts[message.profile_id] = taken + 1
    return verdicts


def _previous_steps(messages, *, steps, now) -> dict[int, Decision]:
    """Later steps wait for the previous step: its delay after it was sent, or while it is
    still held back (deferred, planned); a previous step that was skipped sets no pace."""
    later = [m for m in messages if steps[m.flow_step_id].position > 1]
    if not later:
        return {}
    previous_of = {
        (step.flow_id, step.position): step.pk
        for step in FlowStep.objects.filter(flow__in={steps[m.flow_step_id].flow_id for m in later})
    }
    wanted = {}
    for message in later:
        step = steps[message.flow_step_id]
        previous = previous_of.get((step.flow_id, step.position - 1))
        if previous is not None:
            wanted[message.pk] = (message.flow_entry_id, previous)
    found = {
        (entry, step): rest
        for entry, step, *rest in Message.objects.filter(
            flow_entry__in={entry for entry, _step in wanted.values()},
            flow_step__in={step for _entry, step in wanted.values()},
        ).values_list(
            "flow_entry_id", "flow_step_id", "state", "sent_at", "opened_at", "clicked_at"
        )
    }
    verdicts = {}
    for message in later:
        if message.pk not in wanted:
            continue
        state, sent_at, opened_at, clicked_at = found.get(wanted[message.pk], (None,) * 4)
        step = steps[message.flow_step_id]
        if state == MessageState.SENT and sent_at and sent_at + step.delay > now:
            verdicts[message.pk] = _wait(message, until=sent_at + step.delay)
        elif state in (*OPEN_STATES, MessageState.CLAIMED, MessageState.READY):
            verdicts[message.pk] = _wait(message, until=now + PREVIOUS_STEP_RETRY)
        elif (step.condition == StepCondition.PREVIOUS_NOT_CLICKED and clicked_at) or (
            step.condition == StepCondition.PREVIOUS_NOT_OPENED and (opened_at or clicked_at)
        ):
            verdicts[message.pk] = Decision(SKIP, DecisionReason.FLOW_CONDITION)
    return verdicts


def _wait(message: Message, *, until: dt.datetime) -> Decision:
    """Deferred until then, or skipped when that is past the message's expiry (as the
    policy does: it would come too late)."""
    reason = DecisionReason.FLOW_PREVIOUS_STEP
    if message.expires_at is not None and until > message.expires_at:
        return Decision(SKIP, reason)
    return Decision(DEFER, reason, not_before=until)
