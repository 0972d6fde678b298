"""The preference-centre and unsubscribe addresses for a profile, as every email carries them.

Absolute, from ``PERSONALIZATION["SITE_URL"]``: an email is read outside the site. The same
signed token (:mod:`.tokens`) is in both; the unsubscribe address is also the RFC 8058
one-click target of the ``List-Unsubscribe`` headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from ..conf import app_settings
from ..exceptions import ConfigurationError
from ..models import Profile
from .tokens import preference_token


@dataclass(frozen=True)
class PreferenceLinks:
    manage: str  # the preference centre (changes allowed while the token is young)
    unsubscribe: str  # one click (or one POST from the mail client) unsubscribes

    @property
    def headers(self) -> dict[str, str]:
        """The RFC 8058 one-click unsubscribe headers for a marketing email."""
        return {
            "List-Unsubscribe": f"<{self.unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }


def preference_links(*, profile: Profile, version_read: bool = False) -> PreferenceLinks:
    """``profile``'s preference and unsubscribe addresses, with a fresh token.

    Raises ``ConfigurationError`` when ``SITE_URL`` is not set: an email with a relative link
    would lead nowhere. ``version_read``: see :func:`~.tokens.preference_token`.
    """
    if not app_settings.SITE_URL:
        raise ConfigurationError(
            "PERSONALIZATION['SITE_URL'] is needed for the preference links in emails."
        )
    token = preference_token(profile=profile, version_read=version_read)
    site = app_settings.SITE_URL.rstrip("/")
    return PreferenceLinks(
        manage=site + reverse("personalization:preferences", kwargs={"token": token}),
        unsubscribe=site + reverse("personalization:unsubscribe", kwargs={"token": token}),
    )
