"""Campaigns and the message ledger in the admin.

A marketer writes a campaign (a draft can be edited freely), previews it for any customer,
test-sends it to themselves, sees its audience and its lint, then schedules it; a scheduled or
sending campaign can be cancelled. The ledger is read-only: every message with its state and
the policy's reason.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..exceptions import InvalidInput
from ..messaging import (
    CampaignLintError,
    campaign_audience_count,
    campaign_cancel,
    campaign_lint,
    campaign_schedule,
)
from ..messaging.campaigns import campaign_results
from ..messaging.lint import copy_lint
from ..messaging.preview import campaign_preview, campaign_test_send
from ..models import (
    Campaign,
    CampaignStatus,
    DecisionReason,
    Message,
    MessageEvent,
    MessageState,
)
from ..preferences.history import choice_label
from .base import (
    ReadOnlyAdminMixin,
    change_link,
    changelist_url,
    preview_and_test_send,
    profile_from_query,
)

EDITABLE = (CampaignStatus.DRAFT,)


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = (
            "name",
            "topic",
            "include_segments",
            "exclude_segments",
            "subject",
            "preheader",
            "body",
            "generic_subject",
            "generic_body",
            "send_mode",
            "send_at",
            "priority",
            "utm_campaign",
            "lint_acknowledged",
        )
        widgets = {
            "body": forms.Textarea(attrs={"rows": 16, "cols": 90, "class": "vLargeTextField"}),
            "generic_body": forms.Textarea(attrs={"rows": 8, "cols": 90}),
        }

    def clean(self):
        data = super().clean()
        # Copy that cannot render is a form error now, not a failed send later.
        texts = {name: data.get(name) or "" for name in ("subject", "preheader", "body")}
        texts |= {name: data.get(name) or "" for name in ("generic_subject", "generic_body")}
        for issue in copy_lint(texts=texts):
            if issue.level == "error":
                self.add_error(issue.field, issue.message)
        if data.get("send_mode") in ("at", "local") and not data.get("send_at"):
            self.add_error("send_at", gettext("Say when to send it."))
        return data


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "topic", "status", "send_mode", "plan_at", "audience_count", "results")
    list_filter = ("status", "topic")
    search_fields = ("name", "subject")
    filter_horizontal = ("include_segments", "exclude_segments")
    readonly_fields = (
        "status",
        "plan_at",
        "audience",
        "lint",
        "results",
        "scheduled_at",
        "planned_at",
        "finished_at",
        "cancelled_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "topic", "status")}),
        (_("Audience"), {"fields": ("include_segments", "exclude_segments", "audience")}),
        (
            _("Copy"),
            {"fields": ("subject", "preheader", "body", "generic_subject", "generic_body", "lint")},
        ),
        (
            _("Sending"),
            {"fields": ("send_mode", "send_at", "priority", "utm_campaign", "lint_acknowledged")},
        ),
        (
            _("Progress"),
            {
                "fields": (
                    "plan_at",
                    "scheduled_at",
                    "planned_at",
                    "finished_at",
                    "cancelled_at",
                    "results",
                )
            },
        ),
    )
    change_form_template = "admin/personalization/campaign/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("topic")

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        # Only a draft's copy and audience may change; the rest is history.
        return allowed and (obj is None or obj.status in EDITABLE)

    @admin.display(description=_("audience now"))
    def audience(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return "–"
        count = campaign_audience_count(campaign=campaign)
        return gettext(
            "%(members)s in the segments; %(reachable)s of them can be mailed now (an address, "
            "marketing consent, the topic on, not on a break). Frequency caps, quiet hours and "
            "suppressions are decided when each message goes out."
        ) % {"members": count.members, "reachable": count.reachable}

    @admin.display(description=_("copy check"))
    def lint(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return "–"
        report = campaign_lint(campaign=campaign)
        if not report.issues:
            return gettext("No problems found.")
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li><strong>{}</strong> ({}): {}</li>",
                (
                    (
                        gettext("Error") if issue.level == "error" else gettext("Warning"),
                        issue.field,
                        issue.message,
                    )
                    for issue in report.issues
                ),
            ),
        )

    @admin.display(description=_("messages"))
    def results(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return "–"
        counts = campaign_results(campaign=campaign)
        if not counts:
            return "–"
        labels = dict(MessageState.choices)
        parts = [
            format_html(
                '<a href="{}">{} {}</a>',
                changelist_url(
                    self.admin_site, Message, campaign__id__exact=campaign.pk, state__exact=state
                ),
                counts[state],
                labels.get(state, state),
            )
            for state in MessageState.values
            if state in counts
        ]
        return format_html_join(", ", "{}", ((part,) for part in parts))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:campaign_id>/preview/",
                view(self.preview_view),
                name="personalization_campaign_preview",
            ),
            path(
                "<int:campaign_id>/schedule/",
                view(self.schedule_view),
                name="personalization_campaign_schedule",
            ),
            path(
                "<int:campaign_id>/cancel/",
                view(self.cancel_view),
                name="personalization_campaign_cancel",
            ),
            *super().get_urls(),
        ]

    def _campaign(self, request, campaign_id: int, *, change: bool = False) -> Campaign:
        campaign = get_object_or_404(Campaign.objects.select_related("topic"), pk=campaign_id)
        allowed = (
            super().has_change_permission(request, campaign)
            if change
            else self.has_view_permission(request, campaign)
        )
        if not allowed:
            raise PermissionDenied
        return campaign

    def preview_view(self, request, campaign_id: int):
        """Pick any profile: see exactly what they would get now, or why nothing; test-send."""
        campaign = self._campaign(request, campaign_id)
        query = (request.POST.get("profile") or request.GET.get("profile") or "").strip()
        profile, error = profile_from_query(query)
        preview = None
        if profile is not None:
            preview, error = preview_and_test_send(
                request,
                profile=profile,
                preview=lambda: campaign_preview(campaign=campaign, profile=profile),
                test_send=lambda to: campaign_test_send(campaign=campaign, profile=profile, to=to),
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "campaign": campaign,
            "title": gettext("Preview %(campaign)s") % {"campaign": campaign},
            "query": query,
            "profile": profile,
            "profile_link": change_link(self.admin_site, profile) if profile else "",
            "preview": preview,
            "reason_label": choice_label(DecisionReason, preview.decision.reason)
            if preview
            else "",
            "error": error,
        }
        return TemplateResponse(request, "admin/personalization/campaign/preview.html", context)

    def schedule_view(self, request, campaign_id: int):
        campaign = self._campaign(request, campaign_id, change=True)
        if request.method != "POST":
            return HttpResponseRedirect(
                reverse("admin:personalization_campaign_change", args=[campaign.pk])
            )
        try:
            campaign, _report = campaign_schedule(campaign=campaign)
        except CampaignLintError as err:
            for issue in err.issues:
                messages.error(request, f"{issue.field}: {issue.message}")
            if not err.issues or all(issue.level == "warning" for issue in err.issues):
                messages.warning(
                    request,
                    gettext("Tick “warnings acknowledged” and save to schedule it anyway."),
                )
        except InvalidInput as err:
            messages.error(request, err.message)
        else:
            messages.success(
                request,
                gettext("Scheduled: the audience is taken and the messages are planned at %(at)s.")
                % {"at": timezone.localtime(campaign.plan_at).strftime("%Y-%m-%d %H:%M")},
            )
        return HttpResponseRedirect(
            reverse("admin:personalization_campaign_change", args=[campaign.pk])
        )

    def cancel_view(self, request, campaign_id: int):
        campaign = self._campaign(request, campaign_id)
        if not super().has_change_permission(request, campaign):
            raise PermissionDenied
        if request.method == "POST":
            try:
                cancelled = campaign_cancel(campaign=campaign)
            except InvalidInput as err:
                messages.error(request, err.message)
            else:
                messages.success(
                    request,
                    gettext("Cancelled. %(count)s messages not yet sent will not be.")
                    % {"count": cancelled},
                )
        return HttpResponseRedirect(
            reverse("admin:personalization_campaign_change", args=[campaign.pk])
        )


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "profile_link",
        "source",
        "sent_by",
        "state",
        "reason_text",
        "not_before",
        "sent_at",
    )
    list_filter = ("state", "source", "flow_step__flow", "kind", "reason", "variant")
    search_fields = ("=to_email", "=profile__email", "=dedupe_key", "=esp_message_id")
    list_select_related = ("profile", "campaign", "flow_step__flow")
    raw_id_fields = ("profile", "campaign", "flow_step", "flow_entry")
    show_full_result_count = False

    @admin.display(description=_("customer"), ordering="profile")
    def profile_link(self, message: Message) -> str:
        return change_link(self.admin_site, message.profile)

    @admin.display(description=_("campaign or flow step"))
    def sent_by(self, message: Message) -> str:
        if message.flow_step is not None:  # steps are edited on their flow's page
            return change_link(self.admin_site, message.flow_step.flow, text=message.flow_step)
        return change_link(self.admin_site, message.campaign)

    @admin.display(description=_("reason"), ordering="reason")
    def reason_text(self, message: Message) -> str:
        return choice_label(DecisionReason, message.reason) if message.reason else "–"


@admin.register(MessageEvent)
class MessageEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("occurred_at", "event_type", "esp_message_id", "message", "received_at")
    list_filter = ("event_type",)
    search_fields = ("=esp_message_id", "=event_id")
    raw_id_fields = ("message",)
    show_full_result_count = False
