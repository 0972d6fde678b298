"""Admin for the consent ledger: evidence, so it can be read and searched but never edited."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from ..models import ConsentRecord, ConsentState, ConsentStatus
from .base import ReadOnlyAdminMixin, change_link


def with_confirmation(queryset: QuerySet[ConsentRecord]) -> QuerySet[ConsentRecord]:
    """Annotate each record with whether a confirmation of the same purpose came after it."""
    later = ConsentRecord.objects.filter(
        profile=OuterRef("profile"), purpose=OuterRef("purpose"), confirmed_at__isnull=False
    ).filter(
        Q(ordered_at__gt=OuterRef("ordered_at"))
        | Q(ordered_at=OuterRef("ordered_at"), pk__gt=OuterRef("pk"))
    )
    return queryset.annotate(confirmed_later=Exists(later))


def record_status(record: ConsentRecord) -> str:
    """What this one record is: a grant awaiting confirmation is not shown as granted."""
    if record.status == ConsentStatus.WITHDRAWN:
        return ConsentStatus.WITHDRAWN.label
    if record.confirmed_at is not None:
        return _("confirmation")
    if record.double_opt_in and not getattr(record, "confirmed_later", False):
        return ConsentState.PENDING.label
    if record.double_opt_in:
        return _("granted, confirmed")
    return ConsentStatus.GRANTED.label


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
