"""Reads of the current model: one indexed query each (``pzn_neighbour_build_product``)."""

from __future__ import annotations

from ..models import LearnedInterval, Product, ProductNeighbour


def product_neighbours(*, product: Product | int, limit: int | None = None):
    """The neighbours of ``product`` in the current build, closest first.

    A queryset of :class:`~personalization.models.ProductNeighbour` with the neighbour
    product joined; empty while no build is current.
    """
    rows = (
        ProductNeighbour.objects.current()
        .filter(product=product)
        .select_related("neighbour")
        .order_by("-score", "rank")
    )
    return rows[:limit] if limit is not None else rows


def learned_interval(*, product: Product | int) -> LearnedInterval | None:
    """The repurchase interval the current build learned for ``product``, if it learned one."""
    return LearnedInterval.objects.current().filter(product=product).first()
