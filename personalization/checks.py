"""System checks for misconfiguration a shop would otherwise find in production."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register

from .conf import DEFAULTS, app_settings
from .exceptions import ConfigurationError


@register()
def check_settings(app_configs, **kwargs):
    errors = []
    try:
        app_settings.user_settings  # noqa: B018  (validates the keys)
        app_settings.ADAPTER  # noqa: B018  (imports the adapter)
    except ConfigurationError as err:
        errors.append(Error(str(err), id="personalization.E001"))
        return errors
    for key in ("SENSITIVE_CATEGORIES", "DOUBLE_OPT_IN_PURPOSES"):
        if not isinstance(getattr(app_settings, key), (list, tuple)):
            errors.append(
                Error(f"PERSONALIZATION[{key!r}] must be a list.", id="personalization.E002")
            )
    from .models import Purpose

    unknown = set(app_settings.DOUBLE_OPT_IN_PURPOSES) - set(Purpose.values)
    if unknown:
        errors.append(
            Error(
                "PERSONALIZATION['DOUBLE_OPT_IN_PURPOSES'] names unknown purposes: "
                f"{sorted(unknown)}",
                hint=f"Known purposes: {', '.join(Purpose.values)}.",
                id="personalization.E003",
            )
        )
    if app_settings.DOUBLE_OPT_IN_PURPOSES and not app_settings.SITE_URL:
        errors.append(
            Error(
                "Double opt-in is on but PERSONALIZATION['SITE_URL'] is not set, so "
                "confirmation emails cannot link back to the shop.",
                hint="Set PERSONALIZATION['SITE_URL'] = 'https://your-shop.example'.",
                id="personalization.E005",
            )
        )
    middleware = "personalization.middleware.AnonymousIdMiddleware"
    if middleware not in settings.MIDDLEWARE:
        errors.append(
            Warning(
                "AnonymousIdMiddleware is not installed: browsing before login cannot join the "
                "customer's profile.",
                hint=f"Add {middleware!r} to MIDDLEWARE.",
                id="personalization.W001",
            )
        )
    if not isinstance(app_settings.BATCH_SIZE, int) or app_settings.BATCH_SIZE < 1:
        errors.append(
            Error(
                f"PERSONALIZATION['BATCH_SIZE'] must be a positive integer "
                f"(default {DEFAULTS['BATCH_SIZE']}).",
                id="personalization.E004",
            )
        )
    return errors
