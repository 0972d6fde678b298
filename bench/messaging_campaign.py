#!/usr/bin/env python
"""B3: a 100k-recipient campaign sent to Anymail's test backend on PostgreSQL, rendering included.

Creates (or with ``--keep-db`` reuses) the database ``pzn_bench_b3`` and, with set-based bulk
inserts (``bulk_create`` in batches of 5,000), fills it with ``--recipients`` profiles (email,
first name, locale and time zone mixed over en/Europe/London, sv/Europe/Stockholm,
tr/Europe/Istanbul, de/Europe/Berlin), each with an email-marketing grant and its double
opt-in confirmation (the demo's default asks for one), every other one with personalisation
consent, all of them members of one segment; a topic subscribed by default; 200 products and
5% of the recipients with 1–3 recent orders, and the recommendation model built
(``recommendations_build()``), so ``{% recommendations 4 %}`` has bestsellers, and neighbours
for the customers who bought. The settings are ``bench/b3_settings.py``: the demo's, with
Anymail's test backend, ``SITE_URL`` set, UTM parameters on and quiet hours off (the run
must not be deferred by the evening somewhere between London and Istanbul).

Then it times, in the same process (one worker):

- **planning**: ``campaign_schedule()`` (lint included) and ``campaign_plan()``, the one
  ``INSERT … SELECT`` that writes a message per member;
- **dispatch**: the production path of the Celery task ``personalization.messages_dispatch``
  (``messages_dispatch(seconds=50)``) called until nothing is due, each call counted as one
  task run; inside, every ``messages_dispatch_batch()`` is timed, with its four phases (claim,
  decide, render, send: the functions of ``dispatch.py`` wrapped), the part of render spent in
  recommendations (``recommend_for_profiles()`` for the batch's tailored recipients), and the
  SQL statements and their time attributed to the phase that ran them. Messages per second
  per worker = sent / the sum of the batch times.
  Tasks per recipient = task runs / recipients (target ≤ 1/500).

Anymail's test backend appends every message to ``django.core.mail.outbox`` and takes its index
there as the ESP message id (a linear ``list.index``): left to grow, the outbox would hold 100k
messages and make each send slower than the last. After each batch (outside the batch's time)
the outbox is counted, every message checked for its ``List-Unsubscribe`` and
``List-Unsubscribe-Post`` headers, and emptied. The process's resident memory is sampled after
each batch (its peak over the batches is the dispatch's), and ``ru_maxrss`` is reported too.

Afterwards it checks that every message of the campaign is ``sent`` and that the outbox held
exactly one message per recipient.

The **floor**, on ``--floor`` recipients (default 5,000): the same compiled copy, layout,
css-inline, UTM tagging and plain-text part (``email_render``), and the same
``EmailMultiAlternatives`` handed to the same backend over one connection, for each recipient,
without the pipeline: the context is built by hand with bestsellers read once (the preference
links' token still reads the profile's ``link_version``: one short statement each). What the
pipeline adds over it is the ledger, the policy and the per-recipient recommendations.

``--profile`` runs one extra batch under cProfile before the timed run (excluded from the
throughput; its messages are counted and checked) and prints where its time goes.

    flock /tmp/bench/1m.lock .venv/bin/python bench/messaging_campaign.py --profile
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import math
import os
import platform
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segbench import StatementCounter  # noqa: E402  (bench/ is the script's folder)

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
ZONES = [
    ("en", "Europe/London"),
    ("sv", "Europe/Stockholm"),
    ("tr", "Europe/Istanbul"),
    ("de", "Europe/Berlin"),
]
NAMES = ["Anna", "Erik", "Ayşe", "Jonas", "Maria", "Oliver", "Elif", "Lena", "Sam", "Nora"]
PRODUCTS = 200
BATCH = 5000
TASK_SECONDS = 50  # personalization.tasks.DISPATCH_SECONDS

SUBJECT = "{{ greeting }} new in the shop this week"
PREHEADER = "Fresh roasts, and a few things picked for you"
BODY = """<p>{{ greeting }}</p>
<p>Our autumn roasts are in: three single origins, roasted this week in small batches, and a
new hand grinder for the way to work. Here is what we think you will like.</p>
{% recommendations 4 %}
<p><a href="{{ site_url }}">Visit the shop</a> for everything else.</p>"""


def _psql(server: str, database: str, sql: str) -> str:
    return subprocess.run(
        ["psql", f"{server}/{database}", "-qAtc", sql], check=True, capture_output=True, text=True
    ).stdout.strip()


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_KB / 1024


def _setup(args) -> None:
    exists = _psql(
        args.server, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{args.database}'"
    )
    fresh = not (args.keep_db and exists)
    if fresh:
        _psql(args.server, "postgres", f'DROP DATABASE IF EXISTS "{args.database}"')
        _psql(args.server, "postgres", f'CREATE DATABASE "{args.database}"')
    os.environ.update(
        DATABASE_URL=f"{args.server}/{args.database}",
        DJANGO_DEBUG="0",
        DJANGO_SETTINGS_MODULE="b3_settings",
        DEMO_VAR_DIR=tempfile.mkdtemp(prefix="pzn-bench-b3-"),
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return fresh


# --- Data ------------------------------------------------------------------------------------


def _data(*, recipients: int, now: dt.datetime, seed: int) -> dict:
    """Profiles, consent, segment, topic, catalogue, orders, the model. Seconds it took."""
    from django.db import connection

    from personalization.models import (
        ConsentRecord,
        Order,
        OrderLine,
        Product,
        Profile,
        Segment,
        SegmentMembership,
        Topic,
    )
    from personalization.recommendations import recommendations_build

    rng = random.Random(seed)
    started = time.perf_counter()
    products = Product.objects.bulk_create(
        Product(
            external_id=f"P{i}",
            sku=f"SKU-{i}",
            title=f"Product {i}",
            url=f"https://shop.example.com/p/{i}",
            image_url=f"https://shop.example.com/img/{i}.jpg",
            price=f"{5 + i % 40}.90",
            currency="EUR",
            category_path=["Coffee > Beans", "Coffee > Gear", "Tea", "Kitchen"][i % 4],
        )
        for i in range(PRODUCTS)
    )
    segment = Segment.objects.create(
        slug="b3-everyone",
        name="Everyone (B3)",
        kind="rule",
        rule={"all": [{"field": "orders_count", "op": "gte", "value": 0}]},
    )
    Topic.objects.create(slug="news", name="News", subscribed_by_default=True)
    granted_at = now - dt.timedelta(days=30)
    for start in range(0, recipients, BATCH):
        numbers = range(start, min(start + BATCH, recipients))
        profiles = Profile.objects.bulk_create(
            Profile(
                email=f"customer{i}@example.com",
                first_name=NAMES[i % len(NAMES)],
                locale=ZONES[i % len(ZONES)][0],
                timezone=ZONES[i % len(ZONES)][1],
            )
            for i in numbers
        )
        common = {
            "source": "checkout",
            "wording_version": "checkout-2026-10",
            "recorded_at": granted_at,
            "written_at": granted_at,
        }
        grants = ConsentRecord.objects.bulk_create(
            ConsentRecord(
                profile=p,
                purpose="email_marketing",
                status="granted",
                double_opt_in=True,
                email=p.email,
                **common,
            )
            for p in profiles
        )
        confirmed = granted_at + dt.timedelta(minutes=5)
        ConsentRecord.objects.bulk_create(
            [
                ConsentRecord(
                    profile_id=g.profile_id,
                    purpose="email_marketing",
                    status="granted",
                    double_opt_in=True,
                    confirms=g,
                    confirmed_at=confirmed,
                    email=g.email,
                    **{**common, "recorded_at": confirmed, "written_at": confirmed},
                )
                for g in grants
            ]
            + [
                ConsentRecord(profile=p, purpose="personalization", status="granted", **common)
                for i, p in zip(numbers, profiles, strict=True)
                if i % 2 == 0
            ]
        )
        SegmentMembership.objects.bulk_create(
            SegmentMembership(segment=segment, profile=p, entered_at=granted_at) for p in profiles
        )
        buyers = [p for i, p in zip(numbers, profiles, strict=True) if i % 20 == 0]
        orders = Order.objects.bulk_create(
            Order(
                external_id=f"O{p.pk}",
                profile=p,
                placed_at=now - dt.timedelta(days=rng.randint(1, 60)),
                total="30.00",
                currency="EUR",
                shop_total="30.00",
                source="import",
            )
            for p in buyers
        )
        OrderLine.objects.bulk_create(
            OrderLine(order=o, product=product, quantity=1, unit_price="10.00")
            for o in orders
            for product in rng.sample(products[: PRODUCTS // 2], rng.randint(1, 3))
        )
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    build_started = time.perf_counter()
    recommendations_build(now=now)
    return {"data_s": seconds, "build_s": time.perf_counter() - build_started}


def _campaign():
    from personalization.models import Campaign, Segment, Topic

    campaign = Campaign.objects.create(
        name="Autumn roasts (B3)",
        topic=Topic.objects.get(slug="news"),
        subject=SUBJECT,
        preheader=PREHEADER,
        body=BODY,
        send_mode="now",
        utm_campaign="autumn-roasts",
        lint_acknowledged=True,
    )
    campaign.include_segments.set([Segment.objects.get(slug="b3-everyone")])
    return campaign


def _reset() -> None:
    """With --keep-db: forget earlier runs' messages (so nobody is at the frequency cap)."""
    from personalization.models import Campaign, Message, MessageEvent

    MessageEvent.objects.all().delete()
    Message.objects.all().delete()
    Campaign.objects.all().delete()


# --- Dispatch, instrumented -----------------------------------------------------------------


class Meter:
    """Seconds and SQL by phase of the batches, the outbox checked and emptied after each."""

    PHASES = ("claim", "decide", "render", "send")

    def __init__(self):
        self.phase = "other"
        self.seconds: dict[str, float] = {}
        self.sql_ms: dict[str, float] = {}
        self.sql_n: dict[str, int] = {}
        self.batches = 0
        self.batch_seconds = 0.0
        self.outbox = 0
        self.without_headers = 0
        self.rss_mb: list[float] = []
        self.check_seconds = 0.0

    def __call__(self, execute, sql, params, many, context):  # an execute_wrapper
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.sql_ms[self.phase] = (
                self.sql_ms.get(self.phase, 0.0) + (time.perf_counter() - started) * 1000
            )
            self.sql_n[self.phase] = self.sql_n.get(self.phase, 0) + 1

    def wrap(self, name: str, function):
        def timed(*args, **kwargs):
            outer, self.phase = self.phase, name
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
                self.phase = outer

        return timed

    def outbox_drain(self) -> None:
        from django.core import mail

        started = time.perf_counter()
        box = getattr(mail, "outbox", [])
        self.outbox += len(box)
        for message in box:
            headers = message.extra_headers
            if not (headers.get("List-Unsubscribe") and headers.get("List-Unsubscribe-Post")):
                self.without_headers += 1
        box.clear()
        self.check_seconds += time.perf_counter() - started


def _instrument(meter: Meter):
    from personalization.messaging import dispatch, render

    for name in Meter.PHASES:
        original = getattr(dispatch, f"messages_{name}")
        setattr(dispatch, f"messages_{name}", meter.wrap(name, original))
    render.recommend_for_profile = meter.wrap("recommendations", render.recommend_for_profile)
    render.recommend_popular = meter.wrap("recommendations", render.recommend_popular)
    render.recommend_for_profiles = meter.wrap("recommendations", render.recommend_for_profiles)
    render.email_render = meter.wrap("email_render", render.email_render)
    batch = dispatch.messages_dispatch_batch

    def batch_timed(**kwargs):
        started = time.perf_counter()
        report = batch(**kwargs)
        meter.batch_seconds += time.perf_counter() - started
        meter.batches += 1 if report.claimed else 0
        meter.outbox_drain()
        meter.rss_mb.append(_rss_mb())
        return report

    dispatch.messages_dispatch_batch = batch_timed
    return batch


def _profile_batch(batch, meter: Meter, top: int) -> tuple[int, str]:
    profiler = cProfile.Profile()
    profiler.enable()
    report = batch()
    profiler.disable()
    meter.outbox_drain()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return report.sent, out.getvalue()


# --- The floor -------------------------------------------------------------------------------


def _floor(*, campaign, size: int, now: dt.datetime) -> dict:
    """email_render + the same mail to the same backend, only the token reads in the loop."""
    from django.conf import settings
    from django.core import mail
    from django.core.mail import get_connection
    from django.utils import translation

    from personalization.messaging import dispatch, render
    from personalization.messaging.policy import first_name_greeting
    from personalization.models import Message, Profile
    from personalization.preferences.links import preference_links
    from personalization.recommendations import recommend_for_profile

    profiles = list(Profile.objects.order_by("pk")[:size])
    copy = render.Copy.compile(
        subject=campaign.subject,
        preheader=campaign.preheader,
        body=campaign.body,
        utm_campaign=campaign.utm_campaign,
        topic_name=campaign.topic.name,
    )
    picks = recommend_for_profile(profile=profiles[1], limit=render.MAX_RECOMMENDATIONS, now=now)
    products = [render._product_data(item) for item in picks.items]
    message = Message(pk=0, kind="marketing", source="campaign")
    render_s = send_s = 0.0
    sent = 0
    connection = get_connection()
    connection.open()
    try:
        for start in range(0, len(profiles), 500):
            emails = []
            started = time.perf_counter()
            for profile in profiles[start : start + 500]:
                with translation.override(profile.locale or settings.LANGUAGE_CODE):
                    by_name = first_name_greeting(greeting="", locale=profile.locale)
                    links = preference_links(profile=profile)
                    context = {
                        "greeting": render.greeting_text(
                            first_name=profile.first_name, by_name=by_name
                        ),
                        "first_name": profile.first_name if by_name else "",
                        "shop_name": render.shop_name(),
                        "site_url": "https://shop.example.com",
                        "preference_centre_url": links.manage,
                        "unsubscribe_url": links.unsubscribe,
                        "personalized": False,
                        "_headers": links.headers,
                        render.RECOMMENDATIONS_KEY: products,
                    }
                    emails.append(render.email_render(copy=copy, context=context, to=profile.email))
            render_s += time.perf_counter() - started
            started = time.perf_counter()
            for email in emails:
                dispatch._mail(message, email, connection).send()
            send_s += time.perf_counter() - started
            sent += len(mail.outbox)
            mail.outbox.clear()
    finally:
        connection.close()
    return {"n": sent, "render_s": render_s, "send_s": send_s, "picks": len(products)}


# --- Main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="pzn_bench_b3")
    parser.add_argument(
        "--server", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--keep-db", action="store_true", help="reuse the data if it is there")
    parser.add_argument("--floor", type=int, default=5_000, help="recipients for the floor")
    parser.add_argument(
        "--task-runs",
        type=int,
        default=0,
        help="stop after this many task runs (0: until nothing is due); the rest is projected",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one extra batch first")
    parser.add_argument("--top", type=int, default=25, help="rows of the profile to print")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    load_before = os.getloadavg()
    fresh = _setup(args)
    from django import get_version
    from django.db import connection
    from django.utils import timezone

    from personalization.conf import app_settings
    from personalization.messaging import campaign_plan, campaign_schedule
    from personalization.messaging import dispatch as dispatch_module
    from personalization.messaging.campaigns import campaign_results
    from personalization.models import Profile

    now = timezone.now()
    data = {}
    if fresh or not Profile.objects.exists():
        data = _data(recipients=args.recipients, now=now, seed=args.seed)
    else:
        _reset()
    recipients = Profile.objects.count()
    campaign = _campaign()

    # (a) Planning.
    counter = StatementCounter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        campaign, lint = campaign_schedule(campaign=campaign, now=timezone.now())
        schedule_s = time.perf_counter() - started
        started = time.perf_counter()
        planned = campaign_plan(campaign_id=campaign.pk, now=timezone.now())
        plan_s = time.perf_counter() - started
    plan_statements = counter.count
    with connection.cursor() as cursor:  # what autovacuum would do soon (it may be off)
        cursor.execute("ANALYZE personalization_message")

    # (b) Dispatch: the task's own loop, one call = one task run.
    meter = Meter()
    batch = _instrument(meter)
    profiled_sent, profile_text = 0, ""
    rss_before = _rss_mb()
    if args.profile:
        with connection.execute_wrapper(meter):
            profiled_sent, profile_text = _profile_batch(batch, meter, args.top)
        meter.__init__()
        meter.outbox = profiled_sent
    task_runs = sent = claimed = 0
    wall_started = time.perf_counter()
    with connection.execute_wrapper(meter):
        while True:
            report = dispatch_module.messages_dispatch(seconds=TASK_SECONDS)
            if not report.claimed:
                break
            task_runs += 1
            sent += report.sent
            claimed += report.claimed
            elapsed = time.perf_counter() - wall_started
            phases = ", ".join(f"{k} {v:.0f}" for k, v in meter.seconds.items())
            print(
                f"task run {task_runs}: {sent:,} sent, {elapsed:.0f} s wall, "
                f"{meter.batch_seconds:.0f} s in {meter.batches} batches "
                f"({sent / meter.batch_seconds:.0f} msg/s; {phases}; "
                f"{sum(meter.sql_n.values()) / meter.batches:.0f} statements/batch; "
                f"RSS {max(meter.rss_mb):.0f} MB)",
                file=sys.stderr,
                flush=True,
            )
            if task_runs == args.task_runs:
                break
    wall_s = time.perf_counter() - wall_started
    results = campaign_results(campaign=campaign)

    # The floor.
    floor = _floor(campaign=campaign, size=min(args.floor, recipients), now=timezone.now())
    load_after = os.getloadavg()

    # --- Report.
    rate = sent / meter.batch_seconds
    floor_s = floor["render_s"] + floor["send_s"]
    statements = sum(meter.sql_n.values())
    print(f"## B3: a campaign to {recipients:,} recipients, Anymail's test backend\n")
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; "
        f"Python {platform.python_version()}; Django {get_version()}; "
        f"PostgreSQL {connection.pg_version // 10000}.{connection.pg_version % 10000}; "
        f"load before {' / '.join(f'{x:.2f}' for x in load_before)}, "
        f"after {' / '.join(f'{x:.2f}' for x in load_after)}; "
        f"batch size {app_settings.MESSAGE_BATCH_SIZE}\n"
    )
    if data:
        print(
            f"Data: {data['data_s']:.1f} s to write (untimed below), model built in "
            f"{data['build_s']:.1f} s. Lint: {len(lint.errors)} errors, "
            f"{len(lint.warnings)} warnings.\n"
        )
    print("| measure | value |")
    print("|---|---:|")
    print(f"| planning: `campaign_schedule` (lint included) | {schedule_s * 1000:.0f} ms |")
    print(
        f"| planning: `campaign_plan` ({planned:,} messages, {plan_statements} statements "
        f"both) | {plan_s:.2f} s |"
    )
    print(f"| dispatch: batches (of the timed run) | {meter.batches} |")
    print(f"| dispatch: time in batches | {meter.batch_seconds:.1f} s |")
    print(f"| dispatch: wall time of the task loop | {wall_s:.1f} s |")
    print(f"| **messages per second, one worker** (target ≥ 1,000) | **{rate:,.0f}** |")
    print(f"| task runs of `messages_dispatch` ({TASK_SECONDS} s each) | {task_runs} |")
    print(
        f"| **tasks per recipient** (target ≤ 1/500 = 0.002) | "
        f"**{task_runs / claimed:.6f}** (1 per {claimed / max(task_runs, 1):,.0f}) |"
    )
    if claimed < recipients:
        projected = math.ceil(recipients / rate / TASK_SECONDS)
        print(
            f"| the whole campaign at this rate (projected) | {recipients / rate / 60:.0f} min, "
            f"{projected} task runs, 1 per {recipients / projected:,.0f} recipients |"
        )
    print(f"| SQL statements per batch | {statements / meter.batches:.1f} |")
    sql_share = sum(meter.sql_ms.values()) / 1000 / meter.batch_seconds
    print(f"| SQL time, share of the batches | {sql_share:.0%} |")
    print(
        f"| resident memory over the batches (min–max) | "
        f"{min(meter.rss_mb):.0f}–{max(meter.rss_mb):.0f} MB (before: {rss_before:.0f}) |"
    )
    print(
        f"| peak RSS of the process (`ru_maxrss`, data set-up included) | "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB |"
    )
    print(
        f"| floor: render + send without the pipeline, {floor['n']:,} recipients | "
        f"{floor['n'] / floor_s:,.0f} msg/s (render {floor['render_s'] / floor['n'] * 1000:.2f} "
        f"ms, send {floor['send_s'] / floor['n'] * 1000:.2f} ms each) |"
    )
    print()
    print("| phase | s | ms / message | share | SQL statements / batch | SQL s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in (*Meter.PHASES, "recommendations", "email_render"):
        seconds = meter.seconds.get(name, 0.0)
        inner = name in ("recommendations", "email_render")
        label = f"  of render: `{name}`" if inner else name
        print(
            f"| {label} | {seconds:.1f} | {seconds / sent * 1000:.3f} | "
            f"{seconds / meter.batch_seconds:.0%} | "
            f"{meter.sql_n.get(name, 0) / meter.batches:.1f} | "
            f"{meter.sql_ms.get(name, 0.0) / 1000:.1f} |"
        )
    print()
    done = sent + profiled_sent
    all_sent = results == {
        "sent": done,
        **({"planned": recipients - done} if done < recipients else {}),
    }
    print(
        f"Check: states {results}; outbox {meter.outbox:,} messages "
        f"({'one per message sent' if meter.outbox == done else 'MISMATCH'}), "
        f"{meter.without_headers} without List-Unsubscribe headers; "
        f"{'every message claimed was sent' if all_sent else 'NOT ALL SENT'}. Outbox checks took "
        f"{meter.check_seconds:.1f} s outside the batches."
    )
    if profile_text:
        print(f"\n### cProfile of one batch ({profiled_sent} messages)\n\n```")
        print(profile_text.strip())
        print("```")
    if not (all_sent and meter.outbox == done and not meter.without_headers):
        sys.exit(1)


if __name__ == "__main__":
    main()
