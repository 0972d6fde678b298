from django.contrib import admin

from .models import Order, OrderLine, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["title", "category", "price", "stock", "is_active", "is_sensitive"]
    list_filter = ["is_active", "is_sensitive", "category"]
    search_fields = ["title", "slug", "category"]
    prepopulated_fields = {"slug": ["title"]}


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    readonly_fields = ["product", "title", "quantity", "unit_price"]
    can_delete = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["reference", "email", "first_name", "total", "currency", "created_at"]
    search_fields = ["reference", "email", "last_name"]
    readonly_fields = ["reference", "cart_id", "user", "total", "currency", "created_at"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
