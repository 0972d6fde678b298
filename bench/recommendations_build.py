#!/usr/bin/env python
"""B5: build the item-to-item recommendation model, against a hand-written self-join.

Runs on a database the data generator filled (``bench/generate_data.py --database NAME``),
which it reuses and never drops. It times, in the same run and on the same data, alternately
and the best of ``--repeat`` each:

- ``floor``: one hand-written statement producing the co-purchase count of every pair of
  products (``HAND_WRITTEN``): the distinct (order, product) pairs of placed orders and
  products that are not sensitive, joined to themselves on the order and grouped by pair. It
  returns the number of pairs and the sum of their counts, so nothing is sent back but two
  numbers;
- ``full build``: ``recommendations_build()`` with ``RECOMMENDATION_INTERVAL_RELEARN_DAYS = 0``,
  the whole build as the first one (and one a week) runs it: co-purchases and co-views counted,
  normalised, the top K of every product ranked and stored, the bestsellers counted, the
  repurchase intervals learned, the new model made current and the old one deleted, in one
  transaction;
- ``nightly build``: the same with the default settings, right after: the intervals just
  learned are carried over, as on the six other nights of a week.

The model build B5 targets (≤ 2× the floor) is the neighbours statement; both builds' ratios
are printed too. The build's statements are also timed one by
one and summed by step: the neighbours (the part the floor is the floor of: it counts
co-views and scores and ranks on top), the bestseller counts and the learned repurchase
intervals, and the rest (bookkeeping, the switch, deleting the old model).

After the timings (untimed) the stored co-purchase count of every neighbour row is compared
with the hand-written count of its pair: they must all be equal. Before timing it runs
``ANALYZE`` (autovacuum is off on the benchmark server). ``--explain`` prints the summary of
``EXPLAIN (ANALYZE, BUFFERS)`` of the floor.

Only the app's recommendation tables are written (the last build is kept).

    flock /tmp/bench/1m.lock .venv/bin/python bench/recommendations_build.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segbench import StatementCounter, django_setup  # noqa: E402  (bench/ is the script's folder)

# Co-purchase counts written straight against the tables: an order counts once per product
# however many lines name it; only placed orders; no product flagged sensitive or with a level
# of its category path in SENSITIVE_CATEGORIES (ProductCategory.name_key, case folded).
HAND_WRITTEN = """
    WITH b AS (
        SELECT DISTINCT l.order_id, l.product_id
        FROM personalization_orderline l
        JOIN personalization_order o ON o.id = l.order_id AND o.status = 'placed'
        JOIN personalization_product p ON p.id = l.product_id AND NOT p.is_sensitive
          AND NOT EXISTS (SELECT 1 FROM personalization_productcategory c
                          WHERE c.product_id = p.id AND c.name_key = ANY(%(blocked)s)))
    SELECT x.product_id AS product_id, y.product_id AS neighbour_id, count(*) AS n
    FROM b x JOIN b y ON y.order_id = x.order_id AND y.product_id <> x.product_id
    GROUP BY x.product_id, y.product_id
"""
FLOOR = f"SELECT count(*), sum(n) FROM ({HAND_WRITTEN}) s"


def _params() -> dict:
    from personalization.conf import app_settings

    return {"blocked": sorted({name.casefold() for name in app_settings.SENSITIVE_CATEGORIES})}


def _floor() -> tuple[float, tuple[int, int]]:
    from django.db import connection

    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(FLOOR, _params())
        row = cursor.fetchone()
        return time.perf_counter() - started, (row[0], int(row[1] or 0))


def _build(now: dt.datetime) -> tuple[float, object, StatementCounter]:
    from django.db import connection

    from personalization.recommendations import recommendations_build

    counter = StatementCounter(by_kind={})
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        report = recommendations_build(now=now)
        seconds = time.perf_counter() - started
    if report.skipped:
        sys.exit("another build held the lock: nothing was timed")
    with connection.cursor() as cursor:  # what autovacuum would do (it is off here)
        cursor.execute("VACUUM ANALYZE personalization_productneighbour")
    return seconds, report, counter


# A build statement's first words → the step it belongs to.
STEP_OF = {
    "WITH baskets (holder, product)": "neighbours",
    "WITH ordered (product, n)": "bestsellers",
    "WITH purchases (holder, product,": "intervals",
}


def _by_step(counter: StatementCounter) -> dict[str, float]:
    """Seconds of the build's statements, summed by step."""
    steps: dict[str, float] = {}
    for kind, times in counter.by_kind.items():
        step = next((name for words, name in STEP_OF.items() if kind.startswith(words)), "rest")
        steps[step] = steps.get(step, 0.0) + sum(times) / 1000
    return steps


@contextmanager
def _relearning():
    """A build that learns the repurchase intervals (as the first one, and one a week, do)."""
    from django.conf import settings
    from django.test import override_settings

    with override_settings(
        PERSONALIZATION={**settings.PERSONALIZATION, "RECOMMENDATION_INTERVAL_RELEARN_DAYS": 0}
    ):
        yield


def _differs() -> tuple[int, int]:
    """(stored rows, rows whose co-purchases differ from the hand-written count)."""
    from django.db import connection

    sql = f"""
        SELECT count(*), count(*) FILTER (WHERE coalesce(h.n, 0) <> r.co_purchases)
        FROM personalization_productneighbour r
        JOIN personalization_recommendationmodel m ON m.id = r.build_id AND m.is_current
        LEFT JOIN ({HAND_WRITTEN}) h
          ON h.product_id = r.product_id AND h.neighbour_id = r.neighbour_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, _params())
        return cursor.fetchone()


def _explain() -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {FLOOR}", _params())
        plan = [row[0] for row in cursor.fetchall()]
    keep = ("JIT:", "  Timing:", "Planning Time", "Execution Time")
    return plan[:1] + [line for line in plan if line.startswith(keep)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="pzn_bench_seg")
    parser.add_argument(
        "--server", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument(
        "--now",
        default=None,
        help="When the build runs (ISO 8601): views of the window before it count (default: "
        "just after the latest order, the generator's --until).",
    )
    parser.add_argument("--repeat", type=int, default=3, help="Best of N for both timings (3).")
    parser.add_argument("--explain", action="store_true", help="Print the floor's plan summary.")
    args = parser.parse_args()
    django_setup(server=args.server, database=args.database, prefix="pzn-bench-recs-")

    from django.db import connection
    from django.db.models import Max

    from personalization.models import Event, Order, OrderLine, Product, Profile
    from personalization.recommendations import build_settings

    if args.now:
        now = dt.datetime.fromisoformat(args.now)
    else:
        latest = Order.objects.aggregate(latest=Max("placed_at"))["latest"]
        now = latest.replace(microsecond=0) + dt.timedelta(seconds=1)
    sizes = {
        "profiles": Profile.objects.count(),
        "orders": Order.objects.count(),
        "lines": OrderLine.objects.count(),
        "products": Product.objects.count(),
        "events": Event.objects.count(),
    }
    print(", ".join(f"{n:,} {name}" for name, n in sizes.items()), file=sys.stderr)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
    _floor()  # read the tables once, so neither side pays for the first read from disk
    floors, fulls, nightlies = [], [], []
    for attempt in range(1, args.repeat + 1):
        floors.append(_floor())
        with _relearning():
            fulls.append(_build(now))
        nightlies.append(_build(now))  # carries over what the full build just learned
        print(
            f"  {attempt}: floor {floors[-1][0]:.2f}s full build {fulls[-1][0]:.2f}s "
            f"nightly build {nightlies[-1][0]:.2f}s",
            file=sys.stderr,
        )
    floor_s, (pairs, together) = min(floors, key=lambda row: row[0])
    stored, differs = _differs()
    if differs:
        sys.exit(f"{differs} of {stored} stored rows differ from the hand-written counts")
    load = os.getloadavg()
    print(f"date            {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine         {os.cpu_count()} cores, {platform.python_version()}, jit {jit}")
    print(f"load (1/5/15)   {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("data            " + ", ".join(f"{n:,} {name}" for name, n in sizes.items()))
    print(f"now             {now:%Y-%m-%d %H:%M:%S} UTC")
    print(f"settings        {build_settings()}")
    print(f"floor           {floor_s:.2f} s  ({pairs:,} pairs, {together:,} co-purchases)")
    for label, runs in (("full build", fulls), ("nightly build", nightlies)):
        build_s, report, counter = min(runs, key=lambda row: row[0])
        steps = _by_step(counter)
        print(
            f"{label:<15} {build_s:.2f} s  ({report.products:,} products, "
            f"{report.neighbours:,} neighbours, {counter.count} statements; "
            f"{build_s / floor_s:.2f}x the floor)"
        )
        print(
            "  by step       "
            + ", ".join(
                f"{name} {steps.get(name, 0.0):.2f} s" for name in (*STEP_OF.values(), "rest")
            )
        )
    neighbours_s = min(_by_step(run[2]).get("neighbours", 0.0) for run in fulls + nightlies)
    print(f"neighbours / floor {neighbours_s / floor_s:.2f}x  (target <= 2x)")
    print(f"verified        {stored:,} stored rows, co-purchases equal to the floor's counts")
    if args.explain:
        print("floor plan:")
        for line in _explain():
            print(f"  {line}")


if __name__ == "__main__":
    main()
