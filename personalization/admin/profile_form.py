"""The profile admin's form and inlines: attributes checked as signals check them, and
preferences, choices and the consent ledger as the customer's own services keep them."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from ..consent import (
    record_status,
    with_confirmation,
)
from ..exceptions import InvalidInput
from ..identity import ATTRIBUTE_FIELDS, attributes_clean
from ..models import (
    ChannelPreference,
    ConsentRecord,
    ConsentWording,
    Order,
    PreferenceChange,
    Profile,
    ProfileAlias,
    TopicPreference,
)
from ..preferences.history import preference_change_texts, with_topic_names
from ..preferences.services import preferences_check
from .base import (
    ReadOnlyTabularInline,
    SharedChoicesFormSet,
)

# Saved through preferences_update(), so that a change made in the admin is in the history.
PREFERENCE_FIELDS = ("frequency", "paused_until", "greeting")


class ProfileAdminForm(forms.ModelForm):
    """Checks the attributes with the same rules as signals and ``identify()``, and the
    preferences with those of ``preferences_update()``."""

    class Meta:
        model = Profile
        fields = (*ATTRIBUTE_FIELDS, *PREFERENCE_FIELDS)

    def clean(self):
        cleaned = super().clean()
        given = {name: cleaned[name] for name in ATTRIBUTE_FIELDS if name in cleaned}
        try:
            cleaned.update(attributes_clean(given))
        except InvalidInput as err:
            self.add_error(err.field if err.field in self.fields else None, err.message)
        try:
            preferences_check(**self.preference_changes())
        except InvalidInput as err:
            self.add_error(err.field if err.field in self.fields else None, err.message)
        return cleaned

    def preference_changes(self) -> dict:
        """The preferences the marketer changed, as ``preferences_update()`` arguments."""
        return {
            name: self.cleaned_data[name]
            for name in PREFERENCE_FIELDS
            if name in self.changed_data and name in self.cleaned_data
        }


class ProfileAliasInline(ReadOnlyTabularInline):
    model = ProfileAlias
    fields = ("kind", "value", "created_at")
    readonly_fields = fields
    verbose_name_plural = _("aliases (anonymous ids and former email addresses)")


class _ChoiceInline(admin.TabularInline):
    """A customer's explicit choices, saved through ``preferences_update()`` (so each change is
    in the history). Not deleted: a choice is changed, as the customer would change it."""

    extra = 0
    can_delete = False
    readonly_fields = ("updated_at",)


class TopicChoiceFormSet(SharedChoicesFormSet):
    shared_choices = ("topic",)

    def clean(self):
        super().clean()
        for form in self.forms:
            topic = form.cleaned_data.get("topic") if form.has_changed() else None
            if topic is not None and not topic.is_active:
                form.add_error(
                    "topic", _("This topic is not active: customers cannot choose it now.")
                )


class TopicChoiceInline(_ChoiceInline):
    model = TopicPreference
    formset = TopicChoiceFormSet
    fields = ("topic", "subscribed", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("topic")  # each row's title


class ChannelChoiceInline(_ChoiceInline):
    model = ChannelPreference
    fields = ("channel", "enabled", "updated_at")


class ConsentRecordInline(ReadOnlyTabularInline):
    """The profile's consent ledger, newest first. Evidence: never edited here."""

    model = ConsentRecord
    fields = (
        "recorded_at",
        "purpose",
        "record_status",
        "source",
        "wording",
        "confirmed_at",
        "email",
        "ip_address",
    )
    readonly_fields = fields
    ordering = ("-ordered_at", "-pk")
    verbose_name_plural = _("consent ledger")

    def get_queryset(self, request):
        words = ConsentWording.objects.filter(version=OuterRef("wording_version"))
        return with_confirmation(super().get_queryset(request)).annotate(
            wording_text=Subquery(words.values("text")[:1])
        )

    @admin.display(description=_("wording shown"))
    def wording(self, record: ConsentRecord) -> str:
        # The words themselves, where the version is one published here.
        if not record.wording_text:
            return record.wording_version or "–"
        return format_html("{}<br><small>{}</small>", record.wording_text, record.wording_version)

    @admin.display(description=_("status"))
    def record_status(self, record: ConsentRecord) -> str:
        return record_status(record)


class LatestOnlyFormSet(BaseInlineFormSet):
    """Shows only the first ``limit`` rows of the inline's (ordered) queryset."""

    limit = 10

    def get_queryset(self):
        if not hasattr(self, "_latest"):
            self._latest = super().get_queryset()[: self.limit]
        return self._latest


class RecentOrderInline(ReadOnlyTabularInline):
    model = Order
    formset = LatestOnlyFormSet
    fields = ("external_id", "placed_at", "total", "currency", "shop_total", "status", "source")
    readonly_fields = fields
    ordering = ("-placed_at", "-pk")
    show_change_link = True
    verbose_name_plural = format_lazy(
        _("recent orders (latest {limit})"), limit=LatestOnlyFormSet.limit
    )


class PreferenceChangeInline(ReadOnlyTabularInline):
    """The profile's preference history, newest first (consent changes are in the ledger)."""

    model = PreferenceChange
    formset = LatestOnlyFormSet
    fields = ("changed_at", "what", "before", "after", "source", "wording_version")
    readonly_fields = fields
    ordering = ("-changed_at", "-pk")
    verbose_name_plural = format_lazy(
        _("preference history (latest {limit})"), limit=LatestOnlyFormSet.limit
    )

    def get_queryset(self, request):
        return with_topic_names(super().get_queryset(request))

    @admin.display(description=_("preference"))
    def what(self, change: PreferenceChange) -> str:
        return preference_change_texts(change)[0]

    @admin.display(description=_("before"))
    def before(self, change: PreferenceChange) -> str:
        return preference_change_texts(change)[1]

    @admin.display(description=_("after"))
    def after(self, change: PreferenceChange) -> str:
        return preference_change_texts(change)[2]
