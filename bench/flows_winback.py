#!/usr/bin/env python
"""Flows (issue 11): the win-back flow for a segment entry of 50k customers, against its floor.

Creates (or with ``--keep-db`` reuses) the database ``pzn_bench_flows`` with the settings of
``bench/b3_settings.py`` (set-up shared with ``messaging_campaign.py``: the demo's settings,
Anymail's test backend, quiet hours off) and writes in bulk ``--recipients`` (50,000) profiles
in four locales and time zones, each with an email-marketing grant and its double opt-in
confirmation, then sets ``orders_count = 2`` and ``last_order_at`` 200 days before ``now`` for
all of them in one ``UPDATE`` (they are "lapsed"), and refreshes the ``lapsed`` lifecycle
segment at ``now`` (timed): everyone enters it at ``now``.

Then, in one process, on the same data:

- **app**: ``flow_run()`` of the win-back flow (created by ``migrate``) at ``now``: it enters
  everyone (one ``INSERT … SELECT`` of ``FlowEntry`` rows), checks the exits of the due
  entries, plans step 1 for all of them (one ``INSERT … SELECT`` of ``Message`` rows) and moves
  the entries on to step 2. Every SQL statement is counted and timed (an ``execute_wrapper``);
- **floor**: the same two writes by hand — ``FlowEntry`` rows straight from the segment's open
  stays, already at step 2, and a ``Message`` per entry — with the same columns and values,
  in one transaction, without the app's consent check and trigger window, its exit checks,
  its ``ON CONFLICT`` and its separate ``UPDATE`` to the next step. After each run the flow's
  entries and messages are fingerprinted (every column but the ids): the floor must leave
  exactly what the app leaves;
- floor and app alternately, ``--rounds`` (3) each, the flow's entries and messages deleted
  and the two tables vacuumed between runs (untimed);
- **statements independent of N**: ``flow_run()`` again with only ``--shares`` (a tenth) of
  the stays open (the others closed for that run, then reopened), its statements counted and
  its time taken: several shares show how the time grows with the entry;
- ``--no-nestloop`` (a diagnostic, not the app as it runs): the app's runs with
  ``SET enable_nestloop = off``, i.e. what its statements cost when PostgreSQL joins the
  entries with hashes. Each run starts on emptied, vacuumed tables, so the entries a run writes
  have no statistics when the same transaction's exit checks are planned;
- **dispatch**, as context: one ``messages_dispatch(max_batches=4)`` a minute later over the
  planned messages (4 batches of ``MESSAGE_BATCH_SIZE``, 2,000 messages by default), after an
  ``ANALYZE`` of the entries and messages (what autovacuum would have done by then).

Up to db82265 the exit checks of ``flow_run()`` grew with the square of the entry (nested
loops over entries the planner estimated at one row: 10,000 took 150 s a run); since then each
exit is a plain ``UPDATE`` on the entry rows and the default run takes seconds:

    flock /tmp/bench/1m.lock .venv/bin/python bench/flows_winback.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time

# bench/ is on the path (the script's folder): B3's set-up and data constants, the counter.
from messaging_campaign import BATCH, NAMES, ZONES, _setup
from segbench import StatementCounter

LAPSED_DAYS_AGO = 200
# What the win-back flow's exit rules read (flows/advance.py _exit_rules), to name them.
EXIT_RULES = (
    ('"personalization_consentrecord"', "no consent"),
    ('"paused_until"', "paused"),
    ('"personalization_order"', "ordered since"),
)


# --- Data ------------------------------------------------------------------------------------


def _data(*, recipients: int, now: dt.datetime) -> float:
    """Profiles with a confirmed email-marketing grant, in bulk. Seconds it took."""
    from personalization.models import ConsentRecord, Profile

    started = time.perf_counter()
    granted_at = now - dt.timedelta(days=400)
    confirmed = granted_at + dt.timedelta(minutes=5)
    common = {"source": "checkout", "wording_version": "checkout-2026-10"}
    for start in range(0, recipients, BATCH):
        profiles = Profile.objects.bulk_create(
            Profile(
                email=f"customer{i}@example.com",
                first_name=NAMES[i % len(NAMES)],
                locale=ZONES[i % len(ZONES)][0],
                timezone=ZONES[i % len(ZONES)][1],
            )
            for i in range(start, min(start + BATCH, recipients))
        )
        grants = ConsentRecord.objects.bulk_create(
            ConsentRecord(
                profile=p,
                purpose="email_marketing",
                status="granted",
                double_opt_in=True,
                email=p.email,
                recorded_at=granted_at,
                written_at=granted_at,
                **common,
            )
            for p in profiles
        )
        ConsentRecord.objects.bulk_create(
            ConsentRecord(
                profile_id=g.profile_id,
                purpose="email_marketing",
                status="granted",
                double_opt_in=True,
                confirms=g,
                confirmed_at=confirmed,
                email=g.email,
                recorded_at=confirmed,
                written_at=confirmed,
                **common,
            )
            for g in grants
        )
    return time.perf_counter() - started


def _lapse(*, now: dt.datetime, segment) -> float:
    """Everyone's last order LAPSED_DAYS_AGO (one UPDATE), the ``lapsed`` segment refreshed
    from scratch at ``now``. Seconds the refresh took."""
    from django.db import connection

    from personalization.models import Profile, Segment
    from personalization.segments import segments_refresh

    Profile.objects.update(orders_count=2, last_order_at=now - dt.timedelta(days=LAPSED_DAYS_AGO))
    with connection.cursor() as cursor:  # with --keep-db: the earlier run's stays
        cursor.execute(f"DELETE FROM {_tables()['stay']} WHERE segment_id = %s", [segment.pk])
        cursor.execute("VACUUM ANALYZE")
    started = time.perf_counter()
    (result,) = segments_refresh(segments=Segment.objects.filter(pk=segment.pk), now=now)
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE personalization_segmentmembership")
    recipients = Profile.objects.count()
    assert result.entered == recipients == result.members, (result, recipients)
    return seconds


# --- Between runs ------------------------------------------------------------------------------


def _tables():
    from django.db import connection

    from personalization.models import (
        FlowEntry,
        FlowStep,
        Message,
        MessageEvent,
        SegmentMembership,
    )

    qn = connection.ops.quote_name
    return {
        name: qn(model._meta.db_table)
        for name, model in (
            ("entry", FlowEntry),
            ("step", FlowStep),
            ("message", Message),
            ("event", MessageEvent),
            ("stay", SegmentMembership),
        )
    }


def _reset(flow_id: int) -> None:
    """Delete the flow's entries and messages (and their events), vacuum the two tables."""
    from django.db import connection

    t = _tables()
    steps = f"SELECT id FROM {t['step']} WHERE flow_id = %s"
    messages = f"SELECT id FROM {t['message']} WHERE flow_step_id IN ({steps})"
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {t['event']} WHERE message_id IN ({messages})", [flow_id])
        cursor.execute(f"DELETE FROM {t['message']} WHERE id IN ({messages})", [flow_id])
        cursor.execute(f"DELETE FROM {t['entry']} WHERE flow_id = %s", [flow_id])
        cursor.execute(f"VACUUM ANALYZE {t['entry']}, {t['message']}")


def _fingerprint(flow_id: int) -> tuple:
    """(entries, md5 of their columns, messages, md5 of theirs): everything but the ids."""
    from django.db import connection

    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*), md5(string_agg(concat_ws('|', profile_id, trigger_key, triggered_at,
                   cart_id, order_id, product_id, category, entered_at, state, next_position,
                   waiting_since, exit_reason, ended_at), ',' ORDER BY profile_id, trigger_key))
            FROM {t["entry"]} WHERE flow_id = %s
            """,
            [flow_id],
        )
        entries = cursor.fetchone()
        cursor.execute(
            f"""
            SELECT count(*), md5(string_agg(concat_ws('|', m.dedupe_key, m.profile_id,
                   e.profile_id, e.trigger_key, m.source, m.campaign_id, m.flow_step_id, m.kind,
                   m.topic_id, m.priority, m.context::text, m.state, m.reason, m.not_before,
                   m.expires_at, m.variant, m."group", m.attempts, m.claim_token, m.to_email,
                   m.subject, m.esp_message_id, m.last_error, m.created_at, m.updated_at),
                   ',' ORDER BY m.dedupe_key))
            FROM {t["message"]} m JOIN {t["entry"]} e ON e.id = m.flow_entry_id
            WHERE e.flow_id = %s
            """,
            [flow_id],
        )
        return (*entries, *cursor.fetchone())


# --- The two runs ----------------------------------------------------------------------------


def _label(sql: str) -> str:
    """A short name for one of flow_run's statements (an exit by the table its rule reads)."""
    words = " ".join(sql.split())
    table = words.split('"')[1].removeprefix("personalization_") if '"' in words else ""
    if words.startswith("INSERT INTO"):
        return f"INSERT … SELECT {table}"
    if words.startswith("UPDATE"):
        assignments = words.partition(" SET ")[2].partition(" WHERE ")[0]
        if '"exit_reason"' in assignments:
            for needle, rule in EXIT_RULES:
                if needle in words:
                    return f"UPDATE {table}: exit if {rule}"
            return f"UPDATE {table}: exit"
        if '"next_position"' in assignments:
            return f"UPDATE {table}: on to the next step"
        return f"UPDATE {table}: completed"
    if words.startswith("SELECT") and "FOR UPDATE" in words:
        return f"SELECT {table} FOR UPDATE"
    return f"SELECT {table}"


class Statements(StatementCounter):
    """Counts and times statements, and keeps (label, rows, ms) for each."""

    def __init__(self):
        super().__init__()
        self.rows: list[tuple[str, int, float]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return super().__call__(execute, sql, params, many, context)
        finally:
            ms = (time.perf_counter() - started) * 1000
            self.rows.append((_label(sql), max(context["cursor"].rowcount, 0), ms))


def _app(flow_id: int, now: dt.datetime, *, nestloop: bool) -> tuple[float, object, Statements]:
    from django.db import connection

    from personalization.flows import flow_run

    if not nestloop:  # the diagnostic: the same statements with hash joins
        with connection.cursor() as cursor:
            cursor.execute("SET enable_nestloop = off")
    statements = Statements()
    try:
        with connection.execute_wrapper(statements):
            started = time.perf_counter()
            report = flow_run(flow_id=flow_id, now=now)
            seconds = time.perf_counter() - started
    finally:
        if not nestloop:
            with connection.cursor() as cursor:
                cursor.execute("RESET enable_nestloop")
    return seconds, report, statements


def _floor_sql(*, flow, step, segment_id: int, now: dt.datetime) -> list[tuple[str, list]]:
    """The two writes by hand, with the values the app leaves after its run."""
    from django.db import connection

    from personalization.models import EntryState, MessageKind, MessageSource, MessageState

    t = _tables()
    stamp = connection.ops.adapt_datetimefield_value(now)
    expires = connection.ops.adapt_datetimefield_value(now + step.expires_after)
    entries = f"""
        INSERT INTO {t["entry"]}
            (flow_id, profile_id, trigger_key, triggered_at, cart_id, order_id, product_id,
             category, entered_at, state, next_position, waiting_since, exit_reason, ended_at)
        SELECT %s, s.profile_id, 'lapsed:' || CAST(s.id AS TEXT), s.entered_at, NULL, NULL,
               NULL, '', %s, %s, %s, %s, '', NULL
        FROM {t["stay"]} s
        WHERE s.segment_id = %s AND s.exited_at IS NULL
    """
    # The columns of flows/advance.py's _messages_insert, in its order.
    messages = f"""
        INSERT INTO {t["message"]}
            (dedupe_key, profile_id, source, flow_step_id, flow_entry_id, kind, topic_id,
             priority, context, state, reason, not_before, expires_at, variant, "group",
             attempts, claim_token, to_email, subject, esp_message_id, last_error, created_at,
             updated_at)
        SELECT %s || CAST(e.profile_id AS TEXT) || ':' || e.trigger_key, e.profile_id, %s, %s,
               e.id, %s, %s, %s, %s, %s, '', %s, %s, '', '', 0, '', '', '', '', '', %s, %s
        FROM {t["entry"]} e
        WHERE e.flow_id = %s
    """
    return [
        (entries, [flow.pk, stamp, EntryState.ACTIVE, step.position + 1, stamp, segment_id]),
        (
            messages,
            [
                f"flow:{step.pk}:",
                MessageSource.FLOW,
                step.pk,
                MessageKind.MARKETING,
                flow.topic_id,
                flow.priority,
                "{}",
                MessageState.PLANNED,
                stamp,
                expires,
                stamp,
                stamp,
                flow.pk,
            ],
        ),
    ]


def _floor(statements: list[tuple[str, list]]) -> tuple[float, list[int]]:
    from django.db import connection, transaction

    rows = []
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            rows.append(cursor.rowcount)
    return time.perf_counter() - started, rows


def _fewer(
    *, flow_id: int, segment_id: int, now: dt.datetime, share: float, nestloop: bool
) -> tuple[int, float, int]:
    """flow_run with only ``share`` of the stays open: (entries, seconds, statements)."""
    from django.db import connection

    _reset(flow_id)
    stays = _tables()["stay"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {stays} SET exited_at = %s WHERE segment_id = %s AND exited_at IS NULL "
            "AND profile_id %% 1000 >= %s",
            [now, segment_id, round(share * 1000)],
        )
        cursor.execute(
            f"SELECT count(*) FROM {stays} WHERE segment_id = %s AND exited_at IS NULL",
            [segment_id],
        )
        (open_stays,) = cursor.fetchone()
    try:
        seconds, report, statements = _app(flow_id, now, nestloop=nestloop)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {stays} SET exited_at = NULL WHERE segment_id = %s AND exited_at = %s",
                [segment_id, now],
            )
    assert report.entered == report.planned == open_stays, (report, open_stays)
    return open_stays, seconds, statements.count


# --- Main ------------------------------------------------------------------------------------


def _load(values) -> str:
    return " / ".join(f"{x:.2f}" for x in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="pzn_bench_flows")
    parser.add_argument(
        "--server", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--keep-db", action="store_true", help="reuse the profiles if there")
    parser.add_argument("--rounds", type=int, default=3, help="runs of the app and of the floor")
    parser.add_argument(
        "--shares",
        default="0.1",
        help="flow_run again with these shares of the stays open (comma-separated)",
    )
    parser.add_argument(
        "--no-nestloop",
        action="store_true",
        help="diagnostic: the app's runs with SET enable_nestloop = off",
    )
    args = parser.parse_args()

    load_before = os.getloadavg()
    started_at = time.gmtime()
    fresh = _setup(args)
    from django import get_version
    from django.core import mail
    from django.db import connection
    from django.utils import timezone

    from personalization.conf import app_settings
    from personalization.messaging import messages_dispatch
    from personalization.models import Flow, FlowKind, Profile, Segment

    now = timezone.now()
    flow = Flow.objects.get(kind=FlowKind.WIN_BACK)
    step = flow.steps.order_by("position").first()
    segment = Segment.objects.get(slug="lapsed")
    data_s = None
    if fresh or not Profile.objects.exists():
        data_s = _data(recipients=args.recipients, now=now)
    _reset(flow.pk)
    refresh_s = _lapse(now=now, segment=segment)
    n = Profile.objects.count()
    print(f"{n:,} profiles, lapsed refreshed in {refresh_s:.2f} s", file=sys.stderr)

    # The same call with fewer entries: statements (and time) by size.
    nestloop = not args.no_nestloop
    fewer = [
        _fewer(
            flow_id=flow.pk, segment_id=segment.pk, now=now, share=float(share), nestloop=nestloop
        )
        for share in args.shares.split(",")
        if share
    ]
    for entries, seconds, count in fewer:
        print(f"{entries:,} entries: {seconds:.2f} s, {count} statements", file=sys.stderr)

    # Floor and app alternately, the app last (its messages are dispatched below).
    floor_sql = _floor_sql(flow=flow, step=step, segment_id=segment.pk, now=now)
    app_s, floor_s, app_runs, prints = [], [], [], set()
    for round_ in range(1, args.rounds + 1):
        _reset(flow.pk)
        seconds, rows = _floor(floor_sql)
        assert rows == [n, n], rows
        floor_s.append(seconds)
        prints.add(_fingerprint(flow.pk))
        _reset(flow.pk)
        seconds, report, statements = _app(flow.pk, now, nestloop=nestloop)
        assert report.entered == n and report.planned == n, report
        assert not report.exited and not report.completed, report
        app_s.append(seconds)
        app_runs.append((seconds, statements))
        prints.add(_fingerprint(flow.pk))
        print(
            f"round {round_}: floor {floor_s[-1]:.2f} s, app {seconds:.2f} s "
            f"({statements.count} statements)",
            file=sys.stderr,
        )
    same = len(prints) == 1

    # Dispatch, a minute later: the app's messages of the last round. First what autovacuum
    # would have done by then (it may be off): without statistics on the new entries, the
    # send-time exit checks are planned as nested loops over all of them.
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {_tables()['entry']}, {_tables()['message']}")
    mail.outbox = []
    started = time.perf_counter()
    sent = messages_dispatch(now=now + dt.timedelta(minutes=1), max_batches=4)
    dispatch_s = time.perf_counter() - started
    outbox = len(mail.outbox)
    mail.outbox = []
    load_after = os.getloadavg()

    # --- Report.
    median_app, median_floor = statistics.median(app_s), statistics.median(floor_s)
    _seconds, statements = sorted(app_runs, key=lambda run: run[0])[len(app_runs) // 2]
    mode = "" if nestloop else ", the app with `enable_nestloop = off` (diagnostic)"
    print(f"## Flows: win-back for {n:,} customers entering `lapsed` at once{mode}\n")
    print(
        f"{time.strftime('%Y-%m-%d %H:%M', started_at)}–{time.strftime('%H:%M UTC', time.gmtime())}"
        f"; {os.cpu_count()} cores; Python {platform.python_version()}; Django {get_version()}; "
        f"PostgreSQL {connection.pg_version // 10000}.{connection.pg_version % 10000}; "
        f"load before {_load(load_before)}, after {_load(load_after)}; "
        f"batch size {app_settings.MESSAGE_BATCH_SIZE}\n"
    )
    print("| measure | value |")
    print("|---|---:|")
    if data_s is not None:
        print(f"| data: {n:,} profiles, confirmed grants, in bulk (untimed) | {data_s:.1f} s |")
    print(f"| `segments_refresh` of `lapsed`: {n:,} enter | {refresh_s:.2f} s |")
    print(
        f"| **`flow_run` win-back**: {n:,} entered, {n:,} planned, min / median of "
        f"{args.rounds} | **{min(app_s):.2f} / {median_app:.2f} s** |"
    )
    print(
        f"| floor: the two `INSERT … SELECT`s by hand, min / median of {args.rounds} | "
        f"{min(floor_s):.2f} / {median_floor:.2f} s |"
    )
    print(
        f"| **app / floor** (min / min, median / median) | "
        f"**{min(app_s) / min(floor_s):.2f}× / {median_app / median_floor:.2f}×** |"
    )
    print(f"| SQL statements of `flow_run`, {n:,} entries | {statements.count} |")
    for entries, seconds, count in fewer:
        print(
            f"| `flow_run` with {entries:,} entries (the others' stays closed for the run) | "
            f"{seconds:.2f} s, {count} statements |"
        )
    print(
        f"| `messages_dispatch(max_batches=4)` a minute later: {sent.sent:,} sent of "
        f"{sent.claimed:,} claimed | {dispatch_s:.1f} s: {sent.sent / dispatch_s:,.0f} msg/s |"
    )
    print()
    print("| round | floor s | app s |")
    print("|---:|---:|---:|")
    for round_, (floor_round, app_round) in enumerate(zip(floor_s, app_s, strict=True), 1):
        print(f"| {round_} | {floor_round:.2f} | {app_round:.2f} |")
    print()
    print(f"The app's statements in its median run ({_seconds:.2f} s):\n")
    print("| statement | times | rows | ms |")
    print("|---|---:|---:|---:|")
    grouped: dict[str, list] = {}
    for label, rows, ms in statements.rows:
        entry = grouped.setdefault(label, [0, 0, 0.0])
        entry[0] += 1
        entry[1] += rows
        entry[2] += ms
    for label, (times, rows, ms) in grouped.items():
        print(f"| {label} | {times} | {rows:,} | {ms:,.0f} |")
    print()
    reasons = ", ".join(f"{k} {v}" for k, v in sent.reasons.items()) or "none"
    print(
        f"Checks: every app run entered and planned {n:,}, nobody exited; the floor's entries "
        f"and messages {'are the same as the app’s, column for column' if same else 'DIFFER'} "
        f"({len(prints)} distinct fingerprint(s) over {2 * args.rounds} runs); dispatch: "
        f"{sent.sent:,} sent, {sent.deferred} deferred, {sent.skipped} skipped, "
        f"{sent.failed} failed (reasons: {reasons}), outbox {outbox:,}."
    )
    if not same or outbox != sent.sent:
        sys.exit(1)


if __name__ == "__main__":
    main()
