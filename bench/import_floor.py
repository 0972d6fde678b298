"""How fast can PostgreSQL itself take in the orders of the import benchmark? A lower bound.

    .venv/bin/python bench/import_floor.py                   # 1M orders
    .venv/bin/python bench/import_floor.py --orders 100000

No application code is timed here. The benchmark file (bench/data/orders-N.csv, made by
bench/import_orders.py) is turned into rows that are already checked and resolved (profile
and product keys filled in), the 2,000 products are loaded untimed, and then only
PostgreSQL's own work is timed, as any import into a fresh database must do it at the least:

1. ``COPY`` the profiles into a staging table and ``INSERT … SELECT`` them with the app's
   column defaults (the importer's own helper),
2. ``COPY`` the orders into the app's order table,
3. ``COPY`` their lines into the order line table,
4. ``COMMIT``, where PostgreSQL checks the deferred foreign keys row by row,
5. one ``UPDATE`` recomputing the statistics of every profile.

The same load is then repeated into a database whose order tables have no foreign keys, to
show what the row-by-row checks cost. Whatever the importer does on top (reading and checking
the CSV, finding present orders, creating profiles) can only add to these times, so
``orders / total`` is the most any import into these tables can reach on this machine.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import import_orders as import_bench  # noqa: E402  (the benchmark's data generator)

PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "pzn_bench_floor"
STATUSES = {"": "placed", "placed": "placed", "cancelled": "cancelled", "refunded": "refunded"}
FOREIGN_KEYS_OF_ORDERS = """
    SELECT conrelid::regclass::text, conname FROM pg_constraint
    WHERE contype = 'f'
      AND conrelid::regclass::text IN ('personalization_order', 'personalization_orderline')"""
STATS_UPDATE = """
    UPDATE personalization_profile p SET
        orders_count = COALESCE(s.orders, 0),
        total_spent = COALESCE(s.spent, 0),
        average_order_value = COALESCE(ROUND(s.spent / s.orders, 2), 0),
        first_order_at = s.first_at,
        last_order_at = s.last_at
    FROM personalization_profile t
    LEFT JOIN (
        SELECT profile_id, count(*) AS orders, sum(total) AS spent,
            min(placed_at) AS first_at, max(placed_at) AS last_at
        FROM personalization_order WHERE status = 'placed' GROUP BY profile_id
    ) s ON s.profile_id = t.id
    WHERE p.id = t.id"""


def rows_resolve(source: Path, folder: Path) -> dict[str, Path]:
    """Write the CSV's profiles, products, orders and lines as COPY files with keys filled in."""
    paths = {name: folder / f"{name}.tsv" for name in ("profile", "product", "order", "line")}
    profiles: dict[str, int] = {}
    products: dict[str, int] = {}
    files = {name: open(path, "w", newline="") for name, path in paths.items()}
    try:
        out = {
            name: csv.writer(file, delimiter="\t", lineterminator="\n")
            for name, file in files.items()
        }
        order_key, current = 0, None
        with open(source, newline="", encoding="utf-8-sig") as stream:
            rows = csv.DictReader(stream)
            for row in rows:
                email = row["email"].strip().lower()
                if email not in profiles:
                    profiles[email] = len(profiles) + 1
                    out["profile"].writerow(
                        [profiles[email], email, row["first_name"], row["last_name"]]
                    )
                if row["product_id"] not in products:
                    products[row["product_id"]] = len(products) + 1
                    out["product"].writerow(
                        [
                            products[row["product_id"]],
                            row["product_id"],
                            row["sku"],
                            row["title"],
                            row["category"],
                        ]
                    )
                if row["order_id"] != current:
                    current, order_key = row["order_id"], order_key + 1
                    out["order"].writerow(
                        [
                            order_key,
                            current,
                            profiles[email],
                            row["placed_at"],
                            row["total"],
                            row["currency"],
                            STATUSES[row["status"].strip().lower()],
                        ]
                    )
                out["line"].writerow(
                    [
                        order_key,
                        products[row["product_id"]],
                        row["quantity"] or 1,
                        row["unit_price"],
                    ]
                )
    finally:
        for file in files.values():
            file.close()
    return paths


def database_create(name: str, *, foreign_keys: bool, paths: dict[str, Path]) -> None:
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG_URL}/{name}",
        "DJANGO_SETTINGS_MODULE": "demo_shop.settings",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    with psycopg.connect(f"{PG_URL}/{name}", autocommit=True) as conn:
        if not foreign_keys:
            for table, constraint in conn.execute(FOREIGN_KEYS_OF_ORDERS).fetchall():
                conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
    _products_create(paths)
    with psycopg.connect(f"{PG_URL}/{name}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


def _products_create(paths: dict[str, Path]) -> None:
    """The catalogue through the ORM (untimed: 2,000 rows), so every column gets its default."""
    from django.db import connections

    from personalization.models import Product

    with open(paths["product"], newline="") as file:
        Product.objects.bulk_create(
            Product(
                pk=int(pk), external_id=external_id, sku=sku, title=title, category_path=category
            )
            for pk, external_id, sku, title, category in csv.reader(file, delimiter="\t")
        )
    connections.close_all()


def _profiles_insert_sql() -> tuple[str, list]:
    """INSERT … SELECT of the staged profiles, with the app's defaults for the other columns
    (the importer's own helper, so the row is the one the importer writes)."""
    from django.db import connections

    from personalization.importing.postgres import _Defaults
    from personalization.models import Profile

    defaults = _Defaults(Profile, ["email", "first_name", "last_name"])
    sql = (
        f"INSERT INTO personalization_profile (id, {defaults.columns}) "
        f"SELECT id, email, first_name, last_name, {defaults.placeholders} FROM staged_profile"
    )
    params = defaults.values()
    connections.close_all()
    return sql, params


def copy_file(conn: psycopg.Connection, target: str, path: Path) -> None:
    # The table's defaults fill the columns the file leaves out.
    with conn.cursor().copy(f"COPY {target} FROM STDIN") as copy, open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            copy.write(chunk)


def load_timed(name: str, paths: dict[str, Path]) -> dict[str, float]:
    times: dict[str, float] = {}
    insert_profiles, params = _profiles_insert_sql()
    with psycopg.connect(f"{PG_URL}/{name}") as conn:
        started = time.perf_counter()
        conn.execute(
            "CREATE TEMPORARY TABLE staged_profile "
            "(id bigint, email text, first_name text, last_name text)"
        )
        copy_file(conn, "staged_profile", paths["profile"])
        conn.execute(insert_profiles, params)
        times["profiles: COPY and INSERT … SELECT"] = time.perf_counter() - started
        started = time.perf_counter()
        copy_file(
            conn,
            "personalization_order (id, external_id, profile_id, placed_at, total, currency, "
            "status, source, created_at)",
            _with_defaults(paths["order"]),
        )
        times["COPY orders"] = time.perf_counter() - started
        started = time.perf_counter()
        copy_file(
            conn,
            "personalization_orderline (order_id, product_id, quantity, unit_price)",
            paths["line"],
        )
        times["COPY lines"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.commit()
        times["COMMIT (foreign key checks)"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(STATS_UPDATE)
        conn.commit()
        times["profile statistics"] = time.perf_counter() - started
    return times


def _with_defaults(path: Path) -> Path:
    """The order file with the two columns the app sets itself (source, recorded at)."""
    target = path.with_suffix(".full.tsv")
    if not target.exists():
        with open(path) as source, open(target, "w") as out:
            for line in source:
                out.write(line.rstrip("\n") + "\timport\t2026-01-01 00:00:00+00\n")
    return target


def _django_setup() -> None:
    os.environ["DATABASE_URL"] = f"{PG_URL}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_shop.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    args = parser.parse_args()
    _django_setup()
    source = import_bench.csv_generate(args.orders)
    with tempfile.TemporaryDirectory(prefix="pzn-floor-") as folder:
        print(f"resolving {source.name} …", file=sys.stderr)
        paths = rows_resolve(source, Path(folder))
        results = {}
        for label, foreign_keys in (("with foreign keys", True), ("without foreign keys", False)):
            print(f"loading {label} …", file=sys.stderr)
            database_create(DB_NAME, foreign_keys=foreign_keys, paths=paths)
            results[label] = load_timed(DB_NAME, paths)
        with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
            version = admin.execute("SHOW server_version").fetchone()[0]
            settings = {
                name: admin.execute(f"SHOW {name}").fetchone()[0]
                for name in ("shared_buffers", "max_wal_size", "synchronous_commit")
            }
    print(f"# PostgreSQL-only floor for {args.orders:,} orders, PostgreSQL {version}")
    print("# " + ", ".join(f"{name}={value}" for name, value in settings.items()))
    print()
    labels = list(results)
    print("| phase | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for phase in results[labels[0]]:
        cells = [f"{results[label][phase]:.1f} s" for label in labels]
        print(f"| {phase} | " + " | ".join(cells) + " |")
    totals = [sum(results[label].values()) for label in labels]
    print("| **total** | " + " | ".join(f"**{total:.1f} s**" for total in totals) + " |")
    ceilings = [f"{args.orders / total:,.0f} orders/s" for total in totals]
    print("| ceiling for any import | " + " | ".join(ceilings) + " |")


if __name__ == "__main__":
    main()
