#!/usr/bin/env python
"""Recommendations (issue 9): offline quality on the generator's data, against bestsellers.

Method (leave the last order out):

1. The source database (``--source``, a database ``bench/generate_data.py`` filled; generated
   with ``--scales 20000 --workers 1`` when missing) is copied to the scratch database
   ``pzn_bench_quality_scratch`` (``CREATE DATABASE … TEMPLATE``, dropped at the end unless
   ``--keep``). Everything below runs on the copy; the source is only read by the copy.
2. Held out: for every profile with at least 2 placed orders, its last placed order (latest
   ``placed_at``, then highest id). Its *cut-off* is that order's ``placed_at`` minus 24 hours.
   Deleted from the copy, set-based (a few SQL statements): for each such profile every order
   (and its lines) placed at or after the cut-off (the held-out order; anything else there too),
   and every event and cart changed at or after the cut-off (the generator writes product views
   and add-to-cart events in the hour before each order: they would give the answer away).
   The held-out orders' products are kept aside first.
3. The model is built once on what is left, ``recommendations_build(now=anchor)``, anchor =
   the latest remaining order's ``placed_at`` + 1 s (timed). So the neighbours, the app's
   bestseller counts and the learned intervals include *other* customers' orders after a
   given profile's cut-off (the usual leave-last-out simplification), never the profile's own.
4. Evaluated on a fixed pseudo-random sample (``--sample``, ``--seed``) of held-out profiles
   with the personalisation consent, each at ``now = cut-off``. ``has_consent()`` has no time
   parameter, so this is the *current* consent (what ``recommend_for_profile`` itself reads),
   not the consent at the cut-off. Profiles without it are reported apart (a sample of the
   same size): the app then shows bestsellers, ``personalized=False``. Per profile:

   - **ours**: ``recommend_for_profile(profile=p, limit=10, now=cutoff)`` (timed);
   - **bestsellers**: the 10 active, in-stock products named by the most placed orders in
     the 90 days before the cut-off (ties by id), nothing else excluded (one query per
     profile, hand-written);
   - **bestsellers + rules**: the same ranking, skipping what breaks a rule for this profile:
     the fair baseline.

   Measures:

   - **hit@10**: share of profiles with at least one recommended product in the held-out
     order; **hit@10 (recommendable)**: the same over the profiles whose held-out order has a
     product that could be recommended at all (active, in stock, not sensitive), counting only
     those products: the ceiling any rule-abiding method is judged against;
   - **coverage**: distinct products recommended over the sample / active, in-stock,
     non-sensitive products;
   - **rule breaks**: share of recommendations breaking a rule, checked here independently of
     the app's code (own queries per profile, own category matching): sensitive (``is_sensitive``
     or a level of its category path in ``SENSITIVE_CATEGORIES``, case-insensitive, except
     ``RECOMMENDATION_ALLOWED_SENSITIVE_CATEGORIES`` for a consenting customer), inactive or
     out of stock, bought (placed order) before the cut-off and not a repeat purchase
     (``purchase_cycle`` ``repeat`` or a ``repurchase_interval_days``), in the category (or
     below) of a ``durable`` product bought within ``RECOMMENDATION_DURABLE_COOLDOWN_DAYS``
     before the cut-off, in the customer's open cart. For customers without consent only the
     first two apply (their data may not be read, so what they bought cannot be left out);
   - our picks' reasons (share per reason code) and the mean time per ``recommend_for_profile``.

Active and in-stock are the products' current flags (the generator does not date them).

    .venv/bin/python bench/recommendations_quality.py                       # 20k, 2000 profiles
    .venv/bin/python bench/recommendations_quality.py --source pzn_bench_quality100k
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segbench import django_setup  # noqa: E402  (bench/ is the script's folder)

SCRATCH = "pzn_bench_quality_scratch"
FORBIDDEN = {"pzn_bench_seg"}  # another benchmark's database: never copied, never dropped
BASELINE_DAYS = 90
CUTOFF_BEFORE = dt.timedelta(hours=24)

HOLD_OUT_SQL = [
    """CREATE TABLE bench_quality_heldout AS
       SELECT DISTINCT ON (o.profile_id) o.profile_id, o.id AS order_id, o.placed_at,
              o.placed_at - interval '24 hours' AS cutoff
       FROM personalization_order o
       WHERE o.status = 'placed' AND o.profile_id IN (
           SELECT profile_id FROM personalization_order
           WHERE status = 'placed' AND profile_id IS NOT NULL
           GROUP BY profile_id HAVING count(*) >= 2)
       ORDER BY o.profile_id, o.placed_at DESC, o.id DESC""",
    "ALTER TABLE bench_quality_heldout ADD PRIMARY KEY (profile_id)",
    """CREATE TABLE bench_quality_heldout_line AS
       SELECT DISTINCT h.profile_id, l.product_id
       FROM bench_quality_heldout h JOIN personalization_orderline l ON l.order_id = h.order_id""",
    """CREATE TABLE bench_quality_removed_order AS
       SELECT o.id FROM personalization_order o
       JOIN bench_quality_heldout h ON h.profile_id = o.profile_id
       WHERE o.placed_at >= h.cutoff""",
    """DELETE FROM personalization_orderline
       WHERE order_id IN (SELECT id FROM bench_quality_removed_order)""",
    "DELETE FROM personalization_order WHERE id IN (SELECT id FROM bench_quality_removed_order)",
    """DELETE FROM personalization_event e USING bench_quality_heldout h
       WHERE e.profile_id = h.profile_id AND e.occurred_at >= h.cutoff""",
    """CREATE TABLE bench_quality_removed_cart AS
       SELECT c.id FROM personalization_cart c
       JOIN bench_quality_heldout h ON h.profile_id = c.profile_id
       WHERE c.source_updated_at >= h.cutoff""",
    """DELETE FROM personalization_cartline
       WHERE cart_id IN (SELECT id FROM bench_quality_removed_cart)""",
    "DELETE FROM personalization_cart WHERE id IN (SELECT id FROM bench_quality_removed_cart)",
    "ANALYZE",
]

BESTSELLERS_SQL = """
    SELECT l.product_id
    FROM personalization_order o
    JOIN personalization_orderline l ON l.order_id = o.id
    JOIN personalization_product p ON p.id = l.product_id AND p.active AND p.in_stock
    WHERE o.status = 'placed' AND o.placed_at >= %(since)s AND o.placed_at < %(cutoff)s
    GROUP BY l.product_id
    ORDER BY count(DISTINCT o.id) DESC, l.product_id
"""

BOUGHT_SQL = """
    SELECT l.product_id, p.purchase_cycle, p.repurchase_interval_days, p.category_path,
           max(o.placed_at)
    FROM personalization_order o
    JOIN personalization_orderline l ON l.order_id = o.id
    JOIN personalization_product p ON p.id = l.product_id
    WHERE o.profile_id = %(profile)s AND o.status = 'placed' AND o.placed_at < %(cutoff)s
    GROUP BY 1, 2, 3, 4
"""

CART_SQL = """
    SELECT DISTINCT l.product_id
    FROM personalization_cart c JOIN personalization_cartline l ON l.cart_id = c.id
    WHERE c.profile_id = %(profile)s AND c.status = 'open'
"""


def _psql(server: str, database: str, sql: str) -> str:
    return subprocess.run(
        ["psql", f"{server}/{database}", "-qAtc", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _levels(path: str) -> list[str]:
    """The category path's levels, trimmed and case-folded (own parsing, not the app's)."""
    return [level.strip().casefold() for level in (path or "").split(">") if level.strip()]


def _under(path: str, category: list[str]) -> bool:
    """Whether ``path`` is ``category`` or below it."""
    return bool(category) and _levels(path)[: len(category)] == category


class Catalogue:
    """Every product's flags, read once, and the rule checks that need no customer."""

    def __init__(self, cursor, settings: dict):
        cursor.execute(
            "SELECT id, active, in_stock, is_sensitive, category_path, purchase_cycle, "
            "repurchase_interval_days FROM personalization_product"
        )
        self.rows = {row[0]: row[1:] for row in cursor.fetchall()}
        sensitive = {name.casefold() for name in settings.get("SENSITIVE_CATEGORIES", [])}
        allowed = {
            name.casefold()
            for name in settings.get("RECOMMENDATION_ALLOWED_SENSITIVE_CATEGORIES", [])
        }
        self.flagged = {pk for pk, row in self.rows.items() if row[2]}
        self.blocked = {  # in a sensitive category, for anyone
            pk for pk, row in self.rows.items() if sensitive & set(_levels(row[3]))
        }
        self.blocked_consented = {  # in a sensitive category not allowed with consent
            pk for pk, row in self.rows.items() if (sensitive - allowed) & set(_levels(row[3]))
        }
        self.unavailable = {pk for pk, row in self.rows.items() if not (row[0] and row[1])}
        self.recommendable = set(self.rows) - self.unavailable - self.flagged - self.blocked

    def not_showable(self, *, consented: bool) -> set[int]:
        return (
            self.unavailable
            | self.flagged
            | (self.blocked_consented if consented else self.blocked)
        )


def _personal_breaks(cursor, *, profile_id: int, cutoff: dt.datetime, catalogue, cooldown):
    """Products this customer must not be shown at ``cutoff``, by rule: bought (not repeat),
    in a category resting after a durable purchase, in the open cart."""
    params = {"profile": profile_id, "cutoff": cutoff}
    cursor.execute(BOUGHT_SQL, params)
    bought, resting = set(), []
    for product_id, cycle, interval, path, last in cursor.fetchall():
        if cycle != "repeat" and interval is None:
            bought.add(product_id)
        if cycle == "durable" and last >= cutoff - cooldown:
            resting.append(_levels(path))
    cursor.execute(CART_SQL, params)
    return {
        "bought": bought,
        "resting": {
            pk
            for pk, row in catalogue.rows.items()
            if any(_under(row[3], category) for category in resting)
        },
        "cart": {row[0] for row in cursor.fetchall()},
    }


def _evaluate(profiles, *, consented: bool, catalogue, cooldown, label: str):
    """Recommend for each profile three ways; per method: hits, picks and rule breaks."""
    from django.db import connection

    from personalization.models import Profile
    from personalization.recommendations import recommend_for_profile

    methods = ("ours", "bestsellers", "bestsellers + rules")
    stats = {
        m: {
            "hits": 0,
            "hits_rec": 0,
            "hits_allowed": 0,
            "picks": 0,
            "breaks": 0,
            "products": set(),
            "rules": Counter(),
        }
        for m in methods
    }
    reasons: Counter = Counter()
    times, personalized, with_recommendable, with_allowed = [], 0, 0, 0
    never = catalogue.not_showable(consented=consented)
    never_rules = {
        "sensitive": never - catalogue.unavailable,
        "inactive or out of stock": catalogue.unavailable,
    }
    with connection.cursor() as cursor:
        for number, (profile_id, cutoff) in enumerate(profiles):
            profile = Profile.objects.get(pk=profile_id)
            started = time.perf_counter()
            result = recommend_for_profile(profile=profile, limit=10, now=cutoff)
            times.append((time.perf_counter() - started) * 1000)
            personalized += result.personalized
            reasons.update(str(item.reason) for item in result)

            cursor.execute(
                "SELECT product_id FROM bench_quality_heldout_line WHERE profile_id = %s",
                [profile_id],
            )
            held_out = {row[0] for row in cursor.fetchall()}
            held_out_rec = held_out & catalogue.recommendable
            with_recommendable += bool(held_out_rec)
            cursor.execute(
                BESTSELLERS_SQL,
                {"since": cutoff - dt.timedelta(days=BASELINE_DAYS), "cutoff": cutoff},
            )
            ranking = [row[0] for row in cursor.fetchall()]
            rules = dict(never_rules)
            if consented:
                rules.update(
                    _personal_breaks(
                        cursor,
                        profile_id=profile_id,
                        cutoff=cutoff,
                        catalogue=catalogue,
                        cooldown=cooldown,
                    )
                )
            breaking = set().union(*rules.values())
            held_out_allowed = held_out - breaking
            with_allowed += bool(held_out_allowed)
            picks = {
                "ours": [item.product.pk for item in result],
                "bestsellers": ranking[:10],
                "bestsellers + rules": [pk for pk in ranking if pk not in breaking][:10],
            }
            for method, products in picks.items():
                s = stats[method]
                s["picks"] += len(products)
                s["breaks"] += sum(pk in breaking for pk in products)
                s["products"].update(products)
                s["hits"] += bool(held_out & set(products))
                s["hits_rec"] += bool(held_out_rec & set(products))
                s["hits_allowed"] += bool(held_out_allowed & set(products))
                for rule, products_breaking in rules.items():
                    s["rules"][rule] += sum(pk in products_breaking for pk in products)
            if (number + 1) % 500 == 0:
                print(f"  {label}: {number + 1}/{len(profiles)}", file=sys.stderr)
    return {
        "n": len(profiles),
        "stats": stats,
        "reasons": reasons,
        "times": times,
        "personalized": personalized,
        "with_recommendable": with_recommendable,
        "with_allowed": with_allowed,
    }


def _table(results: list[tuple[str, dict]], *, recommendable: int) -> None:
    print(
        "| method | profiles | hit@10 | hit@10 (recommendable) | coverage | rule breaks "
        "| picks / profile |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, r in results:
        for method, s in r["stats"].items():
            n, nr = r["n"], r["with_recommendable"]
            print(
                f"| {method}, {label} | {n:,} | {s['hits'] / n:.1%} | "
                f"{s['hits_rec'] / nr if nr else 0:.1%} (of {nr:,}) | "
                f"{len(s['products'])} / {recommendable} = "
                f"{len(s['products']) / recommendable:.1%} | "
                f"{s['breaks'] / s['picks'] if s['picks'] else 0:.2%} "
                f"({s['breaks']:,} of {s['picks']:,}) | {s['picks'] / n:.1f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="pzn_bench_quality20k")
    parser.add_argument(
        "--server", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--sample", type=int, default=2000, help="Profiles per group (2000).")
    parser.add_argument("--seed", type=int, default=1, help="Which profiles (1).")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    args = parser.parse_args()
    if args.source in FORBIDDEN or args.source == SCRATCH:
        sys.exit(f"--source {args.source}: not this one")

    exists = _psql(
        args.server, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{args.source}'"
    )
    if not exists:
        print(f"{args.source} missing: generating it (20,000 profiles)…", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "generate_data.py"),
                "--scales",
                "20000",
                "--workers",
                "1",
                "--database",
                args.source,
            ],
            check=True,
            stdout=sys.stderr,
        )
    _psql(args.server, "postgres", f'DROP DATABASE IF EXISTS "{SCRATCH}"')
    started = time.perf_counter()
    _psql(args.server, "postgres", f'CREATE DATABASE "{SCRATCH}" TEMPLATE "{args.source}"')
    print(f"Copied {args.source} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    try:
        _run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            _psql(args.server, "postgres", f'DROP DATABASE IF EXISTS "{SCRATCH}"')


def _run(args) -> None:
    django_setup(server=args.server, database=SCRATCH, prefix="pzn-bench-recquality-")

    from django.conf import settings
    from django.db import connection

    from personalization.conf import app_settings
    from personalization.consent import consented_q
    from personalization.models import Order, Product, Profile, Purpose
    from personalization.recommendations import recommendations_build

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM personalization_order")
        orders_before = cursor.fetchone()[0]
        started = time.perf_counter()
        for sql in HOLD_OUT_SQL:
            cursor.execute(sql)
        hold_out_s = time.perf_counter() - started
        cursor.execute("SELECT count(*), min(cutoff), max(cutoff) FROM bench_quality_heldout")
        held_out_n, first_cutoff, last_cutoff = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM bench_quality_removed_order")
        removed_orders = cursor.fetchone()[0]
        cursor.execute("SELECT max(placed_at) FROM personalization_order")
        anchor = cursor.fetchone()[0] + dt.timedelta(seconds=1)
    print(
        f"Held out {held_out_n:,} orders ({removed_orders:,} orders removed) in "
        f"{hold_out_s:.1f} s; cut-offs {first_cutoff:%Y-%m-%d} … {last_cutoff:%Y-%m-%d}",
        file=sys.stderr,
    )

    started = time.perf_counter()
    report = recommendations_build(now=anchor)
    build_s = time.perf_counter() - started
    print(
        f"recommendations_build(now={anchor.isoformat()}): {build_s:.1f} s, "
        f"{report.neighbours:,} neighbours for {report.products:,} products",
        file=sys.stderr,
    )

    consenting = set(
        Profile.objects.filter(consented_q(Purpose.PERSONALIZATION)).values_list("pk", flat=True)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT profile_id, cutoff FROM bench_quality_heldout ORDER BY profile_id")
        held_out = cursor.fetchall()
        catalogue = Catalogue(cursor, getattr(settings, "PERSONALIZATION", {}))
    rng = random.Random(args.seed)
    rng.shuffle(held_out)
    with_consent = [row for row in held_out if row[0] in consenting]
    without = [row for row in held_out if row[0] not in consenting]
    cooldown = dt.timedelta(days=app_settings.RECOMMENDATION_DURABLE_COOLDOWN_DAYS)
    results = [
        (
            "consent",
            _evaluate(
                with_consent[: args.sample],
                consented=True,
                catalogue=catalogue,
                cooldown=cooldown,
                label="with consent",
            ),
        ),
        (
            "no consent",
            _evaluate(
                without[: args.sample],
                consented=False,
                catalogue=catalogue,
                cooldown=cooldown,
                label="without consent",
            ),
        ),
    ]

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        server = cursor.fetchone()[0].split(" on ")[0]
    import django

    load = os.getloadavg()
    recommendable = len(catalogue.recommendable)
    print(
        f"\nOffline quality on a copy of {args.source}: {Profile.objects.count():,} profiles, "
        f"{orders_before:,} orders ({Order.objects.count():,} after holding out), "
        f"{Product.objects.count():,} products ({recommendable} recommendable: active, in "
        f"stock, not sensitive); {held_out_n:,} held-out last orders ({len(with_consent):,} "
        f"with personalisation consent), cut-offs {first_cutoff:%Y-%m-%d} … "
        f"{last_cutoff:%Y-%m-%d}; model built at {anchor:%Y-%m-%d %H:%M:%S} in {build_s:.1f} s "
        f"({report.neighbours:,} neighbours); sample seed {args.seed}.\n"
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, Django "
        f"{django.get_version()}, {server}; load {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f}; {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n"
    )
    _table(results, recommendable=recommendable)
    for label, r in results:
        total = sum(r["reasons"].values())
        shares = ", ".join(
            f"{reason} {r['reasons'][reason] / total:.1%}"
            for reason in (
                "restock",
                "bought_together",
                "viewed_together",
                "popular_in_category",
                "bestseller",
                "in_cart",
            )
            if r["reasons"][reason] or reason != "in_cart"
        )
        print(
            f"\nOurs, {label}: {r['personalized']:,} of {r['n']:,} results personalised; "
            f"reasons of {total:,} picks: {shares}. recommend_for_profile: mean "
            f"{statistics.mean(r['times']):.1f} ms, median {statistics.median(r['times']):.1f} "
            f"ms per call."
        )
    for label, r in results:
        na = r["with_allowed"]
        print(
            f"\n{label.capitalize()}: {na:,} of {r['n']:,} held-out orders have a product the "
            "rules allow for that customer at the cut-off (not only ones bought before, resting "
            "or unavailable); hit@10 over those products: "
            + ", ".join(
                f"{method} {s['hits_allowed'] / na if na else 0:.1%}"
                for method, s in r["stats"].items()
            )
            + ". Rule breaks by rule (a pick may break several): "
            + "; ".join(
                f"{method}: "
                + (", ".join(f"{rule} {n:,}" for rule, n in s["rules"].items() if n) or "none")
                for method, s in r["stats"].items()
            )
            + "."
        )


if __name__ == "__main__":
    main()
