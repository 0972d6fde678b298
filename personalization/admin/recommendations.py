"""Admin for the recommendation model: its builds, a product's neighbours and its learned
repurchase interval.

Both are the app's to compute and read-only here: a build is made by Beat or by
``manage.py build_recommendations``.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..models import Product, RecommendationModel
from ..recommendations import learned_interval, product_neighbours
from .base import ReadOnlyAdminMixin, change_link


def neighbours_html(site: admin.AdminSite, product: Product) -> SafeString:
    """The product's neighbours in the current model as a table, closest first.

    A read-only panel rather than an inline: it is no part of the product's form (one query).
    """
    if product.pk is None:
        return format_html("{}", "–")
    rows = list(product_neighbours(product=product))
    if not rows:
        return format_html(
            "<p>{}</p>",
            gettext(
                "No neighbours in the current model: the product is sensitive, new, rarely "
                "bought or viewed with others, or no model has been built yet."
            ),
        )
    head = format_html_join(
        "",
        "<th scope='col'>{}</th>",
        (
            (gettext("rank"),),
            (gettext("neighbour"),),
            (gettext("score"),),
            (gettext("co-purchases"),),
            (gettext("co-views"),),
        ),
    )
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                row.rank,
                change_link(site, row.neighbour),
                f"{row.score:.3f}",
                row.co_purchases,
                row.co_views,
            )
            for row in rows
        ),
    )
    return format_html(
        '<table class="pzn-neighbours"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        head,
        body,
    )


def learned_interval_text(product: Product) -> str:
    """What the current model learned of how long the product lasts its buyers."""
    learned = learned_interval(product=product)
    if learned is None:
        return gettext(
            "Not learned: too few customers bought it again (or it is sensitive). "
            "Replenishment uses the interval above when it is set."
        )
    text = ngettext(
        "%(days)d day: the median of %(repeats)d repeat purchases.",
        "%(days)d days: the median of %(repeats)d repeat purchases.",
        learned.days,
    ) % {"days": learned.days, "repeats": learned.repeats}
    if product.repurchase_interval_days:
        text += " " + gettext("Replenishment uses the interval set above instead.")
    return text


@admin.register(RecommendationModel)
class RecommendationModelAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Builds of the model: the current one, and failures since it (with their error)."""

    list_display = (
        "started_at",
        "status",
        "is_current",
        "products",
        "neighbours",
        "seconds_shown",
        "built_at",
    )
    list_filter = ("status", "is_current")
    ordering = ("-started_at", "-pk")
    fields = (
        "status",
        "is_current",
        "started_at",
        "built_at",
        "seconds",
        "products",
        "neighbours",
        "intervals_learned_at",
        "settings",
        "error",
    )
    readonly_fields = fields

    @admin.display(description=_("seconds"), ordering="seconds")
    def seconds_shown(self, build: RecommendationModel) -> str:
        return "–" if build.seconds is None else f"{build.seconds:.1f}"
