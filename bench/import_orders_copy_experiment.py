"""Experiment: how fast would import_orders be if orders and lines were written with COPY?

Not part of the app. The app writes through the ORM (``bulk_create``); this script swaps the
writer for one that sends orders and order lines with PostgreSQL's COPY (psycopg 3) and
keeps everything else (reading, checks, profile and product lookups, ``bulk_create`` for new
profiles and products, the statistics). Both variants run in this process against a fresh
database each, on the same file, so the difference is the cost of building model instances
and compiling ``bulk_create`` for every order and line.

    .venv/bin/python bench/import_orders_copy_experiment.py --orders 100000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
DB_NAME = "pzn_bench_import_copy"
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")


def fresh_database() -> None:
    from django.db import connections
    from import_orders import psql  # bench/import_orders.py

    connections.close_all()
    psql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    psql(f"CREATE DATABASE {DB_NAME}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True, env=os.environ
    )


def copy_writer_class():
    from django.db import connection
    from django.utils import timezone

    from personalization import importing
    from personalization.models import IngestSource, Order, OrderLine

    class CopyWriter(importing._Writer):
        def _write(self, orders):
            present = importing._orders_present([order.order_id for order in orders])
            touched = set(present.values())
            new = [order for order in orders if order.order_id not in present]
            counts = {"orders_present": len(orders) - len(new)}
            if not new:
                return counts, [], {}, touched
            products, products_created, rejected = self._products_resolve(new)
            if rejected:
                left_out = {id(order) for order, _errors in rejected}
                new = [order for order in new if id(order) not in left_out]
            profiles, counts["profiles_created"] = importing._profiles_resolve(new)
            now = timezone.now()
            columns = (
                "external_id, profile_id, placed_at, total, currency, status, source, created_at"
            )
            with connection.cursor() as cursor:
                sql = f"COPY {Order._meta.db_table} ({columns}) FROM STDIN"
                with cursor.cursor.copy(sql) as copy:
                    for o in new:
                        copy.write_row(
                            (
                                o.order_id,
                                profiles[o.email],
                                o.placed_at,
                                o.total,
                                o.currency,
                                o.status,
                                IngestSource.IMPORT,
                                now,
                            )
                        )
                ids = dict(
                    Order.objects.filter(external_id__in=[o.order_id for o in new]).values_list(
                        "external_id", "pk"
                    )
                )
                lines = 0
                columns = "order_id, product_id, quantity, unit_price"
                sql = f"COPY {OrderLine._meta.db_table} ({columns}) FROM STDIN"
                with cursor.cursor.copy(sql) as copy:
                    for o in new:
                        order_pk = ids[o.order_id]
                        for _line, key, _sku, _title, _category, qty, price in o.lines:
                            copy.write_row((order_pk, products[key], qty, price))
                            lines += 1
            touched.update(profiles.values())
            counts.update(
                orders_imported=len(new), lines_imported=lines, products_created=products_created
            )
            return counts, rejected, products, touched

    return CopyWriter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.update(
        DATABASE_URL=f"{PG_URL}/{DB_NAME}",
        DJANGO_SETTINGS_MODULE="demo_shop.settings",
        DJANGO_DEBUG="0",
        DEMO_VAR_DIR=str(ROOT / "bench" / "data" / "var"),
    )
    import django

    django.setup()
    from import_orders import csv_generate

    from personalization import importing

    path = csv_generate(args.orders)
    orm_writer = importing._Writer
    results = []
    for name, writer in (("ORM bulk_create", orm_writer), ("COPY", copy_writer_class())):
        fresh_database()
        importing._Writer = writer
        started = time.perf_counter()
        result = importing.orders_import_path(path=str(path))
        wall = time.perf_counter() - started
        assert result.orders_imported == args.orders, result
        results.append((name, wall, result))
    importing._Writer = orm_writer
    print(f"\n{args.orders:,} orders, {results[0][2].lines_imported:,} lines\n")
    print("| orders and lines written with | wall s | orders/s |")
    print("|---|---:|---:|")
    for name, wall, _result in results:
        print(f"| {name} | {wall:.1f} | {args.orders / wall:,.0f} |")
    from django.db import connections
    from import_orders import psql

    connections.close_all()
    psql(f"DROP DATABASE IF EXISTS {DB_NAME}")


if __name__ == "__main__":
    main()
