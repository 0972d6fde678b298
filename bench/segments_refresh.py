#!/usr/bin/env python
"""B1: full refresh of the five lifecycle segments on PostgreSQL, against hand-written SQL.

Runs on a database the data generator filled (``bench/generate_data.py --database NAME``),
which it reuses and never drops. It empties the segments' memberships and daily counts first,
then refreshes every lifecycle segment three times, at ``--now`` (default: the generator's
``--until``), at ``--now`` + 15 minutes and at ``--now`` + 1 day:

- *first*: nobody is a member yet, so everyone in a segment enters;
- *steady*: the schedule's next run, little changes;
- *next day*: time moved on, customers lapse, new customers stop being new, carts age.

For each segment and pass it times, in the same run and on the same data:

- ``floor``: ``SELECT count(*) FROM (<hand-written membership query>)``, best of
  ``--repeat``: PostgreSQL computing the member set the shortest way we know to write it,
  and nothing else;
- ``set``: ``SELECT count(*) FROM (<the app's ORM definition>)`` — the same work for the
  app's query (best of ``--repeat`` too, alternating with the floor), so ``set / floor``
  compares like with like;
- ``refresh``: ``segment_refresh()`` itself — lock, close the stays of those who left, open
  those of who entered, count, daily count — with the SQL statements it sends counted.

``refresh - set`` is the cost of applying the difference on top of computing the set. In the
first pass, where the difference is everybody, it also times ``write floor``: the hand-written
set inserted with one ``INSERT … SELECT`` and committed into an empty copy of the membership
table (same columns, indexes, constraints and deferred foreign keys, dropped afterwards), the
least that storing the first refresh can cost. After
each pass the stored open stays are checked against the hand-written query (untimed): both
must hold exactly the same profiles. ``ANALYZE`` of the membership table runs (untimed)
between passes, as autovacuum would on a live server (it is off on the benchmark server).

    .venv/bin/python bench/segments_refresh.py --database pzn_bench_seg

Peak RSS is this process's high-water mark (``ru_maxrss``), the harness included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segbench import StatementCounter, django_setup, lifecycle_params, stored_differs, timed_count  # noqa: E402  (bench/ is the script's folder)

SLUGS = ("lead", "new_customer", "lapsed", "loyal", "cart_abandoner")

# The hand-written membership queries: the same definitions as personalization/segments/
# lifecycle.py with the default thresholds, written straight against the tables. %(x)s are
# timestamps computed from ``now``.
HAND_WRITTEN = {
    # Current email-marketing consent: a grant that counts (no double opt-in, or confirmed)
    # with no withdrawal after it in ledger order; and no order that counts.
    "lead": """
        SELECT p.id FROM personalization_profile p
        WHERE p.orders_count = 0 AND EXISTS (
            SELECT 1 FROM personalization_consentrecord g
            WHERE g.profile_id = p.id AND g.purpose = 'email_marketing'
              AND g.status = 'granted' AND (NOT g.double_opt_in OR g.confirmed_at IS NOT NULL)
              AND NOT EXISTS (
                SELECT 1 FROM personalization_consentrecord w
                WHERE w.profile_id = p.id AND w.purpose = 'email_marketing'
                  AND w.status = 'withdrawn'
                  AND (w.ordered_at, w.id) > (g.ordered_at, g.id)))
    """,
    "new_customer": """
        SELECT p.id FROM personalization_profile p WHERE p.first_order_at >= %(new_since)s
    """,
    "lapsed": """
        SELECT p.id FROM personalization_profile p
        WHERE p.orders_count > 0 AND p.last_order_at < %(lapsed_before)s
    """,
    "loyal": """
        SELECT o.profile_id FROM personalization_order o
        WHERE o.status = 'placed' AND o.placed_at >= %(loyal_since)s
        GROUP BY o.profile_id HAVING count(*) >= 3
    """,
    "cart_abandoner": """
        SELECT DISTINCT c.profile_id FROM personalization_cart c
        WHERE c.status = 'open'
          AND c.source_updated_at BETWEEN %(cart_after)s AND %(cart_before)s
          AND EXISTS (SELECT 1 FROM personalization_cartline l WHERE l.cart_id = c.id)
          AND NOT EXISTS (
            SELECT 1 FROM personalization_order o
            WHERE o.profile_id = c.profile_id AND o.status = 'placed'
              AND o.placed_at > c.source_updated_at)
    """,
}


def _check_defaults() -> None:
    from personalization.conf import app_settings as s

    defaults = (s.LOYAL_MIN_ORDERS, s.NEW_CUSTOMER_DAYS, s.LAPSED_AFTER_DAYS, s.LOYAL_WITHIN_DAYS)
    if defaults != (3, 30, 180, 365):
        sys.exit("The hand-written queries assume the default lifecycle thresholds.")


def _set_sql(slug: str, now: dt.datetime) -> tuple[str, tuple]:
    from personalization.segments import lifecycle_members

    sql, params = lifecycle_members(slug, now=now).order_by().values("pk").query.sql_with_params()
    return f"SELECT count(*) FROM ({sql}) s", params


def _floor_sql(slug: str) -> str:
    return f"SELECT count(*) FROM ({HAND_WRITTEN[slug]}) s"


def _write_floor(slug: str, segment_id: int, now: dt.datetime) -> float:
    """Time inserting the hand-written set into an empty copy of the membership table."""
    from django.db import connection, transaction

    table = "pzn_bench_floor_membership"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(
            f"CREATE TABLE {table} (LIKE personalization_segmentmembership INCLUDING ALL)"
        )
        for column, target in (("profile_id", "profile"), ("segment_id", "segment")):
            cursor.execute(
                f"ALTER TABLE {table} ADD FOREIGN KEY ({column}) "
                f"REFERENCES personalization_{target} (id) DEFERRABLE INITIALLY DEFERRED"
            )
        started = time.perf_counter()
        with transaction.atomic():
            cursor.execute(
                f"INSERT INTO {table} (segment_id, profile_id, entered_at) "
                f"SELECT %(segment)s, h.id, %(now)s FROM ({HAND_WRITTEN[slug]}) h (id)",
                {**lifecycle_params(now), "segment": segment_id, "now": now},
            )
        seconds = time.perf_counter() - started
        cursor.execute(f"DROP TABLE {table}")
    return seconds


def _reset() -> None:
    from django.db import connection

    from personalization.models import Segment

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE personalization_segmentmembership, personalization_segmentdailycount"
        )
        # What autovacuum does on a live server (it is off here): up-to-date planner
        # statistics (generators before the fix analysed profiles before their stats), and
        # the profiles vacuumed after the stats rebuild rewrote every row (index-only scans
        # of their primary key need the visibility map).
        cursor.execute("VACUUM ANALYZE personalization_profile")
        cursor.execute("ANALYZE")
    Segment.objects.update(member_count=0, refreshed_at=None)
    _analyze()


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE personalization_segmentmembership")


def run_pass(name: str, now: dt.datetime, *, verify: bool, repeat: int) -> list[dict]:
    from django.db import connection

    from personalization.models import Segment
    from personalization.segments import segment_refresh

    rows = []
    for slug in SLUGS:
        segment = Segment.objects.get(slug=slug)
        set_sql, set_params = _set_sql(slug, now)
        floors, sets = [], []
        for _ in range(repeat):  # alternately, the best of each: the machine is shared
            floors.append(timed_count(_floor_sql(slug), lifecycle_params(now)))
            sets.append(timed_count(set_sql, set_params))
        (floor_s, floor_n), (set_s, set_n) = min(floors), min(sets)
        write_floor_s = _write_floor(slug, segment.pk, now) if name == "first" else None
        counter = StatementCounter()
        with connection.execute_wrapper(counter):
            started = time.perf_counter()
            result = segment_refresh(segment=segment, now=now)
            refresh_s = time.perf_counter() - started
        if not floor_n == set_n == result.members:
            sys.exit(f"{slug}: floor {floor_n}, app set {set_n}, stored {result.members}")
        hand_written = HAND_WRITTEN[slug]
        if verify and (
            differs := stored_differs(hand_written, lifecycle_params(now), segment_id=segment.pk)
        ):
            sys.exit(f"{slug}: {differs} profiles differ between stored and hand-written sets")
        rows.append(
            {
                "pass": name,
                "slug": slug,
                "members": result.members,
                "entered": result.entered,
                "exited": result.exited,
                "floor": floor_s,
                "set": set_s,
                "refresh": refresh_s,
                "write_floor": write_floor_s,
                "statements": counter.count,
            }
        )
        print(
            f"  {name:8} {slug:15} members {result.members:>8,} +{result.entered:<8,} "
            f"-{result.exited:<8,} floor {floor_s:6.2f}s set {set_s:6.2f}s "
            f"refresh {refresh_s:6.2f}s  {counter.count} statements",
            file=sys.stderr,
        )
    _analyze()
    return rows


def _warm_up(now: dt.datetime) -> None:
    """Read every table the queries touch once, so no pass pays for the first read from disk."""
    for slug in SLUGS:
        timed_count(_floor_sql(slug), lifecycle_params(now))
        timed_count(*_set_sql(slug, now))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="pzn_bench_seg")
    parser.add_argument(
        "--server", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument(
        "--now",
        default="2026-11-01T00:00:00+00:00",
        help="When the first refresh runs (default: the generator's default --until).",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="Best of N for the floor and set timings (3)."
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="Skip comparing the stored sets (untimed)."
    )
    args = parser.parse_args()
    django_setup(server=args.server, database=args.database, prefix="pzn-bench-seg-")
    _check_defaults()

    from django.db import connection

    from personalization.models import Order, Profile

    now = dt.datetime.fromisoformat(args.now)
    profiles, orders = Profile.objects.count(), Order.objects.count()
    print(f"{profiles:,} profiles, {orders:,} orders; resetting memberships", file=sys.stderr)
    _reset()
    _warm_up(now)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    passes = [
        ("first", now),
        ("steady", now + dt.timedelta(minutes=15)),
        ("next day", now + dt.timedelta(days=1)),
    ]
    started = time.perf_counter()
    rows = []
    for name, at in passes:
        rows += run_pass(name, at, verify=not args.no_verify, repeat=args.repeat)
    wall = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        server = cursor.fetchone()[0].split(" on ")[0]

    print(
        f"\nB1 on {args.database}: {profiles:,} profiles, {orders:,} orders; now "
        f"{now:%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {server}; "
        f"load {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| pass | segment | members | entered | exited | floor s | set s | set / floor "
        "| refresh s | refresh / floor | diff s (refresh − set) | statements |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['pass']} | `{r['slug']}` | {r['members']:,} | {r['entered']:,} "
            f"| {r['exited']:,} | {r['floor']:.3f} | {r['set']:.3f} "
            f"| {r['set'] / r['floor']:.2f} | {r['refresh']:.2f} "
            f"| {r['refresh'] / r['floor']:.2f} | {r['refresh'] - r['set']:.2f} "
            f"| {r['statements']} |"
        )
    print("\n| first pass | entered | write floor s | refresh s | refresh / write floor |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        if r["write_floor"] is not None:
            print(
                f"| `{r['slug']}` | {r['entered']:,} | {r['write_floor']:.2f} "
                f"| {r['refresh']:.2f} | {r['refresh'] / r['write_floor']:.2f} |"
            )
    print()
    print("| pass | floor s | set s | refresh s, five segments | statements |")
    print("|---|---:|---:|---:|---:|")
    for name, _ in passes:
        mine = [r for r in rows if r["pass"] == name]
        print(
            f"| {name} | {sum(r['floor'] for r in mine):.2f} | {sum(r['set'] for r in mine):.2f} "
            f"| {sum(r['refresh'] for r in mine):.2f} | {sum(r['statements'] for r in mine)} |"
        )
    print(
        f"\nPeak RSS {rss:.0f} MiB (before the first refresh: {rss_before:.0f} MiB); "
        f"whole run {wall:.0f} s."
    )


if __name__ == "__main__":
    main()
