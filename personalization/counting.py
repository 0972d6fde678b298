"""Counting rows without reading them all: for pages that list big tables.

An exact ``count(*)`` reads every row it counts (or every index entry): a second or more for
a million profiles or segment stays, on every page of a list. A list needs much less: how
many pages there are, roughly, and whether there is a next one.
"""

from __future__ import annotations

from django.db import connections
from django.db.models import Model, QuerySet


def row_count_estimate(model: type[Model], *, using: str = "default") -> int | None:
    """PostgreSQL's estimate of the rows in ``model``'s table (``pg_class.reltuples``, kept
    by ``ANALYZE``, ``VACUUM`` and autovacuum), in one catalogue lookup; ``None`` on other
    databases or for a table never analysed."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:  # -1: never analysed (PostgreSQL 14+)
        return None
    return int(row[0])


def count_at_most(queryset: QuerySet, limit: int) -> int:
    """The exact number of rows of ``queryset`` if it is at most ``limit``, else
    ``limit + 1``: ``SELECT count(*) FROM (… LIMIT limit + 1)`` stops reading there."""
    return queryset.order_by()[: limit + 1].count()
