"""Admin for privacy requests: a person's data downloaded as the export gives it, a person
erased after a confirmation page, and the suppression list (read-only)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..exceptions import UnknownProfile
from ..models import Profile, Suppression, SuppressionSource
from ..preferences.tokens import preference_links_revoke_many
from ..privacy.erasure import profile_erase, profile_erasure_preview
from ..privacy.export import profile_export
from .base import ReadOnlyAdminMixin


@admin.action(description=_("Download their data (JSON)"), permissions=["view"])
def download_data(modeladmin, request, queryset):
    """Everything the app holds about one selected profile, as a JSON attachment."""
    # Two ids are enough to tell one from several, however many are selected.
    ids = list(queryset.order_by().values_list("pk", flat=True)[:2])
    if len(ids) != 1:
        modeladmin.message_user(
            request,
            gettext("Select exactly one profile to download their data."),
            messages.ERROR,
        )
        return None
    profile = queryset.model._default_manager.get(pk=ids[0])
    body = json.dumps(profile_export(profile=profile), indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="profile-{profile.pk}-data.json"'
    return response


@admin.action(
    description=_("Revoke their email links (preference centre and unsubscribe)"),
    permissions=["change"],
)
def revoke_links(modeladmin, request, queryset):
    """For emails that reached someone else: every link mailed so far stops working."""
    revoked = preference_links_revoke_many(profile_ids=queryset.values("pk"))
    modeladmin.message_user(
        request,
        ngettext(
            "The email links of %(count)d person no longer work; links in new emails do.",
            "The email links of %(count)d people no longer work; links in new emails do.",
            revoked,
        )
        % {"count": revoked},
        messages.SUCCESS,
    )


# At most this many people are erased by one confirmation: each is a transaction of its own,
# and the page lists what each erasure removes.
ERASE_AT_ONCE = 100


@admin.action(description=_("Erase the selected people (privacy request)…"), permissions=["erase"])
def erase_profiles(modeladmin, request, queryset):
    """Erase at the person's request, after a confirmation page listing what goes and stays."""
    profiles = list(
        Profile.objects.filter(pk__in=queryset.values("pk")).order_by("pk")[: ERASE_AT_ONCE + 1]
    )
    if len(profiles) > ERASE_AT_ONCE:
        modeladmin.message_user(
            request,
            _("Select at most %(max)d profiles to erase at once.") % {"max": ERASE_AT_ONCE},
            messages.ERROR,
        )
        return None
    if request.POST.get("post") == "yes":
        erased = gone = 0
        for profile in profiles:
            try:
                profile_erase(profile=profile, source=SuppressionSource.ADMIN)
                erased += 1
            except UnknownProfile:
                gone += 1  # erased or merged by someone else since the page was shown
        modeladmin.message_user(
            request,
            ngettext("Erased %(count)d person.", "Erased %(count)d people.", erased)
            % {"count": erased},
            messages.SUCCESS,
        )
        if gone:
            modeladmin.message_user(
                request,
                ngettext(
                    "%(count)d profile was no longer there (erased or merged meanwhile).",
                    "%(count)d profiles were no longer there (erased or merged meanwhile).",
                    gone,
                )
                % {"count": gone},
                messages.WARNING,
            )
        return None
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Erase people"),
        "opts": opts,
        "previews": [
            (profile, profile_erasure_preview(profile=profile, source=SuppressionSource.ADMIN))
            for profile in profiles
        ],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "action_name": "erase_profiles",
        "media": modeladmin.media,
    }
    return TemplateResponse(
        request, "admin/personalization/profile/erase_confirmation.html", context
    )


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("email_hash", "reason", "source", "created_at")
    list_filter = ("reason", "source")
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
