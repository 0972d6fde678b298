"""Segment membership: recomputed for everyone (a full refresh) or for a few profiles (realtime).

Each stay in a segment is one :class:`SegmentMembership` row, open while the profile is a member
and closed (``exited_at``) when it leaves, so the history of who entered and left stays.

A full refresh computes the new member set in SQL and applies only the difference: one
``INSERT … SELECT`` for those who entered and one ``UPDATE`` for those who left, whatever the
number of profiles. A realtime update re-evaluates every segment for a handful of profiles in a
fixed number of queries.

Locking: a full refresh holds an exclusive advisory lock on its segment (PostgreSQL), a realtime
update a shared one on every segment it evaluates, taken in ascending segment id. So two
refreshes of one segment run one after the other, realtime updates run beside each other, and
neither reads a member set the other is about to change. The open-stay unique constraint is the
last line of defence: a profile is never in a segment twice at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from ..models import Profile, Segment, SegmentDailyCount, SegmentKind, SegmentMembership
from ..signals import segment_entered, segment_exited
from .members import segment_members, segment_q
from .realtime import memberships_among

logger = logging.getLogger(__name__)

SEGMENT_SIGNAL_BATCH = 10_000  # profile ids per segment_entered/segment_exited signal
FETCH_BATCH = 10_000
PAIRS_PER_STATEMENT = 1_000  # (segment, profile) pairs per realtime write: 3,000 parameters
# When a closed stay ended, given ``now`` twice: a stay opened after ``now`` by a worker whose
# clock runs ahead closes when it opened.
_EXITED_AT = "CASE WHEN entered_at > %s THEN entered_at ELSE %s END"
_ADVISORY_NAMESPACE = 0x707A6E  # "pzn": keeps our advisory locks apart from the shop's


class Trigger(StrEnum):
    REFRESH = "refresh"
    REALTIME = "realtime"


@dataclass(frozen=True)
class RefreshResult:
    segment: str  # slug
    entered: int
    exited: int
    members: int


def segment_refresh(*, segment: Segment, now: dt.datetime | None = None) -> RefreshResult:
    """Recompute ``segment`` for everyone and store the difference. Safe to run concurrently.

    ``now`` (default: the time the refresh gets its lock) is when the entries and exits are
    dated and what time-based definitions are measured from.
    """
    with transaction.atomic():
        _advisory_lock([segment.pk], shared=False)
        segment = Segment.objects.select_for_update().get(pk=segment.pk)
        now = now or timezone.now()
        members = segment_members(segment=segment, now=now)
        current = SegmentMembership.objects.current().filter(segment=segment)
        if segment.kind == SegmentKind.RULE and connection.vendor == "postgresql":
            # The member set once, for who enters and who leaves (B1-rule in
            # docs/benchmarks.md); the lifecycle definitions check who left on each row.
            entered, exited = _stays_follow(segment, members, current, now=now)
        else:
            exited = _close(current.filter(~Exists(_still(segment, members, now))), now=now)
            entered = _open(segment, members, now=now, already=current)
        count = current.count()
        Segment.objects.filter(pk=segment.pk).update(member_count=count, refreshed_at=now)
        _daily_count_store(segment=segment, members=count, now=now)
        _announce_after_commit(segment, entered=entered, exited=exited, at=now, by=Trigger.REFRESH)
    logger.info(
        "Segment %s refreshed: %d entered, %d left, %d members.",
        segment.slug,
        len(entered),
        len(exited),
        count,
    )
    return RefreshResult(
        segment=segment.slug, entered=len(entered), exited=len(exited), members=count
    )


def segments_refresh(
    *,
    segments: QuerySet[Segment] | None = None,
    now: dt.datetime | None = None,
    progress: Callable[[RefreshResult], None] | None = None,
) -> list[RefreshResult]:
    """Refresh each of ``segments`` (default: all), one transaction per segment."""
    segments = Segment.objects.all() if segments is None else segments
    results = []
    for segment in segments.order_by("pk"):
        result = segment_refresh(segment=segment, now=now)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def segments_update_for_profiles(
    *, profile_ids: Iterable[int], now: dt.datetime | None = None
) -> dict[str, tuple[frozenset[int], frozenset[int]]]:
    """Re-evaluate every segment for these profiles: {slug: (entered, exited)} for changes.

    A fixed number of statements, whatever the number of profiles in the shop or in a
    segment: one to read the segments (and take their shared locks), one to evaluate them all
    and read the open stays and, if anything changed, one to open stays, one to close stays
    and one for the member counts (per PAIRS_PER_STATEMENT changes).
    """
    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    changes: dict[str, tuple[frozenset[int], frozenset[int]]] = {}
    with transaction.atomic():
        segments = _segments_locked_shared()
        if not segments:
            return {}
        now = now or timezone.now()
        among = memberships_among(segments=segments, profile_ids=ids, now=now)
        should, current = among.belong, among.stay
        entering = [
            (segment.pk, profile_id)
            for segment in segments
            for profile_id in sorted(should[segment.pk] - current[segment.pk])
        ]
        leaving = [
            (segment.pk, profile_id)
            for segment in segments
            for profile_id in sorted(current[segment.pk] - should[segment.pk])
        ]
        if not entering and not leaving:
            return {}
        # One statement each for all segments: the stays opened, the stays closed, the counts.
        entered = _stays_open(entering, now=now)
        exited = _stays_close(leaving, now=now)
        _member_counts_add(
            {
                segment.pk: len(entered.get(segment.pk, ())) - len(exited.get(segment.pk, ()))
                for segment in segments
            }
        )
        for segment in segments:
            came, went = entered.get(segment.pk, set()), exited.get(segment.pk, set())
            if came or went:
                _announce_after_commit(
                    segment,
                    entered=array("q", sorted(came)),
                    exited=array("q", sorted(went)),
                    at=now,
                    by=Trigger.REALTIME,
                )
                changes[segment.slug] = (frozenset(came), frozenset(went))
    return changes


def segment_stays_release(
    *, profile_ids: Iterable[int], into: int | None = None, now: dt.datetime | None = None
) -> dict[str, frozenset[int]]:
    """Close the open stays of profiles about to be deleted, so that member counts stay right
    and their exits are announced; with ``into`` (a merge), their whole history moves to that
    profile, whose own update then decides where it belongs. {slug: profile ids that left}."""
    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    left: dict[int, set[int]] = {}
    # No advisory lock: a merge is on a shopper's request and must not wait for a refresh.
    # The stays' row locks order it with a refresh's own updates, and the refresh's count is
    # absolute, so at worst it leaves a count one off until the next refresh.
    with transaction.atomic():
        now = now or timezone.now()
        stays = SegmentMembership.objects.current().filter(profile_id__in=ids)
        sql, params = _close_sql(stays, now=now, returning="segment_id, profile_id")
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for segment_id, profile_id in cursor.fetchall():
                left.setdefault(segment_id, set()).add(profile_id)
        segments = Segment.objects.in_bulk(list(left))
        _member_counts_add({segment_id: -len(profiles) for segment_id, profiles in left.items()})
        for segment_id, profiles in left.items():
            _announce_after_commit(
                segments[segment_id],
                entered=array("q"),
                exited=array("q", sorted(profiles)),
                at=now,
                by=Trigger.REALTIME,
            )
        if into is not None:
            SegmentMembership.objects.filter(profile_id__in=ids).update(profile_id=into)
    return {segments[pk].slug: frozenset(profiles) for pk, profiles in left.items()}


def _still(segment: Segment, members: QuerySet[Profile], now: dt.datetime) -> QuerySet[Profile]:
    """The profile of the stay in the outer query (``OuterRef("profile_id")``) if it is still
    a member."""
    if segment.kind == SegmentKind.RULE:
        # Checked on its own row: the set form of a rule selects whole sets (IN … UNION …),
        # which an anti-join would rebuild per stay.
        return Profile.objects.filter(pk=OuterRef("profile_id")).filter(
            segment_q(segment=segment, now=now)
        )
    return members.filter(pk=OuterRef("profile_id"))


def _stays_follow(
    segment: Segment,
    members: QuerySet[Profile],
    current: QuerySet[SegmentMembership],
    *,
    now: dt.datetime,
) -> tuple[array, array]:
    """Close the ``current`` stays of those no longer ``members`` and open one for each
    member without one, in one statement that computes the member set once (PostgreSQL);
    (the profile ids that entered, those that left).

    Raw SQL: the ORM cannot say a data-modifying WITH. ``members`` is read by both parts and
    so computed once; both see the stays as they were before the statement. Entering is
    ``members EXCEPT current``: a set operation reads both sides once whatever the planner
    estimates, where an anti-join went quadratic when it took the segment for empty (a first
    refresh: 51 s instead of 4 for 67k members, see docs/benchmarks.md). Inserted in profile
    order, the indexes grow at their ends (1.7 times as fast for 323k entries).
    """
    members_sql, members_params = members.order_by().values("pk").query.sql_with_params()
    stays_sql, stays_params = current.order_by().values("pk").query.sql_with_params()
    held_sql, held_params = current.order_by().values("profile_id").query.sql_with_params()
    table = connection.ops.quote_name(SegmentMembership._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    sql = (
        f"WITH members (id) AS ({members_sql}), "
        f"gone AS (UPDATE {table} SET exited_at = {_EXITED_AT} "
        f"WHERE exited_at IS NULL AND id IN ({stays_sql}) "
        f"AND NOT EXISTS (SELECT 1 FROM members m WHERE m.id = {table}.profile_id) "
        "RETURNING profile_id), "
        f"came AS (INSERT INTO {table} (segment_id, profile_id, entered_at) "
        f"SELECT %s, entering.id, %s FROM (SELECT id FROM members EXCEPT {held_sql}) entering "
        "ORDER BY 2 ON CONFLICT DO NOTHING RETURNING profile_id) "
        "SELECT true, profile_id FROM came UNION ALL SELECT false, profile_id FROM gone"
    )
    params = [*members_params, at, at, *stays_params, segment.pk, at, *held_params]
    entered, exited = array("q"), array("q")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_BATCH):
            for came, profile_id in rows:
                (entered if came else exited).append(profile_id)
    return entered, exited


def _open(
    segment: Segment,
    entering: QuerySet[Profile],
    *,
    now: dt.datetime,
    already: QuerySet[SegmentMembership] | None = None,
) -> array:
    """Open a stay for each profile of ``entering`` (but those of the stays ``already``)
    without an open one; the profile ids that entered."""
    select_sql, select_params = entering.order_by().values("pk").query.sql_with_params()
    if already is not None:
        already_sql, already_params = (
            already.order_by().values("profile_id").query.sql_with_params()
        )
        select_sql = f"{select_sql} EXCEPT {already_sql}"
        select_params = (*select_params, *already_params)
    table = connection.ops.quote_name(SegmentMembership._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    # WHERE true: SQLite needs it to tell the ON CONFLICT clause from a join's ON. In profile
    # order: the indexes then grow at their ends (1.7 times as fast for 323k entries).
    sql = (
        f"INSERT INTO {table} (segment_id, profile_id, entered_at) "
        f"SELECT %s, entering.*, %s FROM ({select_sql}) entering WHERE true ORDER BY 2 "
        "ON CONFLICT DO NOTHING RETURNING profile_id"
    )
    return _returned_ids(sql, [segment.pk, at, *select_params])


def _close(leaving: QuerySet[SegmentMembership], *, now: dt.datetime) -> array:
    """Close these open stays at ``now``; the profile ids that left."""
    return _returned_ids(*_close_sql(leaving, now=now, returning="profile_id"))


def _close_sql(
    leaving: QuerySet[SegmentMembership], *, now: dt.datetime, returning: str
) -> tuple[str, list]:
    select_sql, select_params = leaving.order_by().values("pk").query.sql_with_params()
    table = connection.ops.quote_name(SegmentMembership._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    sql = (
        f"UPDATE {table} SET exited_at = {_EXITED_AT} "
        f"WHERE exited_at IS NULL AND id IN ({select_sql}) RETURNING {returning}"
    )
    return sql, [at, at, *select_params]


def _returned_ids(sql: str, params: list) -> array:
    ids = array("q")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_BATCH):
            ids.extend(row[0] for row in rows)
    return ids


def _stays_open(pairs: list[tuple[int, int]], *, now: dt.datetime) -> dict[int, set[int]]:
    """Open a stay for each (segment id, profile id) without one; {segment id: who entered}."""
    if len(pairs) > PAIRS_PER_STATEMENT:
        return _chunked(_stays_open, pairs, now=now)
    if not pairs:
        return {}
    table = connection.ops.quote_name(SegmentMembership._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    rows = ", ".join(["(%s, %s, %s)"] * len(pairs))
    sql = (
        f"INSERT INTO {table} (segment_id, profile_id, entered_at) VALUES {rows} "
        "ON CONFLICT DO NOTHING RETURNING segment_id, profile_id"
    )
    return _pairs_returned(sql, [value for pair in pairs for value in (*pair, at)])


def _stays_close(pairs: list[tuple[int, int]], *, now: dt.datetime) -> dict[int, set[int]]:
    """Close the open stay of each (segment id, profile id); {segment id: who left}."""
    if len(pairs) > PAIRS_PER_STATEMENT:
        return _chunked(_stays_close, pairs, now=now)
    if not pairs:
        return {}
    table = connection.ops.quote_name(SegmentMembership._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    rows = ", ".join(["(%s, %s)"] * len(pairs))
    sql = (
        f"UPDATE {table} SET exited_at = {_EXITED_AT} "
        f"WHERE exited_at IS NULL AND (segment_id, profile_id) IN (VALUES {rows}) "
        "RETURNING segment_id, profile_id"
    )
    return _pairs_returned(sql, [at, at, *(value for pair in pairs for value in pair)])


def _chunked(write, pairs: list[tuple[int, int]], *, now: dt.datetime) -> dict[int, set[int]]:
    result: dict[int, set[int]] = {}
    for start in range(0, len(pairs), PAIRS_PER_STATEMENT):
        chunk = pairs[start : start + PAIRS_PER_STATEMENT]
        for segment_id, profiles in write(chunk, now=now).items():
            result.setdefault(segment_id, set()).update(profiles)
    return result


def _pairs_returned(sql: str, params: list) -> dict[int, set[int]]:
    result: dict[int, set[int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for segment_id, profile_id in cursor.fetchall():
            result.setdefault(segment_id, set()).add(profile_id)
    return result


def _member_counts_add(deltas: dict[int, int]) -> None:
    deltas = {segment_id: delta for segment_id, delta in deltas.items() if delta}
    if not deltas:
        return
    table = connection.ops.quote_name(Segment._meta.db_table)
    cases = " ".join(["WHEN %s THEN %s"] * len(deltas))
    ids = ", ".join(["%s"] * len(deltas))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET member_count = member_count + CASE id {cases} END "
            f"WHERE id IN ({ids})",
            [*(value for item in sorted(deltas.items()) for value in item), *sorted(deltas)],
        )


def _daily_count_store(*, segment: Segment, members: int, now: dt.datetime) -> None:
    """The day's count (UTC) is the last one measured that day."""
    SegmentDailyCount.objects.bulk_create(
        [SegmentDailyCount(segment=segment, day=now.astimezone(dt.UTC).date(), members=members)],
        update_conflicts=True,
        unique_fields=["segment", "day"],
        update_fields=["members"],
    )


def _segments_locked_shared() -> list[Segment]:
    """Every segment, in id order, with its shared advisory lock taken (see the module's
    docstring): one statement on PostgreSQL."""
    if connection.vendor != "postgresql":
        return list(Segment.objects.order_by("pk"))
    table = connection.ops.quote_name(Segment._meta.db_table)
    # The subquery's ORDER BY makes the locks be taken in ascending id: no deadlock.
    return list(
        Segment.objects.raw(
            f"SELECT s.*, pg_advisory_xact_lock_shared(%s, s.id::integer) AS locked "
            f"FROM (SELECT * FROM {table} ORDER BY id) s",
            [_ADVISORY_NAMESPACE],
        )
    )


def _advisory_lock(segment_ids: list[int], *, shared: bool) -> None:
    """Take the segments' advisory locks until the transaction ends (PostgreSQL only: SQLite
    lets one writer in at a time anyway)."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    # One statement, taking the locks in ascending id: two callers cannot deadlock.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count({function}(%s, s.id)) FROM "
            "(SELECT unnest(%s::int[]) AS id ORDER BY 1) s",
            [_ADVISORY_NAMESPACE, sorted(segment_ids)],
        )


def _announce_after_commit(
    segment: Segment, *, entered: array, exited: array, at: dt.datetime, by: Trigger
) -> None:
    def announce() -> None:
        for signal, ids in ((segment_entered, entered), (segment_exited, exited)):
            for start in range(0, len(ids), SEGMENT_SIGNAL_BATCH):
                batch = frozenset(ids[start : start + SEGMENT_SIGNAL_BATCH])
                signal.send_robust(
                    sender=Segment, segment=segment, profile_ids=batch, at=at, by=str(by)
                )

    if entered or exited:
        transaction.on_commit(announce)
