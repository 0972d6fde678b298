"""Admin for the suppression list: read-only, as it holds nothing a person could read."""

from __future__ import annotations

from django.contrib import admin

from ..models import Suppression
from .base import ReadOnlyAdminMixin


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("email_hash", "reason", "source", "created_at")
    list_filter = ("reason", "source")
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
