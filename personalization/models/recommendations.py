"""The item-to-item recommendation model: a product's nearest neighbours, by build.

A build (:class:`RecommendationModel`) is written whole in one transaction and made current in
the same transaction, so readers see either the previous complete model or the new one, never
a half-built one. Read through ``ProductNeighbour.objects.current()``: one indexed query per
product set (``pzn_neighbour_build_product``).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .catalogue import Product


class BuildStatus(models.TextChoices):
    COMPLETE = "complete", _("complete")
    FAILED = "failed", _("failed")


class RecommendationModelQuerySet(models.QuerySet):
    def current(self):
        """The build readers use: at most one row (a unique constraint keeps it so)."""
        return self.filter(is_current=True)


class RecommendationModel(models.Model):
    """One build of the item-to-item model, with what it was built from."""

    started_at = models.DateTimeField(
        _("started at"), help_text=_("When the build took its lock and began counting.")
    )
    built_at = models.DateTimeField(
        _("finished at"),
        null=True,
        blank=True,
        help_text=_("When the build was complete and made current; empty for a failed one."),
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=BuildStatus.choices,
        help_text=_("A failed build stored no neighbours and left the previous model current."),
    )
    is_current = models.BooleanField(
        _("current"),
        default=False,
        help_text=_("The one model recommendations are read from."),
    )
    products = models.PositiveIntegerField(
        _("products"), default=0, help_text=_("Products that have at least one neighbour.")
    )
    neighbours = models.PositiveIntegerField(
        _("neighbours"), default=0, help_text=_("Neighbour rows stored (at most K per product).")
    )
    seconds = models.FloatField(
        _("seconds"), null=True, blank=True, help_text=_("How long the build took.")
    )
    settings = models.JSONField(
        _("settings"),
        default=dict,
        blank=True,
        help_text=_("The RECOMMENDATION_* settings the build used."),
    )
    error = models.TextField(
        _("error"), blank=True, help_text=_("Why a failed build failed (the exception).")
    )
    intervals_learned_at = models.DateTimeField(
        _("intervals learned at"),
        null=True,
        blank=True,
        help_text=_(
            "When the repurchase intervals this build holds were learned: by this build, or "
            "by an earlier one within RECOMMENDATION_INTERVAL_RELEARN_DAYS (they were carried "
            "over)."
        ),
    )

    objects = RecommendationModelQuerySet.as_manager()

    class Meta:
        verbose_name = _("recommendation model")
        verbose_name_plural = _("recommendation models")
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_current"],
                condition=Q(is_current=True),
                name="pzn_recmodel_one_current",
            ),
            models.CheckConstraint(
                condition=Q(is_current=False) | Q(status=BuildStatus.COMPLETE),
                name="pzn_recmodel_current_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_status_display()} @ {self.started_at:%Y-%m-%d %H:%M}"


class ProductNeighbourQuerySet(models.QuerySet):
    def current(self):
        """Neighbours of the current build only (one query: the build is joined, not looked
        up first, so a switch between two statements cannot mix builds)."""
        return self.filter(build__is_current=True)


class ProductNeighbour(models.Model):
    """``neighbour`` is among the K products most often bought or viewed with ``product``."""

    build = models.ForeignKey(
        RecommendationModel,
        verbose_name=_("model"),
        on_delete=models.CASCADE,
        related_name="neighbour_rows",
        db_index=False,  # pzn_neighbour_build_product starts with it
        help_text=_("The build this row belongs to."),
    )
    product = models.ForeignKey(
        Product,
        verbose_name=_("product"),
        on_delete=models.CASCADE,
        related_name="neighbours",
        help_text=_("The product the neighbour is recommended for."),
    )
    neighbour = models.ForeignKey(
        Product,
        verbose_name=_("neighbour"),
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_("A product bought or viewed together with it."),
    )
    rank = models.PositiveSmallIntegerField(
        _("rank"), help_text=_("1 for the closest neighbour, then 2, 3, …")
    )
    score = models.FloatField(
        _("score"),
        help_text=_(
            "Co-purchases plus weighted co-views, divided by the square root of the product of "
            "both products' own counts (cosine): 1 means always together."
        ),
    )
    co_purchases = models.PositiveIntegerField(
        _("co-purchases"), help_text=_("Placed orders that contain both products.")
    )
    co_views = models.PositiveIntegerField(
        _("co-views"), help_text=_("Customers who viewed both products within the window.")
    )

    objects = ProductNeighbourQuerySet.as_manager()

    class Meta:
        verbose_name = _("product neighbour")
        verbose_name_plural = _("product neighbours")
        ordering = ["build", "product", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["build", "product", "neighbour"], name="pzn_neighbour_unique"
            ),
            models.CheckConstraint(
                condition=~Q(product=models.F("neighbour")), name="pzn_neighbour_not_self"
            ),
            models.CheckConstraint(condition=Q(score__gte=0), name="pzn_neighbour_score_gte_0"),
        ]
        indexes = [
            models.Index(
                "build", "product", models.F("score").desc(), name="pzn_neighbour_build_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} → {self.neighbour_id} ({self.score:.3f})"


class ProductPopularityQuerySet(models.QuerySet):
    def current(self):
        """Popularity in the current build only (the build joined, as for neighbours)."""
        return self.filter(build__is_current=True)


class ProductPopularity(models.Model):
    """How many placed orders named ``product`` in the ``RECOMMENDATION_BESTSELLER_DAYS``
    before the build: the bestseller list, counted once per build instead of per read."""

    build = models.ForeignKey(
        RecommendationModel,
        verbose_name=_("model"),
        on_delete=models.CASCADE,
        related_name="popularity_rows",
        db_index=False,  # pzn_popularity_build_rank starts with it
        help_text=_("The build this row belongs to."),
    )
    product = models.ForeignKey(
        Product,
        verbose_name=_("product"),
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_("A product ordered in the window."),
    )
    orders = models.PositiveIntegerField(
        _("orders"), help_text=_("Placed orders that named the product in the window.")
    )
    rank = models.PositiveIntegerField(
        _("rank"), help_text=_("1 for the most ordered product, then 2, 3, …")
    )

    objects = ProductPopularityQuerySet.as_manager()

    class Meta:
        verbose_name = _("product popularity")
        verbose_name_plural = _("product popularity")
        ordering = ["build", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["build", "product"], name="pzn_popularity_unique"),
        ]
        indexes = [models.Index(fields=["build", "rank"], name="pzn_popularity_build_rank")]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.orders} orders (#{self.rank})"


class LearnedIntervalQuerySet(models.QuerySet):
    def current(self):
        """Intervals of the current build only."""
        return self.filter(build__is_current=True)


class LearnedInterval(models.Model):
    """How long customers take to buy ``product`` again: the median of the gaps between one
    customer's consecutive purchases of it, learned by a build when enough customers did."""

    build = models.ForeignKey(
        RecommendationModel,
        verbose_name=_("model"),
        on_delete=models.CASCADE,
        related_name="interval_rows",
        db_index=False,  # pzn_interval_unique starts with it
        help_text=_("The build this row belongs to."),
    )
    product = models.ForeignKey(
        Product,
        verbose_name=_("product"),
        on_delete=models.CASCADE,
        related_name="learned_intervals",
        help_text=_("A product customers buy again."),
    )
    days = models.PositiveIntegerField(
        _("days"), help_text=_("The median number of days between two purchases of it.")
    )
    repeats = models.PositiveIntegerField(
        _("repeat purchases"), help_text=_("How many gaps between purchases the median is of.")
    )

    objects = LearnedIntervalQuerySet.as_manager()

    class Meta:
        verbose_name = _("learned repurchase interval")
        verbose_name_plural = _("learned repurchase intervals")
        ordering = ["build", "product"]
        constraints = [
            models.UniqueConstraint(fields=["build", "product"], name="pzn_interval_unique"),
            models.CheckConstraint(condition=Q(days__gte=1), name="pzn_interval_days_gte_1"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.days} days ({self.repeats} repeats)"
