"""The demo shop's own catalogue and orders.

These are the shop's tables, not the personalization app's: the app only learns about them
through the signals sent from ``demo_shop.shop.integration``.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

CATEGORY_SEPARATOR = " > "


class ProductQuerySet(models.QuerySet):
    def active(self):
        """Products the shop shows (inactive ones are kept for old orders)."""
        return self.filter(is_active=True)

    def in_category(self, category: str):
        """Products in ``category`` or any of its subcategories ("Home" finds "Home > Kitchen")."""
        return self.filter(
            Q(category=category) | Q(category__startswith=f"{category}{CATEGORY_SEPARATOR}")
        )


class Product(models.Model):
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    price = models.DecimalField(_("price (EUR)"), max_digits=10, decimal_places=2)
    category = models.CharField(
        _("category"),
        max_length=255,
        db_index=True,
        help_text=_("Levels from broad to narrow separated by ' > ', e.g. 'Home > Kitchen'."),
    )
    stock = models.PositiveIntegerField(_("stock"), default=0)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive products are hidden from the shop.")
    )
    is_sensitive = models.BooleanField(
        _("sensitive"),
        default=False,
        help_text=_("Health and similar products: never used for marketing or recommendations."),
    )
    repurchase_interval_days = models.PositiveIntegerField(
        _("repurchase interval (days)"),
        null=True,
        blank=True,
        help_text=_("For consumables: how many days one purchase typically lasts."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["category", "title"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="shop_product_price_gte_0"),
            models.CheckConstraint(
                condition=Q(repurchase_interval_days__isnull=True)
                | Q(repurchase_interval_days__gt=0),
                name="shop_product_repurchase_gt_0",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("shop:product", kwargs={"slug": self.slug})

    def get_image_url(self) -> str:
        return reverse("shop:product_image", kwargs={"slug": self.slug})

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    @property
    def category_levels(self) -> list[str]:
        return [level.strip() for level in self.category.split(">") if level.strip()]


def new_order_reference() -> str:
    return f"DS-{secrets.token_hex(4).upper()}"


class Order(models.Model):
    reference = models.CharField(
        _("reference"), max_length=16, unique=True, default=new_order_reference, editable=False
    )
    cart_id = models.UUIDField(
        _("cart id"),
        unique=True,
        help_text=_("The session cart this order was placed from; one order per cart."),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("customer account"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="shop_orders",
    )
    email = models.EmailField(_("email"))
    first_name = models.CharField(_("first name"), max_length=150)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    created_at = models.DateTimeField(_("placed at"), auto_now_add=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="shop_order_total_gte_0"),
        ]

    def __str__(self) -> str:
        return self.reference

    def get_absolute_url(self) -> str:
        return reverse("shop:order_confirmation", kwargs={"reference": self.reference})


class OrderLine(models.Model):
    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="lines"
    )
    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="order_lines"
    )
    title = models.CharField(
        _("title"), max_length=200, help_text=_("The product's title when it was ordered.")
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), max_digits=10, decimal_places=2)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="shop_orderline_qty_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.title}"

    @property
    def line_total(self) -> Decimal:
        return self.quantity * self.unit_price
