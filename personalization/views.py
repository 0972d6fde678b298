"""Pages customers reach from emails. Thin: parse, call a domain function, answer."""

from __future__ import annotations

from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from .adapter import ip_address_for
from .confirmation import confirmation_read, confirmation_request_accept
from .consent import GrantStatus
from .exceptions import InvalidInput
from .models import Purpose


@require_http_methods(["GET", "POST"])
def consent_confirm_view(request, token: str):
    """GET shows a button; only the POST confirms, so mail scanners that follow links don't."""
    try:
        pending = confirmation_read(token)
        purpose = Purpose(pending.purpose).label
        if request.method == "POST":
            confirmed = confirmation_request_accept(
                request=pending, ip_address=ip_address_for(request)
            )
            context = {"done": True} if confirmed else {"already": True}
            return render(
                request, "personalization/consent_confirm.html", {**context, "purpose": purpose}
            )
        if pending.status == GrantStatus.CONFIRMED:
            return render(
                request,
                "personalization/consent_confirm.html",
                {"already": True, "purpose": purpose},
            )
    except InvalidInput as err:
        return render(
            request,
            "personalization/consent_confirm.html",
            {"error": err.message, "title": _("We could not confirm this")},
            status=400,
        )
    return render(
        request,
        "personalization/consent_confirm.html",
        {"purpose": purpose, "email": pending.profile.email},
    )
