"""Mirrors of the shop's orders and carts."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .catalogue import Product
from .profiles import Profile


class OrderStatus(models.TextChoices):
    PLACED = "placed", _("placed")
    CANCELLED = "cancelled", _("cancelled")
    REFUNDED = "refunded", _("refunded")


class IngestSource(models.TextChoices):
    SIGNAL = "signal", _("shop signal")
    IMPORT = "import", _("CSV import")
    API = "api", _("API")


class OrderQuerySet(models.QuerySet):
    def counted(self):
        """Orders that count towards a customer's history (not cancelled or refunded)."""
        return self.filter(status=OrderStatus.PLACED)


class Order(models.Model):
    external_id = models.CharField(
        _("order id"), max_length=64, help_text=_("The order's id in the shop.")
    )
    # Looked up through pzn_order_profile_placed: an index of its own would only slow writes.
    # Empty once the customer was erased: the order still counts in the shop's revenue, but
    # belongs to nobody (personalization.privacy.erasure).
    profile = models.ForeignKey(
        Profile,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
        db_index=False,
        help_text=_("Empty for the orders of an erased customer, kept for revenue figures."),
    )
    placed_at = models.DateTimeField(_("placed at"))
    total = models.DecimalField(
        _("total paid"),
        max_digits=12,
        decimal_places=2,
        help_text=_("What the customer paid, in the currency they paid in."),
    )
    currency = models.CharField(
        _("currency paid"), max_length=3, help_text=_("ISO 4217 code of the total paid.")
    )
    shop_total = models.DecimalField(
        _("total in shop currency"),
        max_digits=12,
        decimal_places=2,
        help_text=_(
            "The total in the shop's currency (PERSONALIZATION['CURRENCY']), converted at the "
            "time of the order. Statistics and money rules count this one."
        ),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=OrderStatus.choices, default=OrderStatus.PLACED
    )
    status_changed_at = models.DateTimeField(_("status changed at"), null=True, blank=True)
    cart = models.ForeignKey(
        "Cart",
        verbose_name=_("cart"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
        db_index=False,  # pzn_order_cart, which leaves out the many orders without a cart
    )
    source = models.CharField(_("source"), max_length=16, choices=IngestSource.choices)
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-placed_at"]
        indexes = [
            models.Index(fields=["profile", "placed_at"], name="pzn_order_profile_placed"),
            models.Index(fields=["placed_at"], name="pzn_order_placed"),
            models.Index(fields=["cart"], condition=Q(cart__isnull=False), name="pzn_order_cart"),
        ]
        constraints = [
            # A constraint rather than unique=True, which would add a second (LIKE) index
            # on PostgreSQL that nothing uses.
            models.UniqueConstraint(fields=["external_id"], name="pzn_order_external_id_unique"),
            models.CheckConstraint(condition=Q(total__gte=0), name="pzn_order_total_gte_0"),
            models.CheckConstraint(
                condition=Q(shop_total__gte=0), name="pzn_order_shop_total_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class OrderLine(models.Model):
    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="lines"
    )
    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="order_lines"
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="pzn_orderline_qty_gt_0"),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="pzn_orderline_price_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product}"


class CartStatus(models.TextChoices):
    OPEN = "open", _("open")
    CONVERTED = "converted", _("converted to an order")
    EMPTIED = "emptied", _("emptied")


class CartQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status=CartStatus.OPEN)


class Cart(models.Model):
    external_id = models.CharField(
        _("cart id"), max_length=64, unique=True, help_text=_("The cart's id in the shop.")
    )
    profile = models.ForeignKey(
        Profile, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="carts"
    )
    status = models.CharField(
        _("status"), max_length=16, choices=CartStatus.choices, default=CartStatus.OPEN
    )
    currency = models.CharField(
        _("currency"), max_length=3, blank=True, help_text=_("ISO 4217 code of the total.")
    )
    total = models.DecimalField(
        _("total"),
        max_digits=12,
        decimal_places=2,
        default=0,
        help_text=_("The cart's value in its own currency."),
    )
    shop_total = models.DecimalField(
        _("total in shop currency"),
        max_digits=12,
        decimal_places=2,
        default=0,
        help_text=_(
            "The cart's value in the shop's currency (PERSONALIZATION['CURRENCY']), converted "
            "when it last changed."
        ),
    )
    source_updated_at = models.DateTimeField(
        _("changed in shop at"),
        help_text=_("Time of the shop's latest update; older updates arriving late are ignored."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = CartQuerySet.as_manager()

    class Meta:
        verbose_name = _("cart")
        verbose_name_plural = _("carts")
        indexes = [
            models.Index(fields=["status", "source_updated_at"], name="pzn_cart_status_updated"),
        ]

    def __str__(self) -> str:
        return self.external_id


class CartLine(models.Model):
    cart = models.ForeignKey(
        Cart, verbose_name=_("cart"), on_delete=models.CASCADE, related_name="lines"
    )
    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="cart_lines"
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("cart line")
        verbose_name_plural = _("cart lines")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="pzn_cartline_qty_gt_0"),
            models.UniqueConstraint(fields=["cart", "product"], name="pzn_cartline_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product}"
