"""What each flow and step did: who entered, what was sent, held back, skipped (by reason),
and who left before each step (by reason). Two grouped queries per flow."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db.models import Count

from ..models import OPEN_STATES, EntryState, Flow, FlowEntry, Message, MessageState


@dataclass
class StepStats:
    position: int
    step_id: int
    planned: int = 0  # entries that reached the step: one message each
    sent: int = 0
    waiting: int = 0  # planned or held back (deferred), not decided yet
    skipped: Counter = field(default_factory=Counter)  # by reason
    failed: int = 0
    exited_before: Counter = field(default_factory=Counter)  # left while waiting for it


@dataclass
class FlowStats:
    entered: int = 0
    active: int = 0
    completed: int = 0
    exited: int = 0
    steps: list[StepStats] = field(default_factory=list)


def flow_stats(*, flow: Flow) -> FlowStats:
    stats = FlowStats()
    steps = {
        step.pk: StepStats(position=step.position, step_id=step.pk)
        for step in flow.steps.order_by("position")
    }
    by_position = {s.position: s for s in steps.values()}
    messages = (
        Message.objects.filter(flow_step__flow=flow)
        .values_list("flow_step_id", "state", "reason")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for step_id, state, reason, n in messages:
        step = steps.get(step_id)
        if step is None:
            continue
        step.planned += n
        if state == MessageState.SENT:
            step.sent += n
        elif state in OPEN_STATES or state in (MessageState.CLAIMED, MessageState.READY):
            step.waiting += n
        elif state == MessageState.SKIPPED or state == MessageState.CANCELLED:
            step.skipped[reason or state] += n
        else:
            step.failed += n
    counts: dict[str, int] = defaultdict(int)
    entries = (
        FlowEntry.objects.filter(flow=flow)
        .values_list("state", "next_position", "exit_reason")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for state, position, reason, n in entries:
        counts[state] += n
        if state == EntryState.EXITED and position in by_position:
            by_position[position].exited_before[reason] += n
    stats.entered = sum(counts.values())
    stats.active = counts[EntryState.ACTIVE]
    stats.completed = counts[EntryState.COMPLETED]
    stats.exited = counts[EntryState.EXITED]
    stats.steps = list(by_position.values())
    return stats
