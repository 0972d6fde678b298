#!/usr/bin/env python
"""B3: the marketer's admin pages for segments and profiles, on PostgreSQL.

Runs on a database the data generator filled (``bench/generate_data.py --database NAME``)
whose segments have been refreshed (``bench/segments_refresh.py`` leaves them so), and never
changes its data: it only adds a superuser (``bench-admin``) the first time, and a session
for it, deleted at the end. With ``DEBUG`` off and Django's test ``Client`` logged in as that
user, it requests every page a marketer uses for segments — the segment list, a big
segment's page (``--segment``, default ``lapsed``), its members and their history, the rule
builder's page, its preview (a POST that saves nothing) and value suggestions, the
explanation for one profile, a profile's page (the one with the most stays) and the profile
list — ``--repeat`` times each after one untimed request, and prints per page the median and
largest time, the SQL statements sent (through Django's ``execute_wrapper``) and the slowest
of them.

    .venv/bin/python bench/segments_admin.py --database pzn_bench_seg

``--save FILE`` writes the results as JSON; ``--compare FILE`` prints them beside such a file
(e.g. one saved with the code before a change).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segbench import StatementCounter, django_setup  # noqa: E402  (bench/ is the script's folder)

USERNAME = "bench-admin"


def _pages(segment_slug: str) -> list[tuple[str, str, str, dict]]:
    """(label, method, url, data) of every page timed."""
    from django.db import connection
    from django.urls import reverse

    from personalization.models import ProductCategory, Segment

    segment = Segment.objects.get(slug=segment_slug)
    with connection.cursor() as cursor:
        # The profile with the most stays (current and past); ties by id, for the same pick.
        cursor.execute(
            "SELECT profile_id FROM personalization_segmentmembership "
            "GROUP BY profile_id ORDER BY count(*) DESC, profile_id LIMIT 1"
        )
        profile_id = cursor.fetchone()[0]
        cursor.execute("SELECT email FROM personalization_profile WHERE id = %s", [profile_id])
        email = cursor.fetchone()[0] or str(profile_id)
        cursor.execute(
            "SELECT profile_id FROM personalization_segmentmembership "
            "WHERE segment_id = %s AND exited_at IS NULL ORDER BY profile_id LIMIT 1",
            [segment.pk],
        )
        member_id = cursor.fetchone()[0]
    # A top-level category (the first by name): "bought in Beauty".
    category = (
        ProductCategory.objects.filter(depth=1).order_by("key").values_list("path", flat=True)
    ).first()

    def admin(model: str, view: str = "changelist", *args) -> str:
        return reverse(f"admin:personalization_{model}_{view}", args=args)

    def preview(rule: dict) -> dict:
        return {
            "name": "Preview",
            "slug": "bench_preview",
            "description": "",
            "rule": json.dumps(rule),
            "_preview": "1",
        }

    members = {"segment__id__exact": segment.pk}
    return [
        ("segment list", "get", admin("segment"), {}),
        (f"segment page (`{segment.slug}`)", "get", admin("segment", "change", segment.pk), {}),
        ("add a rule segment (rule builder)", "get", admin("segment", "add"), {}),
        (
            "preview: total spent ≥ 50 (POST)",
            "post",
            admin("segment", "add"),
            preview({"field": "stats.total_spent", "op": "gte", "value": 50}),
        ),
        (
            f"preview: bought in {category!r} in 365 days, not lapsed (POST)",
            "post",
            admin("segment", "add"),
            preview(
                {
                    "all": [
                        {
                            "field": "orders.bought_category",
                            "op": "eq",
                            "value": category,
                            "within_days": 365,
                        },
                        {"not": {"field": "segment", "op": "eq", "value": "lapsed"}},
                    ]
                }
            ),
        ),
        (
            "rule builder suggestions (products)",
            "get",
            admin("segment", "choices"),
            {"type": "product", "term": "a"},
        ),
        (
            "rule builder suggestions (categories)",
            "get",
            admin("segment", "choices"),
            {"type": "category", "term": "o"},
        ),
        (
            "explain a member",
            "get",
            reverse("admin:personalization_segment_explain", args=[segment.pk]),
            {"profile": str(member_id)},
        ),
        ("memberships, all segments", "get", admin("segmentmembership"), {}),
        (
            f"current members of `{segment.slug}`",
            "get",
            admin("segmentmembership"),
            {**members, "current": "yes"},
        ),
        (
            f"current members of `{segment.slug}`, page 100",
            "get",
            admin("segmentmembership"),
            {**members, "current": "yes", "p": "100"},
        ),
        (f"entries and exits of `{segment.slug}`", "get", admin("segmentmembership"), members),
        (
            f"who left `{segment.slug}`",
            "get",
            admin("segmentmembership"),
            {**members, "current": "no"},
        ),
        ("memberships, search by email", "get", admin("segmentmembership"), {"q": email}),
        ("profile page (most stays)", "get", admin("profile", "change", profile_id), {}),
        ("profile list", "get", admin("profile"), {}),
        ("profile list, has orders", "get", admin("profile"), {"has_orders": "yes"}),
        (
            "profile list, email consent granted",
            "get",
            admin("profile"),
            {"c_email_marketing": "granted"},
        ),
        ("profile list, search by email", "get", admin("profile"), {"q": email}),
    ]


def _client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    user_model = get_user_model()
    user = user_model.objects.filter(username=USERNAME).first()
    if user is None:
        user = user_model.objects.create_superuser(USERNAME, "bench-admin@example.com", None)
    client = Client()
    client.force_login(user)
    return client


def _measure(client, pages, repeat: int, show: str | None) -> list[dict]:
    from django.db import connection

    results = []
    for label, method, url, data in pages:
        send = getattr(client, method)
        response = send(url, data)  # untimed: caches, the first compile
        if response.status_code != 200:
            raise SystemExit(f"{label}: {method.upper()} {url} answered {response.status_code}")
        times, counts, slowest = [], [], (0.0, "")
        for number in range(repeat):
            counter = StatementCounter(log=bool(show) and show in label and number == 0)
            with connection.execute_wrapper(counter):
                started = time.perf_counter()
                response = send(url, data)
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (label, response.status_code)
            counts.append(counter.count)
            slowest = max(slowest, counter.slowest)
        print(f"  {label}: {statistics.median(times):.0f} ms", file=sys.stderr)
        results.append(
            {
                "page": label,
                "median_ms": statistics.median(times),
                "max_ms": max(times),
                "statements": sorted(set(counts)),
                "slowest_ms": slowest[0],
                "slowest": slowest[1],
            }
        )
    return results


def _statements(counts: list[int]) -> str:
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="pzn_bench_seg")
    parser.add_argument(
        "--server", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--segment", default="lapsed", help="The segment of the pages (lapsed).")
    parser.add_argument("--repeat", type=int, default=5, help="Timed requests per page (5).")
    parser.add_argument(
        "--show", help="Print the statements of the pages whose label contains this."
    )
    parser.add_argument("--save", help="Write the results to this JSON file.")
    parser.add_argument("--compare", help="Print them beside a file --save wrote.")
    args = parser.parse_args()
    django_setup(server=args.server, database=args.database, prefix="pzn-bench-admin-")

    from django.conf import settings
    from django.db import connection

    from personalization.models import Profile, SegmentMembership

    assert not settings.DEBUG
    client = _client()
    try:
        results = _measure(client, _pages(args.segment), args.repeat, args.show)
    finally:
        client.logout()

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        server = cursor.fetchone()[0].split(" on ")[0]
    profiles = Profile.objects.order_by().count()
    stays = SegmentMembership.objects.order_by().count()
    print(
        f"\nB3 on {args.database}: {profiles:,} profiles, {stays:,} segment stays; "
        f"{args.repeat} requests per page after 1 untimed; {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {server}; load {os.getloadavg()[0]:.1f}\n"
    )
    if args.save:
        Path(args.save).write_text(json.dumps(results, indent=1))
    if args.compare:
        before = {r["page"]: r for r in json.loads(Path(args.compare).read_text())}
        print(
            "| page | before median ms | before statements | after median ms | after max ms "
            "| after statements | slowest statement after |"
        )
        print("|---|---:|---:|---:|---:|---:|---|")
        for r in results:
            b = before.get(r["page"])
            print(
                f"| {r['page']} | {b['median_ms']:.0f} | {_statements(b['statements'])} "
                if b
                else f"| {r['page']} | – | – ",
                end="",
            )
            print(
                f"| {r['median_ms']:.0f} | {r['max_ms']:.0f} | {_statements(r['statements'])} "
                f"| {r['slowest_ms']:.0f} ms `{r['slowest']}` |"
            )
        return
    print("| page | median ms | max ms | statements | slowest statement |")
    print("|---|---:|---:|---:|---|")
    for r in results:
        print(
            f"| {r['page']} | {r['median_ms']:.0f} | {r['max_ms']:.0f} "
            f"| {_statements(r['statements'])} | {r['slowest_ms']:.0f} ms `{r['slowest']}` |"
        )


if __name__ == "__main__":
    main()
