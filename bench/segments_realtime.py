#!/usr/bin/env python
"""B2: realtime segment update of one profile after an order, on PostgreSQL.

Runs on a database the data generator filled (``bench/generate_data.py --database NAME``),
whose segments have been refreshed (``bench/segments_refresh.py`` leaves them so; if none has
been, one full refresh runs first, untimed). For each of ``--profiles`` different customers
(identified profiles picked in a fixed pseudo-random order) it records one new order with
``order_record()`` — which also records the segments-update job, as in the shop — and then
runs what that job runs, ``segments_update_for_profiles(profile_ids=[pk])``, timing the two
separately and counting the SQL statements of the update. Prints p50/p95/p99.

In the same run, after each update, it times the *floor*: one hand-written statement asking
PostgreSQL the same question for that customer (which of the five lifecycle segments they
belong in, and which they have an open stay in), the shortest way we could write it, sent
as it is (planned every time) and as a prepared statement (planned once per connection, a
separate psycopg connection with server-side binding). The update's ratio to them is the
cost of the app around the database's own work.

The orders it added are deleted at the end and those profiles' statistics and memberships put
back (untimed; their stays keep the extra entry/exit history, which the next B1 run empties).

    .venv/bin/python bench/segments_realtime.py --database pzn_bench_seg
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segbench import StatementCounter, django_setup, lifecycle_params, percentile  # noqa: E402  (bench/ is the script's folder)

PREFIX = "B2-"


# The floor: the five lifecycle definitions (bench/segments_refresh.py's HAND_WRITTEN, default
# thresholds) and the open stays, for one profile, in one statement.
FLOOR_SQL = """
    SELECT
      p.orders_count = 0 AND EXISTS (
        SELECT 1 FROM personalization_consentrecord g
        WHERE g.profile_id = p.id AND g.purpose = 'email_marketing'
          AND g.status = 'granted' AND (NOT g.double_opt_in OR g.confirmed_at IS NOT NULL)
          AND NOT EXISTS (
            SELECT 1 FROM personalization_consentrecord w
            WHERE w.profile_id = p.id AND w.purpose = 'email_marketing'
              AND w.status = 'withdrawn' AND (w.ordered_at, w.id) > (g.ordered_at, g.id))),
      p.first_order_at >= %(new_since)s,
      p.orders_count > 0 AND p.last_order_at < %(lapsed_before)s,
      (SELECT count(*) FROM personalization_order o WHERE o.profile_id = p.id
         AND o.status = 'placed' AND o.placed_at >= %(loyal_since)s) >= 3,
      EXISTS (
        SELECT 1 FROM personalization_cart c
        WHERE c.profile_id = p.id AND c.status = 'open'
          AND c.source_updated_at BETWEEN %(cart_after)s AND %(cart_before)s
          AND EXISTS (SELECT 1 FROM personalization_cartline l WHERE l.cart_id = c.id)
          AND NOT EXISTS (
            SELECT 1 FROM personalization_order o
            WHERE o.profile_id = p.id AND o.status = 'placed'
              AND o.placed_at > c.source_updated_at)),
      ARRAY(SELECT m.segment_id FROM personalization_segmentmembership m
            WHERE m.profile_id = p.id AND m.exited_at IS NULL)
    FROM personalization_profile p WHERE p.id = %(profile)s
"""


def _floor_timed(cursor, params: dict, *, prepare: bool | None = None) -> float:
    started = time.perf_counter()
    if prepare is None:
        cursor.execute(FLOOR_SQL, params)
    else:
        cursor.execute(FLOOR_SQL, params, prepare=prepare)
    cursor.fetchall()
    return (time.perf_counter() - started) * 1000


def _customers(n: int) -> list[tuple[int, str]]:
    """``n`` identified profiles in a fixed pseudo-random order (same every run)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, email FROM personalization_profile WHERE email <> '' "
            "ORDER BY md5(id::text) LIMIT %s",
            [n],
        )
        return cursor.fetchall()


def _cleanup(profile_ids: list[int], now: dt.datetime) -> None:
    from personalization.models import Job, Order, Profile
    from personalization.segments import segments_update_for_profiles
    from personalization.segments.jobs import SEGMENTS_UPDATE_JOB
    from personalization.stats import profile_stats_rebuild

    Order.objects.filter(external_id__startswith=PREFIX).delete()
    Job.objects.filter(task=SEGMENTS_UPDATE_JOB).delete()
    profile_stats_rebuild(profiles=Profile.objects.filter(pk__in=profile_ids))
    segments_update_for_profiles(profile_ids=profile_ids, now=now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="pzn_bench_seg")
    parser.add_argument(
        "--server", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--profiles", type=int, default=500, help="Timed profiles (500).")
    parser.add_argument("--warm-up", type=int, default=30, help="Untimed profiles first (30).")
    parser.add_argument(
        "--now",
        default="2026-11-01T00:00:00+00:00",
        help="The time of the orders and updates (default: the generator's default --until).",
    )
    args = parser.parse_args()
    django_setup(server=args.server, database=args.database, prefix="pzn-bench-rt-")

    from django.db import connection

    from personalization.commerce import order_record
    from personalization.identity import Identity
    from personalization.models import Order, Product, Profile, Segment
    from personalization.segments import segments_refresh, segments_update_for_profiles

    now = dt.datetime.fromisoformat(args.now)
    Order.objects.filter(external_id__startswith=PREFIX).delete()  # a run that was cut short
    if Segment.objects.filter(refreshed_at__isnull=True).exists():
        print("Refreshing the segments first (untimed)…", file=sys.stderr)
        segments_refresh(now=now)
    product = (
        Product.objects.filter(price__isnull=False)
        .order_by("pk")
        .values_list("external_id", "price")
        .first()
    )
    customers = _customers(args.warm_up + args.profiles)
    rows = []
    by_kind: dict[str, list[float]] = {}
    import psycopg

    prepared_connection = psycopg.connect(
        f"{args.server}/{args.database}", autocommit=True, prepare_threshold=0
    )
    prepared = prepared_connection.cursor()
    try:
        for number, (pk, email) in enumerate(customers):
            placed_at = now - dt.timedelta(minutes=5)
            started = time.perf_counter()
            order_record(
                order_id=f"{PREFIX}{number}",
                identity=Identity(email=email),
                placed_at=placed_at,
                total=str(product[1]),
                currency_code="EUR",
                lines=[{"product_id": product[0], "quantity": 1, "unit_price": str(product[1])}],
            )
            recorded = time.perf_counter()
            counter = StatementCounter(by_kind=by_kind if number >= args.warm_up else {})
            with connection.execute_wrapper(counter):
                updated_started = time.perf_counter()
                changes = segments_update_for_profiles(profile_ids=[pk], now=now)
                updated = time.perf_counter()
            floor_params = {**lifecycle_params(now), "profile": pk}
            with connection.cursor() as cursor:
                floor = _floor_timed(cursor, floor_params)
            floor_prepared = _floor_timed(prepared, floor_params, prepare=True)
            if number >= args.warm_up:
                rows.append(
                    {
                        "floor": floor,
                        "floor_prepared": floor_prepared,
                        "order": (recorded - started) * 1000,
                        "update": (updated - updated_started) * 1000,
                        "statements": counter.count,
                        "rest": (updated - updated_started) * 1000 - counter.ms,
                        "changed": bool(changes),
                    }
                )
    finally:
        prepared_connection.close()
        _cleanup([pk for pk, _ in customers], now)

    profiles = Profile.objects.count()
    orders = Order.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        server = cursor.fetchone()[0].split(" on ")[0]
    print(
        f"\nB2 on {args.database}: {profiles:,} profiles, {orders:,} orders; {len(rows)} "
        f"customers timed after {args.warm_up} untimed; {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {server}; load {os.getloadavg()[0]:.1f}\n"
    )
    print("| timed | p50 ms | p95 ms | p99 ms | max ms | mean ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, label in (
        ("update", "`segments_update_for_profiles(profile_ids=[pk])` alone"),
        ("floor", "floor: one hand-written statement, planned each time"),
        ("floor_prepared", "floor: the same, prepared once"),
        ("order", "`order_record()` before it (not part of B2)"),
    ):
        values = [r[key] for r in rows]
        print(
            f"| {label} | {percentile(values, 50):.1f} | {percentile(values, 95):.1f} "
            f"| {percentile(values, 99):.1f} | {max(values):.1f} "
            f"| {statistics.mean(values):.1f} |"
        )
    updates = [r["update"] for r in rows]
    for floor in ("floor", "floor_prepared"):
        floors = [r[floor] for r in rows]
        print(
            f"\nUpdate / {floor}: p50 "
            f"{percentile(updates, 50) / percentile(floors, 50):.1f}x, "
            f"p95 {percentile(updates, 95) / percentile(floors, 95):.1f}x"
        )
    counts = sorted({r["statements"] for r in rows})
    changed = [r for r in rows if r["changed"]]
    print(
        f"\nStatements per update: {counts[0]}–{counts[-1]} "
        f"({statistics.mean(r['statements'] for r in rows):.1f} on average); "
        f"{len(changed)} of {len(rows)} updates changed a membership."
    )
    for label, subset in (
        ("changed", changed),
        ("unchanged", [r for r in rows if not r["changed"]]),
    ):
        if subset:
            print(
                f"- {label}: {len(subset)}, statements "
                f"{sorted({r['statements'] for r in subset})}, p95 "
                f"{percentile([r['update'] for r in subset], 95):.1f} ms"
            )
    print("\n| statement of the update | calls | p50 ms | p95 ms |")
    print("|---|---:|---:|---:|")
    for kind, times in sorted(by_kind.items(), key=lambda item: -sum(item[1])):
        print(
            f"| `{kind}` | {len(times)} | {percentile(times, 50):.1f} "
            f"| {percentile(times, 95):.1f} |"
        )
    rest = [r["rest"] for r in rows]
    print(
        f"| everything else (the COMMIT, Python) | {len(rest)} | {percentile(rest, 50):.1f} "
        f"| {percentile(rest, 95):.1f} |"
    )


if __name__ == "__main__":
    main()
