"""Writing checked orders on PostgreSQL: ``COPY`` into staging tables, then ``INSERT … SELECT``.

Each batch is one transaction. Its orders are copied into a temporary table of the session,
those already recorded are set aside, the products its lines name are resolved (and
remembered, :mod:`.products`), its lines are copied with their product keys, and two
statements do the rest: one finds or creates the customers' profiles, one inserts the orders
and their lines. Two imports of overlapping files may run at once: ``ON CONFLICT DO NOTHING``
makes one wait for the other's row, and a batch that finds some of its orders taken that way
rolls back and goes again (so no profile is left without its order). Rows are inserted in
key order, so both take their locks in the same order; the batch's profiles are locked first,
in ascending key, as every live write does (:mod:`personalization.concurrency`).

The rules are those of :mod:`.orm` (which product a SKU names, whose name a new profile
gets), without a Python object per row written.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.db.models import Model
from django.utils import timezone

from ..models import IngestSource, Order, OrderLine, Profile, ProfileAlias
from .reading import ParsedOrder, ProductKey
from .results import BadRow
from .stats import profile_stats_recompute
from .writing import BatchCollision, BatchWriter, Written, orders_suppressed_count

# Session-local staging tables: nobody else sees them, and they are not written to the WAL.
# The batch's tables empty themselves when its transaction commits.
_STAGING = {
    "pzn_import_order": "external_id text, line integer, email text, placed_at timestamptz, "
    "total numeric, currency text, shop_total numeric, status text, first_name text, "
    "last_name text",
    "pzn_import_line": "external_id text, line integer, product_id bigint, quantity integer, "
    "unit_price numeric",
    # The profile of each email the batch names, and whether the batch created it.
    "pzn_import_email": "email text, profile_id bigint, created boolean NOT NULL DEFAULT false",
    # Profiles whose statistics wait to be recomputed (kept across batches).
    "pzn_import_touched": "profile_id bigint PRIMARY KEY",
}
_PER_BATCH = [name for name in _STAGING if name != "pzn_import_touched"]


class PostgresWriter(BatchWriter):
    """Writes batches of checked orders through staging tables; see the module's docstring."""

    def __init__(self, *, report: Callable[[BadRow], None]):
        super().__init__(report=report)
        self.staged = False
        self.pending = 0  # profiles waiting for their statistics
        self.sql = _Statements()

    def _touched_add(self, touched: int) -> int:
        self.pending += touched
        return self.pending

    def stats_flush(self) -> None:
        if not self.staged:
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT profile_id FROM pzn_import_touched")
            profile_ids = [row[0] for row in cursor.fetchall()]
            profile_stats_recompute(profile_ids=profile_ids)
            cursor.execute("TRUNCATE pzn_import_touched")
        self.pending = 0

    def close(self) -> None:
        """Drop the staging tables (a rolled-back dry run has dropped them already)."""
        if self.staged and not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE IF EXISTS " + ", ".join(_STAGING))
        self.staged = False
        super().close()

    def _batch_committed(self) -> None:
        # Only now are the tables there for good: a rolled-back first batch takes them along.
        self.staged = True

    def _batch_begin(self, cursor, *, nested: bool) -> None:
        # An interrupted import loses at most the last moment's batches to a crash, and
        # running the file again imports them; waiting for each commit to reach the disk
        # would cost more than the writing.
        cursor.execute("SET LOCAL synchronous_commit = off")
        if not self.staged:
            for name, columns in _STAGING.items():
                on_commit = "DELETE ROWS" if name in _PER_BATCH else "PRESERVE ROWS"
                cursor.execute(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({columns}) ON COMMIT {on_commit}"
                )
            # Left over from an earlier import in this database session that stopped short.
            cursor.execute("TRUNCATE " + ", ".join(_STAGING))
        elif nested:
            # Inside a transaction of the caller's (a dry run), batches end without a commit.
            cursor.execute("TRUNCATE " + ", ".join(_PER_BATCH))

    def _write(self, orders: list[ParsedOrder], *, nested: bool) -> Written:
        with connection.cursor() as cursor:
            self._batch_begin(cursor, nested=nested)
            return self._batch_write(cursor, orders)

    def _batch_write(self, cursor, orders: list[ParsedOrder]) -> Written:
        sql = self.sql
        _orders_copy(cursor, orders)
        cursor.execute(sql.present_set_aside)
        present_ids, touched_present = cursor.fetchone()
        present = set(present_ids or ())
        new = [order for order in orders if order.order_id not in present]
        products, products_created, rejected = self.products.resolve(new)
        if rejected:
            left_out = {order.order_id for order, _errors in rejected}
            new = [order for order in new if order.order_id not in left_out]
            cursor.execute(
                "DELETE FROM pzn_import_order WHERE external_id = ANY(%s)", [list(left_out)]
            )
        suppressed = orders_suppressed_count(new)
        _lines_copy(cursor, new, products)
        cursor.execute(sql.profiles_resolve, sql.profiles_resolve_params())
        emails, profiles_created, resolved = cursor.fetchone()
        if resolved < emails:
            cursor.execute(sql.profiles_created_meanwhile)  # by a concurrent import
        cursor.execute(sql.profiles_lock)
        wanted, locked = cursor.fetchone()
        if locked < wanted:
            # A concurrent merge deleted a profile found above (its emails now lead to the
            # profile it was merged into): start over, to find that one.
            raise BatchCollision
        cursor.execute(sql.orders_insert, sql.orders_insert_params())
        imported, lines, touched = cursor.fetchone()
        if imported < len(new):
            # A concurrent import recorded some of these orders meanwhile. Roll back, so
            # that no profile or product is left without the order it was made for; the
            # next attempt finds them present.
            raise BatchCollision
        counts = {
            "orders_present": len(present),
            "orders_imported": imported,
            "lines_imported": lines,
            "profiles_created": profiles_created,
            "products_created": products_created,
            "orders_suppressed": suppressed,
        }
        return counts, rejected, products, touched_present + touched


def _orders_copy(cursor, orders: list[ParsedOrder]) -> None:
    with cursor.copy(
        "COPY pzn_import_order (external_id, line, email, placed_at, total, currency, "
        "shop_total, status, first_name, last_name) FROM STDIN"
    ) as copy:
        write = copy.write_row
        for order in orders:
            write(
                (
                    order.order_id,
                    order.line,
                    order.email,
                    order.placed_at,
                    order.total,
                    order.currency,
                    order.shop_total,
                    order.status,
                    order.first_name,
                    order.last_name,
                )
            )


def _lines_copy(cursor, orders: list[ParsedOrder], products: dict[ProductKey, int]) -> None:
    with cursor.copy(
        "COPY pzn_import_line (external_id, line, product_id, quantity, unit_price) FROM STDIN"
    ) as copy:
        write = copy.write_row
        for order in orders:
            order_id = order.order_id
            for line, key, _sku, _title, _category, qty, price in order.lines:
                write((order_id, line, products[key], qty, price))


class _Statements:
    """The batch's SQL, with the app's table names, built once per import."""

    def __init__(self):
        order, line = _table(Order), _table(OrderLine)
        profile, alias = _table(Profile), _table(ProfileAlias)
        # Lookups in the app's tables are scalar subqueries: always an index probe per
        # staged row, whatever the planner believes of tables that grow while it imports.
        self.present_set_aside = f"""
            WITH present AS (
                DELETE FROM pzn_import_order s
                WHERE (SELECT o.id FROM {order} o WHERE o.external_id = s.external_id)
                    IS NOT NULL
                RETURNING s.external_id,
                    (SELECT o.profile_id FROM {order} o WHERE o.external_id = s.external_id)
                    AS profile_id
            ), touched AS (
                INSERT INTO pzn_import_touched (profile_id)
                SELECT DISTINCT profile_id FROM present
                WHERE profile_id IS NOT NULL  -- the order of an erased customer
                ON CONFLICT DO NOTHING
                RETURNING 1
            )
            SELECT (SELECT array_agg(external_id) FROM present),
                (SELECT count(*) FROM touched)"""
        # By email ("email <> ''" lets PostgreSQL use the partial unique index), then by
        # former email; else created, named after the first of its orders (by id) that
        # gives a name.
        self._profile_defaults = _Defaults(Profile, ["email", "first_name", "last_name"])
        self.profiles_resolve = f"""
            WITH named AS (
                SELECT DISTINCT ON (email) email, first_name, last_name
                FROM pzn_import_order
                -- Code-point order, as the ORM writer sorts in Python, whatever the collation.
                ORDER BY email, first_name = '' AND last_name = '', external_id COLLATE "C"
            ), known AS (
                SELECT n.email, n.first_name, n.last_name, COALESCE(
                    (SELECT p.id FROM {profile} p WHERE p.email = n.email AND p.email <> ''),
                    (SELECT a.profile_id FROM {alias} a WHERE a.kind = %s AND a.value = n.email)
                ) AS profile_id
                FROM named n
            ), created AS (
                INSERT INTO {profile} ({self._profile_defaults.columns})
                SELECT email, first_name, last_name, {self._profile_defaults.placeholders}
                FROM known WHERE profile_id IS NULL
                ORDER BY email
                ON CONFLICT (email) WHERE email <> '' DO NOTHING
                RETURNING id, email
            ), stored AS (
                INSERT INTO pzn_import_email (email, profile_id, created)
                SELECT email, profile_id, false FROM known WHERE profile_id IS NOT NULL
                UNION ALL
                SELECT email, id, true FROM created
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM named), (SELECT count(*) FROM created),
                (SELECT count(*) FROM stored)"""
        self.profiles_created_meanwhile = f"""
            INSERT INTO pzn_import_email (email, profile_id)
            SELECT n.email,
                (SELECT p.id FROM {profile} p WHERE p.email = n.email AND p.email <> '')
            FROM (SELECT DISTINCT email FROM pzn_import_order) n
            WHERE NOT EXISTS (SELECT FROM pzn_import_email e WHERE e.email = n.email)"""
        # The one lock order (personalization.concurrency): the profiles, ascending, before
        # their orders. A share lock: concurrent imports do not wait for each other, while a
        # live request's stats update for one of these customers waits for this batch. The
        # profiles the batch created are nobody else's to see until it commits.
        self.profiles_lock = f"""
            SELECT (SELECT count(DISTINCT profile_id) FROM pzn_import_email WHERE NOT created),
                (SELECT count(*) FROM (
                    SELECT FROM {profile} p
                    WHERE p.id IN (SELECT profile_id FROM pzn_import_email WHERE NOT created)
                    ORDER BY p.id FOR KEY SHARE
                ) AS locked)"""
        self._order_defaults = _Defaults(
            Order,
            [
                "external_id",
                "profile_id",
                "placed_at",
                "total",
                "currency",
                "shop_total",
                "status",
                "source",
            ],
        )
        self.orders_insert = f"""
            WITH new AS (
                INSERT INTO {order} ({self._order_defaults.columns})
                SELECT o.external_id, e.profile_id, o.placed_at, o.total, o.currency,
                    o.shop_total, o.status,
                    %s, {self._order_defaults.placeholders}
                FROM pzn_import_order o JOIN pzn_import_email e USING (email)
                ORDER BY o.external_id
                ON CONFLICT (external_id) DO NOTHING
                RETURNING id, external_id
            ), lines AS (
                INSERT INTO {line} (order_id, product_id, quantity, unit_price)
                SELECT new.id, l.product_id, l.quantity, l.unit_price
                FROM new JOIN pzn_import_line l USING (external_id)
                ORDER BY l.line
                RETURNING 1
            ), touched AS (
                INSERT INTO pzn_import_touched (profile_id)
                SELECT profile_id FROM pzn_import_email
                ON CONFLICT DO NOTHING
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM lines),
                (SELECT count(*) FROM touched)"""

    def profiles_resolve_params(self) -> list:
        return [ProfileAlias.Kind.EMAIL, *self._profile_defaults.values()]

    def orders_insert_params(self) -> list:
        return [IngestSource.IMPORT, *self._order_defaults.values()]


class _Defaults:
    """The columns a raw INSERT leaves to the model: each field's default, as the ORM would
    set it (``auto_now`` fields get the time of the batch)."""

    def __init__(self, model: type[Model], given: list[str]):
        self.fields = [
            field
            for field in model._meta.concrete_fields
            if not field.primary_key and field.attname not in given
        ]
        columns = [model._meta.get_field(name).column for name in given]
        columns += [field.column for field in self.fields]
        self.columns = ", ".join(connection.ops.quote_name(column) for column in columns)
        self.placeholders = ", ".join(
            f"%s::{field.cast_db_type(connection)}" for field in self.fields
        )

    def values(self) -> list:
        now = timezone.now()
        values = []
        for field in self.fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                value = now
            else:
                value = field.get_default()  # "" for text fields without one, else None
            values.append(field.get_db_prep_save(value, connection))
        return values


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)
