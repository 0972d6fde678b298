"""Benchmark ``manage.py import_orders`` on PostgreSQL: wall time, orders/s and peak memory.

    .venv/bin/python bench/import_orders.py                  # 100k and 1M orders
    .venv/bin/python bench/import_orders.py --sizes 100000   # just one size

For each size it generates (once, deterministically) a per-line CSV in bench/data/, creates a
fresh database (``pzn_bench_import``), migrates it, runs the import exactly as a user would (a
separate ``manage.py import_orders`` process, DEBUG off), then runs it again to time the
idempotent re-run, checks the row counts and drops the database. Peak RSS is the import
process's own high-water mark (``wait4``), so flat memory shows as the same number for every
size. See bench/README.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
PYTHON = sys.executable
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "pzn_bench_import"

SEED = 20260601
CUSTOMERS = 200_000
PRODUCTS = 2_000
HEADER = (
    "order_id email placed_at total currency status first_name last_name "
    "product_id sku title category quantity unit_price"
).split()
FIRST_NAMES = "Anna Ben Clara David Elif Farid Greta Hugo Ines Jonas Karin Lars Maja Nils".split()
LAST_NAMES = "Andersson Berg Cohen Demir Eriksson Fischer García Holm Ito Jensen Kaya".split()
CATEGORIES = [
    "Home > Kitchen",
    "Home > Bath",
    "Garden > Tools",
    "Garden > Seeds",
    "Fashion > Women > Shoes",
    "Fashion > Men > Shirts",
    "Toys > Games",
    "Books > Cookery",
    "Sports > Running",
    "Beauty > Skin care",
]
WORDS = "Classic Organic Compact Deluxe Everyday Nordic Ceramic Linen Bamboo Steel".split()
NOUNS = "Mug Towel Trowel Sneaker Shirt Puzzle Cookbook Sock Cream Lamp Basket".split()


def csv_generate(orders: int) -> Path:
    """Write (once) a deterministic per-line CSV of ``orders`` orders, 1–3 lines each.

    Customers are picked with a skew (a few buy often, most once or twice) from a pool of
    CUSTOMERS; a file of 1M orders names about 190k distinct customers and all 2k products.
    Emails vary in case and surrounding spaces, offsets vary as a shop's exports do.
    """
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"orders-{orders}.csv"
    if path.exists():
        return path
    rng = random.Random(SEED)
    products = []
    for n in range(PRODUCTS):
        price = rng.choice([4.9, 9.9, 12.5, 19.9, 24.0, 39.9, 59.0, 89.0, 129.0])
        title = f"{rng.choice(WORDS)} {rng.choice(NOUNS)} {n}"
        products.append((f"P{n:05d}", f"SKU-{n:05d}", title, rng.choice(CATEGORIES), price))
    start = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    step = (3 * 365 * 86400) / orders
    offsets = [dt.timezone(dt.timedelta(hours=h)) for h in (0, 1, 2, -5)]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(orders):
            customer = int(CUSTOMERS * rng.random() ** 1.6)
            email = f"customer{customer}@example.com"
            if customer % 7 == 0:
                email = f" {email.capitalize()} "
            placed = (start + dt.timedelta(seconds=int(n * step))).astimezone(rng.choice(offsets))
            status = "placed"
            if n % 40 == 0:
                status = "cancelled"
            elif n % 97 == 0:
                status = "refunded"
            lines = []
            for _ in range(rng.choice((1, 1, 2, 2, 3))):
                product = products[int(PRODUCTS * rng.random() ** 1.3)]
                lines.append((product, rng.choice((1, 1, 1, 2, 3))))
            total = sum(p[4] * q for p, q in lines) + 4.9
            fixed = [
                f"O{n:08d}",
                email,
                placed.isoformat(),
                f"{total:.2f}",
                "EUR",
                status,
                FIRST_NAMES[customer % len(FIRST_NAMES)],
                LAST_NAMES[customer % len(LAST_NAMES)],
            ]
            writer.writerows(fixed + [p[0], p[1], p[2], p[3], q, f"{p[4]:.2f}"] for p, q in lines)
    tmp.rename(path)
    return path


def psql(sql: str, db: str = "postgres") -> str:
    return subprocess.run(
        ["psql", f"{PG_URL}/{db}", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def run_measured(args: list[str], env: dict[str, str]) -> tuple[dict, str]:
    """Run a process; return its measurements and stdout.

    wall: seconds; rss: peak resident memory in bytes and cpu: user + system seconds, both of
    the child itself (wait4); rss_halves: the peak RSS sampled in the first and in the second
    half of the run (flat memory: the same); load: the 1-minute load average when it started
    (anything much above 0 means other work shared the cores).
    """
    load = os.getloadavg()[0]
    started = time.perf_counter()
    samples: list[tuple[float, int]] = []
    out_path, err_path = DATA / "last-stdout.txt", DATA / "last-stderr.txt"
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=err)
        sampler = threading.Thread(target=_rss_sample, args=(proc.pid, started, samples))
        sampler.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        sampler.join()
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(), err_path.read_text()
    if code != 0:
        sys.exit(f"{' '.join(args)} failed ({code}):\n{stdout}\n{stderr}")
    halves = (
        max((rss for at, rss in samples if at < wall / 2), default=0),
        max((rss for at, rss in samples if at >= wall / 2), default=0),
    )
    return {
        "wall": wall,
        "rss": usage.ru_maxrss * 1024,
        "rss_halves": halves,
        "cpu": usage.ru_utime + usage.ru_stime,
        "load": load,
    }, stdout


def _rss_sample(pid: int, started: float, samples: list[tuple[float, int]]) -> None:
    """Append (seconds since start, VmRSS bytes) of ``pid`` twice a second until it exits."""
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            text = status.read_text()
        except (FileNotFoundError, ProcessLookupError):
            return
        match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
        if match is None:  # a zombie: the process has finished
            return
        samples.append((time.perf_counter() - started, int(match[1]) * 1024))
        time.sleep(0.5)


def bench_size(orders: int, *, keep_db: bool, rerun: bool) -> list[dict]:
    path = csv_generate(orders)
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG_URL}/{DB_NAME}",
        "DJANGO_SETTINGS_MODULE": "demo_shop.settings",
        "DJANGO_DEBUG": "0",
        "DEMO_VAR_DIR": str(DATA / "var"),
        "PYTHONHASHSEED": "0",
    }
    psql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    psql(f"CREATE DATABASE {DB_NAME}")
    try:
        subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True)
        command = [PYTHON, "manage.py", "import_orders", str(path)]
        results = []
        passes = ["first import", "re-run"] if rerun else ["first import"]
        for name in passes:
            measured, stdout = run_measured(command, env)
            summary = _summary(stdout)
            results.append(
                {
                    **measured,
                    "size": orders,
                    "pass": name,
                    "rows": summary["rows read"],
                    "imported": summary["orders imported"],
                    "present": summary["orders already present"],
                }
            )
        counts = psql(
            "SELECT (SELECT count(*) FROM personalization_order) || ' ' || "
            "(SELECT count(*) FROM personalization_orderline) || ' ' || "
            "(SELECT count(*) FROM personalization_profile) || ' ' || "
            "(SELECT count(*) FROM personalization_product)",
            DB_NAME,
        )
        n_orders, n_lines, n_profiles, n_products = map(int, counts.split())
        if n_orders != orders:
            sys.exit(f"expected {orders} orders in the database, found {n_orders}")
        for row in results:
            row.update(lines=n_lines, profiles=n_profiles, products=n_products)
        return results
    finally:
        if not keep_db:
            psql(f"DROP DATABASE IF EXISTS {DB_NAME}")


def _summary(stdout: str) -> dict[str, float]:
    values = {}
    for line in stdout.splitlines():
        match = re.match(r"^(\S.*?)\s{2,}([\d,.]+)", line)
        if match:
            values[match[1].strip()] = float(match[2].replace(",", ""))
    return values


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    pg = psql("SHOW server_version")
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, Python "
        f"{platform.python_version()}, PostgreSQL {pg}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        help="comma-separated order counts (default: 100000,1000000)",
    )
    parser.add_argument("--no-rerun", action="store_true", help="skip the idempotent re-run")
    parser.add_argument("--keep-db", action="store_true", help=f"keep {DB_NAME} afterwards")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"# import_orders benchmark, {dt.date.today().isoformat()}")
    print(f"# {machine()}")
    rows = []
    for size in sizes:
        rows += bench_size(size, keep_db=args.keep_db, rerun=not args.no_rerun)
    print()
    print(
        "| orders | pass | CSV rows | lines | profiles | products | wall s | orders/s "
        "| import CPU s | peak RSS MiB | peak RSS MiB, 1st / 2nd half | load at start |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        first, second = (rss / 2**20 for rss in r["rss_halves"])
        print(
            f"| {r['size']:,} | {r['pass']} | {int(r['rows']):,} | {r['lines']:,} "
            f"| {r['profiles']:,} | {r['products']:,} | {r['wall']:.1f} "
            f"| {r['size'] / r['wall']:,.0f} | {r['cpu']:.1f} | {r['rss'] / 2**20:.0f} "
            f"| {first:.0f} / {second:.0f} | {r['load']:.1f} |"
        )


if __name__ == "__main__":
    main()
