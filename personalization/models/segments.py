"""Segments: groups of profiles, kept current, with the history of who entered and left."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .profiles import Profile


class SegmentKind(models.TextChoices):
    LIFECYCLE = "lifecycle", _("lifecycle (built in)")
    RULE = "rule", _("rule (defined by the shop)")


class Segment(models.Model):
    """A named group of profiles, defined by the app (lifecycle) or by a marketer's rule."""

    slug = models.SlugField(
        _("slug"),
        max_length=64,
        unique=True,
        help_text=_("Short name used in code, commands and exports, e.g. 'loyal'."),
    )
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(
        _("description"), blank=True, help_text=_("Who is in it, in the marketer's own words.")
    )
    kind = models.CharField(
        _("kind"),
        max_length=16,
        choices=SegmentKind.choices,
        help_text=_(
            "Lifecycle segments are built in, their thresholds are settings; rule segments are "
            "defined by a rule."
        ),
    )
    rule = models.JSONField(
        _("rule"),
        null=True,
        blank=True,
        help_text=_(
            "Who is in a rule segment: all/any/not groups of conditions, as the segments guide "
            "describes them. Empty for lifecycle segments."
        ),
    )
    member_count = models.PositiveIntegerField(
        _("members"),
        default=0,
        help_text=_("Current members, kept up to date by every refresh and realtime change."),
    )
    refreshed_at = models.DateTimeField(
        _("last full refresh"),
        null=True,
        blank=True,
        help_text=_("When membership was last recomputed for everyone."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["kind", "name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind=SegmentKind.LIFECYCLE) & Q(rule__isnull=True))
                | (Q(kind=SegmentKind.RULE) & Q(rule__isnull=False)),
                name="pzn_segment_rule_by_kind",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SegmentMembershipQuerySet(models.QuerySet):
    def current(self):
        """Memberships that have not ended: the segment's members now."""
        return self.filter(exited_at__isnull=True)


class SegmentMembership(models.Model):
    """One stay of a profile in a segment: from entering until leaving (open while a member)."""

    segment = models.ForeignKey(
        Segment,
        verbose_name=_("segment"),
        on_delete=models.CASCADE,
        related_name="memberships",
        db_index=False,  # the indexes below start with the segment
    )
    profile = models.ForeignKey(
        Profile,
        verbose_name=_("profile"),
        on_delete=models.CASCADE,
        related_name="segment_memberships",
        db_index=False,  # pzn_membership_profile
    )
    entered_at = models.DateTimeField(_("entered"))
    exited_at = models.DateTimeField(
        _("left"), null=True, blank=True, help_text=_("Empty while the profile is a member.")
    )

    objects = SegmentMembershipQuerySet.as_manager()

    class Meta:
        verbose_name = _("segment membership")
        verbose_name_plural = _("segment memberships")
        ordering = ["-entered_at"]
        constraints = [
            # One open stay per profile and segment: what makes concurrent refreshes safe.
            models.UniqueConstraint(
                fields=["segment", "profile"],
                condition=Q(exited_at__isnull=True),
                name="pzn_membership_open_unique",
            ),
            models.CheckConstraint(
                condition=Q(exited_at__isnull=True) | Q(exited_at__gte=models.F("entered_at")),
                name="pzn_membership_exit_after_entry",
            ),
        ]
        indexes = [
            models.Index(fields=["profile", "segment"], name="pzn_membership_profile"),
            # A segment's stays newest first, for its member list and the sample on its
            # page (the id breaks ties: a refresh's entrants share one entered_at).
            models.Index(fields=["segment", "entered_at", "id"], name="pzn_membership_entered"),
            models.Index(
                fields=["segment", "exited_at"],
                condition=Q(exited_at__isnull=False),
                name="pzn_membership_exited",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.profile} in {self.segment}"


class SegmentDailyCount(models.Model):
    """A segment's size at the end of a day (UTC), for charts of its size over time."""

    segment = models.ForeignKey(
        Segment,
        verbose_name=_("segment"),
        on_delete=models.CASCADE,
        related_name="daily_counts",
        db_index=False,  # the unique constraint starts with it
    )
    day = models.DateField(_("day"))
    members = models.PositiveIntegerField(_("members"))

    class Meta:
        verbose_name = _("segment size on a day")
        verbose_name_plural = _("segment sizes by day")
        ordering = ["segment", "-day"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "day"], name="pzn_segment_day_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.segment} {self.day}: {self.members}"
