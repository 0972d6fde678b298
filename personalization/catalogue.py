"""Keep the catalogue mirror in step with the shop's products."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from .concurrency import atomic_retried
from .exceptions import InvalidInput, UnknownProduct
from .models import Product, ProductCategory, PurchaseCycle
from .models.catalogue import CATEGORY_SEPARATOR, category_rows
from .validation import aware_datetime, currency, external_id, money, no_nul, positive_integer

_TEXT_LIMITS = {"sku": 64, "title": 255, "url": 500, "image_url": 500}


def category_path_normalize(value: Any) -> str:
    """'Home/Kitchen', 'Home > Kitchen' or ['Home', 'Kitchen'] → 'Home > Kitchen'."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        levels = value.replace("/", ">").split(">")
        # A separator at either end is a slip worth forgiving; one between levels is not.
        while levels and not levels[-1].strip():
            levels.pop()
        while levels and not levels[0].strip():
            levels.pop(0)
    elif isinstance(value, (list, tuple)):
        if not all(isinstance(level, str) for level in value):
            raise InvalidInput(_("Each category level is text."), field="category")
        levels = list(value)
    else:
        raise InvalidInput(_("A category is text or a list of levels."), field="category")
    levels = [no_nul(level.strip(), field="category") for level in levels]
    if not all(levels):
        raise InvalidInput(_("A category path has no empty levels."), field="category")
    path = CATEGORY_SEPARATOR.join(levels)
    if len(path) > 255:
        raise InvalidInput(_("The category path is too long."), field="category")
    return path


def _http_url(value: str, *, field: str) -> None:
    """Product links end up in emails: only absolute http(s) URLs (or a path on the shop)."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if value.startswith("/") and not value.startswith("//") and not parts.scheme:
        return
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(_("Only http and https URLs are accepted."), field=field)


def product_fields_clean(data: dict[str, Any]) -> dict[str, Any]:
    """Validate what the shop says about a product and map it onto model fields."""
    fields: dict[str, Any] = {}
    if "title" in data:
        if not isinstance(data["title"], str) or not data["title"].strip():
            raise InvalidInput(_("A product needs a title."), field="title")
    for name, limit in _TEXT_LIMITS.items():
        if data.get(name) is not None:
            if not isinstance(data[name], str):
                raise InvalidInput(_("This must be text."), field=name)
            value = no_nul(data[name].strip(), field=name)
            if len(value) > limit:
                raise InvalidInput(_("At most %(max)d characters.") % {"max": limit}, field=name)
            if name in ("url", "image_url") and value:
                _http_url(value, field=name)
            fields[name] = value
    if data.get("price") is not None:
        fields["price"] = money(data["price"], field="price")
    if data.get("currency"):
        fields["currency"] = currency(data["currency"])
    if "category" in data:
        fields["category_path"] = category_path_normalize(data["category"])
    for flag in ("in_stock", "active", "is_sensitive"):
        if data.get(flag) is not None:
            if not isinstance(data[flag], bool):
                raise InvalidInput(_("Must be true or false."), field=flag)
            fields[flag] = data[flag]
    if "repurchase_interval_days" in data:
        days = data["repurchase_interval_days"]
        if days is not None:
            positive_integer(days, field="repurchase_interval_days")
        fields["repurchase_interval_days"] = days
    if data.get("purchase_cycle") is not None:
        if data["purchase_cycle"] not in PurchaseCycle.values:
            raise InvalidInput(
                _("One of: %(values)s.") % {"values": ", ".join(PurchaseCycle.values)},
                field="purchase_cycle",
            )
        fields["purchase_cycle"] = data["purchase_cycle"]
    return fields


@atomic_retried
def product_upsert(
    *, product_id: Any, updated_at: dt.datetime | None = None, **data: Any
) -> tuple[Product, bool]:
    """Create or update the mirror of one product. Returns (product, applied).

    An update whose ``updated_at`` is older than the last one applied is ignored.
    """
    product_id = external_id(product_id, field="product_id")
    known = set(_TEXT_LIMITS) | {
        "price",
        "currency",
        "category",
        "in_stock",
        "active",
        "is_sensitive",
        "repurchase_interval_days",
        "purchase_cycle",
    }
    unknown = set(data) - known
    if unknown:
        raise InvalidInput(
            _("Unknown product field(s): %(names)s.") % {"names": ", ".join(sorted(unknown))},
            field=sorted(unknown)[0],
        )
    if updated_at is not None:
        updated_at = aware_datetime(updated_at, field="updated_at", not_future=True)
    fields = product_fields_clean(data)
    product = Product.objects.select_for_update().filter(external_id=product_id).first()
    if product is None:
        if "title" not in fields:
            raise InvalidInput(_("A new product needs a title."), field="title")
        product, created = Product.objects.get_or_create(
            external_id=product_id, defaults={**fields, "source_updated_at": updated_at}
        )
        if created:
            product_categories_sync(product_ids=[product.pk])
            return product, True
        product = Product.objects.select_for_update().get(pk=product.pk)
    if updated_at and product.source_updated_at and updated_at < product.source_updated_at:
        return product, False
    for name, value in fields.items():
        setattr(product, name, value)
    if updated_at:
        product.source_updated_at = updated_at
    product.save()
    if "category_path" in fields:
        product_categories_sync(product_ids=[product.pk])
    return product, True


def product_categories_sync(*, product_ids: list[int] | None = None, batch_size: int = 2000) -> int:
    """Rewrite the category levels (:class:`ProductCategory`) of these products (default: all)
    from their ``category_path``; how many rows were written. Call after writing products
    some other way than :func:`product_upsert` (which calls it)."""
    products = Product.objects.order_by("pk")
    if product_ids is not None:
        products = products.filter(pk__in=product_ids)
    written = 0
    last = 0
    while True:
        batch = list(products.filter(pk__gt=last).values_list("pk", "category_path")[:batch_size])
        if not batch:
            return written
        last = batch[-1][0]
        with transaction.atomic():
            ProductCategory.objects.filter(product_id__in=[pk for pk, _path in batch]).delete()
            rows = [
                ProductCategory(product_id=pk, path=path, key=key, name_key=name, depth=depth)
                for pk, category_path in batch
                for path, key, name, depth in category_rows(category_path)
            ]
            ProductCategory.objects.bulk_create(rows)
        written += len(rows)


def products_by_external_id(product_ids: list[str], *, field: str = "lines") -> dict[str, int]:
    """Map shop product ids to mirror primary keys; raise UnknownProduct for any missing."""
    found = dict(
        Product.objects.filter(external_id__in=set(product_ids)).values_list("external_id", "pk")
    )
    missing = [pid for pid in product_ids if pid not in found]
    if missing:
        raise UnknownProduct(
            _("Unknown product id(s): %(ids)s. Send product_saved for them first.")
            % {"ids": ", ".join(sorted(set(missing))[:10])},
            field=field,
        )
    return found
