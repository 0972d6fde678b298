"""Order statistics of profiles: orders count, total spent, average order value, first and
last order, over the orders that count (not cancelled or refunded), in the shop's currency.

Kept current by every write of an order (``profile_stats_refresh``, under the profile's lock)
and rebuildable for any set of profiles in one set-based statement (``profile_stats_rebuild``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, DecimalField, Func, Max, Min, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Round

from .concurrency import atomic_retried, profiles_lock
from .models import Order, OrderStatus, Profile


class _NonInteger(Func):
    """The expression itself, except on SQLite: whole-number decimals are stored there as
    integers, and integer division would truncate the average."""

    template = "%(expressions)s"

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection, template="CAST(%(expressions)s AS REAL)", **extra_context
        )


def _stats_expressions() -> dict[str, Any]:
    """Each stat as a subquery over the profile's counted orders, for one UPDATE."""
    counted = (
        Order.objects.filter(profile=OuterRef("pk"), status=OrderStatus.PLACED)
        .order_by()
        .values("profile")
    )
    money_field = DecimalField(max_digits=14, decimal_places=2)

    def aggregate(expression):
        # No counted orders: the grouped subquery has no row and yields NULL.
        return Subquery(counted.annotate(value=expression).values("value")[:1])

    # In the shop's one currency, whatever each customer paid in.
    spent, count = aggregate(Sum("shop_total")), aggregate(Count("pk"))
    return {
        "orders_count": Coalesce(count, Value(0)),
        "total_spent": Coalesce(spent, Value(Decimal(0)), output_field=money_field),
        # Rounded to cents in SQL, so the live update and the rebuild agree (half away from 0).
        "average_order_value": Coalesce(
            Round(_NonInteger(spent) / count, 2, output_field=money_field),
            Value(Decimal(0)),
            output_field=money_field,
        ),
        "first_order_at": aggregate(Min("placed_at")),
        "last_order_at": aggregate(Max("placed_at")),
    }


@atomic_retried
def profile_stats_refresh(*, profile_id: int) -> None:
    """Recompute one profile's order statistics (one UPDATE on its own orders).

    The profile is locked first, in a statement of its own: whoever else writes its orders
    holds that lock until they commit, so the UPDATE that follows sees their orders too.
    """
    profiles_lock([profile_id])
    profile_stats_rebuild(profiles=Profile.objects.filter(pk=profile_id))


def profile_stats_rebuild(*, profiles=None) -> int:
    """Recompute the stats of every profile (or those in ``profiles``) in one UPDATE."""
    queryset = profiles if profiles is not None else Profile.objects.all()
    if connection.vendor == "postgresql":
        return _stats_rebuild_postgresql(queryset)
    return queryset.update(**_stats_expressions())


def _stats_rebuild_postgresql(profiles) -> int:
    """The same UPDATE with one aggregate pass over the orders instead of five subqueries
    per profile: what makes recomputing hundreds of thousands of profiles take seconds."""
    ids_sql, ids_params = profiles.order_by().values("pk").query.sql_with_params()
    profile_table = connection.ops.quote_name(Profile._meta.db_table)
    order_table = connection.ops.quote_name(Order._meta.db_table)
    # Rounded to cents as in _stats_expressions (PostgreSQL's ROUND is half away from 0).
    sql = f"""
        UPDATE {profile_table} p SET
            orders_count = COALESCE(s.orders, 0),
            total_spent = COALESCE(s.spent, 0),
            average_order_value = COALESCE(ROUND(s.spent / s.orders, 2), 0),
            first_order_at = s.first_at,
            last_order_at = s.last_at
        FROM ({ids_sql}) AS t (id)
        LEFT JOIN (
            SELECT profile_id, count(*) AS orders, sum(shop_total) AS spent,
                min(placed_at) AS first_at, max(placed_at) AS last_at
            FROM {order_table}
            WHERE status = %s AND profile_id IN ({ids_sql})
            GROUP BY profile_id
        ) AS s ON s.profile_id = t.id
        WHERE p.id = t.id"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [*ids_params, OrderStatus.PLACED, *ids_params])
        return cursor.rowcount
