"""Values a marketer may pick for a rule condition: the rule builder's suggestions."""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext as _

from ...exceptions import InvalidInput
from ...models import Product, ProductCategory, Segment, Topic
from .schema import ValueType

CHOICES_LIMIT = 20


def rule_value_choices(
    *, kind: str, term: str, limit: int = CHOICES_LIMIT
) -> list[tuple[str, str]]:
    """(value, label) pairs of ``kind`` (product, category, topic, segment) matching ``term``.

    Products flagged sensitive are never suggested. InvalidInput(field="type") for another kind.
    """
    term = term.strip()[:100]
    if kind == ValueType.PRODUCT:
        rows = (
            Product.objects.filter(is_sensitive=False)
            .filter(Q(external_id__istartswith=term) | Q(title__icontains=term))
            .order_by("title")
            .values_list("external_id", "title")
        )
        return [(pid, f"{title} ({pid})") for pid, title in rows[:limit]]
    if kind == ValueType.CATEGORY:
        rows = (
            ProductCategory.objects.filter(path__icontains=term)
            .order_by("path")
            .values_list("path", flat=True)
            .distinct()
        )
        return [(path, path) for path in rows[:limit]]
    if kind in (ValueType.TOPIC, ValueType.SEGMENT):
        model = Topic if kind == ValueType.TOPIC else Segment
        rows = (
            model.objects.filter(Q(slug__icontains=term) | Q(name__icontains=term))
            .order_by("slug")
            .values_list("slug", "name")
        )
        return [(slug, f"{name} ({slug})") for slug, name in rows[:limit]]
    raise InvalidInput(_("Unknown type."), field="type")
