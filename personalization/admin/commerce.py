"""Admin for the read-only mirrors of the shop's orders and carts, and behavioural events.

These tables grow to millions of rows: every list selects its related rows in the same query,
hides the full count, and offers only filters that need no query of their own.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ..models import Cart, CartLine, Event, EventName, Order, OrderLine
from .base import ReadOnlyAdminMixin, ReadOnlyTabularInline, change_link


class _LineInline(ReadOnlyTabularInline):
    fields = ("product", "quantity", "unit_price", "line_total")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product")

    @admin.display(description=_("line total"))
    def line_total(self, line):
        return line.quantity * line.unit_price


class OrderLineInline(_LineInline):
    model = OrderLine


class CartLineInline(_LineInline):
    model = CartLine


class _MirrorAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Shop data as the app recorded it; the shop's signals and imports are the only writers."""

    list_select_related = ("profile",)
    list_per_page = 50
    show_full_result_count = False
    raw_id_fields = ("profile",)
    search_help_text = _("The shop's id (exact) or the customer's email address.")

    @admin.display(description=_("customer"))
    def customer(self, obj) -> str:
        return change_link(self.admin_site, obj.profile)


@admin.register(Order)
class OrderAdmin(_MirrorAdmin):
    list_display = (
        "external_id",
        "customer",
        "placed_at",
        "total",
        "currency",
        "shop_total",
        "status",
        "status_changed_at",
        "source",
    )
    list_filter = ("status", "source")
    date_hierarchy = "placed_at"
    search_fields = ("=external_id", "profile__email")
    raw_id_fields = ("profile", "cart")
    inlines = [OrderLineInline]


@admin.register(Cart)
class CartAdmin(_MirrorAdmin):
    list_display = (
        "external_id",
        "customer",
        "status",
        "total",
        "currency",
        "shop_total",
        "source_updated_at",
        "created_at",
    )
    list_filter = ("status",)
    date_hierarchy = "source_updated_at"
    search_fields = ("=external_id", "profile__email")
    ordering = ("-source_updated_at", "-pk")
    inlines = [CartLineInline]


class EventNameFilter(admin.SimpleListFilter):
    """The event names the app knows; listing them needs no DISTINCT over the whole table."""

    title = _("event")
    parameter_name = "name"

    def lookups(self, request, model_admin):
        return EventName.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(name=self.value())
        return queryset


@admin.register(Event)
class EventAdmin(_MirrorAdmin):
    list_display = ("event", "customer", "product_link", "occurred_at")
    list_select_related = ("profile", "product")
    list_filter = (EventNameFilter,)
    date_hierarchy = "occurred_at"
    search_fields = ("profile__email", "=product__external_id", "=name")
    search_help_text = _("The customer's email address, a product id or an event name (exact).")
    raw_id_fields = ("profile", "product")
    fields = ("profile", "name", "occurred_at", "product", "properties")

    @admin.display(description=_("event"), ordering="name")
    def event(self, event: Event) -> str:
        if event.name in EventName.values:
            return EventName(event.name).label
        return event.name

    @admin.display(description=_("product"))
    def product_link(self, event: Event) -> str:
        return change_link(self.admin_site, event.product) if event.product_id else "–"
