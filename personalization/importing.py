"""Backfill historical orders from a CSV file: profiles, catalogue mirror, orders, lines, stats.

The file is read as a stream and written one batch of ``BATCH_SIZE`` orders at a time, so
memory stays flat whatever its size. Each batch is one transaction of a few set-based queries
(lookups with ``__in``, ``bulk_create``); a concurrent import of the same orders makes the
batch roll back and try again. While one batch is written, a reader thread checks the next.
The order statistics of the profiles touched are recomputed set-based once the orders are in
(and whenever many profiles are waiting), for profiles whose orders were already present too:
running the same file again repairs them after an interruption.

Columns (a header row is required; names are case-insensitive, in any order; unknown columns
are ignored and listed in :attr:`ImportResult.ignored_columns`):

required  ``order_id, email, placed_at, total, currency``
optional  ``status, first_name, last_name`` (per order) and
          ``product_id, sku, title, category, quantity, unit_price`` (per line)

A row naming a product (``product_id`` or ``sku``) is one order line. The rows of one order
must be adjacent and repeat the same order fields. An order with a bad row is not imported at
all; each bad row is reported with its line number. See ``docs/guide/backfill.md``.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import queue
import threading
import time
import zoneinfo
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from typing import IO, Any

from django.db import IntegrityError, OperationalError, connection, reset_queries, transaction
from django.utils import translation
from django.utils.translation import gettext as _

from .catalogue import category_path_normalize
from .commerce import profile_stats_rebuild
from .conf import app_settings
from .exceptions import ImportFileError, InvalidInput
from .models import IngestSource, Order, OrderLine, OrderStatus, Product, Profile, ProfileAlias
from .validation import MAX_ID_LENGTH, currency, email_normalize, money, quantity

REQUIRED_COLUMNS = ("order_id", "email", "placed_at", "total", "currency")
ORDER_COLUMNS = ("status", "first_name", "last_name")
LINE_COLUMNS = ("product_id", "sku", "title", "category", "quantity", "unit_price")
COLUMNS = REQUIRED_COLUMNS + ORDER_COLUMNS + LINE_COLUMNS

# Bounds that keep memory flat: order ids remembered to notice non-adjacent rows, parsed
# values (emails, amounts, categories) remembered, products remembered, and profiles whose
# statistics wait to be recomputed.
RECENT_ORDERS = 50_000
PARSED_CACHE = 50_000
PRODUCT_CACHE = 100_000
STATS_PENDING = 200_000
STATS_CHUNK = 10_000  # profiles recomputed per transaction
ATTEMPTS = 5  # for a batch that collides with a concurrent import
_TEXT_LIMITS = {"first_name": 150, "last_name": 150, "sku": 64, "title": 255}
_STATUSES = {
    "": OrderStatus.PLACED,
    "placed": OrderStatus.PLACED,
    "cancelled": OrderStatus.CANCELLED,
    "canceled": OrderStatus.CANCELLED,
    "refunded": OrderStatus.REFUNDED,
}

# A product as a line names it: (product_id, "") or, without a product id, ("", sku).
ProductKey = tuple[str, str]


@dataclass(frozen=True)
class BadRow:
    """One row that was not imported, and why. None of its order's rows were imported."""

    line: int
    order_id: str
    reason: str

    def __str__(self) -> str:
        if self.order_id:
            return _("line %(line)d (order %(order)s): %(reason)s") % {
                "line": self.line,
                "order": self.order_id,
                "reason": self.reason,
            }
        return _("line %(line)d: %(reason)s") % {"line": self.line, "reason": self.reason}


@dataclass
class ImportResult:
    """What one run of :func:`orders_import` did (running totals while it runs)."""

    rows: int = 0
    rows_bad: int = 0
    orders_imported: int = 0
    orders_present: int = 0
    orders_bad: int = 0
    lines_imported: int = 0
    profiles_created: int = 0
    products_created: int = 0
    elapsed: float = 0.0
    dry_run: bool = False
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def orders_seen(self) -> int:
        return self.orders_imported + self.orders_present + self.orders_bad

    @property
    def orders_per_second(self) -> float:
        return self.orders_seen / self.elapsed if self.elapsed else 0.0


def orders_import(
    *,
    stream: IO[str],
    timezone: dt.tzinfo | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    on_bad_row: Callable[[BadRow], None] | None = None,
    on_progress: Callable[[ImportResult], None] | None = None,
) -> ImportResult:
    """Import the orders in a CSV text stream (opened with ``newline=""``).

    ``timezone`` is given to dates and times without a UTC offset; without it, such rows are
    bad. ``on_bad_row`` is called for every row left out, ``on_progress`` after each batch.
    With ``dry_run`` everything is checked and written, then rolled back at the end.
    Raises :class:`ImportFileError` when the file itself is unusable.
    """
    result = ImportResult(dry_run=dry_run)
    started = time.monotonic()
    report = on_bad_row or (lambda bad: None)
    reader = _Reader(stream, timezone=timezone, batch_size=batch_size or app_settings.BATCH_SIZE)
    writer = _Writer(report=report)
    try:
        with transaction.atomic() if dry_run else contextlib.nullcontext():
            result.ignored_columns = reader.header_read()
            try:
                for batch in _in_background(reader.batches):
                    result.rows += batch.rows
                    result.orders_bad += batch.orders_bad
                    result.rows_bad += len(batch.bad)
                    for bad in batch.bad:
                        report(bad)
                    writer.write(batch.orders, result)
                    reset_queries()  # with DEBUG on, Django would keep every query's text
                    result.elapsed = time.monotonic() - started
                    if on_progress:
                        on_progress(result)
            except ImportFileError:
                writer.stats_flush()  # for the batches before the problem
                raise
            writer.stats_flush()
            if dry_run:
                transaction.set_rollback(True)
    except ImportFileError as err:
        err.result = result
        raise
    finally:
        result.elapsed = time.monotonic() - started
    return result


def orders_import_path(*, path: str, encoding: str = "utf-8-sig", **options: Any) -> ImportResult:
    """Import a CSV file; see :func:`orders_import` for the options.

    The whole file is first checked to be text in ``encoding``, so a wrong encoding is
    reported before anything is written.
    """
    encoding_get(encoding)
    try:
        _encoding_check(path, encoding)
        stream = open(path, encoding=encoding, newline="")  # closed by the with below
    except FileNotFoundError as err:
        raise ImportFileError(_("There is no file %(path)s.") % {"path": path}) from err
    except OSError as err:
        raise ImportFileError(
            _("%(path)s cannot be read: %(error)s.") % {"path": path, "error": err.strerror}
        ) from err
    with stream:
        return orders_import(stream=stream, **options)


def encoding_get(name: str) -> codecs.CodecInfo:
    """The text encoding called ``name``; ImportFileError when Python knows none."""
    try:
        return codecs.lookup(name)
    except LookupError as err:
        raise ImportFileError(
            _("%(encoding)s is not an encoding Python knows (try utf-8 or cp1252).")
            % {"encoding": name}
        ) from err


def _encoding_check(path: str, encoding: str) -> None:
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with open(path, "rb") as raw:
        # 64 KiB at a time: larger chunks make glibc keep memory that grows with the file.
        for chunk in iter(lambda: raw.read(1 << 16), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                line += chunk[: max(err.start, 0)].count(b"\n")
                raise ImportFileError(
                    _(
                        "The file is not %(encoding)s text (line %(line)d: %(error)s); nothing "
                        "was imported. Name the file's encoding, e.g. cp1252."
                    )
                    % {"encoding": encoding, "line": line, "error": err.reason}
                ) from err
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as err:
            raise ImportFileError(
                _("The file is not %(encoding)s text: it ends in the middle of a character.")
                % {"encoding": encoding}
            ) from err


def profile_stats_recompute(*, profile_ids: set[int] | list[int]) -> None:
    """Recompute the order statistics of these profiles: set-based, a chunk at a time.

    Each chunk first locks its profiles, so a concurrent recomputation of the same customers
    waits, then counts the orders committed meanwhile: no update is lost.
    """
    ids = sorted(profile_ids)
    for start in range(0, len(ids), STATS_CHUNK):
        profiles = Profile.objects.filter(pk__in=ids[start : start + STATS_CHUNK])
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # Compiling this UPDATE's per-row subqueries (PostgreSQL's JIT) would cost
                # far more than running them.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL jit = off")
            list(profiles.select_for_update().order_by("pk").values_list("pk", flat=True))
            profile_stats_rebuild(profiles=profiles)


def timezone_get(name: str) -> dt.tzinfo:
    """The IANA timezone called ``name``; InvalidInput when there is none."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise InvalidInput(
            _("%(value)r is not an IANA timezone name such as Europe/Berlin.") % {"value": name},
            field="timezone",
        ) from err


# --- Reading -------------------------------------------------------------------------------


class _Order:
    """One order as read from the file: its checked fields, lines and bad rows."""

    __slots__ = tuple(
        "order_id line rows raw email placed_at total currency status first_name last_name "
        "lines errors".split()
    )

    def __init__(self, order_id: str, line: int, raw: tuple):
        self.order_id = order_id
        self.line = line
        self.rows = [line]
        self.raw = raw  # the order fields of its first row, as written
        self.lines: list[tuple] = []  # (line, product key, sku, title, category, qty, price)
        self.errors: list[BadRow] = []
        self.first_name = self.last_name = ""
        self.status = OrderStatus.PLACED


@dataclass
class _Batch:
    orders: list[_Order] = field(default_factory=list)  # checked, not yet written
    bad: list[BadRow] = field(default_factory=list)  # in the order of the file
    rows: int = 0
    orders_bad: int = 0


class _Reader:
    """Turns CSV rows into batches of checked orders and the bad rows between them."""

    def __init__(self, stream: IO[str], *, timezone: dt.tzinfo | None, batch_size: int):
        self.csv = csv.reader(stream)
        self.timezone = timezone
        self.batch_size = batch_size
        self.rows = 0
        self.cache: dict[str, dict[str, Any]] = {
            name: {} for name in ("email", "money", "currency", "category")
        }

    def header_read(self) -> list[str]:
        """Read the header row; return the names of the columns that will be ignored."""
        with self._readable():
            header = next(self.csv, None)
            while header is not None and not "".join(header).strip():
                header = next(self.csv, None)
        if header is None:
            raise ImportFileError(_("The file is empty: it needs a header row naming its columns."))
        names = [name.strip().lower() for name in header]
        duplicated = sorted({name for name in names if name and names.count(name) > 1})
        if duplicated:
            raise ImportFileError(
                _("The header names these columns more than once: %(names)s.")
                % {"names": ", ".join(duplicated)}
            )
        missing = [name for name in REQUIRED_COLUMNS if name not in names]
        if missing:
            raise ImportFileError(
                _("Required column(s) missing: %(missing)s. The header has: %(found)s.")
                % {"missing": ", ".join(missing), "found": ", ".join(n for n in names if n) or "-"}
            )
        self.width = len(names)
        self.columns = {name: index for index, name in enumerate(names) if name in COLUMNS}
        return [name for name in names if name and name not in COLUMNS]

    def batches(self) -> Iterator[_Batch]:
        batch, pending = _Batch(), {}
        recent: OrderedDict[str, int] = OrderedDict()
        counted = 0
        with self._readable():
            for order in self._orders():
                first_line = recent.get(order.order_id)
                if first_line is not None:
                    _not_adjacent(order, first_line, pending.pop(order.order_id, None), batch)
                elif order.errors:
                    _reject(order, batch)
                else:
                    pending[order.order_id] = order
                if order.order_id and first_line is None:
                    recent[order.order_id] = order.line
                    if len(recent) > RECENT_ORDERS:
                        recent.popitem(last=False)
                if len(pending) >= self.batch_size or len(batch.bad) >= self.batch_size:
                    batch.orders, batch.rows = list(pending.values()), self.rows - counted
                    counted = self.rows
                    yield batch
                    batch, pending = _Batch(), {}
        batch.orders, batch.rows = list(pending.values()), self.rows - counted
        yield batch

    @contextlib.contextmanager
    def _readable(self) -> Iterator[None]:
        """Turn an undecodable or unparsable line into an ImportFileError naming it."""
        try:
            yield
        except UnicodeDecodeError as err:
            raise ImportFileError(
                _("Line %(line)d is not text in the file's encoding (%(error)s).")
                % {"line": self.csv.line_num + 1, "error": err.reason}
            ) from err
        except csv.Error as err:
            raise ImportFileError(
                _("Line %(line)d cannot be read as CSV: %(error)s.")
                % {"line": self.csv.line_num, "error": err}
            ) from err

    def _orders(self) -> Iterator[_Order]:
        """Group adjacent rows with the same order id into orders, checking every field."""
        columns, width, reader = self.columns, self.width, self.csv
        i_order = columns["order_id"]
        names = [n for n in REQUIRED_COLUMNS + ORDER_COLUMNS if n in columns and n != "order_id"]
        order_fields = itemgetter(*[columns[name] for name in names])
        line_fields = [columns.get(name) for name in LINE_COLUMNS]
        has_lines = line_fields[0] is not None or line_fields[1] is not None
        current: _Order | None = None
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num
            if len(row) <= 1 and not "".join(row).strip():
                continue  # a blank line
            self.rows += 1
            errors: list[str] = []
            if len(row) != width:
                errors.append(
                    _("the row has %(found)d fields, the header %(width)d")
                    % {"found": len(row), "width": width}
                )
                row = (row + [""] * width)[:width]
            order_id = row[i_order].strip()
            raw = order_fields(row)
            if current is None or not order_id or order_id != current.order_id:
                if current is not None:
                    yield current
                current = _Order(order_id, line, raw)
                self._order_parse(current, row, errors)
            else:
                current.rows.append(line)
                if raw != current.raw:
                    changed = [n for n, a, b in zip(names, raw, current.raw, strict=True) if a != b]
                    errors.append(
                        _("%(names)s differ from line %(line)d of the same order")
                        % {"names": ", ".join(changed), "line": current.line}
                    )
            if has_lines:
                self._line_parse(current, row, line, line_fields, errors)
            if errors:
                reason = "; ".join(error.rstrip(".") for error in errors)
                current.errors.append(BadRow(line=line, order_id=order_id, reason=reason))
        if current is not None:
            yield current

    def _parsed(self, kind: str, parse: Callable[[str], Any], raw: str, errors, name: str):
        """``parse(raw)``, remembered; on InvalidInput the reason goes to ``errors``."""
        cache = self.cache[kind]
        value = cache.get(raw)
        if value is None:
            try:
                value = parse(raw)
            except InvalidInput as err:
                errors.append(f"{name}: {err.message}")
                return None
            if len(cache) >= PARSED_CACHE:
                cache.clear()
            cache[raw] = value
        return value

    def _order_parse(self, order: _Order, row: list[str], errors: list[str]) -> None:
        columns = self.columns
        if not order.order_id:
            errors.append(_("order_id: An id is required."))
        elif len(order.order_id) > MAX_ID_LENGTH:
            errors.append(
                _("order_id: Ids are at most %(max)d characters.") % {"max": MAX_ID_LENGTH}
            )
        order.email = self._parsed("email", email_normalize, row[columns["email"]], errors, "email")
        try:
            order.placed_at = self._datetime(row[columns["placed_at"]])
        except InvalidInput as err:
            errors.append(f"placed_at: {err.message}")
        order.total = self._parsed("money", _money, row[columns["total"]], errors, "total")
        order.currency = self._parsed(
            "currency", currency, row[columns["currency"]], errors, "currency"
        )
        if "status" in columns:
            status = _STATUSES.get(row[columns["status"]].strip().lower())
            if status is None:
                errors.append(
                    _("status: %(value)r is not one of placed, cancelled, refunded.")
                    % {"value": row[columns["status"]]}
                )
            order.status = status
        for name in ("first_name", "last_name"):
            if name in columns:
                value = row[columns[name]].strip()
                if len(value) > _TEXT_LIMITS[name]:
                    errors.append(
                        _("%(name)s: At most %(max)d characters.")
                        % {"name": name, "max": _TEXT_LIMITS[name]}
                    )
                setattr(order, name, value)

    def _datetime(self, value: str) -> dt.datetime:
        value = value.strip()
        if not value:
            raise InvalidInput(_("A date and time is required."))
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError as err:
            raise InvalidInput(
                _("%(value)r is not an ISO 8601 date and time.") % {"value": value}
            ) from err
        if parsed.utcoffset() is None:
            if self.timezone is None:
                raise InvalidInput(
                    _(
                        "%(value)r has no UTC offset; add one (e.g. +00:00) or name the "
                        "timezone the file's times are in."
                    )
                    % {"value": value}
                )
            parsed = parsed.replace(tzinfo=self.timezone)
        return parsed

    def _line_parse(self, order: _Order, row: list[str], line: int, fields, errors) -> None:
        i_pid, i_sku, i_title, i_category, i_qty, i_price = fields
        product_id = row[i_pid].strip() if i_pid is not None else ""
        sku = row[i_sku].strip() if i_sku is not None else ""
        title = row[i_title].strip() if i_title is not None else ""
        category = row[i_category] if i_category is not None else ""
        raw_qty = row[i_qty].strip() if i_qty is not None else ""
        raw_price = row[i_price] if i_price is not None else ""
        if not product_id and not sku:
            if title or raw_qty or raw_price.strip() or category.strip():
                errors.append(_("product_id: A line needs a product_id or a sku."))
            return
        if len(product_id) > MAX_ID_LENGTH:
            errors.append(
                _("product_id: Ids are at most %(max)d characters.") % {"max": MAX_ID_LENGTH}
            )
        for name, value in (("sku", sku), ("title", title)):
            if len(value) > _TEXT_LIMITS[name]:
                errors.append(
                    _("%(name)s: At most %(max)d characters.")
                    % {"name": name, "max": _TEXT_LIMITS[name]}
                )
        category = self._parsed("category", category_path_normalize, category, errors, "category")
        if raw_qty.isdigit() and raw_qty[0] != "0":
            qty = int(raw_qty)
        elif raw_qty:
            try:
                qty = quantity(raw_qty, field="quantity")
            except InvalidInput as err:
                errors.append(f"quantity: {err.message}")
                qty = None
        else:
            qty = 1
        price = self._parsed("money", _money, raw_price, errors, "unit_price")
        key = (product_id, "") if product_id else ("", sku)
        order.lines.append((line, key, sku, title, category, qty, price))


def _money(value: str) -> Decimal:
    if not value.strip():
        raise InvalidInput(_("An amount is required."))
    return money(value, field="")


def _reject(order: _Order, batch: _Batch) -> None:
    batch.orders_bad += 1
    batch.bad += order.errors


def _not_adjacent(order: _Order, first_line: int, pending: _Order | None, batch: _Batch) -> None:
    """More rows of an order that started earlier in the file, with other orders between.

    If the earlier rows are still waiting in this batch, the whole order is left out;
    otherwise they were handled already and only these rows are left out.
    """
    if pending is None:
        reason = _(
            "order %(order)s started at line %(line)d and other orders came between; "
            "these rows were left out (the rows of an order must be adjacent)"
        )
    else:
        reason = _(
            "order %(order)s started at line %(line)d and other orders came between; "
            "none of it was imported (the rows of an order must be adjacent)"
        )
    reason %= {"order": order.order_id, "line": first_line}
    errors = [BadRow(line=line, order_id=order.order_id, reason=reason) for line in order.rows]
    if pending is not None:
        pending.errors += errors
        _reject(pending, batch)
    else:
        batch.bad += errors


_END = object()


def _in_background(produce: Callable[[], Iterator[_Batch]]) -> Iterator[_Batch]:
    """Run ``produce`` in a thread, one batch ahead, so reading overlaps writing.

    At most two batches wait, so memory stays flat. The thread only parses; it never touches
    the database. Its exceptions are raised here.
    """
    items: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    language = translation.get_language()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def run() -> None:
        try:
            with translation.override(language):
                for item in produce():
                    if not put(item):
                        return
            put(_END)
        except BaseException as err:  # noqa: BLE001  (handed over to the caller's thread)
            put(err)

    thread = threading.Thread(target=run, name="import-orders-reader", daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


# --- Writing -------------------------------------------------------------------------------


class _Writer:
    """Writes batches of checked orders; remembers products and profiles to recompute."""

    def __init__(self, *, report: Callable[[BadRow], None]):
        self.report = report
        self.products: OrderedDict[ProductKey, int] = OrderedDict()
        self.touched: set[int] = set()

    def write(self, orders: list[_Order], result: ImportResult) -> None:
        orders.sort(key=lambda order: order.order_id)  # one lock order for concurrent imports
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with transaction.atomic():
                    counts, rejected, products, touched = self._write(orders)
                break
            except (IntegrityError, OperationalError):
                # A concurrent import wrote some of the same orders, profiles or products
                # first (or a deadlock was broken). This batch was rolled back; the next
                # attempt finds what the other import wrote.
                self.products.clear()
                if attempt == ATTEMPTS:
                    raise
                time.sleep(0.05 * attempt)
        self.products.update(products)
        while len(self.products) > PRODUCT_CACHE:
            self.products.popitem(last=False)
        for _order, errors in rejected:
            result.orders_bad += 1
            result.rows_bad += len(errors)
            for bad in errors:
                self.report(bad)
        for name, value in counts.items():
            setattr(result, name, getattr(result, name) + value)
        self.touched |= touched
        if len(self.touched) >= STATS_PENDING:
            self.stats_flush()

    def stats_flush(self) -> None:
        profile_stats_recompute(profile_ids=self.touched)
        self.touched = set()

    def _write(self, orders: list[_Order]):
        present = _orders_present([order.order_id for order in orders])
        touched = set(present.values())
        new = [order for order in orders if order.order_id not in present]
        counts = {"orders_present": len(orders) - len(new)}
        if not new:
            return counts, [], {}, touched
        products, products_created, rejected = self._products_resolve(new)
        if rejected:
            left_out = {id(order) for order, _errors in rejected}
            new = [order for order in new if id(order) not in left_out]
        profiles, counts["profiles_created"] = _profiles_resolve(new)
        order_rows = [
            Order(
                external_id=order.order_id,
                profile_id=profiles[order.email],
                placed_at=order.placed_at,
                total=order.total,
                currency=order.currency,
                status=order.status,
                source=IngestSource.IMPORT,
            )
            for order in new
        ]
        _bulk_create(Order, order_rows, "external_id")
        line_rows = [
            OrderLine(order_id=row.pk, product_id=products[key], quantity=qty, unit_price=price)
            for row, order in zip(order_rows, new, strict=True)
            for _line, key, _sku, _title, _category, qty, price in order.lines
        ]
        OrderLine.objects.bulk_create(line_rows)
        touched.update(profiles.values())
        counts.update(
            orders_imported=len(order_rows),
            lines_imported=len(line_rows),
            products_created=products_created,
        )
        return counts, rejected, products, touched

    def _products_resolve(self, orders: list[_Order]):
        """Mirror keys for every product the lines name; missing products are created.

        A line without a product_id names the product with that SKU, or else a new one whose
        product id is the SKU. An order naming an unknown product without giving its title
        cannot be imported and comes back in the rejected list.
        """
        wanted: dict[ProductKey, tuple[str, str, str]] = {}
        for order in orders:
            for _line, key, sku, title, category, _qty, _price in order.lines:
                known = wanted.get(key)
                if known is None or (title and not known[1]):
                    wanted[key] = (sku, title, category)
        found = {key: self.products[key] for key in wanted if key in self.products}
        missing = [key for key in wanted if key not in found]
        if missing:
            by_id = [pid for pid, _sku in missing if pid]
            by_sku = [sku for pid, sku in missing if not pid]
            rows = Product.objects.filter(external_id__in=by_id).values_list("external_id", "pk")
            found.update(((pid, ""), pk) for pid, pk in rows)
            if by_sku:
                rows = Product.objects.filter(sku__in=by_sku).order_by("-pk")
                found.update((("", sku), pk) for sku, pk in rows.values_list("sku", "pk"))
                rows = Product.objects.filter(external_id__in=by_sku)
                found.update((("", pid), pk) for pid, pk in rows.values_list("external_id", "pk"))
        unknown = sorted(key for key in wanted if key not in found)
        untitled = {key for key in unknown if not wanted[key][1]}
        rejected = []
        reason = _(
            "title: The product is not in the catalogue mirror yet; a title is needed to add it"
        )
        for order in orders if untitled else ():
            errors = [
                BadRow(line=line, order_id=order.order_id, reason=reason)
                for line, key, *_rest in order.lines
                if key in untitled
            ]
            if errors:
                rejected.append((order, errors))
        creatable = [key for key in unknown if key not in untitled]
        new_rows = [
            Product(
                external_id=pid or sku,
                sku=wanted[(pid, sku)][0],
                title=wanted[(pid, sku)][1],
                category_path=wanted[(pid, sku)][2],
            )
            for pid, sku in creatable
        ]
        _bulk_create(Product, new_rows, "external_id")
        found.update((key, row.pk) for key, row in zip(creatable, new_rows, strict=True))
        return found, len(new_rows), rejected


def _orders_present(order_ids: list[str]) -> dict[str, int]:
    """The profile of each of these orders already recorded."""
    rows = Order.objects.filter(external_id__in=order_ids).values_list("external_id", "profile_id")
    return dict(rows)


def _profiles_resolve(orders: list[_Order]) -> tuple[dict[str, int], int]:
    """Profile keys for the orders' emails: by email, then by former email; else created."""
    names: dict[str, tuple[str, str]] = {}
    for order in orders:
        if not any(names.get(order.email, ())):
            names[order.email] = (order.first_name, order.last_name)
    # identified() adds "email <> ''", which lets PostgreSQL use the partial unique index.
    found = dict(
        Profile.objects.identified().filter(email__in=list(names)).values_list("email", "pk")
    )
    missing = [email for email in names if email not in found]
    if missing:
        aliases = ProfileAlias.objects.filter(kind=ProfileAlias.Kind.EMAIL, value__in=missing)
        found.update(aliases.values_list("value", "profile_id"))
    new_rows = [
        Profile(email=email, first_name=names[email][0], last_name=names[email][1])
        for email in sorted(email for email in names if email not in found)
    ]
    _bulk_create(Profile, new_rows, "email")
    found.update((row.email, row.pk) for row in new_rows)
    return found, len(new_rows)


def _bulk_create(model, rows: list, key: str) -> None:
    """bulk_create, then fill in the primary keys if the database did not return them."""
    model.objects.bulk_create(rows)
    if rows and rows[0].pk is None:
        pks = dict(
            model.objects.filter(**{f"{key}__in": [getattr(row, key) for row in rows]}).values_list(
                key, "pk"
            )
        )
        for row in rows:
            row.pk = pks[getattr(row, key)]
