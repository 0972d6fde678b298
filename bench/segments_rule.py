#!/usr/bin/env python
"""B1-rule: a rule segment of ten conditions of different kinds, against hand-written SQL.

Runs on a database the data generator filled (``bench/generate_data.py --database NAME``),
which it reuses and never drops. It defines one rule segment (``RULE``, slug
``bench_b1_rule``) with ``rule_segment_define()``, empties that segment's memberships, and
times, in the same run and on the same data:

- ``floor``: ``SELECT count(*) FROM (<hand-written membership query>)``, the best of
  ``--repeat``: the same member set written straight against the tables the shortest way we
  know (``HAND_WRITTEN``);
- ``set``: ``SELECT count(*) FROM (<rule_members(RULE, now=now)>)``, the app's compiled rule,
  best of ``--repeat`` too, alternating with the floor, so ``set / floor`` compares like with
  like;
- ``refresh``: ``segment_refresh()`` of the rule segment, with the SQL statements it sends
  counted: *first* at ``--now`` (no memberships yet, everyone enters), then *steady* at
  ``--now`` + 15 minutes (the schedule's next run).

Before timing, it runs ``ANALYZE`` (what autovacuum, off on the benchmark server, would have
done; the generator leaves the category table unanalysed). After each refresh the stored open
stays are compared with the hand-written set (untimed): both must hold exactly the same
profiles. ``--jit off`` measures without PostgreSQL's JIT compilation (on by default, it
compiles every query whose estimated cost is above ``jit_above_cost``). ``--explain`` adds the
summary lines of ``EXPLAIN (ANALYZE, BUFFERS)`` of both count queries; ``--plans DIR`` writes
the full plans there.

Only the benchmark's own segment is written (and deleted at the end unless ``--keep``).

    .venv/bin/python bench/segments_rule.py --database pzn_bench_seg --explain
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segbench import StatementCounter, django_setup, stored_differs, timed_count  # noqa: E402  (bench/ is the script's folder)

SLUG = "bench_b1_rule"
CATEGORY = "Coffee & Tea"
TOPIC = "coffee-and-tea"
COUNTRIES = ["SE", "DE", "GB", "NL", "FI"]

# "European coffee and tea regulars, drifting: at least 100 spent, two orders and some coffee
# or tea in the last year, but nothing for two weeks; still looking at coffee or tea, or have
# some in an open cart; email marketing granted, hear about coffee and tea; not lapsed."
RULE = {
    "all": [
        {"field": "profile.country", "op": "in", "value": COUNTRIES},
        {"field": "stats.total_spent", "op": "gte", "value": 100},
        {"field": "stats.days_since_last_order", "op": "gte", "value": 14},
        {
            "field": "orders.bought_category",
            "op": "eq",
            "value": CATEGORY,
            "within_days": 365,
        },
        {"field": "orders.count", "op": "gte", "value": 2, "within_days": 365},
        {
            "any": [
                {
                    "field": "events.viewed_category",
                    "op": "eq",
                    "value": CATEGORY,
                    "at_least": 2,
                    "within_days": 90,
                },
                {"field": "cart.contains_category", "op": "eq", "value": CATEGORY},
            ]
        },
        {"field": "consent.email_marketing", "op": "eq", "value": "granted"},
        {"field": "topics.subscribed", "op": "eq", "value": TOPIC},
        {"not": {"field": "segment", "op": "eq", "value": "lapsed"}},
    ]
}

# The same membership written straight against the tables. Only placed orders, product views
# not stored as sensitive, open carts and usable products count (not flagged sensitive, no
# level of the category path in a blocked SENSITIVE_CATEGORIES name); a category is its
# ProductCategory key (unique per product, so joining it never repeats a row); consent as the
# ``lead`` query of segments_refresh.py; the topic is on by default (checked), so hearing about
# it is having no choice against it; lapsed as in lifecycle.py. %(x)s are computed from ``now``.
HAND_WRITTEN = """
    SELECT p.id FROM personalization_profile p
    WHERE p.country = ANY(%(countries)s)
      AND p.total_spent >= 100
      AND p.last_order_at <= %(days_14)s
      AND NOT (p.orders_count > 0 AND p.last_order_at < %(lapsed_before)s)
      AND p.id IN (
        SELECT o.profile_id FROM personalization_order o
        WHERE o.status = 'placed' AND o.placed_at >= %(days_365)s
        GROUP BY o.profile_id HAVING count(*) >= 2)
      AND EXISTS (
        SELECT 1 FROM personalization_order o
        JOIN personalization_orderline l ON l.order_id = o.id
        JOIN personalization_product pr ON pr.id = l.product_id AND NOT pr.is_sensitive
          AND NOT EXISTS (SELECT 1 FROM personalization_productcategory b
                          WHERE b.product_id = pr.id AND b.name_key = ANY(%(blocked)s))
        JOIN personalization_productcategory pc ON pc.product_id = pr.id AND pc.key = %(key)s
        WHERE o.profile_id = p.id AND o.status = 'placed' AND o.placed_at >= %(days_365)s)
      AND (
        p.id IN (
          SELECT e.profile_id FROM personalization_event e
          JOIN personalization_product pr ON pr.id = e.product_id AND NOT pr.is_sensitive
          AND NOT EXISTS (SELECT 1 FROM personalization_productcategory b
                          WHERE b.product_id = pr.id AND b.name_key = ANY(%(blocked)s))
          JOIN personalization_productcategory pc ON pc.product_id = pr.id AND pc.key = %(key)s
          WHERE e.name = 'product_viewed' AND NOT e.is_sensitive
            AND e.occurred_at >= %(days_90)s
          GROUP BY e.profile_id HAVING count(*) >= 2)
        OR EXISTS (
          SELECT 1 FROM personalization_cart c
          JOIN personalization_cartline l ON l.cart_id = c.id
          JOIN personalization_product pr ON pr.id = l.product_id AND NOT pr.is_sensitive
          AND NOT EXISTS (SELECT 1 FROM personalization_productcategory b
                          WHERE b.product_id = pr.id AND b.name_key = ANY(%(blocked)s))
          JOIN personalization_productcategory pc ON pc.product_id = pr.id AND pc.key = %(key)s
          WHERE c.profile_id = p.id AND c.status = 'open'))
      AND EXISTS (
        SELECT 1 FROM personalization_consentrecord g
        WHERE g.profile_id = p.id AND g.purpose = 'email_marketing'
          AND g.status = 'granted' AND (NOT g.double_opt_in OR g.confirmed_at IS NOT NULL)
          AND NOT EXISTS (
            SELECT 1 FROM personalization_consentrecord w
            WHERE w.profile_id = p.id AND w.purpose = 'email_marketing'
              AND w.status = 'withdrawn'
              AND (w.ordered_at, w.id) > (g.ordered_at, g.id)))
      AND NOT EXISTS (
        SELECT 1 FROM personalization_topicpreference tp
        JOIN personalization_topic t ON t.id = tp.topic_id
        WHERE tp.profile_id = p.id AND t.slug = %(topic)s AND NOT tp.subscribed)
"""


def _check_assumptions() -> None:
    """What the hand-written query takes for granted."""
    from personalization.conf import app_settings as s
    from personalization.models import Topic

    if s.LAPSED_AFTER_DAYS != 180:
        sys.exit("The hand-written query assumes LAPSED_AFTER_DAYS = 180.")
    if not Topic.objects.filter(slug=TOPIC, subscribed_by_default=True).exists():
        sys.exit(f"The hand-written query assumes the topic {TOPIC!r} is on by default.")


def _hand_params(now: dt.datetime) -> dict:
    from personalization.segments.rules.validate import (
        blocked_category_names,
        category_value_key,
    )

    day = dt.timedelta(days=1)
    return {
        "countries": COUNTRIES,
        "days_14": now - 14 * day,
        "lapsed_before": now - 180 * day,
        "days_365": now - 365 * day,
        "days_90": now - 90 * day,
        "key": category_value_key(CATEGORY),
        "topic": TOPIC,
        "blocked": sorted(blocked_category_names()),
    }


def _floor_sql() -> str:
    return f"SELECT count(*) FROM ({HAND_WRITTEN}) s"


def _set_sql(now: dt.datetime) -> tuple[str, tuple]:
    from personalization.segments.rules import rule_members

    sql, params = rule_members(RULE, now=now).order_by().values("pk").query.sql_with_params()
    return f"SELECT count(*) FROM ({sql}) s", params


def _explain(sql: str, params) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return [row[0] for row in cursor.fetchall()]


def _summary(plan: list[str]) -> list[str]:
    """The plan's top node and its buffers, the JIT timing, the planning and execution times."""
    lines = plan[:1]
    if len(plan) > 1 and plan[1].strip().startswith("Buffers:"):
        lines.append(plan[1])
    summary = ("JIT:", "  Functions:", "  Timing:", "Planning Time", "Execution Time")
    return lines + [line for line in plan if line.startswith(summary)]


def _segment_fresh():
    """The benchmark's rule segment, defined (validated) anew, without memberships."""
    from django.db import connection

    from personalization.models import SegmentDailyCount, SegmentMembership
    from personalization.segments import rule_segment_define

    segment, _created = rule_segment_define(
        slug=SLUG, rule=RULE, name="B1-rule benchmark", description="bench/segments_rule.py"
    )
    SegmentMembership.objects.filter(segment=segment).delete()
    SegmentDailyCount.objects.filter(segment=segment).delete()
    segment.member_count, segment.refreshed_at = 0, None
    segment.save(update_fields=["member_count", "refreshed_at"])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE personalization_segmentmembership")
    return segment


def _compare(now: dt.datetime, repeat: int) -> dict:
    floor_sql, floor_params = _floor_sql(), _hand_params(now)
    set_sql, set_params = _set_sql(now)
    floors, sets = [], []
    for _ in range(repeat):  # alternately, the best of each: the machine is shared
        floors.append(timed_count(floor_sql, floor_params))
        sets.append(timed_count(set_sql, set_params))
    (floor_s, floor_n), (set_s, set_n) = min(floors), min(sets)
    if floor_n != set_n:
        sys.exit(f"hand-written {floor_n} members, rule_members {set_n}")
    return {"floor": floor_s, "set": set_s, "members": floor_n}


def _refresh(segment, now: dt.datetime, *, verify: bool) -> dict:
    from django.db import connection

    from personalization.segments import segment_refresh

    counter = StatementCounter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        result = segment_refresh(segment=segment, now=now)
        seconds = time.perf_counter() - started
    if verify and (
        differs := stored_differs(HAND_WRITTEN, _hand_params(now), segment_id=segment.pk)
    ):
        sys.exit(f"{differs} profiles differ between the stored and the hand-written set")
    with connection.cursor() as cursor:  # what autovacuum would do (it is off here)
        cursor.execute("VACUUM ANALYZE personalization_segmentmembership")
    return {
        "refresh": seconds,
        "statements": counter.count,
        "members": result.members,
        "entered": result.entered,
        "exited": result.exited,
    }


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
        "--explain", action="store_true", help="Print EXPLAIN (ANALYZE, BUFFERS) summaries."
    )
    parser.add_argument("--plans", type=Path, help="Write both full plans into this directory.")
    parser.add_argument(
        "--no-verify", action="store_true", help="Skip comparing the stored set (untimed)."
    )
    parser.add_argument(
        "--jit",
        choices=("on", "off"),
        help="Set PostgreSQL's jit for this session (default: the server's setting).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the segment afterwards.")
    args = parser.parse_args()
    django_setup(server=args.server, database=args.database, prefix="pzn-bench-rule-")
    _check_assumptions()

    from django.db import connection

    from personalization.models import Order, Profile

    now = dt.datetime.fromisoformat(args.now)
    profiles, orders = Profile.objects.count(), Order.objects.count()
    print(f"{profiles:,} profiles, {orders:,} orders", file=sys.stderr)
    with connection.cursor() as cursor:
        # Planner statistics for every table, as autovacuum (off on the benchmark server)
        # keeps them; the generator leaves some tables unanalysed (ProductCategory).
        cursor.execute("ANALYZE")
        if args.jit:
            cursor.execute(f"SET jit = {args.jit}")
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
    segment = _segment_fresh()
    # Read every table both queries touch once, so neither pays for the first read from disk.
    timed_count(_floor_sql(), _hand_params(now))
    timed_count(*_set_sql(now))

    compared = _compare(now, args.repeat)
    print(
        f"  floor {compared['floor']:.3f}s set {compared['set']:.3f}s "
        f"({compared['members']:,} members)",
        file=sys.stderr,
    )
    passes = []
    for name, at in (("first", now), ("steady", now + dt.timedelta(minutes=15))):
        row = {"pass": name, **_refresh(segment, at, verify=not args.no_verify)}
        passes.append(row)
        print(
            f"  {name:7} refresh {row['refresh']:.2f}s +{row['entered']:,} -{row['exited']:,} "
            f"{row['statements']} statements",
            file=sys.stderr,
        )
    plans = {}
    if args.explain or args.plans:
        plans = {
            "hand-written": _explain(_floor_sql(), _hand_params(now)),
            "rule_members": _explain(*_set_sql(now)),
        }
    if args.plans:
        args.plans.mkdir(parents=True, exist_ok=True)
        for name, plan in plans.items():
            (args.plans / f"{name}.txt").write_text("\n".join(plan) + "\n")
    if not args.keep:
        segment.delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        server = cursor.fetchone()[0].split(" on ")[0]

    print(
        f"\nB1-rule on {args.database}: {profiles:,} profiles, {orders:,} orders; now "
        f"{now:%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {server}, jit {jit}; "
        f"load {os.getloadavg()[0]:.1f}\n"
    )
    ratio = compared["set"] / compared["floor"]
    print("| members | floor s | set s | set / floor |")
    print("|---:|---:|---:|---:|")
    print(
        f"| {compared['members']:,} | {compared['floor']:.3f} | {compared['set']:.3f} "
        f"| {ratio:.2f} |"
    )
    print(
        "\n| pass | members | entered | exited | refresh s | refresh / floor "
        "| diff s (refresh − set) | statements |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in passes:
        print(
            f"| {r['pass']} | {r['members']:,} | {r['entered']:,} | {r['exited']:,} "
            f"| {r['refresh']:.2f} | {r['refresh'] / compared['floor']:.2f} "
            f"| {r['refresh'] - compared['set']:.2f} | {r['statements']} |"
        )
    for name, plan in plans.items() if args.explain else ():
        print(f"\n`{name}`:\n\n```")
        print("\n".join(_summary(plan)))
        print("```")


if __name__ == "__main__":
    main()
