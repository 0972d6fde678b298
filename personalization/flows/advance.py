"""Moving customers through a flow: exits first, then each due step planned into the ledger.

``flow_run()`` is what Beat calls for every flow each minute, under a lock on the flow's row
(two Beats: the second waits, then finds nothing left to do):

1. **enter**: the trigger's new entries (:func:`~.triggers.flow_enter`);
2. **exit**: of the entries whose next step has come, those whose reason is gone leave, with
   the reason (one ``UPDATE`` per rule);
3. **plan**: for each step, the remaining entries whose delay is over get their message,
   written with an ``INSERT … SELECT`` keyed ``flow:<step>:<profile>:<trigger>`` (the
   ledger's dedupe key: a step is planned once per entry whatever runs twice), and move on to
   the next step or complete.

The same exits run again when a step's message comes up for sending (:mod:`.checks`): a
message deferred to the morning is not sent to a customer who ordered in the night.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Exists, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from ..consent import consented_q
from ..messaging.planning import (
    Source,
    Sql,
    known_zone,
    planned_messages_insert,
    shop_zone,
    zone_case_sql,
)
from ..models import (
    CartLine,
    CartStatus,
    EntryState,
    ExitReason,
    Flow,
    FlowEntry,
    FlowKind,
    FlowStep,
    MessageSource,
    Order,
    OrderLine,
    Profile,
    Purpose,
)
from .triggers import browse_restart, flow_enter


@dataclass
class FlowReport:
    entered: int = 0
    exited: dict[str, int] = field(default_factory=dict)
    planned: int = 0
    completed: int = 0


# --- Exits -------------------------------------------------------------------------------------


def _ordered_since(field_name: str) -> Exists:
    return Exists(
        Order.objects.counted().filter(
            profile=OuterRef("profile"), placed_at__gt=OuterRef(field_name)
        )
    )


def _exit_rules(kind: str, now: dt.datetime) -> list[tuple[str, Q]]:
    """(reason, condition on an entry's own row) for every way out of a flow of ``kind``, in
    order. No condition may join another table (see :func:`entries_exit`)."""
    reachable = Profile.objects.filter(consented_q(Purpose.EMAIL_MARKETING)).values("pk")
    rules = [
        (ExitReason.NO_CONSENT, ~Q(profile__in=reachable)),
        (ExitReason.PAUSED, Q(profile__in=Profile.objects.filter(paused_until__gt=now))),
    ]
    if kind == FlowKind.ABANDONED_CART:
        open_lines = CartLine.objects.filter(cart=OuterRef("cart"), cart__status=CartStatus.OPEN)
        rules += [
            (ExitReason.ORDERED, Q(_ordered_since("triggered_at"))),
            (ExitReason.CART_EMPTIED, Q(cart__isnull=True) | ~Q(Exists(open_lines))),
        ]
    elif kind == FlowKind.BROWSE_ABANDONMENT:
        personal = Profile.objects.filter(consented_q(Purpose.PERSONALIZATION)).values("pk")
        carted = CartLine.objects.filter(
            cart__profile=OuterRef("profile"),
            cart__status=CartStatus.OPEN,
            cart__source_updated_at__gt=OuterRef("triggered_at"),
        )
        rules += [
            (ExitReason.NO_PERSONALIZATION, ~Q(profile__in=personal)),
            (ExitReason.ORDERED, Q(_ordered_since("triggered_at"))),
            (ExitReason.CARTED, Q(Exists(carted))),
        ]
    elif kind == FlowKind.REPLENISHMENT:
        personal = Profile.objects.filter(consented_q(Purpose.PERSONALIZATION)).values("pk")
        rules.append((ExitReason.NO_PERSONALIZATION, ~Q(profile__in=personal)))
        rebought = OrderLine.objects.filter(
            order__in=Order.objects.counted(),
            order__profile=OuterRef("profile"),
            product=OuterRef("product"),
            order__placed_at__gt=OuterRef("entered_at"),
        )
        rules.append((ExitReason.REBOUGHT, Q(Exists(rebought))))
    elif kind == FlowKind.WIN_BACK:
        rules.append((ExitReason.ORDERED, Q(_ordered_since("triggered_at"))))
    return rules


def _first_flows(flow: Flow) -> Exists:
    """The customer entered a flow that goes first (a lower priority number) afterwards."""
    return Exists(
        FlowEntry.objects.filter(
            profile=OuterRef("profile"),
            state=EntryState.ACTIVE,
            flow__enabled=True,
            flow__priority__lt=flow.priority,
            entered_at__gt=OuterRef("entered_at"),
        )
    )


def entries_exit(
    *,
    flow: Flow,
    entries: QuerySet[FlowEntry],
    now: dt.datetime,
    states: tuple[str, ...] = (EntryState.ACTIVE,),
) -> dict[str, int]:
    """End the ``entries`` of ``flow`` (in ``states``) whose reason is gone; how many, by
    reason. At send time a completed entry counts too: its last message has not gone yet."""
    active = entries.filter(flow=flow, state__in=states)
    ended = {"state": EntryState.EXITED, "ended_at": now}
    if not flow.enabled:
        count = active.update(exit_reason=ExitReason.FLOW_OFF, **ended)
        return {ExitReason.FLOW_OFF: count} if count else {}
    exited = {}
    rules = _exit_rules(flow.kind, now)
    if flow.yields:
        rules.append((ExitReason.HIGHER_PRIORITY, Q(_first_flows(flow))))
    for reason, condition in rules:
        # Every rule is a condition on the entry's own row (columns, EXISTS, IN): one plain
        # UPDATE. A rule needing a join would make Django filter the entries through a
        # subquery on themselves, which PostgreSQL, without statistics on entries written in
        # this very transaction, runs as a nested loop: quadratic (bench/flows_winback.py).
        count = active.filter(condition).update(exit_reason=reason, **ended)
        if count:
            exited[reason] = count
    return exited


# --- Planning -----------------------------------------------------------------------------------


def _due(flow: Flow, step: FlowStep, now: dt.datetime) -> QuerySet[FlowEntry]:
    ready_from = now - step.delay
    return FlowEntry.objects.filter(
        flow=flow,
        state=EntryState.ACTIVE,
        next_position=step.position,
        waiting_since__lte=ready_from,
    )


def next_local_time(at: dt.time, *, zone: zoneinfo.ZoneInfo, now: dt.datetime) -> dt.datetime:
    """The first moment at or after ``now`` when the clock in ``zone`` shows ``at`` (a day
    without that time, at a DST change, moves it on by the gap)."""
    local = now.astimezone(zone)
    candidate = dt.datetime.combine(local.date(), at, tzinfo=zone)
    if candidate < now:
        candidate = dt.datetime.combine(local.date() + dt.timedelta(days=1), at, tzinfo=zone)
    return candidate.astimezone(dt.UTC)


def _times_sql(step: FlowStep, due: QuerySet[FlowEntry], now: dt.datetime) -> tuple[Sql, Sql]:
    """(not_before, expires_at) of the step's messages planned now: at once; or, for a step at
    a local time, the first such time in each customer's zone after their delay ended (a CASE
    over their zones; already past, as after Beat was down: at once)."""
    adapt = connection.ops.adapt_datetimefield_value
    if step.local_time is None:
        return Sql("%s", (adapt(now),)), Sql("%s", (adapt(now + step.expires_after),))
    # When the delay ended, per zone: the earliest of its due entries (they are planned within
    # a minute of it, so one moment per zone stands for all).
    ended = dict(
        due.order_by()
        .values_list("profile__timezone")
        .annotate(first=Min("waiting_since"))
        .values_list("profile__timezone", "first")
    )
    meant = {}  # the intended time per known zone; the expiry counts from it, not from a late
    default = None  # planning, so a birthday greeting planned late is never sent the day after
    for name, first in ended.items():
        zone = known_zone(name)
        at = next_local_time(step.local_time, zone=zone or shop_zone(), now=first + step.delay)
        if zone is not None:
            meant[name] = at
        else:
            default = at if default is None else min(default, at)
    if default is None:
        default = next_local_time(step.local_time, zone=shop_zone(), now=now)
    send = zone_case_sql(
        moments={name: max(at, now) for name, at in meant.items()}, default=max(default, now)
    )
    expires = zone_case_sql(
        moments={name: at + step.expires_after for name, at in meant.items()},
        default=default + step.expires_after,
    )
    return send, expires


def _messages_insert(*, flow: Flow, step: FlowStep, due: QuerySet[FlowEntry], now: dt.datetime):
    entries_sql, entries_params = due.values("pk").order_by().query.sql_with_params()
    send, expires = _times_sql(step, due, now)
    qn = connection.ops.quote_name
    return planned_messages_insert(
        source=Source(
            source=MessageSource.FLOW,
            flow_step_id=step.pk,
            topic_id=flow.topic_id,
            priority=flow.priority,
        ),
        rows=Sql(
            f"FROM {qn(FlowEntry._meta.db_table)} e "
            f"JOIN {qn(Profile._meta.db_table)} p ON p.id = e.profile_id "
            f"WHERE e.id IN ({entries_sql})",
            tuple(entries_params),
        ),
        key=Sql("%s || CAST(e.profile_id AS TEXT) || ':' || e.trigger_key", (f"flow:{step.pk}:",)),
        profile="e.profile_id",
        entry="e.id",
        send=send,
        expires=expires,
        now=now,
    )


def _skip_missing_steps(flow: Flow, steps: list[FlowStep]) -> None:
    """Entries waiting for a step that is not there (deleted, or a flow whose first step is
    not 1) go on to the next step that is: one ``UPDATE`` per step, touching only them."""
    previous = 0
    for step in steps:
        FlowEntry.objects.filter(
            flow=flow,
            state=EntryState.ACTIVE,
            next_position__gt=previous,
            next_position__lt=step.position,
        ).update(next_position=step.position)
        previous = step.position


def flow_run(*, flow_id: int, now: dt.datetime | None = None) -> FlowReport:
    """Enter, exit and plan one flow (what Beat runs every minute). Safe to run twice at once:
    the flow's row is locked for the run."""
    now = now or timezone.now()
    report = FlowReport()
    with transaction.atomic():
        flow = Flow.objects.select_for_update().filter(pk=flow_id).first()
        if flow is None:
            return report
        if not flow.enabled:
            report.exited = entries_exit(flow=flow, entries=FlowEntry.objects.all(), now=now)
            return report
        report.entered = flow_enter(flow=flow, now=now)
        steps = list(flow.steps.order_by("position"))
        _skip_missing_steps(flow, steps)
        if flow.kind == FlowKind.BROWSE_ABANDONMENT and steps:
            browse_restart(flow=flow, first_position=steps[0].position, now=now)
        for index, step in enumerate(steps):
            due = _due(flow, step, now)
            # The exits are checked for the entries whose step has come (and again when its
            # message is sent): work in proportion to what is due, not to everyone in the flow.
            for reason, count in entries_exit(flow=flow, entries=due, now=now).items():
                report.exited[reason] = report.exited.get(reason, 0) + count
            report.planned += _messages_insert(flow=flow, step=step, due=due, now=now)
            if index + 1 < len(steps):
                due.update(next_position=steps[index + 1].position, waiting_since=now)
            else:
                report.completed += due.update(state=EntryState.COMPLETED, ended_at=now)
        # Steps deleted from under active entries: nothing is left for them.
        last = steps[-1].position if steps else 0
        report.completed += FlowEntry.objects.filter(
            flow=flow, state=EntryState.ACTIVE, next_position__gt=last
        ).update(state=EntryState.COMPLETED, ended_at=now)
    return report


def flows_run(*, now: dt.datetime | None = None) -> dict[str, FlowReport]:
    """:func:`flow_run` for every flow, switched off ones included (their entries end)."""
    now = now or timezone.now()
    return {
        kind: flow_run(flow_id=pk, now=now)
        for pk, kind in Flow.objects.order_by("priority", "pk").values_list("pk", "kind")
    }
