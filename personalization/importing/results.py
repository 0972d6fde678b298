"""What an import reports: the rows it left out and its running totals."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import gettext as _


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
    # Orders imported for addresses on the suppression list as erased: their customer has a
    # profile again, without any consent (see docs/guide/privacy.md).
    orders_suppressed: int = 0
    # Traits of the customers (trait.<key> columns) written, created or changed.
    traits_recorded: int = 0
    elapsed: float = 0.0
    dry_run: bool = False
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def orders_seen(self) -> int:
        return self.orders_imported + self.orders_present + self.orders_bad

    @property
    def orders_per_second(self) -> float:
        return self.orders_seen / self.elapsed if self.elapsed else 0.0


def unknown_product_reason() -> str:
    """Why a line naming a product the mirror lacks, without a title, is left out."""
    return _("title: The product is not in the catalogue mirror yet; a title is needed to add it")
