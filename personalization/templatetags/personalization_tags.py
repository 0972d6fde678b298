"""Template tags for the app's customer-facing pages."""

from __future__ import annotations

from django import template
from django.urls import get_script_prefix

from ..conf import app_settings
from ..preferences.links import PreferenceLinks, preference_links

register = template.Library()


@register.simple_tag
def shop_home_url() -> str:
    """Where "back to the shop" leads: ``SITE_URL`` if set, else the root of this site."""
    return app_settings.SITE_URL or get_script_prefix()


@register.inclusion_tag("personalization/consent_fields.html")
def consent_fields(form, legend: str | None = None) -> dict:
    """The consent boxes of a :class:`~personalization.capture.forms.ConsentForm`: a fieldset
    with, per purpose, the hidden wording version, the checkbox and its label (the wording),
    and its errors. Plain HTML, no JavaScript. ``{% consent_fields form %}``, or
    ``{% consent_fields form legend="…" %}`` for another legend."""
    return {"form": form, "rows": form.rows(), "legend": legend}


@register.simple_tag
def preference_links_for(profile) -> PreferenceLinks:
    """``{% preference_links_for profile as links %}``: ``links.manage`` and
    ``links.unsubscribe``, absolute, for the footer of an email the shop sends itself."""
    return preference_links(profile=profile)
