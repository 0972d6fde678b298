"""Gives each visitor a stable anonymous id, so history before login can join their profile."""

from __future__ import annotations

import uuid

from django.utils.functional import SimpleLazyObject

from .conf import app_settings


class AnonymousIdMiddleware:
    """Sets ``request.personalization_anonymous_id``.

    The cookie is only written when something used the id (a cart, a tracked event, consent),
    so visitors who do nothing get no cookie.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        cookie_name = app_settings.ANONYMOUS_ID_COOKIE
        existing = request.COOKIES.get(cookie_name, "")
        issued: list[str] = []

        def issue() -> str:
            if _looks_valid(existing):
                return existing
            new_id = uuid.uuid4().hex
            issued.append(new_id)
            return new_id

        request.personalization_anonymous_id = SimpleLazyObject(issue)
        response = self.get_response(request)
        if issued:
            response.set_cookie(
                cookie_name,
                issued[0],
                max_age=app_settings.ANONYMOUS_ID_COOKIE_AGE,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
            )
        return response


def _looks_valid(value: str) -> bool:
    return 8 <= len(value) <= 64 and value.isalnum()
