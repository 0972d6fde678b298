"""The adapter: the one place a shop customises how the app sees it.

Subclass :class:`DefaultAdapter`, override what differs in your shop, and name your class in
``PERSONALIZATION["ADAPTER"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .conf import app_settings
from .identity import Identity
from .validation import request_ip_address

if TYPE_CHECKING:
    from django.http import HttpRequest


class DefaultAdapter:
    def identity_for_request(self, request: HttpRequest) -> Identity:
        """Who is behind this request: the logged-in user and the anonymous-id cookie."""
        user = getattr(request, "user", None)
        if user is not None and not user.is_authenticated:
            user = None
        return Identity(
            user=user,
            email=getattr(user, "email", "") or "",
            anonymous_id=getattr(request, "personalization_anonymous_id", "") or "",
        )

    def ip_address_for_request(self, request: HttpRequest) -> str | None:
        """The client's address, kept with consent records as evidence.

        Behind a proxy, override this to read the header your proxy sets.
        """
        return request.META.get("REMOTE_ADDR") or None


def get_adapter() -> DefaultAdapter:
    return app_settings.ADAPTER()


def ip_address_for(request: HttpRequest | None) -> str | None:
    """The client's IP address (kept as consent evidence), or None without a request.

    None, with a logged warning, when what the adapter read is not an IP address: a proxy's
    misconfiguration must not refuse the shopper's signup or checkout.
    """
    if request is None:
        return None
    return request_ip_address(get_adapter().ip_address_for_request(request))
