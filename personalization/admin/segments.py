"""Admin for segments: sizes and their trend, a refresh on demand, members and their history.

Membership is the app's to compute: it is read here, never edited. Lists stay fast with a
million profiles: counts are the stored ``member_count``, the trend reads one daily count per
segment, and the membership lists never count all their rows.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..models import Segment, SegmentDailyCount, SegmentMembership
from ..segments.jobs import segments_refresh_enqueue
from .base import ReadOnlyAdminMixin, ReadOnlyTabularInline, change_link, changelist_url

TREND_DAYS = 7


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "kind", "member_count", "trend", "refreshed_at")
    list_display_links = ("name",)
    list_filter = ("kind",)
    search_fields = ("name", "slug")
    actions = ["refresh"]
    fields = (
        "name",
        "slug",
        "kind",
        "description",
        "member_count",
        "members_link",
        "refreshed_at",
        "recent_sizes",
    )
    readonly_fields = (
        "slug",
        "kind",
        "member_count",
        "members_link",
        "refreshed_at",
        "recent_sizes",
    )

    # Lifecycle segments are built in: renamed and described here, never added or removed.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        since = (timezone.now() - dt.timedelta(days=TREND_DAYS)).date()
        then = SegmentDailyCount.objects.filter(segment=OuterRef("pk"), day__lte=since)
        return (
            super()
            .get_queryset(request)
            .annotate(members_then=Subquery(then.order_by("-day").values("members")[:1]))
        )

    @admin.display(description=_("last 7 days"))
    def trend(self, segment: Segment) -> str:
        then = getattr(segment, "members_then", None)
        if then is None:
            return "–"
        change = segment.member_count - then
        return f"{change:+d}"

    @admin.display(description=_("members"))
    def members_link(self, segment: Segment) -> str:
        current = changelist_url(
            self.admin_site, SegmentMembership, segment__id__exact=segment.pk, current="yes"
        )
        history = changelist_url(self.admin_site, SegmentMembership, segment__id__exact=segment.pk)
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            current,
            _("current members"),
            history,
            _("everyone who entered or left"),
        )

    @admin.display(description=_("size by day"))
    def recent_sizes(self, segment: Segment) -> str:
        days = segment.daily_counts.order_by("-day")[:30]
        if not days:
            return _("Not refreshed yet.")
        return format_html(
            "<table><tr><th>{}</th><th>{}</th></tr>{}</table>",
            _("day"),
            _("members"),
            format_html_join(
                "", "<tr><td>{}</td><td>{}</td></tr>", ((d.day, d.members) for d in days)
            ),
        )

    @admin.action(description=_("Refresh the selected segments now"))
    def refresh(self, request, queryset):
        slugs = list(queryset.values_list("slug", flat=True))
        segments_refresh_enqueue(slugs=slugs)
        self.message_user(
            request,
            ngettext(
                "A refresh of %(count)d segment was started; its counts update when it is done.",
                "A refresh of %(count)d segments was started; their counts update when it is done.",
                len(slugs),
            )
            % {"count": len(slugs)},
        )


class CurrentFilter(admin.SimpleListFilter):
    title = _("current")
    parameter_name = "current"

    def lookups(self, request, model_admin):
        return [("yes", _("Current members")), ("no", _("Left"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(exited_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(exited_at__isnull=False)
        return queryset


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("profile_link", "segment", "entered_at", "exited_at")
    list_filter = ("segment", CurrentFilter)
    list_select_related = ("profile", "segment")
    search_fields = ("=profile__email",)
    search_help_text = _("The customer's email address (exact).")
    show_full_result_count = False
    list_per_page = 50
    ordering = ("-entered_at", "-pk")

    @admin.display(description=_("profile"), ordering="profile")
    def profile_link(self, membership: SegmentMembership) -> str:
        return change_link(self.admin_site, membership.profile)


class SegmentMembershipInline(ReadOnlyTabularInline):
    """A profile's segments, current ones first, with the time it entered and left each."""

    model = SegmentMembership
    fields = ("segment", "entered_at", "exited_at")
    readonly_fields = fields
    ordering = (F("exited_at").desc(nulls_first=True), "-entered_at")
    verbose_name_plural = _("segments (current and past)")
