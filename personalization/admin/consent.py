"""Admin for the consent ledger: evidence, so it can be read and searched but never edited."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ..consent import record_status, with_confirmation
from ..models import ConsentRecord
from .base import ReadOnlyAdminMixin, change_link


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The consent ledger. Append-only: new records come from the consent functions (checkout,
    sign-up, the preference centre, the profile admin's withdrawal action); records are deleted
    only by erasure of the whole profile, never from here."""

    list_display = (
        "customer",
        "purpose",
        "record_status",
        "source",
        "wording_version",
        "recorded_at",
        "written_at",
        "confirmed_at",
    )
    list_select_related = ("profile",)
    list_filter = ("purpose", "status", "source")
    date_hierarchy = "recorded_at"
    search_fields = ("profile__email", "email")
    search_help_text = _("The customer's email address now, or the one the consent was given for.")
    list_per_page = 50
    show_full_result_count = False
    fields = (
        "profile",
        "purpose",
        "record_status",
        "double_opt_in",
        "source",
        "wording_version",
        "recorded_at",
        "written_at",
        "confirmed_at",
        "email",
        "ip_address",
    )
    raw_id_fields = ("profile",)

    def get_queryset(self, request):
        return with_confirmation(super().get_queryset(request))

    @admin.display(description=_("status"), ordering="status")
    def record_status(self, record: ConsentRecord) -> str:
        return record_status(record)

    @admin.display(description=_("customer"), ordering="profile__email")
    def customer(self, record: ConsentRecord) -> str:
        return change_link(self.admin_site, record.profile)
