"""What the two writers (:mod:`.orm`, :mod:`.postgres`) share: a batch is one transaction,
tried again when it collides with a concurrent import or live traffic
(:func:`~personalization.concurrency.atomic_retried`), and its results are added up."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from django.db import connection

from ..concurrency import TransactionRetry, atomic_retried
from ..exceptions import InvalidInput
from ..models import SuppressionReason
from ..money import RateCache
from ..privacy.suppression import emails_suppressed
from .products import ProductKeys, Rejected
from .reading import ParsedOrder, ProductKey
from .results import BadRow, ImportResult
from .stats import STATS_PENDING
from .traits import traits_import


class BatchCollision(TransactionRetry):
    """A concurrent import wrote some of the batch's rows first: roll back and try again."""


# What a batch wrote: totals for ImportResult, the orders left out, the products it found,
# and the profiles whose statistics it changed (in the writer's own terms).
Written = tuple[dict[str, int], Rejected, dict[ProductKey, int], Any]


def orders_suppressed_count(orders: list[ParsedOrder]) -> int:
    """How many of these orders are for addresses erased before (on the suppression list).

    They are imported like any other (revenue), and their customer gets a profile again,
    without consent: an import never records consent, and could not for an erased address.
    """
    erased = emails_suppressed(
        emails={order.email for order in orders}, reason=SuppressionReason.ERASED
    )
    return sum(1 for order in orders if order.email in erased) if erased else 0


class BatchWriter(ABC):
    def __init__(self, *, report: Callable[[BadRow], None]):
        self.report = report
        self.products = ProductKeys()
        self.rates = RateCache()

    def write(self, orders: list[ParsedOrder], result: ImportResult) -> None:
        orders = self._converted(orders, result)
        if not orders:
            return
        orders.sort(key=lambda order: order.order_id)  # one lock order for concurrent imports
        nested = connection.in_atomic_block

        @atomic_retried
        def attempt() -> Written:
            # A concurrent import or live request wrote some of the same orders, profiles or
            # products first (or a deadlock was broken): atomic_retried rolls the batch back
            # and runs it again, and the next attempt finds what the other one wrote.
            try:
                written = self._write(orders, nested=nested)
                left_out = {id(order) for order, _errors in written[1]}
                written[0]["traits_recorded"] = traits_import(
                    [order for order in orders if id(order) not in left_out]
                )
                return written
            except BaseException:
                self.products.forget()  # it may name products the rollback took away
                raise

        counts, rejected, products, touched = attempt()
        self._batch_committed()
        self.products.remember(products)
        for _order, errors in rejected:
            result.orders_bad += 1
            result.rows_bad += len(errors)
            for bad in errors:
                self.report(bad)
        for name, value in counts.items():
            setattr(result, name, getattr(result, name) + value)
        if self._touched_add(touched) >= STATS_PENDING:
            self.stats_flush()

    def _converted(self, orders: list[ParsedOrder], result: ImportResult) -> list[ParsedOrder]:
        """Give each order its total in the shop's currency, before anything is staged.

        The rate comes from the adapter, once per currency and day; an order it cannot
        convert is left out and each of its rows reported.
        """
        kept = []
        for order in orders:
            try:
                order.shop_total = self.rates.convert(
                    amount=order.total, currency=order.currency, at=order.placed_at
                )
            except InvalidInput as err:
                result.orders_bad += 1
                result.rows_bad += len(order.rows)
                reason = f"{err.field or 'currency'}: {err.message}"
                for line in order.rows:
                    self.report(BadRow(line=line, order_id=order.order_id, reason=reason))
                continue
            kept.append(order)
        return kept

    def close(self) -> None:
        self.products.forget()

    @abstractmethod
    def _write(self, orders: list[ParsedOrder], *, nested: bool) -> Written:
        """Write one batch inside its transaction (``nested``: the caller's transaction
        is around it, as in a dry run)."""

    def _batch_committed(self) -> None:  # noqa: B027  (a hook; most writers need nothing)
        """Called once a batch's transaction (or savepoint, in a dry run) has ended well."""

    @abstractmethod
    def _touched_add(self, touched: Any) -> int:
        """Note the profiles a committed batch changed; return how many are waiting."""

    @abstractmethod
    def stats_flush(self) -> None:
        """Recompute the statistics of the profiles waiting for it."""
