"""Admin for the catalogue mirror."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _

from ..models import Product
from .recommendations import learned_interval_text, neighbours_html


class SensitiveFilter(admin.SimpleListFilter):
    """Sensitive as the guardrails see it: flagged, or in a SENSITIVE_CATEGORIES category."""

    title = _("sensitive (flagged or by category)")
    parameter_name = "sensitive"

    def lookups(self, request, model_admin):
        return [("yes", _("sensitive")), ("no", _("not sensitive"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.sensitive()
        if self.value() == "no":
            return queryset.not_sensitive()
        return queryset


class RepeatPurchaseFilter(admin.SimpleListFilter):
    title = _("repeat purchase")
    parameter_name = "repeat"

    def lookups(self, request, model_admin):
        return [("yes", _("has a repurchase interval")), ("no", _("no repurchase interval"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.repeat_purchases()
        if self.value() == "no":
            return queryset.filter(repurchase_interval_days__isnull=True)
        return queryset


# Fields that mirror the shop: the next product_saved signal or import overwrites them, so an
# edit here would be silently lost. Change them in the shop.
MIRROR_FIELDS = (
    "external_id",
    "sku",
    "title",
    "url",
    "image_url",
    "price",
    "currency",
    "category_path",
    "in_stock",
    "active",
)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    """Products as the shop last described them.

    Only two fields are editable, because they are marketing judgements most shops don't
    record: ``is_sensitive`` (keep the product out of inference, segments and recommendations)
    and ``repurchase_interval_days`` (when to remind of a consumable). ``product_saved`` leaves
    them alone unless the shop sends them, in which case the shop's value wins.
    """

    list_display = (
        "title",
        "external_id",
        "sku",
        "category_path",
        "price",
        "currency",
        "in_stock",
        "active",
        "is_sensitive",
        "sensitive",
        "repurchase_interval_days",
        "purchase_cycle",
    )
    list_filter = (
        "active",
        "in_stock",
        SensitiveFilter,
        "is_sensitive",
        RepeatPurchaseFilter,
        "purchase_cycle",
        "currency",
    )
    search_fields = ("title", "sku", "external_id", "category_path")
    search_help_text = _("Title, SKU, the shop's product id or a category.")
    ordering = ("title", "pk")
    list_per_page = 100
    show_full_result_count = False
    readonly_fields = (
        *MIRROR_FIELDS,
        "sensitive",
        "neighbours",
        "learned_interval",
        "source_updated_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (_("From the shop"), {"fields": MIRROR_FIELDS}),
        (
            _("Set by marketing"),
            {
                "fields": (
                    "is_sensitive",
                    "sensitive",
                    "repurchase_interval_days",
                    "learned_interval",
                )
            },
        ),
        (_("Recommendations"), {"fields": ("neighbours",)}),
        (
            _("Record"),
            {"fields": ("source_updated_at", "created_at", "updated_at"), "classes": ("collapse",)},
        ),
    )

    def get_queryset(self, request):
        sensitive = Product.objects.sensitive().filter(pk=OuterRef("pk"))
        return super().get_queryset(request).annotate(sensitive_any=Exists(sensitive))

    # Products come from the shop. A product that is gone is marked inactive by the shop;
    # deleting the mirror would break the orders that reference it.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("neighbours in the current recommendation model"))
    def neighbours(self, product: Product):
        return neighbours_html(self.admin_site, product)

    @admin.display(description=_("repurchase interval learned from customers"))
    def learned_interval(self, product: Product) -> str:
        return learned_interval_text(product)

    @admin.display(
        description=_("sensitive (flagged or by category)"), boolean=True, ordering="sensitive_any"
    )
    def sensitive(self, product: Product) -> bool:
        if hasattr(product, "sensitive_any"):
            return product.sensitive_any
        return Product.objects.sensitive().filter(pk=product.pk).exists()
