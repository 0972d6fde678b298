from decimal import Decimal

from django import template
from django.utils.formats import number_format
from django.utils.safestring import mark_safe

from ..images import product_svg

register = template.Library()


@register.simple_tag
def product_image(product, size=320):
    return mark_safe(product_svg(title=product.title, category=product.category, size=size))


@register.filter
def eur(value):
    """12.5 → '€12.50' (decimal separator per the active language)."""
    if value in (None, ""):
        return ""
    return f"€{number_format(Decimal(value), decimal_pos=2, force_grouping=True)}"
