"""Admin for customer profiles, their preferences, and the topics marketers define."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db import transaction
from django.db.models import Case, Count, F, Func, OuterRef, Q, Subquery, When
from django.forms.models import BaseInlineFormSet
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..changes import Change, changes_collected, profile_changed_note
from ..consent import (
    consent_in_states,
    consent_record,
    consent_states,
    consent_states_many,
    profiles_in_consent_state,
    record_status,
    with_confirmation,
)
from ..exceptions import InvalidInput
from ..identity import ATTRIBUTE_FIELDS, attributes_clean, profiles_search
from ..models import (
    Cart,
    ChannelPreference,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    ConsentWording,
    Event,
    Order,
    PreferenceChange,
    PreferenceSource,
    Profile,
    ProfileAlias,
    Purpose,
    Topic,
    TopicPreference,
    Trait,
)
from ..preferences.services import preferences_check, preferences_update
from .base import (
    LargeTableAdminMixin,
    PresentValuesFilter,
    ReadOnlyTabularInline,
    SharedChoicesFormSet,
    changelist_url,
)
from .privacy import download_data, erase_profiles, revoke_links
from .segments import SegmentMembershipInline, profile_segments_explained
from .traits import TraitInline, TraitRemovalInline, traits_formset_save

# --- Consent, derived from the ledger ---------------------------------------------------------

# Short column headers; a purpose added later falls back to its full label.
_CONSENT_COLUMN_LABELS = {
    Purpose.EMAIL_MARKETING: _("email consent"),
    Purpose.PERSONALIZATION: _("personalisation consent"),
    Purpose.AD_AUDIENCES: _("ad audience consent"),
}


def consent_attr(purpose: str) -> str:
    """Name of the annotation ``profiles_with_consent`` adds for ``purpose``."""
    return f"consent_{purpose}"


def _consent_label(purpose: str):
    return _CONSENT_COLUMN_LABELS.get(purpose, Purpose(purpose).label)


def _consent_column(purpose: str):
    attr = consent_attr(purpose)

    def column(profile: Profile) -> str:
        value = getattr(profile, attr, None)
        return ConsentState(value).label if value else "–"

    column.__name__ = attr
    # Not sortable: sorting a million profiles by a derived state would derive every one.
    return admin.display(description=_consent_label(purpose))(column)


class ConsentColumnsChangeList(ChangeList):
    """Derives the consent columns for the page's profiles only, in one query: annotated on
    the list's own query, PostgreSQL planned them as scans of the whole ledger (0.7 s at 1M
    profiles for a page of 50)."""

    def get_results(self, request):
        super().get_results(request)
        page = list(self.result_list)  # evaluated once; the template reuses these instances
        states = consent_states_many(profile_ids=[profile.pk for profile in page])
        for profile in page:
            for purpose, state in states.get(profile.pk, {}).items():
                setattr(profile, consent_attr(purpose), state)


class ConsentStateFilter(admin.SimpleListFilter):
    """Filter by the current consent state for one purpose (subclassed per purpose below)."""

    purpose: str = ""

    def lookups(self, request, model_admin):
        return ConsentState.choices

    def queryset(self, request, queryset):
        if self.value() in ConsentState.values:
            # Semi-joins: filtering on the list's state column would derive every profile's.
            return profiles_in_consent_state(queryset, self.purpose, self.value())
        return queryset


def _consent_filter(purpose: str) -> type[ConsentStateFilter]:
    return type(
        f"ConsentStateFilter_{purpose}",
        (ConsentStateFilter,),
        {"purpose": purpose, "title": _consent_label(purpose), "parameter_name": f"c_{purpose}"},
    )


CONSENT_COLUMNS = [_consent_column(purpose) for purpose in Purpose.values]
CONSENT_FILTERS = [_consent_filter(purpose) for purpose in Purpose.values]


def _withdraw_action(purpose: str):
    """An action recording a withdrawal (source: admin), e.g. when a customer asks by phone."""

    def action(modeladmin, request, queryset):
        count = 0
        with transaction.atomic():
            already = consent_in_states(purpose, [ConsentState.WITHDRAWN])
            for profile in queryset.exclude(already):
                consent_record(
                    profile=profile, purpose=purpose, granted=False, source=ConsentSource.ADMIN
                )
                count += 1
        modeladmin.message_user(
            request,
            ngettext(
                "Recorded the withdrawal for %(count)d profile.",
                "Recorded the withdrawal for %(count)d profiles.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    action.__name__ = f"withdraw_{purpose}"
    return admin.action(
        description=format_lazy(
            _("Record withdrawal of consent: {purpose}"), purpose=Purpose(purpose).label
        ),
        permissions=["change"],
    )(action)


# --- Profile list filters -----------------------------------------------------------------------


class _YesNoFilter(admin.SimpleListFilter):
    """A filter with two answers; each subclass says which profiles they mean."""

    answers: tuple  # the labels of "yes" and "no"

    def lookups(self, request, model_admin):
        return [("yes", self.answers[0]), ("no", self.answers[1])]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return self.yes(queryset)
        if self.value() == "no":
            return self.no(queryset)
        return queryset


class HasOrdersFilter(_YesNoFilter):
    title = _("orders")
    parameter_name = "has_orders"
    answers = (_("has orders"), _("no orders"))

    def yes(self, queryset):
        return queryset.customers()

    def no(self, queryset):
        return queryset.filter(orders_count=0)


class PausedFilter(_YesNoFilter):
    title = _("paused")
    parameter_name = "paused"
    answers = (_("paused now"), _("not paused"))

    def yes(self, queryset):
        return queryset.filter(paused_until__gt=timezone.now())

    def no(self, queryset):
        return queryset.filter(Q(paused_until__isnull=True) | Q(paused_until__lte=timezone.now()))


class HasUserFilter(_YesNoFilter):
    title = _("shop user")
    parameter_name = "has_user"
    answers = (_("has a shop account"), _("no shop account"))

    def yes(self, queryset):
        return queryset.filter(user__isnull=False)

    def no(self, queryset):
        return queryset.filter(user__isnull=True)


# --- Profile form and inlines -------------------------------------------------------------------


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
    fields = (
        "changed_at",
        "field",
        "subject",
        "old_value",
        "new_value",
        "source",
        "wording_version",
    )
    readonly_fields = fields
    ordering = ("-changed_at", "-pk")
    verbose_name_plural = format_lazy(
        _("preference history (latest {limit})"), limit=LatestOnlyFormSet.limit
    )


# --- Profile ----------------------------------------------------------------------------------


@admin.register(Profile)
class ProfileAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    form = ProfileAdminForm
    list_display = (
        "identifier",
        "name",
        "orders_count",
        "total_spent",
        "last_order_at",
        "country",
        "locale",
        *CONSENT_COLUMNS,
        "created_at",
    )
    list_display_links = ("identifier",)
    list_filter = (
        *CONSENT_FILTERS,
        HasOrdersFilter,
        ("country", PresentValuesFilter),
        ("locale", PresentValuesFilter),
        "frequency",
        "greeting",
        PausedFilter,
        HasUserFilter,
    )
    search_fields = ("email",)  # the search itself is profiles_search(), indexed
    search_help_text = _(
        "A whole email address (current or former), an anonymous visitor id, or the start "
        "of an email address or a first or last name."
    )
    ordering = ("-pk",)
    list_per_page = 50
    actions = [
        download_data,
        *(_withdraw_action(purpose) for purpose in Purpose.values),
        revoke_links,
        erase_profiles,
    ]

    def get_search_results(self, request, queryset, search_term):
        return queryset.filter(profiles_search(search_term)), False

    # The email address and the shop user are identifiers: they change through identity
    # resolution (identify(), the signals), which keeps a former address as an alias and merges
    # duplicate profiles. Stats are denormalised from the orders and kept by the app.
    readonly_fields = (
        "email",
        "user",
        "consent_overview",
        "orders_count",
        "total_spent",
        "average_order_value",
        "first_order_at",
        "last_order_at",
        "activity",
        "segments_explained",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (_("Identity"), {"fields": ("email", "user", "first_name", "last_name")}),
        (
            _("Attributes"),
            {"fields": ("locale", "timezone", "country", "birthday")},
        ),
        (_("Consent"), {"fields": ("consent_overview",)}),
        (
            _("Order statistics"),
            {
                "fields": (
                    "orders_count",
                    "total_spent",
                    "average_order_value",
                    "first_order_at",
                    "last_order_at",
                    "activity",
                )
            },
        ),
        (_("Preferences"), {"fields": ("frequency", "paused_until", "greeting")}),
        (_("Segments"), {"fields": ("segments_explained",)}),
        (_("Record"), {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = [
        TraitInline,
        TraitRemovalInline,
        ConsentRecordInline,
        TopicChoiceInline,
        ChannelChoiceInline,
        PreferenceChangeInline,
        RecentOrderInline,
        SegmentMembershipInline,
        ProfileAliasInline,
    ]

    def get_changelist(self, request, **kwargs):
        return ConsentColumnsChangeList

    # Profiles come into being through the shop's signals, track() and identify(). Erasure is
    # a privacy request, not a delete: deleting here would also delete the consent ledger.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_erase_permission(self, request) -> bool:
        """Erasing is deleting a person: it takes the model's delete permission."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.delete_{opts.model_name}")

    @admin.display(description=_("email"), ordering="email")
    def identifier(self, profile: Profile) -> str:
        return str(profile)

    @admin.display(description=_("name"), ordering="last_name")
    def name(self, profile: Profile) -> str:
        return f"{profile.first_name} {profile.last_name}".strip()

    @admin.display(description=_("current consent"))
    def consent_overview(self, profile: Profile) -> str:
        if profile.pk is None:
            return "–"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td></tr>",
            (
                (Purpose(purpose).label, ConsentState(state).label)
                for purpose, state in consent_states(profile=profile).items()
            ),
        )
        note = _("Derived from the newest records in the consent ledger below.")
        return format_html('<table class="pzn-consent">{}</table><p>{}</p>', rows, note)

    @admin.display(description=_("activity"))
    def activity(self, profile: Profile) -> str:
        if profile.pk is None:
            return "–"
        links = [
            (changelist_url(self.admin_site, model, profile__id__exact=profile.pk), label)
            for model, label in ((Order, _("orders")), (Cart, _("carts")), (Event, _("events")))
        ]
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    @admin.display(description=_("why in these segments"))
    def segments_explained(self, profile: Profile) -> str:
        if profile.pk is None:
            return "–"
        return profile_segments_explained(profile=profile)

    def changeform_view(self, request, *args, **kwargs):
        # The form and its inlines are one change: announced together.
        with changes_collected():
            return super().changeform_view(request, *args, **kwargs)

    def save_model(self, request, obj, form, change):
        preferences = form.preference_changes()
        if preferences and change:
            # The service writes them, and their history, from the stored values.
            stored = Profile.objects.filter(pk=obj.pk).values(*PREFERENCE_FIELDS).get()
            for name, value in stored.items():
                setattr(obj, name, value)
        super().save_model(request, obj, form, change)
        changed = set(form.changed_data)
        if changed & set(ATTRIBUTE_FIELDS):
            profile_changed_note(obj.pk, Change.PROFILE)
        if preferences:
            preferences_update(
                profile=obj, source=PreferenceSource.ADMIN, wording_version="", **preferences
            )

    def save_formset(self, request, form, formset, change):
        if formset.model is Trait:
            return traits_formset_save(request, form.instance, formset)
        if formset.model not in (TopicPreference, ChannelPreference):
            return super().save_formset(request, form, formset, change)
        # The rows are not saved as they are: the service records the choices, as the
        # customer's own, made now, each in the history.
        chosen = formset.save(commit=False)
        if formset.model is TopicPreference:
            choices = {"topics": {choice.topic.slug: choice.subscribed for choice in chosen}}
        else:
            choices = {"channels": {choice.channel: choice.enabled for choice in chosen}}
        if chosen:
            preferences_update(
                profile=form.instance,
                source=PreferenceSource.ADMIN,
                wording_version="",
                **choices,
            )
        return None


# --- Topic ------------------------------------------------------------------------------------


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "is_active",
        "subscribed_by_default",
        "position",
        "opted_in",
        "opted_out",
        "subscribers",
    )
    list_editable = ("position",)
    list_filter = ("is_active", "subscribed_by_default")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    fields = ("name", "slug", "description", "is_active", "subscribed_by_default", "position")

    def get_queryset(self, request):
        # One query for the page: choices counted per topic, identified profiles counted once.
        identified = (
            Profile.objects.identified()
            .order_by()
            .annotate(n=Func(F("pk"), function="COUNT"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                opted_in_count=Count("choices", filter=Q(choices__subscribed=True)),
                opted_out_count=Count("choices", filter=Q(choices__subscribed=False)),
                identified_count=Subquery(identified),
            )
            .annotate(
                subscriber_count=Case(
                    When(
                        subscribed_by_default=True,
                        then=F("identified_count") - F("opted_out_count"),
                    ),
                    default=F("opted_in_count"),
                )
            )
        )

    @admin.display(description=_("chose it"), ordering="opted_in_count")
    def opted_in(self, topic: Topic) -> int:
        return topic.opted_in_count

    @admin.display(description=_("opted out"), ordering="opted_out_count")
    def opted_out(self, topic: Topic) -> int:
        return topic.opted_out_count

    @admin.display(
        description=_("subscribers (chose it, or by default)"), ordering="subscriber_count"
    )
    def subscribers(self, topic: Topic) -> int:
        return max(topic.subscriber_count, 0)
