"""Where an import's time goes on PostgreSQL: the time of each kind of statement.

    .venv/bin/python bench/import_profile.py                  # the 1M-order file
    .venv/bin/python bench/import_profile.py --orders 100000

Creates and migrates the database ``pzn_bench_profile``, runs the import in this process
with Django's ``execute_wrapper`` timing every statement, and prints the statements by total
time, with the commits (where PostgreSQL checks the deferred foreign keys) and the ``COPY``
of the orders timed too. The wall time is a little longer than ``bench/import_orders.py``'s
for the same file: timing every statement costs. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import import_orders as import_bench  # noqa: E402  (the benchmark's data generator)

PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "pzn_bench_profile"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    args = parser.parse_args()
    source = import_bench.csv_generate(args.orders)
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        admin.execute(f"CREATE DATABASE {DB_NAME}")
    os.environ["DATABASE_URL"] = f"{PG_URL}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_shop.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from personalization.importing import orders_import_path, postgres

    spent: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()

    def timed(label: str, started: float) -> None:
        spent[label] += time.perf_counter() - started
        calls[label] += 1

    def statement(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timed(" ".join(sql.split())[:70], started)

    def wrap(function, label):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                timed(label, started)

        return wrapper

    connection.ensure_connection()
    connection._commit = wrap(connection._commit, "COMMIT (foreign key checks)")
    postgres._orders_copy = wrap(postgres._orders_copy, "COPY orders (with writing the rows)")
    postgres._lines_copy = wrap(postgres._lines_copy, "COPY lines (with writing the rows)")
    started, cpu = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(statement):
        result = orders_import_path(path=str(source))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    connection.close()
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
    print(
        f"# {result.orders_imported:,} orders imported in {wall:.1f} s "
        f"({result.orders_imported / wall:,.0f} orders/s); import process CPU {cpu:.1f} s"
    )
    print()
    print("| statement | calls | s | µs per order |")
    print("|---|---:|---:|---:|")
    for label, seconds in spent.most_common(12):
        per_order = seconds / args.orders * 1e6
        print(f"| `{label}` | {calls[label]:,} | {seconds:.1f} | {per_order:.0f} |")


if __name__ == "__main__":
    main()
