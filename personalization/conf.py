"""The app's settings: one ``PERSONALIZATION`` dict in the project's settings.

Read them through ``from personalization.conf import app_settings`` and
``app_settings.SENSITIVE_CATEGORIES``. Every key and its default is listed in ``DEFAULTS`` and
in ``docs/reference/settings.md``. The accessor is reset when tests change the setting.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .exceptions import ConfigurationError

DEFAULTS: dict[str, Any] = {
    # Dotted path of the adapter class: the one place a shop customises how the app sees it
    # (the customer behind a request, their IP address behind a proxy).
    "ADAPTER": "personalization.adapter.DefaultAdapter",
    # Category names (any level of a product's category path, case-insensitive) whose products
    # count as sensitive even when the shop did not flag the product itself.
    "SENSITIVE_CATEGORIES": [],
    # What track() does with an event about a sensitive product (Product.objects.sensitive()):
    # "flag" stores it with Event.is_sensitive set (Event.objects.not_sensitive() leaves it
    # out), "drop" does not store it at all.
    "SENSITIVE_EVENTS": "flag",
    # Store browse events (product views, searches, …) even without the customer's
    # personalisation consent. Only set this when the shop has another legal basis.
    "TRACK_WITHOUT_CONSENT": False,
    # Consent purposes whose grant only counts once the customer confirmed it (double opt-in).
    "DOUBLE_OPT_IN_PURPOSES": [],
    # Absolute base URL of the shop, for links in emails (e.g. "https://shop.example.com").
    "SITE_URL": None,
    # How long a double opt-in confirmation link stays valid.
    "CONFIRMATION_LINK_MAX_AGE_DAYS": 7,
    # Cookie that carries the anonymous visitor id set by AnonymousIdMiddleware.
    "ANONYMOUS_ID_COOKIE": "pzn_aid",
    "ANONYMOUS_ID_COOKIE_AGE": 60 * 60 * 24 * 365,
    # Currency assumed when an import row or signal leaves it out. None: currency is required.
    "DEFAULT_CURRENCY": None,
    # Rows per database round trip in import_orders and the data generator.
    "BATCH_SIZE": 2000,
}

# Keys whose value is a dotted path to import.
IMPORT_STRINGS = {"ADAPTER"}


class AppSettings:
    """Lazy view of ``settings.PERSONALIZATION`` merged over ``DEFAULTS``."""

    @cached_property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "PERSONALIZATION", {})
        if not isinstance(value, dict):
            raise ConfigurationError("settings.PERSONALIZATION must be a dict.")
        unknown = set(value) - set(DEFAULTS)
        if unknown:
            raise ConfigurationError(
                "Unknown key(s) in settings.PERSONALIZATION: "
                + ", ".join(sorted(unknown))
                + ". See docs/reference/settings.md for the keys there are."
            )
        return value

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"No PERSONALIZATION setting named {name!r}.")
        value = self.user_settings.get(name, DEFAULTS[name])
        if name in IMPORT_STRINGS and isinstance(value, str):
            try:
                value = import_string(value)
            except ImportError as err:
                raise ConfigurationError(
                    f"PERSONALIZATION[{name!r}] = {value!r} cannot be imported: {err}"
                ) from err
        # Cache on the instance; __getattr__ is only called for missing attributes.
        self.__dict__[name] = value
        return value

    def reload(self) -> None:
        self.__dict__.clear()


app_settings = AppSettings()


@receiver(setting_changed)
def _reload_app_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == "PERSONALIZATION":
        app_settings.reload()
