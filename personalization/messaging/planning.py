"""Writing planned messages in bulk, for every source (campaigns, flow steps): one
``INSERT … SELECT … ON CONFLICT DO NOTHING`` on the ledger's unique dedupe key, and each
recipient's time as a ``CASE`` over their time zones.

Why raw SQL: the ORM cannot insert from a select. ``ON CONFLICT DO NOTHING`` is the same on
PostgreSQL and SQLite (3.24+): the dedupe key decides, whoever plans twice.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from ..models import Message, MessageKind, MessageState

_COLUMNS = (
    "dedupe_key, profile_id, source, campaign_id, flow_step_id, flow_entry_id, kind, topic_id, "
    'priority, context, state, reason, not_before, expires_at, variant, "group", attempts, '
    "claim_token, to_email, subject, esp_message_id, last_error, created_at, updated_at"
)


@dataclass(frozen=True)
class Sql:
    """A piece of SQL and its parameters."""

    sql: str
    params: tuple = ()


@dataclass(frozen=True)
class Source:
    """What every message of one planning statement shares."""

    source: str
    topic_id: int | None
    priority: int
    campaign_id: int | None = None
    flow_step_id: int | None = None
    kind: str = MessageKind.MARKETING


def shop_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE or "UTC")


def known_zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def zone_case_sql(
    *, moments: dict[str, dt.datetime], default: dt.datetime, column: str = "p.timezone"
) -> Sql:
    """SQL for a moment that depends on each recipient's time zone name (``column``):
    ``moments[name]``, else ``default`` (unknown zones take the shop's)."""
    adapt = connection.ops.adapt_datetimefield_value
    if not moments:
        return Sql("%s", (adapt(default),))
    whens = " ".join("WHEN %s THEN %s" for _ in moments)
    params = [value for name, at in sorted(moments.items()) for value in (name, adapt(at))]
    return Sql(f"CASE {column} {whens} ELSE %s END", (*params, adapt(default)))


def zoned_moment_sql(
    *, moment: Callable[[zoneinfo.ZoneInfo], dt.datetime], zones: Iterable[str]
) -> Sql:
    """:func:`zone_case_sql` for a moment computed from each known zone (``moment(zone)``)."""
    moments = {name: moment(zone) for name in zones if (zone := known_zone(name))}
    return zone_case_sql(moments=moments, default=moment(shop_zone()))


def _value(value) -> Sql:
    return Sql("NULL") if value is None else Sql("%s", (value,))


def planned_messages_insert(
    *,
    source: Source,
    rows: Sql,
    key: Sql,
    profile: str,
    send: Sql,
    expires: Sql,
    now: dt.datetime,
    entry: str = "NULL",
) -> int:
    """Plan one message per row of ``rows`` (a ``FROM … WHERE …`` naming the recipient's
    profile ``p``), keyed ``key``, for ``profile`` (an SQL expression), sent from ``send``,
    expiring at ``expires``; ``entry`` is a flow entry's id expression. Returns how many were
    new."""
    qn = connection.ops.quote_name
    campaign, step = _value(source.campaign_id), _value(source.flow_step_id)
    topic = _value(source.topic_id)
    sql = f"""
        INSERT INTO {qn(Message._meta.db_table)} ({_COLUMNS})
        SELECT {key.sql}, {profile}, %s, {campaign.sql}, {step.sql}, {entry}, %s, {topic.sql},
               %s, %s, %s, '', {send.sql}, {expires.sql}, '', '', 0, '', '', '', '', '', %s, %s
        {rows.sql}
        ON CONFLICT (dedupe_key) DO NOTHING
    """
    stamp = connection.ops.adapt_datetimefield_value(now)
    params = [
        *key.params,
        source.source,
        *campaign.params,
        *step.params,
        source.kind,
        *topic.params,
        source.priority,
        "{}",
        MessageState.PLANNED,
        *send.params,
        *expires.params,
        stamp,
        stamp,
        *rows.params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)
