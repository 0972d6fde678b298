"""Pages customers reach from emails. Thin: parse, call a domain function, answer."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from .adapter import ip_address_for
from .confirmation import confirmation_read, confirmation_request_accept
from .consent import GrantStatus
from .exceptions import InvalidInput
from .models import Profile, Purpose


def page_language(request, profile: Profile) -> str:
    """The language of a page a customer reached from our email: the one the email was in.

    That is the profile's locale (narrowed to a language the site offers, ``sv-SE`` → ``sv``),
    unless the visitor chose a language themselves (Django's ``set_language`` cookie), or the
    site offers none that fits: then the language the request was already served in.
    """
    if settings.LANGUAGE_COOKIE_NAME in request.COOKIES or not profile.locale:
        return translation.get_language()
    try:
        return translation.get_supported_language_variant(profile.locale)
    except LookupError:
        return translation.get_language()


@require_http_methods(["GET", "POST"])
def consent_confirm_view(request, token: str):
    """GET shows a button; only the POST confirms, so mail scanners that follow links don't."""
    try:
        pending = confirmation_read(token)
    except InvalidInput as err:
        return _invalid(request, err)
    with translation.override(page_language(request, pending.profile)):
        return _consent_confirm(request, pending)


def _consent_confirm(request, pending):
    purpose = Purpose(pending.purpose).label
    try:
        if request.method == "POST":
            confirmed = confirmation_request_accept(
                request=pending, ip_address=ip_address_for(request)
            )
            context = {"done": True} if confirmed else {"already": True}
            return render(
                request, "personalization/consent_confirm.html", {**context, "purpose": purpose}
            )
    except InvalidInput as err:
        return _invalid(request, err)
    if pending.status == GrantStatus.CONFIRMED:
        return render(
            request, "personalization/consent_confirm.html", {"already": True, "purpose": purpose}
        )
    return render(
        request,
        "personalization/consent_confirm.html",
        {"purpose": purpose, "email": pending.profile.email},
    )


def _invalid(request, err: InvalidInput):
    return render(
        request,
        "personalization/consent_confirm.html",
        {"error": err.message, "title": _("We could not confirm this")},
        status=400,
    )
