"""Dispatchers, planners and Beats beside each other, on real PostgreSQL: each customer gets
each message once, whoever runs at the same moment.

What is counted is what a customer would notice: the emails handed to the backend per address
(``mail.outbox``), and the ledger's states.
"""

import datetime as dt
import threading
import time
from collections import Counter

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.db.models import F
from django_celery_beat.models import PeriodicTask

from personalization.messaging import (
    campaign_plan,
    campaign_schedule,
    dispatch,
    messages_dispatch,
    messages_sweep,
)
from personalization.messaging.dispatch import (
    DispatchReport,
    messages_claim,
    messages_decide,
    messages_render,
    messages_send,
)
from personalization.models import (
    CampaignStatus,
    DecisionReason,
    Message,
    MessageState,
    SegmentMembership,
)
from personalization.schedules import schedules_run_due
from tests.concurrency import run_concurrently

from .shop import T0, campaign, customer, join, segment

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
WAIT = 10
LEASE = 600  # MESSAGE_LEASE_SECONDS, as set below
OPEN = (
    MessageState.PLANNED,
    MessageState.DEFERRED,
    MessageState.CLAIMED,
    MessageState.READY,
    MessageState.SENDING,
)


@pytest.fixture(autouse=True)
def _messaging(settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "MESSAGE_BATCH_SIZE": 7,
        "MESSAGE_LEASE_SECONDS": LEASE,
    }


def emails_per_address() -> Counter:
    """Marketing emails of the ledger handed to the backend, per address (committed for real,
    the customers' consent confirmations are in the outbox too)."""
    return Counter(
        address
        for message in mail.outbox
        if "pzn_message" in getattr(message, "metadata", {})
        for address in message.to
    )


def states(**filters) -> Counter:
    return Counter(Message.objects.filter(**filters).values_list("state", flat=True))


def members(everyone, n: int) -> list:
    """``n`` customers in the segment. (Committed for real here, their consent's segment job
    may have put them in already: ``shop.customer(segment=…)`` would add them twice.)"""
    made = [customer() for _ in range(n)]
    inside = set(
        SegmentMembership.objects.current()
        .filter(segment=everyone)
        .values_list("profile_id", flat=True)
    )
    join(everyone, *(c for c in made if c.pk not in inside))
    return made


def planned_campaign(n: int, **fields):
    """A campaign sent now to ``n`` customers, planned at T0; the campaign and the customers."""
    everyone = segment()
    customers = members(everyone, n)
    made = campaign(include=[everyone], **fields)
    campaign_schedule(campaign=made, now=T0)
    assert campaign_plan(campaign_id=made.pk, now=T0) == n
    return made, customers


def test_two_dispatchers_at_once_send_each_recipient_one_email(monkeypatch):
    made, customers = planned_campaign(60)
    # Each dispatcher holds its first batch until the other holds one too: they interleave.
    both_claimed = threading.Barrier(2, timeout=WAIT)
    first_claim = threading.local()
    claims = Counter()

    def claim(**kwargs):
        ids = messages_claim(**kwargs)
        claims[threading.get_ident()] += len(ids)
        if not getattr(first_claim, "done", False):
            first_claim.done = True
            both_claimed.wait()
        return ids

    monkeypatch.setattr(dispatch, "messages_claim", claim)
    reports = []
    with time_machine.travel(T0, tick=False):
        run_concurrently([lambda: reports.append(messages_dispatch(now=T0))] * 2)

    sent = emails_per_address()
    assert sent == Counter({c.email: 1 for c in customers})  # every one, once
    assert states(campaign=made) == {MessageState.SENT: 60}
    assert sum(report.sent for report in reports) == 60
    # Both took part, and no message was claimed by both.
    assert len(claims) == 2 and all(claims.values())
    assert sum(claims.values()) == 60


def test_two_dispatchers_for_one_customer_respect_the_frequency_cap(monkeypatch, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "MESSAGE_FREQUENCY_CAP": 3,
        # Long enough to wait a week for a free slot (else deferred past it: skipped).
        "CAMPAIGN_MAX_DELAY_HOURS": 8 * 24,
        "MESSAGE_BATCH_SIZE": 3,
    }
    everyone = segment()
    (anna,) = members(everyone, 1)
    for n in range(6):
        made = campaign(include=[everyone], name=f"Campaign {n}")
        campaign_schedule(campaign=made, now=T0)
        campaign_plan(campaign_id=made.pk, now=T0)
    # Each dispatcher holds three different messages of hers.
    tokens = ("first", "second")
    for token in tokens:
        assert len(messages_claim(now=T0, size=3, token=token)) == 3

    # The decision's read of her slots waits until the other dispatcher has read them too, or
    # waits for her profile's lock: without that lock both would read three free slots.
    arrived = {token: threading.Event() for token in tokens}
    current = threading.local()
    load = dispatch.recipients_load

    def recipients_load(**kwargs):
        token = current.token
        arrived[token].set()
        other = arrived[next(t for t in tokens if t != token)]
        deadline = time.monotonic() + WAIT
        while not other.is_set() and not a_session_waits_for_a_lock():
            assert time.monotonic() < deadline, "the other dispatcher neither came nor waited"
            time.sleep(0.01)
        return load(**kwargs)

    monkeypatch.setattr(dispatch, "recipients_load", recipients_load)

    def one_pass(token):
        def run():
            current.token = token
            report = DispatchReport()
            to_send, profiles = messages_decide(token=token, now=T0, report=report)
            rendered = messages_render(to_send=to_send, profiles=profiles, now=T0, report=report)
            messages_send(rendered=rendered, token=token, now=T0, report=report)

        return run

    with time_machine.travel(T0, tick=False):
        run_concurrently([one_pass(token) for token in tokens])

    assert emails_per_address() == {anna.email: 3}
    assert states() == {MessageState.SENT: 3, MessageState.DEFERRED: 3}
    deferred = Message.objects.filter(state=MessageState.DEFERRED)
    assert set(deferred.values_list("reason", flat=True)) == {DecisionReason.FREQUENCY_CAP}
    assert all(m.not_before > T0 for m in deferred)


def a_session_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return bool(cursor.fetchone()[0])


def test_two_dispatchers_with_the_whole_pass_still_send_no_more_than_the_cap(settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "MESSAGE_FREQUENCY_CAP": 3,
        # Long enough to wait a week for a free slot (else deferred past it: skipped).
        "CAMPAIGN_MAX_DELAY_HOURS": 8 * 24,
        "MESSAGE_BATCH_SIZE": 1,
    }
    everyone = segment()
    (anna,) = members(everyone, 1)
    for n in range(6):
        made = campaign(include=[everyone], name=f"Campaign {n}")
        campaign_schedule(campaign=made, now=T0)
        campaign_plan(campaign_id=made.pk, now=T0)

    with time_machine.travel(T0, tick=False):
        run_concurrently([lambda: messages_dispatch(now=T0)] * 2)

    assert emails_per_address() == {anna.email: 3}
    assert states() == {MessageState.SENT: 3, MessageState.DEFERRED: 3}
    assert set(
        Message.objects.filter(state=MessageState.DEFERRED).values_list("reason", flat=True)
    ) == {DecisionReason.FREQUENCY_CAP}


def test_two_planners_at_once_plan_one_message_per_recipient():
    everyone = segment()
    customers = members(everyone, 25)
    made = campaign(include=[everyone])
    campaign_schedule(campaign=made, now=T0)
    planned = []

    run_concurrently([lambda: planned.append(campaign_plan(campaign_id=made.pk, now=T0))] * 2)

    assert sorted(planned) == [0, 25]  # the second found it planned
    assert Message.objects.count() == 25
    assert sorted(Message.objects.values_list("profile_id", flat=True)) == sorted(
        c.pk for c in customers
    )
    made.refresh_from_db()
    assert made.status == CampaignStatus.SENDING and made.audience_count == 25


MESSAGING_TASKS = (
    "personalization.campaigns_plan_due",
    "personalization.messages_dispatch",
    "personalization.messages_sweep",
)


def test_two_beats_at_once_send_a_due_campaign_once():
    everyone = segment()
    customers = members(everyone, 30)
    made = campaign(include=[everyone], send_mode="at", send_at=T0 + dt.timedelta(minutes=30))
    # The messaging tasks only: the others (segments, recommendations…) are not at stake here.
    PeriodicTask.objects.exclude(task__in=MESSAGING_TASKS).update(enabled=False)
    with time_machine.travel(T0, tick=False):
        campaign_schedule(campaign=made)
        schedules_run_due()  # each runs once at first; the campaign is not due yet
    assert emails_per_address() == {}
    before = dict(PeriodicTask.objects.filter(enabled=True).values_list("name", "total_run_count"))
    assert len(before) == 3
    runs = []

    with time_machine.travel(T0 + dt.timedelta(minutes=30, seconds=5), tick=False):
        run_concurrently([lambda: runs.append(schedules_run_due())] * 2)

    assert emails_per_address() == Counter({c.email: 1 for c in customers})
    assert states(campaign=made) == {MessageState.SENT: 30}
    after = dict(PeriodicTask.objects.filter(enabled=True).values_list("name", "total_run_count"))
    assert after == {name: count + 1 for name, count in before.items()}  # each ran once
    ran = sorted(run.name for beat in runs for run in beat)
    assert ran == sorted(before)
    assert not [run for beat in runs for run in beat if run.error]


def dispatch_steps(token: str, now: dt.datetime, *, size: int = 10):
    """A dispatcher's claim, decision and rendering (its send is the caller's)."""
    report = DispatchReport()
    messages_claim(now=now, size=size, token=token)
    to_send, profiles = messages_decide(token=token, now=now, report=report)
    return messages_render(to_send=to_send, profiles=profiles, now=now, report=report)


@pytest.mark.parametrize("held_until", ["claimed", "rendered"])
def test_a_dispatcher_whose_lease_ran_out_moves_and_sends_nothing(held_until):
    made, customers = planned_campaign(10)
    later = T0 + dt.timedelta(seconds=LEASE + 1)
    report = DispatchReport()
    with time_machine.travel(T0, tick=False):
        if held_until == "claimed":
            assert len(messages_claim(now=T0, size=10, token="slow")) == 10
            rendered = []
        else:
            rendered = dispatch_steps("slow", T0)
            assert len(rendered) == 10
            assert states() == {MessageState.READY: 10}

    with time_machine.travel(later, tick=False):
        # Its lease runs out; Beat's sweep hands the messages back, and another dispatcher
        # takes them: it has them ready to send when the slow one wakes up.
        assert messages_sweep(now=later).returned == 10
        ready = dispatch_steps("fast", later)
        assert len(ready) == 10
        ledger = list(Message.objects.order_by("pk").values())

        # The slow one carries on with its old token: it moves nothing and sends nothing.
        if held_until == "claimed":
            to_send, profiles = messages_decide(token="slow", now=later, report=report)
            assert to_send == []
            rendered = messages_render(to_send=to_send, profiles=profiles, now=later, report=report)
        messages_send(rendered=rendered, token="slow", now=later, report=report)
        assert emails_per_address() == {}
        assert list(Message.objects.order_by("pk").values()) == ledger

        messages_send(rendered=ready, token="fast", now=later, report=DispatchReport())
        assert emails_per_address() == Counter({c.email: 1 for c in customers})
        # And once more, after the other one sent them: still nothing.
        messages_send(rendered=rendered, token="slow", now=later, report=report)

    assert emails_per_address() == Counter({c.email: 1 for c in customers})
    assert states(campaign=made) == {MessageState.SENT: 10}
    assert report.sent == 0


def test_a_message_left_sending_by_a_dead_worker_is_unknown_and_never_sent():
    made, customers = planned_campaign(8)
    report = DispatchReport()
    with time_machine.travel(T0, tick=False):
        messages_claim(now=T0, size=5, token="dead")
        to_send, profiles = messages_decide(token="dead", now=T0, report=report)
        rendered = messages_render(to_send=to_send, profiles=profiles, now=T0, report=report)
        # What messages_send does first; then the worker dies before handing them over.
        Message.objects.filter(
            pk__in=[m.pk for m, _email in rendered], claim_token="dead", state=MessageState.READY
        ).update(state=MessageState.SENDING, attempts=F("attempts") + 1)
        lost = set(Message.objects.filter(state=MessageState.SENDING).values_list("pk", flat=True))
        assert len(lost) == 5
        # Another dispatcher meanwhile sends the rest, and leaves the ones in flight alone.
        assert messages_dispatch(now=T0).sent == 3
        # The sweep leaves them alone while the lease lasts.
        assert messages_sweep(now=T0 + dt.timedelta(seconds=LEASE - 1)).unknown == 0

    later = T0 + dt.timedelta(seconds=LEASE + 1)
    with time_machine.travel(later, tick=False):
        assert messages_sweep(now=later).unknown == 5

    unknown = Message.objects.filter(pk__in=lost)
    assert set(unknown.values_list("state", "reason")) == {
        (MessageState.UNKNOWN, DecisionReason.WORKER_LOST)
    }
    # Every later dispatch, days later, and every later sweep: never sent.
    for days in (0, 1, 4):
        moment = later + dt.timedelta(days=days, minutes=1)
        with time_machine.travel(moment, tick=False):
            messages_dispatch(now=moment)
            messages_sweep(now=moment)
    lost_addresses = {m.profile.email for m in unknown.select_related("profile")}
    sent = emails_per_address()
    assert not lost_addresses & set(sent)
    assert sent == Counter({c.email: 1 for c in customers if c.email not in lost_addresses})
    assert states(campaign=made) == {MessageState.SENT: 3, MessageState.UNKNOWN: 5}
    made.refresh_from_db()
    assert made.status == CampaignStatus.SENT  # nothing left open: the campaign is done
    assert not Message.objects.filter(state__in=OPEN).exists()
