"""Admin for the consent ledger and the consent wordings: evidence, so it can be read and
searched but never edited. A new wording is published from here; a published one is never
changed or deleted."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from ..capture.wording import (
    consent_wording_for,
    consent_wording_publish,
    language_clean,
    wording_text_clean,
)
from ..consent import record_status, with_confirmation
from ..exceptions import InvalidInput
from ..models import ConsentRecord, ConsentWording
from .base import ReadOnlyAdminMixin, change_link, changelist_url


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
        "wording_text",
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

    @admin.display(description=_("wording shown"))
    def wording_text(self, record: ConsentRecord) -> str:
        wording = consent_wording_for(version=record.wording_version)
        if wording is None:
            return _("– (not a version published here)")
        return format_html(
            "{}<br>{}", wording.text, change_link(self.admin_site, wording, _("see this version"))
        )


class ConsentWordingAddForm(forms.ModelForm):
    language = forms.ChoiceField(label=_("language"))

    class Meta:
        model = ConsentWording
        fields = ("purpose", "language", "text")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [
            (code, f"{name} ({code})") for code, name in settings.LANGUAGES
        ]

    def clean(self):
        data = super().clean()
        for name, clean in (("language", language_clean), ("text", wording_text_clean)):
            if name in data:
                try:
                    data[name] = clean(data[name], field=name)
                except InvalidInput as err:
                    self.add_error(name, err.message)
        return data

    def _post_clean(self):
        # The model is never validated or saved through this form: the admin publishes through
        # consent_wording_publish(), which checks the same and numbers the version.
        pass


@admin.register(ConsentWording)
class ConsentWordingAdmin(admin.ModelAdmin):
    """The texts customers see next to consent boxes. "Add" publishes a new version, which is
    shown from then on; a published version is kept unchanged for ever, as the evidence of what
    the customers who agreed to it were shown."""

    list_display = ("version", "purpose", "language", "number", "published_at", "short_text")
    list_filter = ("purpose", "language")
    search_fields = ("version", "text")
    ordering = ("purpose", "language", "-number")
    date_hierarchy = "published_at"
    add_form = ConsentWordingAddForm
    view_fields = (
        "version",
        "purpose",
        "language",
        "number",
        "published_at",
        "text",
        "records",
        "new_version",
    )

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return self.add_form.Meta.fields if obj is None else self.view_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.view_fields

    def get_changeform_initial_data(self, request):
        # "Publish a new version" starts from the words of the latest one.
        initial = super().get_changeform_initial_data(request)
        latest = (
            ConsentWording.objects.filter(
                purpose=initial.get("purpose", ""), language=initial.get("language", "")
            )
            .latest_first()
            .first()
        )
        if latest is not None:
            initial["text"] = latest.text
        return initial

    def save_model(self, request, obj, form, change):
        before = timezone.now()
        wording = consent_wording_publish(
            purpose=form.cleaned_data["purpose"],
            language=form.cleaned_data["language"],
            text=form.cleaned_data["text"],
        )
        if wording.published_at < before:
            self.message_user(
                request,
                _("%(version)s has this text already: no new version was published.")
                % {"version": wording.version},
                messages.WARNING,
            )
        for field in ConsentWording._meta.concrete_fields:
            setattr(obj, field.attname, getattr(wording, field.attname))
        obj._state.adding = False
        obj._state.db = wording._state.db

    @admin.display(description=_("text"))
    def short_text(self, wording: ConsentWording) -> str:
        return Truncator(wording.text).chars(80)

    @admin.display(description=_("consent records"))
    def records(self, wording: ConsentWording) -> str:
        url = changelist_url(self.admin_site, ConsentRecord, wording_version=wording.version)
        return format_html('<a href="{}">{}</a>', url, _("Records given with this wording"))

    @admin.display(description=_("change the words"))
    def new_version(self, wording: ConsentWording) -> str:
        opts = ConsentWording._meta
        url = reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_add")
        query = urlencode({"purpose": wording.purpose, "language": wording.language})
        return format_html(
            '<a href="{}?{}">{}</a>', url, query, _("Publish a new version of this wording")
        )
