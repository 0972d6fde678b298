#!/usr/bin/env python
"""B2: realtime segment update of one profile after an order, on PostgreSQL.

Runs on a database the data generator filled (``bench/generate_data.py --database NAME``),
whose segments have been refreshed (``bench/segments_refresh.py`` leaves them so; if none has
been, one full refresh runs first, untimed). For each of ``--profiles`` different customers
(identified profiles picked in a fixed pseudo-random order) it records one new order with
``order_record()`` — which also records the segments-update job, as in the shop — and then
runs what that job runs, ``segments_update_for_profiles(profile_ids=[pk])``, timing the two
separately and counting the SQL statements of the update. Prints p50/p95/p99.

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
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PREFIX = "B2-"


def _setup(args: argparse.Namespace) -> None:
    os.environ.update(
        DATABASE_URL=f"{args.server}/{args.database}",
        DJANGO_DEBUG="0",
        DJANGO_SETTINGS_MODULE="demo_shop.settings",
        DEMO_VAR_DIR=tempfile.mkdtemp(prefix="pzn-bench-rt-"),
    )
    import django

    django.setup()


class _StatementCounter:
    """Counts the statements sent and sums their time by kind (the statement's first words)."""

    def __init__(self, by_kind: dict[str, list[float]]) -> None:
        self.count = 0
        self.ms = 0.0
        self.by_kind = by_kind

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            kind = " ".join(sql.split()[:4])[:60]
            ms = (time.perf_counter() - started) * 1000
            self.ms += ms
            self.by_kind.setdefault(kind, []).append(ms)


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


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
    _setup(args)

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
            counter = _StatementCounter(by_kind if number >= args.warm_up else {})
            with connection.execute_wrapper(counter):
                updated_started = time.perf_counter()
                changes = segments_update_for_profiles(profile_ids=[pk], now=now)
                updated = time.perf_counter()
            if number >= args.warm_up:
                rows.append(
                    {
                        "order": (recorded - started) * 1000,
                        "update": (updated - updated_started) * 1000,
                        "statements": counter.count,
                        "rest": (updated - updated_started) * 1000 - counter.ms,
                        "changed": bool(changes),
                    }
                )
    finally:
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
        ("order", "`order_record()` before it (not part of B2)"),
    ):
        values = [r[key] for r in rows]
        print(
            f"| {label} | {_percentile(values, 50):.1f} | {_percentile(values, 95):.1f} "
            f"| {_percentile(values, 99):.1f} | {max(values):.1f} "
            f"| {statistics.mean(values):.1f} |"
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
                f"{_percentile([r['update'] for r in subset], 95):.1f} ms"
            )
    print("\n| statement of the update | calls | p50 ms | p95 ms |")
    print("|---|---:|---:|---:|")
    for kind, times in sorted(by_kind.items(), key=lambda item: -sum(item[1])):
        print(
            f"| `{kind}` | {len(times)} | {_percentile(times, 50):.1f} "
            f"| {_percentile(times, 95):.1f} |"
        )
    rest = [r["rest"] for r in rows]
    print(
        f"| everything else (the COMMIT, Python) | {len(rest)} | {_percentile(rest, 50):.1f} "
        f"| {_percentile(rest, 95):.1f} |"
    )


if __name__ == "__main__":
    main()
