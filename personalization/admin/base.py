"""Shared pieces of the app's admin: read-only mirrors and links between change pages."""

from __future__ import annotations

from functools import cached_property

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection, models
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext

from ..counting import count_at_most, row_count_estimate


class ReadOnlyAdminMixin:
    """View only: no add, change or delete from the admin, for a model admin or an inline.

    Used for data the app writes itself from the shop's signals (orders, carts, events) and for
    evidence (the consent ledger). Editing it here would bypass the domain functions that keep
    stats, ledgers and idempotency right; the pages still show every field.
    """

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PresentValuesFilter(admin.AllValuesFieldListFilter):
    """Django's filter by the values a column holds, without its ``SELECT DISTINCT`` over the
    whole table (seconds with a million profiles). The column needs an index.

    Blank is offered as the admin's empty value, as for a missing one.
    """

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = values_present(model, field.name)

    def choices(self, changelist):
        for choice in super().choices(changelist):
            if choice["display"] == "":
                choice["display"] = self.empty_value_display
            yield choice


def values_present(model: type[models.Model], field_name: str) -> list:
    """The distinct values of an indexed column, sorted.

    On PostgreSQL they come from the index, one probe per distinct value (a "loose index
    scan"): a few dozen probes where ``DISTINCT`` would read every row.
    """
    if connection.vendor != "postgresql":
        rows = model._default_manager.order_by(field_name).distinct()
        return list(rows.values_list(field_name, flat=True))
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(model._meta.get_field(field_name).column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE present (value) AS (
                (SELECT {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY 1 LIMIT 1)
                UNION ALL
                SELECT (
                    SELECT {column} FROM {table} WHERE {column} > present.value
                    ORDER BY 1 LIMIT 1
                )
                FROM present WHERE present.value IS NOT NULL
            )
            SELECT value FROM present WHERE value IS NOT NULL"""
        )
        return [row[0] for row in cursor.fetchall()]


class SharedChoicesFormSet(BaseInlineFormSet):
    """An inline formset whose forms share the choices of the foreign keys named in
    ``shared_choices``: read once for the formset, where every form (and the empty one the
    admin's "add another" copies) would read them again, one query per row."""

    shared_choices: tuple[str, ...] = ()

    def add_fields(self, form, index):
        super().add_fields(form, index)
        cache = self.__dict__.setdefault("_shared_choices", {})
        for name in self.shared_choices:
            field = form.fields.get(name)
            if field is None:
                continue
            if name not in cache:
                cache[name] = list(field.choices)
            field.choices = cache[name]
            # The admin wraps the select (the "+" and edit links): the inner widget renders.
            inner = getattr(field.widget, "widget", None)
            if inner is not None:
                inner.choices = cache[name]


class LargeTablePaginator(Paginator):
    """A changelist paginator that never counts a big table row by row.

    Unfiltered, the count is PostgreSQL's estimate of the table's rows when that is above
    ``exact_up_to`` ("about 1,000,000 profiles"); filtered, rows are counted up to
    ``exact_up_to`` and beyond that the list says "more than 10,000" and offers that many
    rows' pages (narrow it down with a filter or a search). Below it, and on databases
    without an estimate (SQLite), counts are exact. ``count_is`` says which:
    ``"exact"``, ``"estimate"`` or ``"more_than"`` (the admin's pagination template shows it).
    """

    exact_up_to = 10_000

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        self.count_is = "exact"
        if not isinstance(rows, models.QuerySet):
            return super().count
        if not rows.query.where and not rows.query.distinct:
            estimate = row_count_estimate(rows.model, using=rows.db)
            if estimate is not None and estimate > self.exact_up_to:
                self.count_is = "estimate"
                return estimate
        counted = count_at_most(rows, self.exact_up_to)
        if counted > self.exact_up_to:
            self.count_is = "more_than"
            return self.exact_up_to
        return counted


class LargeTableAdminMixin:
    """For a model admin listing a table that grows with the shop (profiles, memberships):
    no full count beside the search, and the :class:`LargeTablePaginator`."""

    paginator = LargeTablePaginator
    show_full_result_count = False


class ReadOnlyTabularInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False


def profile_from_query(query: str):
    """(profile, error) for what a staff member typed: an email address or a profile id."""
    from ..models import Profile

    if not query:
        return None, None
    lookup = Q(email=query.lower())
    # ASCII digits only ("²".isdigit() is true, int("²") fails), and within a bigint.
    if query.isascii() and query.isdigit() and len(query) <= 18:
        lookup |= Q(pk=int(query))
    profile = Profile.objects.filter(lookup).first()
    if profile is None:
        return None, gettext("No profile with that email address or id.")
    return profile, None


def change_link(site: admin.AdminSite, obj: models.Model | None, text=None) -> str:
    """An HTML link to ``obj``'s change page in ``site`` (``text`` defaults to str(obj))."""
    if obj is None:
        return "–"
    opts = obj._meta
    url = reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj if text is None else text)


def changelist_url(site: admin.AdminSite, model: type[models.Model], **params) -> str:
    """The URL of ``model``'s changelist in ``site``, filtered by ``params``."""
    opts = model._meta
    url = reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_changelist")
    if params:
        from urllib.parse import urlencode

        url = f"{url}?{urlencode(params)}"
    return url


def preview_and_test_send(request, *, profile, preview, test_send) -> tuple[object, str]:
    """The preview page's work for one profile: send the staff member a test first when the
    form asked for one (``test_send(to=…)``), then ``preview()``. Returns (preview, error):
    a missing address or broken copy is an error to show, not a 500."""
    from django.contrib import messages
    from django.template import TemplateSyntaxError
    from django.utils.translation import gettext

    from ..exceptions import InvalidInput

    try:
        if request.method == "POST" and "_test_send" in request.POST:
            to = request.user.email or ""
            if not to:
                raise InvalidInput(
                    gettext("Your admin user has no email address to send the test to."),
                    field="to",
                )
            test_send(to=to)
            messages.success(
                request,
                gettext("A test of %(profile)s's version went to %(to)s.")
                % {"profile": profile, "to": to},
            )
        return preview(), ""
    except (InvalidInput, TemplateSyntaxError) as err:
        return None, str(err)
