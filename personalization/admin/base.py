"""Shared pieces of the app's admin: read-only mirrors and links between change pages."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.urls import reverse
from django.utils.html import format_html


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


class ReadOnlyTabularInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False


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
