#!/usr/bin/env python
"""B5 (read): one customer's recommendations, p95 against a hand-written statement.

Runs on a database the data generator filled (``bench/generate_data.py --database NAME``),
with a current recommendation model (if there is none, one is built first, untimed). For
``--profiles`` customers with personalisation consent, picked in a fixed pseudo-random order,
it times ``recommend_for_profile(profile=..., limit=10, now=...)`` as an email or the account
page calls it (the profile already loaded, as a view has it), counting its SQL statements,
and ``recommend_for_product(product=..., profile=..., limit=10)`` for a product that customer
bought or viewed (a random product when they have none). Prints p50/p95/p99.

In the same run, for each customer, it times the *floor* (taking turns with the app's read as
to which goes first, so neither always finds the customer's rows already in memory): one hand-
written statement doing the personal part of the work (``FLOOR_SQL``): the customer's recent
purchases, views and cart weighted by age, joined to their neighbours in the current model,
without what they bought (unless repeat), their cart, sensitive, inactive and out-of-stock
products and categories resting after a durable purchase, summed and the best 10 returned. It
skips what the app adds around that: the consent check, the fill-up with bestsellers, loading
the products. The read's ratio to it is the cost of the app around the database's own work.

Nothing is written (besides the model when there is none).

    flock /tmp/bench/1m.lock .venv/bin/python bench/recommendations_read.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segbench import StatementCounter, django_setup, percentile  # noqa: E402  (bench/ is the script's folder)

FLOOR_SQL = """
    WITH
    blocked AS (
        SELECT p.id FROM personalization_product p
        WHERE p.is_sensitive OR EXISTS (
            SELECT 1 FROM personalization_productcategory c
            WHERE c.product_id = p.id AND c.name_key = ANY(%(blocked)s))),
    seeds (product_id, w) AS (
        SELECT product_id, sum(w) FROM (
            SELECT l.product_id, 1.0 * power(0.5, extract(epoch FROM %(now)s - max(o.placed_at))
                                              / 86400 / %(half_life)s) AS w
            FROM personalization_order o
            JOIN personalization_orderline l ON l.order_id = o.id
            WHERE o.profile_id = %(profile)s AND o.status = 'placed'
              AND o.placed_at BETWEEN %(since)s AND %(now)s
            GROUP BY l.product_id
            UNION ALL
            SELECT e.product_id, 0.3 * power(0.5, extract(epoch FROM %(now)s - max(e.occurred_at))
                                              / 86400 / %(half_life)s)
            FROM personalization_event e
            WHERE e.profile_id = %(profile)s AND e.name = 'product_viewed'
              AND NOT e.is_sensitive AND e.occurred_at BETWEEN %(since)s AND %(now)s
            GROUP BY e.product_id
            UNION ALL
            SELECT l.product_id, 0.8
            FROM personalization_cart c JOIN personalization_cartline l ON l.cart_id = c.id
            WHERE c.profile_id = %(profile)s AND c.status = 'open') s
        WHERE product_id NOT IN (SELECT id FROM blocked)
        GROUP BY product_id),
    bought AS (
        SELECT l.product_id, p.purchase_cycle, p.repurchase_interval_days, p.category_path,
               max(o.placed_at) AS last_at
        FROM personalization_order o
        JOIN personalization_orderline l ON l.order_id = o.id
        JOIN personalization_product p ON p.id = l.product_id
        WHERE o.profile_id = %(profile)s AND o.status = 'placed'
        GROUP BY 1, 2, 3, 4),
    excluded AS (
        SELECT product_id FROM bought
        WHERE purchase_cycle <> 'repeat' AND repurchase_interval_days IS NULL
        UNION
        SELECT l.product_id
        FROM personalization_cart c JOIN personalization_cartline l ON l.cart_id = c.id
        WHERE c.profile_id = %(profile)s AND c.status = 'open'
        UNION
        SELECT c.product_id FROM personalization_productcategory c
        WHERE c.key IN (SELECT lower(category_path) FROM bought
                        WHERE purchase_cycle = 'durable' AND last_at >= %(cool_since)s))
    SELECT n.neighbour_id, sum(s.w * n.score) AS score
    FROM seeds s
    JOIN personalization_productneighbour n ON n.product_id = s.product_id
    JOIN personalization_recommendationmodel m ON m.id = n.build_id AND m.is_current
    JOIN personalization_product p ON p.id = n.neighbour_id AND p.active AND p.in_stock
    WHERE n.neighbour_id NOT IN (SELECT id FROM blocked)
      AND n.neighbour_id NOT IN (SELECT product_id FROM excluded)
    GROUP BY n.neighbour_id
    ORDER BY score DESC, n.neighbour_id
    LIMIT 10
"""


def _customers(n: int, *, seed: int) -> list[int]:
    """``n`` consenting customers in a fixed pseudo-random order (one query over the ids)."""
    from personalization.consent import consented_q
    from personalization.models import Profile, Purpose

    ids = list(
        Profile.objects.filter(consented_q(Purpose.PERSONALIZATION))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    random.Random(seed).shuffle(ids)
    return ids[:n]


def _product_for(profile) -> int | None:
    from personalization.models import Event, OrderLine

    bought = (
        OrderLine.objects.filter(order__profile=profile)
        .order_by("-order__placed_at")
        .values_list("product_id", flat=True)
        .first()
    )
    return bought or (
        Event.objects.filter(profile=profile, product__isnull=False)
        .order_by("-occurred_at")
        .values_list("product_id", flat=True)
        .first()
    )


def _floor_params(profile_id: int, now: dt.datetime) -> dict:
    from personalization.conf import app_settings

    return {
        "profile": profile_id,
        "now": now,
        "since": now - dt.timedelta(days=app_settings.RECOMMENDATION_HISTORY_DAYS),
        "cool_since": now - dt.timedelta(days=app_settings.RECOMMENDATION_DURABLE_COOLDOWN_DAYS),
        "half_life": float(app_settings.RECOMMENDATION_HALF_LIFE_DAYS),
        "blocked": sorted({name.casefold() for name in app_settings.SENSITIVE_CATEGORIES}),
    }


def _timed(call) -> tuple[float, object, StatementCounter]:
    from django.db import connection

    counter = StatementCounter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        result = call()
        return (time.perf_counter() - started) * 1000, result, counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="pzn_bench_seg")
    parser.add_argument(
        "--server", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--profiles", type=int, default=1000, help="Timed customers (1000).")
    parser.add_argument("--warm-up", type=int, default=50, help="Untimed customers first (50).")
    parser.add_argument("--seed", type=int, default=1, help="Which customers (1).")
    parser.add_argument(
        "--now",
        default="2026-11-01T00:00:00+00:00",
        help="The time of the reads (default: the generator's default --until).",
    )
    args = parser.parse_args()
    django_setup(server=args.server, database=args.database, prefix="pzn-bench-recread-")

    from django.db import connection

    from personalization.models import Order, Product, Profile, RecommendationModel
    from personalization.recommendations import (
        recommend_for_product,
        recommend_for_profile,
        recommendations_build,
    )

    now = dt.datetime.fromisoformat(args.now)
    if not RecommendationModel.objects.current().exists():
        print("Building the recommendation model first (untimed)…", file=sys.stderr)
        recommendations_build(now=now)
    customers = _customers(args.warm_up + args.profiles, seed=args.seed)
    product_ids = list(Product.objects.values_list("pk", flat=True))
    rng = random.Random(args.seed)
    rows = []
    with connection.cursor() as cursor:
        for number, pk in enumerate(customers):
            profile = Profile.objects.get(pk=pk)
            product = Product.objects.get(pk=_product_for(profile) or rng.choice(product_ids))

            def ours():
                return _timed(
                    lambda: recommend_for_profile(profile=profile, limit=10, now=now)  # noqa: B023
                )

            def floor():
                started = time.perf_counter()
                cursor.execute(FLOOR_SQL, _floor_params(pk, now))  # noqa: B023
                picks = cursor.fetchall()
                return (time.perf_counter() - started) * 1000, picks

            # Whichever reads a customer's rows first pays for bringing them into memory: take
            # turns, so that neither the app nor the floor always finds them warm.
            if number % 2:
                floor_ms, floor_picks = floor()
                profile_ms, picks, profile_counter = ours()
            else:
                profile_ms, picks, profile_counter = ours()
                floor_ms, floor_picks = floor()
            product_ms, _, product_counter = _timed(
                lambda: recommend_for_product(  # noqa: B023
                    product=product,  # noqa: B023
                    profile=profile,  # noqa: B023
                    limit=10,
                    now=now,
                )
            )
            if number >= args.warm_up:
                rows.append(
                    {
                        "profile": profile_ms,
                        "product": product_ms,
                        "floor": floor_ms,
                        "statements": profile_counter.count,
                        "product_statements": product_counter.count,
                        "personalized": picks.personalized,
                        "from_model": sum(
                            item.reason in ("bought_together", "viewed_together") for item in picks
                        ),
                        "floor_picks": len(floor_picks),
                    }
                )
            if (number + 1) % 100 == 0:
                print(f"  {number + 1}/{len(customers)}", file=sys.stderr)

    sizes = {
        "profiles": Profile.objects.count(),
        "orders": Order.objects.count(),
        "products": Product.objects.count(),
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        server = cursor.fetchone()[0].split(" on ")[0]
    load = os.getloadavg()
    personal = [r for r in rows if r["personalized"]]
    print(
        f"\nRecommendation reads on {args.database}: "
        + ", ".join(f"{n:,} {name}" for name, n in sizes.items())
        + f"; {len(rows)} consenting customers timed after {args.warm_up} untimed; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {server}; "
        f"load {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n"
    )
    print("| timed | p50 ms | p95 ms | p99 ms | max ms | mean ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, label, subset in (
        ("profile", "`recommend_for_profile()`, every customer", rows),
        ("profile", "`recommend_for_profile()`, personalised results only", personal),
        ("product", "`recommend_for_product()` with the profile", rows),
        ("floor", "floor: one hand-written statement", rows),
    ):
        values = [r[key] for r in subset]
        if values:
            print(
                f"| {label} | {percentile(values, 50):.1f} | {percentile(values, 95):.1f} "
                f"| {percentile(values, 99):.1f} | {max(values):.1f} "
                f"| {statistics.mean(values):.1f} |"
            )
    reads, floors = [r["profile"] for r in rows], [r["floor"] for r in rows]
    print(
        f"\nrecommend_for_profile / floor: p50 "
        f"{percentile(reads, 50) / percentile(floors, 50):.1f}x, p95 "
        f"{percentile(reads, 95) / percentile(floors, 95):.1f}x (target: p95 <= 10 ms)"
    )
    counts = sorted({r["statements"] for r in rows})
    product_counts = sorted({r["product_statements"] for r in rows})
    print(
        f"Statements: recommend_for_profile {counts[0]}–{counts[-1]}, "
        f"recommend_for_product {product_counts[0]}–{product_counts[-1]}. "
        f"{len(personal)} of {len(rows)} results personalised; on average "
        f"{statistics.mean(r['from_model'] for r in rows):.1f} of 10 picks from the model "
        f"({statistics.mean(r['floor_picks'] for r in rows):.1f} in the floor's answer)."
    )


if __name__ == "__main__":
    main()
