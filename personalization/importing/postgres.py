"""Writing checked orders on PostgreSQL: ``COPY`` into staging tables, then ``INSERT … SELECT``.

Each batch is one transaction. Its orders and lines are copied into temporary tables of the
session, and a few set-based statements take it from there: orders already recorded are set
aside, products and profiles are looked up and the missing ones created, then orders and
their lines are inserted in one statement. ``ON CONFLICT DO NOTHING`` lets two imports of
overlapping files run at once: one waits for the other's row and then skips it. Rows are
inserted in key order, so both take their locks in the same order.

This is the same work as :mod:`.orm` does through the ORM, with the same rules (which product
a SKU names, whose name a new profile gets), but without a Python object per row.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from ..models import IngestSource, Order, OrderLine, Product, Profile, ProfileAlias
from .reading import ParsedOrder
from .results import BadRow, ImportResult, unknown_product_reason
from .stats import STATS_PENDING, profile_stats_recompute

ATTEMPTS = 5  # for a batch that deadlocks with a concurrent import

# Session-local staging tables: nobody else sees them, and they are not written to the WAL.
# The batch's tables empty themselves when its transaction commits.
_STAGING = {
    "pzn_import_order": "external_id text, line integer, email text, placed_at timestamptz, "
    "total numeric, currency text, status text, first_name text, last_name text",
    "pzn_import_line": "external_id text, line integer, key_id text, key_sku text, sku text, "
    "title text, category text, quantity integer, unit_price numeric",
    # One row per product the batch names, with the key of its mirror row once known.
    "pzn_import_product": "key_id text, key_sku text, sku text, title text, category text, "
    "product_id bigint",
    # One row per email the batch names, with the key of its profile once known.
    "pzn_import_email": "email text, first_name text, last_name text, profile_id bigint",
    # Profiles whose statistics wait to be recomputed (kept across batches).
    "pzn_import_touched": "profile_id bigint PRIMARY KEY",
}
_PER_BATCH = [name for name in _STAGING if name != "pzn_import_touched"]


class PostgresWriter:
    """Writes batches of checked orders through staging tables; see the module's docstring."""

    def __init__(self, *, report: Callable[[BadRow], None]):
        self.report = report
        self.staged = False
        self.pending = 0  # at least as many profiles as wait for their statistics
        self.sql = _Statements()

    def write(self, orders: list[ParsedOrder], result: ImportResult) -> None:
        if not orders:
            return
        orders.sort(key=lambda order: order.order_id)
        nested = connection.in_atomic_block
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    self._batch_begin(cursor, nested=nested)
                    counts, rejected = self._write(cursor, orders)
                break
            except (IntegrityError, OperationalError):
                # A deadlock with a concurrent import was broken (or it wrote a row this
                # batch counted on). The batch was rolled back; the next attempt sees the
                # other import's rows.
                if attempt == ATTEMPTS:
                    raise
                time.sleep(0.05 * attempt)
        for errors in rejected.values():
            result.orders_bad += 1
            result.rows_bad += len(errors)
            for bad in errors:
                self.report(bad)
        self.pending += counts.pop("touched")
        for name, value in counts.items():
            setattr(result, name, getattr(result, name) + value)
        if self.pending >= STATS_PENDING:
            self.stats_flush()

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
            cursor.execute("TRUNCATE " + ", ".join(_STAGING))
            self.staged = True
        elif nested:
            # Inside a transaction of the caller's (a dry run), batches end without a commit.
            cursor.execute("TRUNCATE " + ", ".join(_PER_BATCH))

    def _write(self, cursor, orders: list[ParsedOrder]) -> tuple[dict[str, int], dict]:
        _copy(cursor, orders)
        sql = self.sql
        cursor.execute(sql.present_set_aside)
        counts = {"orders_present": cursor.fetchone()[0]}
        cursor.execute(sql.products_named)
        if cursor.rowcount:
            cursor.execute(sql.products_by_id)
            cursor.execute(sql.products_by_sku)
            cursor.execute(sql.products_create, sql.products_create_params())
            counts["products_created"] = cursor.rowcount
            cursor.execute(sql.products_created_find)
        rejected = self._unknown_products_reject(cursor)
        cursor.execute(sql.emails_named)
        cursor.execute(sql.profiles_by_email)
        cursor.execute(sql.profiles_by_former_email, [ProfileAlias.Kind.EMAIL])
        cursor.execute(sql.profiles_create, sql.profiles_create_params())
        counts["profiles_created"] = cursor.rowcount
        cursor.execute(sql.profiles_by_email)
        cursor.execute(sql.orders_insert, sql.orders_insert_params())
        imported, lines = cursor.fetchone()
        cursor.execute(sql.touched_add)
        # Orders neither present before nor imported now: a concurrent import recorded them.
        late = len(orders) - counts["orders_present"] - len(rejected) - imported
        counts.update(
            orders_imported=imported,
            lines_imported=lines,
            orders_present=counts["orders_present"] + late,
            touched=cursor.rowcount,
        )
        return counts, rejected

    def _unknown_products_reject(self, cursor) -> dict[str, list[BadRow]]:
        """Orders naming a product that is neither in the mirror nor titled: left out."""
        cursor.execute(self.sql.unknown_products_lines)
        rejected: dict[str, list[BadRow]] = {}
        reason = unknown_product_reason()
        for line, order_id in cursor.fetchall():
            rejected.setdefault(order_id, []).append(
                BadRow(line=line, order_id=order_id, reason=reason)
            )
        if rejected:
            cursor.execute(
                "DELETE FROM pzn_import_order WHERE external_id = ANY(%s)", [list(rejected)]
            )
        return rejected


def _copy(cursor, orders: list[ParsedOrder]) -> None:
    with cursor.copy(
        "COPY pzn_import_order (external_id, line, email, placed_at, total, currency, status, "
        "first_name, last_name) FROM STDIN"
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
                    order.status,
                    order.first_name,
                    order.last_name,
                )
            )
    with cursor.copy(
        "COPY pzn_import_line (external_id, line, key_id, key_sku, sku, title, category, "
        "quantity, unit_price) FROM STDIN"
    ) as copy:
        write = copy.write_row
        for order in orders:
            order_id = order.order_id
            for line, (key_id, key_sku), sku, title, category, qty, price in order.lines:
                write((order_id, line, key_id, key_sku, sku, title, category, qty, price))


class _Statements:
    """The batch's SQL, with the app's table names, built once per import."""

    def __init__(self):
        order, line = _table(Order), _table(OrderLine)
        product, profile, alias = _table(Product), _table(Profile), _table(ProfileAlias)
        self.present_set_aside = f"""
            WITH present AS (
                DELETE FROM pzn_import_order s USING {order} o
                WHERE o.external_id = s.external_id
                RETURNING o.profile_id
            ), touched AS (
                INSERT INTO pzn_import_touched (profile_id)
                SELECT DISTINCT profile_id FROM present ON CONFLICT DO NOTHING
            )
            SELECT count(*) FROM present"""
        # The first line naming a product with a title describes it, else the first line.
        self.products_named = """
            INSERT INTO pzn_import_product (key_id, key_sku, sku, title, category)
            SELECT DISTINCT ON (l.key_id, l.key_sku) l.key_id, l.key_sku, l.sku, l.title,
                l.category
            FROM pzn_import_line l JOIN pzn_import_order o USING (external_id)
            ORDER BY l.key_id, l.key_sku, l.title = '', l.line"""
        self.products_by_id = f"""
            UPDATE pzn_import_product s SET product_id = p.id FROM {product} p
            WHERE s.key_id <> '' AND p.external_id = s.key_id"""
        # A SKU without a product id names the product with that id, else the oldest
        # product with that SKU.
        self.products_by_sku = f"""
            UPDATE pzn_import_product s SET product_id = COALESCE(
                (SELECT p.id FROM {product} p WHERE p.external_id = s.key_sku),
                (SELECT min(p.id) FROM {product} p WHERE p.sku = s.key_sku))
            WHERE s.key_id = ''"""
        self._product_defaults = _Defaults(
            Product, ["external_id", "sku", "title", "category_path"]
        )
        self.products_create = f"""
            INSERT INTO {product} ({self._product_defaults.columns})
            SELECT CASE WHEN key_id <> '' THEN key_id ELSE key_sku END, sku, title, category,
                {self._product_defaults.placeholders}
            FROM pzn_import_product WHERE product_id IS NULL AND title <> ''
            ORDER BY 1
            ON CONFLICT (external_id) DO NOTHING"""
        self.products_created_find = f"""
            UPDATE pzn_import_product s SET product_id = p.id FROM {product} p
            WHERE s.product_id IS NULL
              AND p.external_id = CASE WHEN s.key_id <> '' THEN s.key_id ELSE s.key_sku END"""
        self.unknown_products_lines = """
            SELECT l.line, l.external_id
            FROM pzn_import_line l
            JOIN pzn_import_order o USING (external_id)
            JOIN pzn_import_product p ON p.key_id = l.key_id AND p.key_sku = l.key_sku
            WHERE p.product_id IS NULL
            ORDER BY l.line"""
        # A new profile takes its name from the first of its orders (by id) that has one.
        self.emails_named = """
            INSERT INTO pzn_import_email (email, first_name, last_name)
            SELECT DISTINCT ON (email) email, first_name, last_name FROM pzn_import_order
            ORDER BY email, first_name = '' AND last_name = '', external_id"""
        # "email <> ''" lets PostgreSQL use the partial unique index.
        self.profiles_by_email = f"""
            UPDATE pzn_import_email s SET profile_id = p.id FROM {profile} p
            WHERE s.profile_id IS NULL AND p.email = s.email AND p.email <> ''"""
        self.profiles_by_former_email = f"""
            UPDATE pzn_import_email s SET profile_id = a.profile_id FROM {alias} a
            WHERE s.profile_id IS NULL AND a.kind = %s AND a.value = s.email"""
        self._profile_defaults = _Defaults(Profile, ["email", "first_name", "last_name"])
        self.profiles_create = f"""
            INSERT INTO {profile} ({self._profile_defaults.columns})
            SELECT email, first_name, last_name, {self._profile_defaults.placeholders}
            FROM pzn_import_email WHERE profile_id IS NULL
            ORDER BY email
            ON CONFLICT (email) WHERE email <> '' DO NOTHING"""
        self._order_defaults = _Defaults(
            Order,
            ["external_id", "profile_id", "placed_at", "total", "currency", "status", "source"],
        )
        self.orders_insert = f"""
            WITH new AS (
                INSERT INTO {order} ({self._order_defaults.columns})
                SELECT o.external_id, e.profile_id, o.placed_at, o.total, o.currency, o.status,
                    %s, {self._order_defaults.placeholders}
                FROM pzn_import_order o JOIN pzn_import_email e USING (email)
                ORDER BY o.external_id
                ON CONFLICT (external_id) DO NOTHING
                RETURNING id, external_id
            ), lines AS (
                INSERT INTO {line} (order_id, product_id, quantity, unit_price)
                SELECT new.id, p.product_id, l.quantity, l.unit_price
                FROM new
                JOIN pzn_import_line l USING (external_id)
                JOIN pzn_import_product p ON p.key_id = l.key_id AND p.key_sku = l.key_sku
                ORDER BY l.line
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM lines)"""
        self.touched_add = """
            INSERT INTO pzn_import_touched (profile_id)
            SELECT profile_id FROM pzn_import_email ON CONFLICT DO NOTHING"""

    def products_create_params(self) -> list:
        return self._product_defaults.values()

    def profiles_create_params(self) -> list:
        return self._profile_defaults.values()

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
