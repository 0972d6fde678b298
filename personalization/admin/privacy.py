"""Admin actions for privacy requests: a person's data, downloaded as the export gives it."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.http import HttpResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..privacy.export import profile_export


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
