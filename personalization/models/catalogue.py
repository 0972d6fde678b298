"""The catalogue mirror: the shop's products as the app needs to know them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Concat
from django.utils.translation import gettext_lazy as _

CATEGORY_SEPARATOR = " > "


def category_key(path: str) -> str:
    """The form a category path is matched in: levels trimmed, case folded."""
    return CATEGORY_SEPARATOR.join(level.strip().casefold() for level in path.split(">"))


def category_rows(path: str) -> list[tuple[str, str, str, int]]:
    """(path, key, name key, depth) of every level of ``path``: 'Home > Kitchen' gives the
    rows for 'Home' and for 'Home > Kitchen'."""
    levels = [level.strip() for level in path.split(">") if level.strip()] if path else []
    rows = []
    for depth in range(1, len(levels) + 1):
        prefix = CATEGORY_SEPARATOR.join(levels[:depth])
        rows.append((prefix, category_key(prefix), levels[depth - 1].casefold(), depth))
    return rows


def category_matches(category: str, field: str = "category_path") -> Q:
    """Q for products whose category path contains ``category`` as one whole level."""
    sep = CATEGORY_SEPARATOR
    return (
        Q(**{f"{field}__iexact": category})
        | Q(**{f"{field}__istartswith": f"{category}{sep}"})
        | Q(**{f"{field}__iendswith": f"{sep}{category}"})
        | Q(**{f"{field}__icontains": f"{sep}{category}{sep}"})
    )


def category_or_below(path, field: str = "category_path") -> Q:
    """Q for products in the category ``path`` (a path, or an expression giving one, such as
    ``OuterRef("category")``) or below it."""
    if isinstance(path, str):
        below = path + CATEGORY_SEPARATOR
    else:
        below = Concat(path, Value(CATEGORY_SEPARATOR), output_field=models.CharField())
    return Q(**{field: path}) | Q(**{f"{field}__startswith": below})


class PurchaseCycle(models.TextChoices):
    """How often a customer buys a product: what recommendations do after a purchase."""

    DURABLE = "durable", _("durable (bought once in a while: the category rests after a purchase)")
    REPEAT = "repeat", _("repeat purchase (may be recommended again)")
    UNKNOWN = "unknown", _("unknown (only the product bought is left out)")


class ProductQuerySet(models.QuerySet):
    def available(self):
        """Active products that are in stock: the only ones worth showing a customer."""
        return self.filter(active=True, in_stock=True)

    def sensitive(self):
        """Flagged by the shop, or in a category listed in SENSITIVE_CATEGORIES."""
        from ..conf import app_settings

        condition = Q(is_sensitive=True)
        for category in app_settings.SENSITIVE_CATEGORIES:
            condition |= category_matches(category)
        return self.filter(condition)

    def not_sensitive(self):
        return self.exclude(pk__in=self.sensitive().values("pk"))

    def repeat_purchases(self):
        """Consumables the customer buys again after a known interval."""
        return self.filter(repurchase_interval_days__isnull=False)


class Product(models.Model):
    """A product as the shop last described it."""

    external_id = models.CharField(
        _("product id"), max_length=64, unique=True, help_text=_("The product's id in the shop.")
    )
    sku = models.CharField(_("SKU"), max_length=64, blank=True, db_index=True)
    title = models.CharField(_("title"), max_length=255)
    url = models.CharField(_("URL"), max_length=500, blank=True)
    image_url = models.CharField(_("image URL"), max_length=500, blank=True)
    price = models.DecimalField(_("price"), max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    category_path = models.CharField(
        _("category"),
        max_length=255,
        blank=True,
        db_index=True,
        help_text=_("Levels from broad to narrow, separated by ' > ', e.g. 'Home > Kitchen'."),
    )
    in_stock = models.BooleanField(_("in stock"), default=True)
    active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive products are never recommended.")
    )
    is_sensitive = models.BooleanField(
        _("sensitive"),
        default=False,
        help_text=_(
            "Health, pregnancy, intimacy and the like: never used to infer, segment or recommend."
        ),
    )
    repurchase_interval_days = models.PositiveIntegerField(
        _("repurchase interval (days)"),
        null=True,
        blank=True,
        help_text=_("For consumables: how many days one purchase typically lasts."),
    )
    purchase_cycle = models.CharField(
        _("purchase cycle"),
        max_length=16,
        choices=PurchaseCycle.choices,
        default=PurchaseCycle.UNKNOWN,
        help_text=_(
            "Durable: after a purchase nothing from its category is recommended for "
            "RECOMMENDATION_DURABLE_COOLDOWN_DAYS. Repeat: may be recommended again. Unknown: "
            "only this product is no longer recommended to its buyer."
        ),
    )
    source_updated_at = models.DateTimeField(
        _("changed in shop at"),
        null=True,
        blank=True,
        help_text=_("Time of the shop's latest change; older updates arriving late are ignored."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        constraints = [
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gte=0), name="pzn_product_price_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class ProductCategory(models.Model):
    """One level of a product's category path, kept by the catalogue mirror.

    'Home > Kitchen' is stored as two rows, 'Home' and 'Home > Kitchen', so "in category X"
    (X or anything below it) is an indexed equality on ``key`` instead of ``LIKE`` patterns
    over the path. Written whenever a product's category is (``product_categories_sync``).
    """

    product = models.ForeignKey(
        Product,
        verbose_name=_("product"),
        on_delete=models.CASCADE,
        related_name="categories",
        db_index=False,  # the unique constraint starts with it
    )
    path = models.CharField(
        _("category"), max_length=255, help_text=_("This level and the ones above it.")
    )
    key = models.CharField(
        _("key"), max_length=255, help_text=_("The path in lower case: what rules match.")
    )
    name_key = models.CharField(
        _("level key"),
        max_length=255,
        help_text=_("This level's own name in lower case: what SENSITIVE_CATEGORIES match."),
    )
    depth = models.PositiveSmallIntegerField(_("depth"))

    class Meta:
        verbose_name = _("product category")
        verbose_name_plural = _("product categories")
        constraints = [
            models.UniqueConstraint(fields=["product", "key"], name="pzn_product_category_unique"),
        ]
        indexes = [
            models.Index(fields=["key", "product"], name="pzn_product_category_key"),
            models.Index(fields=["name_key"], name="pzn_product_category_name"),
        ]

    def __str__(self) -> str:
        return self.path
