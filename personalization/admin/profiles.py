"""Admin for customer profiles, their preferences, and the topics marketers define."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db import transaction
from django.db.models import Case, Count, F, Func, Q, Subquery, When
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
)
from ..identity import ATTRIBUTE_FIELDS, profiles_search
from ..models import (
    Cart,
    ChannelPreference,
    ConsentSource,
    ConsentState,
    Event,
    Message,
    Order,
    PreferenceSource,
    Profile,
    Purpose,
    Topic,
    TopicPreference,
    Trait,
)
from ..preferences.services import preferences_update
from .base import (
    LargeTableAdminMixin,
    PresentValuesFilter,
    changelist_url,
)
from .privacy import download_data, erase_profiles, revoke_links
from .profile_form import (
    PREFERENCE_FIELDS,
    ChannelChoiceInline,
    ConsentRecordInline,
    PreferenceChangeInline,
    ProfileAdminForm,
    ProfileAliasInline,
    RecentOrderInline,
    TopicChoiceInline,
)
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
            for model, label in (
                (Order, _("orders")),
                (Cart, _("carts")),
                (Event, _("events")),
                (Message, _("messages (every one planned, and what became of it)")),
            )
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
