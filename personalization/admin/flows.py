"""Flows in the admin: switch each off, retime and rewrite its steps, preview any step for any
customer, and see per step who was sent, held back, skipped (by reason) and left."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..flows.preview import step_preview, step_test_send
from ..flows.stats import flow_stats
from ..messaging.lint import copy_lint, incentive_lint
from ..models import DecisionReason, ExitReason, Flow, FlowEntry, FlowStep, Message
from ..preferences.history import choice_label
from .base import (
    ReadOnlyAdminMixin,
    change_link,
    changelist_url,
    preview_and_test_send,
    profile_from_query,
)

_COPY_FIELDS = ("subject", "preheader", "body", "generic_subject", "generic_body")


class FlowStepForm(forms.ModelForm):
    class Meta:
        model = FlowStep
        fields = (
            "position",
            "delay",
            "local_time",
            "expires_after",
            "condition",
            "incentive",
            *_COPY_FIELDS,
            "utm_campaign",
        )
        widgets = {
            "body": forms.Textarea(attrs={"rows": 10, "cols": 90, "class": "vLargeTextField"}),
            "generic_body": forms.Textarea(attrs={"rows": 5, "cols": 90}),
        }

    def clean_delay(self):
        delay = self.cleaned_data["delay"]
        if delay is not None and delay < dt.timedelta(0):
            raise forms.ValidationError(gettext("A delay cannot be negative."))
        return delay

    def clean_expires_after(self):
        value = self.cleaned_data["expires_after"]
        if value is not None and value <= dt.timedelta(0):
            raise forms.ValidationError(gettext("Give a message some time to be sent."))
        return value

    def clean(self):
        data = super().clean()
        # Copy that cannot render, asserts an inference or promises a code the shop may not
        # give is a form error now, not a failed or false message later.
        texts = {name: data.get(name) or "" for name in _COPY_FIELDS}
        issues = copy_lint(texts=texts) + incentive_lint(
            texts=texts, asks=bool(data.get("incentive"))
        )
        for issue in issues:
            if issue.level == "error" and issue.field in self.fields:
                self.add_error(issue.field, issue.message)
        return data


class FlowStepInline(admin.StackedInline):
    model = FlowStep
    form = FlowStepForm
    extra = 0
    ordering = ("position",)


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "enabled", "priority", "limit", "steps_count")
    list_editable = ("enabled",)
    list_filter = ("enabled",)
    readonly_fields = ("kind", "results")
    fields = (
        "name",
        "kind",
        "enabled",
        "topic",
        "priority",
        "yields",
        "limit_messages",
        "limit_days",
    )
    inlines = (FlowStepInline,)
    change_form_template = "admin/personalization/flow/change_form.html"

    def has_add_permission(self, request):
        return False  # each trigger has its flow, created by migrate

    def has_delete_permission(self, request, obj=None):
        return False  # switch a flow off instead: its history stays

    def get_fields(self, request, obj=None):
        return (*self.fields, "results") if obj is not None else self.fields

    @admin.display(description=_("at most"))
    def limit(self, flow: Flow) -> str:
        return gettext("%(messages)s in %(days)s days") % {
            "messages": flow.limit_messages,
            "days": flow.limit_days,
        }

    @admin.display(description=_("steps"))
    def steps_count(self, flow: Flow) -> int:
        return flow.steps.count()

    @admin.display(description=_("results"))
    def results(self, flow: Flow) -> str:
        stats = flow_stats(flow=flow)
        rows = []
        for step in stats.steps:
            skipped = ", ".join(
                f"{n} {choice_label(DecisionReason, reason)}"
                for reason, n in step.skipped.most_common()
            )
            exited = ", ".join(
                f"{n} {choice_label(ExitReason, reason)}"
                for reason, n in step.exited_before.most_common()
            )
            rows.append(
                (
                    step.position,
                    step.planned,
                    format_html(
                        '<a href="{}">{}</a>',
                        changelist_url(
                            self.admin_site,
                            Message,
                            flow_step__id__exact=step.step_id,
                            state__exact="sent",
                        ),
                        step.sent,
                    ),
                    step.waiting,
                    skipped or "–",
                    step.failed,
                    exited or "–",
                )
            )
        summary = gettext(
            "%(entered)s entered: %(active)s in the flow, %(completed)s completed, "
            "%(exited)s left early."
        ) % {
            "entered": stats.entered,
            "active": stats.active,
            "completed": stats.completed,
            "exited": stats.exited,
        }
        header = (
            gettext("step"),
            gettext("reached"),
            gettext("sent"),
            gettext("waiting"),
            gettext("skipped"),
            gettext("failed"),
            gettext("left before it"),
        )
        return format_html(
            "<p>{}</p><table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>",
            summary,
            format_html_join("", "<th>{}</th>", ((h,) for h in header)),
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                "<td>{}</td></tr>",
                rows,
            ),
        )

    def save_formset(self, request, form, formset, change):
        """Save the steps so that swapping two positions works: the steps that move are put
        out of the way first (the position is unique per flow, checked row by row)."""
        if formset.model is not FlowStep:
            return super().save_formset(request, form, formset, change)
        with transaction.atomic():
            steps = formset.save(commit=False)
            for step in formset.deleted_objects:
                step.delete()
            moved = [step.pk for step in steps if step.pk is not None]
            if moved:
                FlowStep.objects.filter(pk__in=moved).update(position=F("position") + 10_000)
            for step in steps:
                step.save()
            formset.save_m2m()

    def get_urls(self):
        return [
            path(
                "<int:flow_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="personalization_flow_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request, flow_id: int):
        """Pick a step and any profile: what they would get now, or why nothing; test-send."""
        flow = get_object_or_404(Flow.objects.select_related("topic"), pk=flow_id)
        if not self.has_view_permission(request, flow):
            raise PermissionDenied
        steps = list(flow.steps.select_related("flow__topic").order_by("position"))
        source = request.POST if request.method == "POST" else request.GET
        try:
            position = int(source.get("step") or (steps[0].position if steps else 0))
        except ValueError:
            position = 0
        step = next((s for s in steps if s.position == position), None)
        query = (source.get("profile") or "").strip()
        profile, error = profile_from_query(query)
        preview = None
        if step is None and steps:
            error = gettext("This flow has no step %(step)s.") % {"step": source.get("step")}
        elif profile is not None and step is not None:
            preview, error = preview_and_test_send(
                request,
                profile=profile,
                preview=lambda: step_preview(step=step, profile=profile),
                test_send=lambda to: step_test_send(step=step, profile=profile, to=to),
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "flow": flow,
            "steps": steps,
            "step": step,
            "title": gettext("Preview %(flow)s") % {"flow": flow},
            "query": query,
            "profile": profile,
            "profile_link": change_link(self.admin_site, profile) if profile else "",
            "preview": preview,
            "reason_label": choice_label(DecisionReason, preview.decision.reason)
            if preview
            else "",
            "error": error,
            "change_url": reverse("admin:personalization_flow_change", args=[flow.pk]),
        }
        return TemplateResponse(request, "admin/personalization/flow/preview.html", context)


@admin.register(FlowEntry)
class FlowEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "entered_at",
        "profile",
        "flow",
        "state",
        "next_position",
        "exit_reason",
        "ended_at",
    )
    list_filter = ("flow", "state", "exit_reason")
    search_fields = ("=profile__email", "=trigger_key")
    list_select_related = ("profile", "flow")
    raw_id_fields = ("profile", "cart", "order", "product")
    show_full_result_count = False
