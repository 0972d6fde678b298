"""Every segment evaluated for a few profiles in one statement, compiled once.

The realtime update asks, for a handful of profiles, "which segments should each be in, and
which is each in now?". Building that query through the ORM costs several times what the
database needs to answer it (B2 in docs/benchmarks.md), so the SQL is kept per set of segment
definitions and number of profiles, and only its parameters change from call to call:

- the profile ids, which are the statement's last parameters;
- the times: every definition measures time as ``now`` minus a fixed period, so each such
  parameter moves with ``now``. Which ones do is found by compiling at two times and comparing;
  a definition for which the two compilations differ in any other way is compiled every time,
  as before, so the cache can only ever be skipped, never wrong.

Compiling reads nothing from the database but the segment definitions, which are part of the
cache key; the cache is emptied when the ``PERSONALIZATION`` setting changes.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.core.signals import setting_changed
from django.db import connection
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, QuerySet
from django.dispatch import receiver

from ..models import Profile, Segment, SegmentMembership
from .members import segment_q

CACHE_SIZE = 32
MAX_CACHED_PROFILES = 64  # a bigger batch is rare and compiling is then a small part of it
_PROBE = dt.timedelta(days=1, seconds=1, microseconds=1)  # unlike any period a rule names
_UNCACHEABLE = object()

_statements: OrderedDict[tuple, Any] = OrderedDict()
_lock = threading.Lock()


@dataclass(frozen=True)
class Memberships:
    """For each segment id, the profiles (of those asked about) that belong in it and those
    with an open stay in it."""

    belong: dict[int, set[int]]
    stay: dict[int, set[int]]


def memberships_among(
    *, segments: Sequence[Segment], profile_ids: Sequence[int], now: dt.datetime
) -> Memberships:
    """Which of ``profile_ids`` belong in each of ``segments`` at ``now``, and which have an
    open stay in it: one statement."""
    ids = sorted(set(profile_ids))
    sql, params = _statement(segments, ids, now)
    belong: dict[int, set[int]] = {segment.pk: set() for segment in segments}
    stay: dict[int, set[int]] = {segment.pk: set() for segment in segments}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        for row in cursor.fetchall():
            values = dict(zip(names, row, strict=True))
            for segment in segments:
                if values[f"belongs_{segment.pk}"]:
                    belong[segment.pk].add(values["pk"])
            if "stays" in values:  # PostgreSQL: the open stays' segment ids as one array
                staying = set(values["stays"])
            else:
                staying = {segment.pk for segment in segments if values[f"stays_{segment.pk}"]}
            for segment_id in staying & stay.keys():
                stay[segment_id].add(values["pk"])
    return Memberships(belong=belong, stay=stay)


def _query(segments: Sequence[Segment], ids: list[int], now: dt.datetime) -> QuerySet:
    columns = {}
    for segment in segments:
        # Each definition as a condition on the row itself: correlated subqueries only,
        # no join back to the profile table (a quarter of the planning time).
        columns[f"belongs_{segment.pk}"] = ExpressionWrapper(
            segment_q(segment=segment, now=now), output_field=BooleanField()
        )
    stays = SegmentMembership.objects.current().filter(profile=OuterRef("pk"))
    if connection.vendor == "postgresql":
        # One index scan for all of them, where an EXISTS per segment is one plan each.
        columns["stays"] = ArraySubquery(stays.values("segment_id"))
    else:
        for segment in segments:
            columns[f"stays_{segment.pk}"] = Exists(stays.filter(segment_id=segment.pk))
    return Profile.objects.filter(pk__in=ids).annotate(**columns).values("pk", *columns)


def _compiled(segments: Sequence[Segment], ids: list[int], now: dt.datetime) -> tuple[str, list]:
    query = _query(segments, ids, now).query
    sql, params = query.get_compiler(connection=connection).as_sql()
    return sql, list(params)


def _statement(segments: Sequence[Segment], ids: list[int], now: dt.datetime) -> tuple[str, list]:
    if len(ids) > MAX_CACHED_PROFILES:
        return _compiled(segments, ids, now)
    key = (
        connection.alias,
        connection.vendor,
        len(ids),
        tuple(
            (segment.pk, segment.slug, segment.kind, json.dumps(segment.rule, sort_keys=True))
            for segment in segments
        ),
    )
    with _lock:
        cached = _statements.get(key)
        if cached is not None:
            _statements.move_to_end(key)
    if cached is _UNCACHEABLE:
        return _compiled(segments, ids, now)
    if cached is None:
        cached = _Statement.compile(segments, ids, now)
        with _lock:
            _statements[key] = cached or _UNCACHEABLE
            while len(_statements) > CACHE_SIZE:
                _statements.popitem(last=False)
        if cached is None:
            return _compiled(segments, ids, now)
    return cached.sql, cached.bind(ids, now)


@dataclass(frozen=True)
class _Statement:
    sql: str
    compiled_at: dt.datetime
    params: tuple  # all but the profile ids, which come last
    moving: frozenset[int]  # positions of the parameters that are compiled_at minus a period

    @classmethod
    def compile(
        cls, segments: Sequence[Segment], ids: list[int], now: dt.datetime
    ) -> _Statement | None:
        """The statement with what moves with ``now`` found, or None if anything else would."""
        sql, params = _compiled(segments, ids, now)
        later_sql, later_params = _compiled(segments, ids, now + _PROBE)
        fixed = len(params) - len(ids)
        if sql != later_sql or len(params) != len(later_params) or fixed < 0:
            return None
        if params[fixed:] != ids or later_params[fixed:] != ids:
            return None
        moving = set()
        for position, (value, later) in enumerate(
            zip(params[:fixed], later_params[:fixed], strict=True)
        ):
            if _same_parameter(value, later):
                continue
            then, probed = _as_time(value), _as_time(later)
            if then is None or probed is None or probed - then != _PROBE:
                return None
            moving.add(position)
        return cls(
            sql=sql,
            params=tuple(params[:fixed]),
            compiled_at=now,
            moving=frozenset(moving),
        )

    def bind(self, ids: list[int], now: dt.datetime) -> list:
        shift = now - self.compiled_at
        return [
            _shifted(value, shift) if position in self.moving else value
            for position, value in enumerate(self.params)
        ] + ids


def _same_parameter(value: Any, later: Any) -> bool:
    # PostgreSQL takes a JSON value (a trait condition's) wrapped (psycopg's Jsonb), and the
    # wrappers do not compare equal: compare what they wrap.
    if type(value) is type(later) and hasattr(value, "obj") and hasattr(later, "obj"):
        return value.obj == later.obj
    return value == later


def _as_time(value: Any) -> dt.datetime | None:
    # PostgreSQL takes datetimes as they are; SQLite as text (str of a naive UTC datetime).
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _shifted(value: Any, shift: dt.timedelta) -> Any:
    if isinstance(value, dt.datetime):
        return value + shift
    return str(dt.datetime.fromisoformat(value) + shift)


@receiver(setting_changed)
def _forget_statements(*, setting: str, **kwargs: Any) -> None:
    if setting == "PERSONALIZATION":
        with _lock:
            _statements.clear()
