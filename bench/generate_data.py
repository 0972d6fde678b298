#!/usr/bin/env python
"""Benchmark ``manage.py generate_shop_data`` on PostgreSQL at several scales.

For each scale: drop and create the database, migrate it, run the generator in a child
process, and measure wall time, rows per second and peak memory (the whole process tree,
sampled from /proc, and the largest single process from wait4), and the CPU time the
generator's processes used (PostgreSQL's own CPU not included). Prints a Markdown table.

    .venv/bin/python bench/generate_data.py --scales 20000,200000,1000000 --workers 2

The database of the last scale is left in place (handy for benchmarking segments on it).
Needs Linux (/proc) and a PostgreSQL server reachable without a password.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in KiB."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm") as statm:
                total += int(statm.read().split()[1]) * PAGE_KB
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack.extend(int(child) for child in children.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _psql(server: str, database: str, sql: str) -> str:
    return subprocess.run(
        ["psql", f"{server}/{database}", "-qAtc", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def run_scale(*, profiles: int, args: argparse.Namespace) -> dict:
    url = f"{args.server}/{args.database}"
    _psql(args.server, "postgres", f'DROP DATABASE IF EXISTS "{args.database}"')
    _psql(args.server, "postgres", f'CREATE DATABASE "{args.database}"')
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "demo_shop.settings",
        "DEMO_VAR_DIR": tempfile.mkdtemp(prefix="pzn-bench-gen-"),
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    command = [
        *manage,
        "generate_shop_data",
        "--profiles",
        str(profiles),
        "--seed",
        str(args.seed),
        "--until",
        args.until,
        "--workers",
        str(args.workers),
        "--orders-per-profile",
        str(args.orders_per_profile),
    ]
    print("$ " + " ".join(command[1:]), file=sys.stderr)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    peak_tree = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while not stop.is_set():
            peak_tree = max(peak_tree, _tree_rss_kb(child.pid))
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    stop.set()
    sampler.join()
    if child.returncode:
        sys.exit(f"generate_shop_data failed with exit code {child.returncode}")
    counts = {
        name: int(count.replace(",", ""))
        for name, count in re.findall(r"^\s+(\w+)\s+([\d,]+)$", output, re.MULTILINE)
    }
    return {
        "profiles": profiles,
        "seconds": seconds,
        "rows": sum(counts.values()),
        "orders": counts.get("order", 0),
        "counts": counts,
        "peak_tree_mb": peak_tree / 1024,
        "peak_process_mb": usage.ru_maxrss / 1024,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "load_before": load_before,
        "db_size": _psql(
            args.server,
            args.database,
            "SELECT pg_size_pretty(pg_database_size(current_database()))",
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales",
        default="20000,200000",
        help="Comma-separated profile counts (default 20000,200000).",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--until", default="2026-11-01")
    parser.add_argument("--orders-per-profile", type=float, default=5.0)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="pzn_bench_gen")
    args = parser.parse_args()

    results = [run_scale(profiles=int(scale), args=args) for scale in args.scales.split(",")]
    print(
        f"\ngenerate_shop_data on PostgreSQL, --workers {args.workers}, seed {args.seed}, "
        f"until {args.until}; {os.cpu_count()} CPUs\n"
    )
    print(
        "| profiles | orders | rows | wall time | rows/s | generator CPU | peak RSS, all "
        "processes | peak RSS, largest process | database size | load before |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        minutes, seconds = divmod(round(r["seconds"]), 60)
        print(
            f"| {r['profiles']:,} | {r['orders']:,} | {r['rows']:,} | {minutes}m {seconds:02d}s "
            f"| {r['rows'] / r['seconds']:,.0f} | {r['cpu_seconds']:,.0f} s "
            f"| {r['peak_tree_mb']:,.0f} MB | {r['peak_process_mb']:,.0f} MB | {r['db_size']} "
            f"| {r['load_before']:.1f} |"
        )
    print(
        "\nRows by table (last scale): "
        + ", ".join(f"{name} {count:,}" for name, count in results[-1]["counts"].items())
    )


if __name__ == "__main__":
    main()
