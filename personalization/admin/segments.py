"""Admin for segments: sizes and their trend, a refresh on demand, members and their history.

Membership is the app's to compute: it is read here, never edited. Lists stay fast with a
million profiles: counts are the stored ``member_count``, the trend reads one daily count per
segment, and the membership lists never count all their rows.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin
from django.contrib.messages import ERROR
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, OuterRef, Subquery
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join, json_script
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..exceptions import InvalidInput
from ..identity import profiles_search
from ..models import (
    ConsentState,
    Profile,
    Segment,
    SegmentDailyCount,
    SegmentKind,
    SegmentMembership,
)
from ..segments import Explanation, profile_segments_explain, segment_explain
from ..segments.definitions import segment_slug_clean, segments_referring_to
from ..segments.export import segment_members_csv
from ..segments.jobs import segments_refresh_enqueue
from ..segments.rules import rule_members, rule_validate
from ..segments.rules.choices import rule_value_choices
from ..segments.rules.schema import FIELDS, OP_LABELS, Param, ValueType, trait_spec
from .base import (
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    ReadOnlyTabularInline,
    change_link,
    changelist_url,
    profile_from_query,
)

TREND_DAYS = 7
PREVIEW_SAMPLE = 10


def explanation_html(explanation: Explanation) -> SafeString:
    """An explanation as a nested list: ✓ or ✗, the condition, and the profile's value."""
    mark = "✓" if explanation.holds else "✗"
    if explanation.kind == "condition":
        value = explanation.value
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or "–"
        elif value is None:
            value = gettext("no value")
        elif isinstance(value, bool):
            value = gettext("yes") if value else gettext("no")
        return format_html(
            '<li class="pzn-{}">{} {} — <em>{}</em></li>',
            "holds" if explanation.holds else "fails",
            mark,
            explanation.text,
            format_html("{}: {}", gettext("value"), value),
        )
    children = format_html_join(
        "", "{}", ((explanation_html(child),) for child in explanation.children)
    )
    return format_html("<li>{} {}<ul>{}</ul></li>", mark, explanation.text, children)


def explanation_block(explanation: Explanation) -> SafeString:
    return format_html('<ul class="pzn-explain">{}</ul>', explanation_html(explanation))


RULE_GROUPS = (
    ("profile", _("Profile")),
    ("traits", _("Traits")),
    ("stats", _("Order statistics")),
    ("orders", _("Orders")),
    ("events", _("Browsing")),
    ("cart", _("Cart")),
    ("consent", _("Consent")),
    ("topics", _("Topics")),
    ("segment", _("Segments")),
)
SEARCHABLE = (ValueType.PRODUCT, ValueType.CATEGORY, ValueType.TOPIC, ValueType.SEGMENT)


def rule_builder_schema() -> dict:
    """The allowlist as the rule builder needs it: fields by group, operators, value types."""

    def field(spec, name=None, label=None):
        return {
            "name": name or spec.name,
            "label": str(label or spec.label),
            "group": spec.group,
            "type": str(spec.value_type),
            "ops": [{"op": str(op), "label": str(OP_LABELS[op])} for op in spec.ops],
            "params": sorted(str(param) for param in spec.params),
        }

    specs = [field(spec) for spec in FIELDS.values()]
    specs.append(field(trait_spec("traits.key"), name="traits.", label=_("trait (give its key)")))
    order = [name for name, _label in RULE_GROUPS]
    specs.sort(key=lambda item: order.index(item["group"]))
    return {
        "groups": [{"name": name, "label": str(label)} for name, label in RULE_GROUPS],
        "fields": specs,
        "consent_states": [
            {"value": value, "label": str(label)} for value, label in ConsentState.choices
        ],
        "searchable": [str(kind) for kind in SEARCHABLE],
        "param_labels": {
            Param.WITHIN_DAYS: gettext("in the last … days"),
            Param.AT_LEAST: gettext("at least … times"),
        },
        "texts": {
            "all": gettext("all of these hold"),
            "any": gettext("any of these holds"),
            "not": gettext("not:"),
            "add_condition": gettext("+ condition"),
            "add_group": gettext("+ group"),
            "negate": gettext("negate"),
            "unnegate": gettext("remove not"),
            "remove": gettext("remove"),
            "yes": gettext("yes"),
            "no": gettext("no"),
            "trait_key": gettext("trait key"),
            "comma_separated": gettext("values, separated by commas"),
            "unknown": gettext("Not understood by the builder (edit the JSON):"),
            "invalid_json": gettext(
                "The JSON below is not a valid rule yet; the builder follows once it is."
            ),
        },
    }


class RuleBuilderWidget(forms.Textarea):
    """The rule as JSON, with a builder above it that edits it by picking fields, operators and
    values (``rule_builder.js``; without JavaScript, the JSON alone)."""

    class Media:
        js = ("personalization/admin/rule_builder.js",)
        css = {"all": ("personalization/admin/rule_builder.css",)}

    def __init__(self, attrs=None):
        super().__init__({"rows": 14, "cols": 90, "class": "vLargeTextField", **(attrs or {})})

    def render(self, name, value, attrs=None, renderer=None):
        textarea = super().render(name, value, attrs, renderer)
        textarea_id = (attrs or {}).get("id") or f"id_{name}"
        schema_id = f"{textarea_id}-schema"
        # One block for the admin's flex row: the builder above the JSON, both full width.
        return format_html(
            '<div class="pzn-rule-editor"><div class="pzn-rule-builder" data-for="{}" '
            'data-schema="{}" data-choices-url="{}"></div>{}{}</div>',
            textarea_id,
            schema_id,
            reverse("admin:personalization_segment_choices"),
            json_script(rule_builder_schema(), schema_id),
            textarea,
        )


class RuleField(forms.JSONField):
    widget = RuleBuilderWidget


class SegmentAdminForm(forms.ModelForm):
    """Validates a rule exactly as ``segment_define`` does; "Preview" shows who matches
    without saving."""

    rule = RuleField(
        label=_("Rule"),
        required=False,
        help_text=_(
            'A tree of {"all": [...]}, {"any": [...]} and {"not": {...}} over conditions such '
            'as {"field": "stats.orders_count", "op": "gte", "value": 2}; the fields, operators '
            "and examples are in the segments guide."
        ),
    )

    class Meta:
        model = Segment
        fields = ("name", "slug", "description", "rule")

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.preview = None
        if self.instance.pk is not None and self.instance.kind != SegmentKind.RULE:
            del self.fields["rule"]  # a lifecycle segment's definition is settings

    def clean_slug(self):
        slug = self.cleaned_data.get("slug")
        if slug is None:
            return slug
        try:
            return segment_slug_clean(slug)
        except InvalidInput as err:
            raise ValidationError(err.message) from err

    def clean(self):
        cleaned = super().clean()
        if "rule" not in self.fields:
            return cleaned
        rule = cleaned.get("rule")
        if rule is None:
            if "rule" not in self.errors:
                self.add_error("rule", _("A rule segment needs a rule."))
            return cleaned
        slug = cleaned.get("slug") or self.instance.slug or None
        try:
            rule_validate(rule, slug=slug)
        except InvalidInput as err:
            self.add_error("rule", f"{err.field}: {err.message}")
            return cleaned
        if self.request is not None and "_preview" in self.request.POST:
            members = rule_members(rule, now=timezone.now())
            self.preview = {
                "count": members.count(),
                "sample": list(members.order_by("pk")[:PREVIEW_SAMPLE]),
            }
            raise ValidationError(
                _("Preview only: nothing was saved. Save to keep the rule."), code="preview"
            )
        return cleaned


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentAdminForm
    change_form_template = "admin/personalization/segment/change_form.html"
    list_display = ("name", "slug", "kind", "member_count", "trend", "refreshed_at")
    list_display_links = ("name",)
    list_filter = ("kind",)
    search_fields = ("name", "slug")
    actions = ["refresh", "export_members_csv"]
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
        "sample",
        "explain_link",
        "refreshed_at",
        "recent_sizes",
    )

    # Lifecycle segments are built in: renamed and described here, never added or removed.
    # Rule segments are the shop's: added, edited and deleted here (or by segment_define).
    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "slug", "description", "rule")
        fields = ["name", "slug", "kind", "description"]
        if obj.kind == SegmentKind.RULE:
            fields.append("rule")
        return (
            *fields,
            "member_count",
            "members_link",
            "sample",
            "explain_link",
            "refreshed_at",
            "recent_sizes",
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)

        class RequestForm(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, request=request, **kw)

        return RequestForm

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # would take lifecycle segments along
        return actions

    def has_delete_permission(self, request, obj=None):
        if obj is not None and (obj.kind != SegmentKind.RULE or segments_referring_to(obj)):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.kind = SegmentKind.RULE
        super().save_model(request, obj, form, change)
        if obj.kind == SegmentKind.RULE and (not change or "rule" in form.changed_data):
            segments_refresh_enqueue(slugs=[obj.slug])
            self.message_user(
                request, gettext("Its members are being computed; the count updates when done.")
            )

    def render_change_form(self, request, context, *args, **kwargs):
        form = context["adminform"].form
        context["preview"] = getattr(form, "preview", None)
        if context["preview"] is not None:
            # The preview stops the save with a form error; it is not the marketer's error.
            context["errors"] = []
        return super().render_change_form(request, context, *args, **kwargs)

    def get_urls(self):
        return [
            path(
                "choices/",
                self.admin_site.admin_view(self.choices_view),
                name="personalization_segment_choices",
            ),
            path(
                "<int:segment_id>/explain/",
                self.admin_site.admin_view(self.explain_view),
                name="personalization_segment_explain",
            ),
            *super().get_urls(),
        ]

    def choices_view(self, request):
        """What the rule builder suggests for a product, category, topic or segment value."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            results = rule_value_choices(
                kind=request.GET.get("type", ""), term=request.GET.get("term", "")
            )
        except InvalidInput as err:
            return JsonResponse({"error": err.message}, status=400)
        return JsonResponse({"results": [{"value": v, "label": label} for v, label in results]})

    def explain_view(self, request, segment_id: int):
        """Why a chosen profile is or is not in this segment."""
        segment = get_object_or_404(Segment, pk=segment_id)
        if not self.has_view_permission(request, segment):
            raise PermissionDenied
        query = request.GET.get("profile", "").strip()
        profile, error = profile_from_query(query)
        explanation, member = None, None
        if profile is not None:
            explanation = explanation_block(segment_explain(segment=segment, profile=profile))
            member = (
                SegmentMembership.objects.current()
                .filter(segment=segment, profile=profile)
                .exists()
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "segment": segment,
            "title": gettext("Why is a profile in %(segment)s?") % {"segment": segment},
            "query": query,
            "profile": profile,
            "profile_link": change_link(self.admin_site, profile) if profile else "",
            "explanation": explanation,
            "member": member,
            "error": error,
        }
        return TemplateResponse(request, "admin/personalization/segment/explain.html", context)

    @admin.display(description=_("sample of members"))
    def sample(self, segment: Segment) -> str:
        members = (
            SegmentMembership.objects.current()
            .filter(segment=segment)
            .select_related("profile")
            .order_by("-entered_at", "-pk")[:PREVIEW_SAMPLE]
        )
        links = [(change_link(self.admin_site, m.profile),) for m in members]
        if not links:
            return gettext("No members yet.")
        return format_html_join(" · ", "{}", links)

    @admin.display(description=_("explain"))
    def explain_link(self, segment: Segment) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:personalization_segment_explain", args=[segment.pk]),
            gettext("Why is a given profile in this segment, or not?"),
        )

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

    @admin.action(description=_("Export members (CSV)"), permissions=["view"])
    def export_members_csv(self, request, queryset):
        """The current members of one selected segment, streamed as a CSV attachment."""
        segments = list(queryset.order_by()[:2])
        if len(segments) != 1:
            self.message_user(
                request, gettext("Select exactly one segment to export its members."), ERROR
            )
            return None
        segment = segments[0]
        response = StreamingHttpResponse(
            segment_members_csv(segment=segment), content_type="text/csv; charset=utf-8"
        )
        filename = f"segment-{segment.slug}-members-{timezone.now():%Y-%m-%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


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
class SegmentMembershipAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("profile_link", "segment", "entered_at", "exited_at")
    list_filter = ("segment", CurrentFilter)
    list_select_related = ("profile", "segment")
    search_fields = ("profile__email",)  # the search itself is profiles_search(), indexed
    search_help_text = _(
        "A whole email address (current or former), an anonymous visitor id, or the start "
        "of an email address or a first or last name."
    )
    list_per_page = 50
    ordering = ("-entered_at", "-pk")

    def get_search_results(self, request, queryset, search_term):
        matching = Profile.objects.filter(profiles_search(search_term)).values("pk")
        return queryset.filter(profile_id__in=matching), False

    def get_ordering(self, request):
        # One segment's stays come newest first from pzn_membership_entered. Across all
        # segments no index orders by entry: newest recorded first is the primary key's
        # order (a stay is recorded when it begins), where sorting by entry would sort the
        # whole table for each page.
        if "segment__id__exact" in request.GET:
            return self.ordering
        return ("-pk",)

    @admin.display(description=_("profile"), ordering="profile")
    def profile_link(self, membership: SegmentMembership) -> str:
        return change_link(self.admin_site, membership.profile)


def profile_segments_explained(*, profile: Profile) -> SafeString:
    """For the profile's admin page: why it is in each segment it currently belongs to."""
    blocks = [
        (segment.name, explanation_block(explanation))
        for segment, explanation in profile_segments_explain(profile=profile)
    ]
    if not blocks:
        return format_html("{}", gettext("In no segment now."))
    return format_html_join("", "<p><strong>{}</strong></p>{}", blocks)


class SegmentMembershipInline(ReadOnlyTabularInline):
    """A profile's segments, current ones first, with the time it entered and left each."""

    model = SegmentMembership
    fields = ("segment", "entered_at", "exited_at")
    readonly_fields = fields
    ordering = (F("exited_at").desc(nulls_first=True), "-entered_at")
    verbose_name_plural = _("segments (current and past)")

    def get_queryset(self, request):
        # Each row shows its segment and is titled "<profile> in <segment>": one query.
        return super().get_queryset(request).select_related("segment", "profile")
