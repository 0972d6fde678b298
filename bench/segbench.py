"""What the segment benchmarks share: Django set up on a generated database, a statement
counter, timing a ``SELECT count(*)`` and comparing stored stays with a hand-written set.

Imported by the ``bench/segments_*.py`` scripts, which run as files (their folder is on
``sys.path``); Django must be set up (``django_setup``) before the other helpers are called.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time


def django_setup(*, server: str, database: str, prefix: str) -> None:
    """Set Django up on ``server/database`` with DEBUG off and a throwaway demo folder."""
    os.environ.update(
        DATABASE_URL=f"{server}/{database}",
        DJANGO_DEBUG="0",
        DJANGO_SETTINGS_MODULE="demo_shop.settings",
        DEMO_VAR_DIR=tempfile.mkdtemp(prefix=prefix),
    )
    import django

    django.setup()


class StatementCounter:
    """A ``connection.execute_wrapper``: counts statements, keeps the slowest, and sums their
    time by kind (the statement's first words) into ``by_kind`` when given one."""

    def __init__(self, *, by_kind: dict[str, list[float]] | None = None, log: bool = False):
        self.count = 0
        self.ms = 0.0
        self.slowest = (0.0, "")
        self.by_kind = by_kind
        self.log = log

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            ms = (time.perf_counter() - started) * 1000
            self.ms += ms
            words = sql.split()
            if ms > self.slowest[0]:
                self.slowest = (ms, " ".join(words[:6])[:70])
            if self.by_kind is not None:
                self.by_kind.setdefault(" ".join(words[:4])[:60], []).append(ms)
            if self.log:
                print(f"    {ms:8.1f} ms  {' '.join(words)[:300]}", file=sys.stderr)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed_count(sql: str, params) -> tuple[float, int]:
    """Run a ``SELECT count(*)``: (seconds, the count)."""
    from django.db import connection

    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(sql, params)
        (count,) = cursor.fetchone()
        return time.perf_counter() - started, count


def stored_differs(hand_written: str, params: dict, *, segment_id: int) -> int:
    """How many profiles are in the segment's stored open stays or in the hand-written set
    (a query of profile ids with ``%(name)s`` parameters) but not in both."""
    from django.db import connection

    sql = f"""
        SELECT count(*) FROM ({hand_written}) h (id)
        FULL JOIN (SELECT profile_id FROM personalization_segmentmembership
                   WHERE segment_id = %(segment)s AND exited_at IS NULL) m
          ON m.profile_id = h.id
        WHERE m.profile_id IS NULL OR h.id IS NULL
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, "segment": segment_id})
        return cursor.fetchone()[0]


def lifecycle_params(now: dt.datetime) -> dict:
    """The times the hand-written lifecycle queries compare with, from the app's settings."""
    from personalization.conf import app_settings as s

    return {
        "new_since": now - dt.timedelta(days=s.NEW_CUSTOMER_DAYS),
        "lapsed_before": now - dt.timedelta(days=s.LAPSED_AFTER_DAYS),
        "loyal_since": now - dt.timedelta(days=s.LOYAL_WITHIN_DAYS),
        "cart_after": now - dt.timedelta(days=s.CART_ABANDONED_WITHIN_DAYS),
        "cart_before": now - dt.timedelta(minutes=s.CART_ABANDONED_AFTER_MINUTES),
    }
