"""Behavioural events: what a customer did on the shop's pages."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .catalogue import Product
from .profiles import Profile


class EventName(models.TextChoices):
    """Events the app understands. Shops may track other names too (lower_snake_case)."""

    PRODUCT_VIEWED = "product_viewed", _("viewed a product")
    ADDED_TO_CART = "added_to_cart", _("added to cart")
    REMOVED_FROM_CART = "removed_from_cart", _("removed from cart")
    CHECKOUT_STARTED = "checkout_started", _("started checkout")
    SEARCHED = "searched", _("searched")
    CATEGORY_VIEWED = "category_viewed", _("viewed a category")


class EventQuerySet(models.QuerySet):
    def named(self, name: str):
        return self.filter(name=name)

    def not_sensitive(self):
        """Events that do not concern a sensitive product: the only ones fit for marketing."""
        return self.filter(is_sensitive=False)

    def between(self, start, end):
        return self.filter(occurred_at__gte=start, occurred_at__lt=end)


class Event(models.Model):
    """One thing a customer did. Stored only with personalisation consent (see track())."""

    profile = models.ForeignKey(
        Profile, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="events"
    )
    name = models.CharField(_("event"), max_length=64)
    occurred_at = models.DateTimeField(_("occurred at"))
    product = models.ForeignKey(
        Product,
        verbose_name=_("product"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
    )
    is_sensitive = models.BooleanField(
        _("sensitive"),
        default=False,
        help_text=_(
            "About a sensitive product: never used to infer, segment or recommend "
            "(see SENSITIVE_EVENTS)."
        ),
    )
    properties = models.JSONField(_("properties"), default=dict, blank=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["profile", "name", "occurred_at"], name="pzn_event_profile_name"),
            models.Index(fields=["occurred_at"], name="pzn_event_occurred"),
            models.Index(fields=["product", "name"], name="pzn_event_product_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"
