"""Reading an order file: CSV rows become batches of checked orders and the bad rows between.

Reading never touches the database, so it runs in a thread of its own, one batch ahead of
the writer (:func:`in_background`).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from typing import IO, Any

from django.utils import translation
from django.utils.translation import gettext as _

from ..catalogue import category_path_normalize
from ..exceptions import ImportFileError, InvalidInput
from ..models import TRAIT_KEY, OrderStatus
from ..traits.services import value_clean as trait_value_clean
from ..validation import (
    MAX_ID_LENGTH,
    aware_datetime,
    currency,
    email_normalize,
    money,
    no_nul,
    quantity,
)
from .results import BadRow

REQUIRED_COLUMNS = ("order_id", "email", "placed_at", "total", "currency")
ORDER_COLUMNS = ("status", "first_name", "last_name")
LINE_COLUMNS = ("product_id", "sku", "title", "category", "quantity", "unit_price")
COLUMNS = REQUIRED_COLUMNS + ORDER_COLUMNS + LINE_COLUMNS
# Optional per-order columns "trait.<key>": a trait of the customer, recorded as the shop's.
TRAIT_COLUMN_PREFIX = "trait."

# Bounds that keep memory flat: order ids remembered to notice non-adjacent rows, parsed
# values (emails, amounts, categories) remembered.
RECENT_ORDERS = 50_000
PARSED_CACHE = 50_000
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


def _trait_columns(names: list[str]) -> dict[str, int]:
    """{trait key: column index} of the ``trait.<key>`` columns; a bad key is a file error."""
    columns = {}
    for index, name in enumerate(names):
        if not name.startswith(TRAIT_COLUMN_PREFIX):
            continue
        key = name[len(TRAIT_COLUMN_PREFIX) :]
        if not TRAIT_KEY.match(key):
            raise ImportFileError(
                _(
                    "Column %(name)s: a trait column is trait.<key>, the key a letter, then "
                    "letters, digits or _ (at most 64)."
                )
                % {"name": name}
            )
        columns[key] = index
    return columns


def encoding_check(path: str, encoding: str) -> None:
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


class ParsedOrder:
    """One order as read from the file: its checked fields, lines and bad rows."""

    __slots__ = tuple(
        "order_id line rows raw email placed_at total currency shop_total status first_name "
        "last_name traits lines errors".split()
    )

    def __init__(self, order_id: str, line: int, raw: tuple):
        self.order_id = order_id
        self.line = line
        self.rows = [line]
        self.raw = raw  # the order fields of its first row, as written
        self.lines: list[tuple] = []  # (line, product key, sku, title, category, qty, price)
        self.errors: list[BadRow] = []
        self.first_name = self.last_name = ""
        self.traits: dict[str, str] = {}  # trait.<key> columns that hold a value
        self.status = OrderStatus.PLACED


@dataclass
class Batch:
    orders: list[ParsedOrder] = field(default_factory=list)  # checked, not yet written
    bad: list[BadRow] = field(default_factory=list)  # in the order of the file
    rows: int = 0
    orders_bad: int = 0


class Reader:
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
        self.trait_columns = _trait_columns(names)
        return [
            name
            for name in names
            if name and name not in COLUMNS and not name.startswith(TRAIT_COLUMN_PREFIX)
        ]

    def batches(self) -> Iterator[Batch]:
        batch, pending = Batch(), {}
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
                    batch, pending = Batch(), {}
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

    def _orders(self) -> Iterator[ParsedOrder]:
        """Group adjacent rows with the same order id into orders, checking every field."""
        columns, width, reader = self.columns, self.width, self.csv
        i_order = columns["order_id"]
        names = [n for n in REQUIRED_COLUMNS + ORDER_COLUMNS if n in columns and n != "order_id"]
        order_fields = itemgetter(*[columns[name] for name in names])
        line_fields = [columns.get(name) for name in LINE_COLUMNS]
        has_lines = line_fields[0] is not None or line_fields[1] is not None
        current: ParsedOrder | None = None
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
                current = ParsedOrder(order_id, line, raw)
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

    def _order_parse(self, order: ParsedOrder, row: list[str], errors: list[str]) -> None:
        columns = self.columns
        _no_nul_check(errors, order_id=order.order_id)
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
        for key, index in self.trait_columns.items():
            value = row[index].strip()
            if value:
                try:
                    order.traits[key] = trait_value_clean(value, field=f"trait.{key}")
                except InvalidInput as err:
                    errors.append(f"trait.{key}: {err.message}")
        for name in ("first_name", "last_name"):
            if name in columns:
                value = row[columns[name]].strip()
                _no_nul_check(errors, **{name: value})
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
        # As order_record: a moment in years 1..9999 in UTC, not ahead of the clock.
        return aware_datetime(parsed, field="placed_at", not_future=True)

    def _line_parse(self, order: ParsedOrder, row: list[str], line: int, fields, errors) -> None:
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
        _no_nul_check(errors, product_id=product_id, sku=sku, title=title, category=category)
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
        if raw_qty.isascii() and raw_qty.isdigit() and raw_qty[0] != "0" and len(raw_qty) < 6:
            qty = int(raw_qty)  # the common case, without the full check
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


def _no_nul_check(errors: list[str], **values: str) -> None:
    # Python and SQLite take a NUL character in text; PostgreSQL refuses the whole batch. A
    # lone surrogate (a stream read with errors="surrogateescape") no driver can encode.
    for name, value in values.items():
        try:
            no_nul(value, field=name)
        except InvalidInput as err:
            errors.append(f"{name}: {err.message}")


def _money(value: str) -> Decimal:
    if not value.strip():
        raise InvalidInput(_("An amount is required."))
    return money(value, field="")


def _reject(order: ParsedOrder, batch: Batch) -> None:
    batch.orders_bad += 1
    batch.bad += order.errors


def _not_adjacent(
    order: ParsedOrder, first_line: int, pending: ParsedOrder | None, batch: Batch
) -> None:
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


def in_background(produce: Callable[[], Iterator[Batch]]) -> Iterator[Batch]:
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
