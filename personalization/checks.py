"""System checks for misconfiguration a shop would otherwise find in production."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register

from .conf import DEFAULTS, app_settings
from .docs import docs_url
from .exceptions import ConfigurationError


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_positive_int_or_none(value: Any) -> bool:
    return value is None or _is_positive_int(value)


def _is_fraction(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _is_text_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value)


def _is_absolute_url(value: Any) -> bool:
    if value is None:
        return True
    parts = urlsplit(value) if isinstance(value, str) else None
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.netloc)


def _is_currency_or_none(value: Any) -> bool:
    if value is None:
        return True
    from .validation import _currencies

    return isinstance(value, str) and value in _currencies()


def _is_dotted_path_or_class(value: Any) -> bool:
    return isinstance(value, type) or (isinstance(value, str) and "." in value)


def _is_secret_or_none(value: Any) -> bool:
    # A key of its own is worth having only when it is hard to guess.
    return value is None or (isinstance(value, str | bytes) and len(value) >= 32)


def _is_cookie_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and value.isascii() and " " not in value


def _is_non_negative_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _is_non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


CRONTAB_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")


def _is_crontab_or_none(value: Any) -> bool:
    return value is None or (
        isinstance(value, dict)
        and set(value) <= set(CRONTAB_FIELDS)
        and all(isinstance(v, str) and v.strip() for v in value.values())
    )


# One rule per key of conf.DEFAULTS: (test, what a right value is, for the message).
def _is_quiet_hours(value) -> bool:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return False
    try:
        return all(isinstance(v, str) and dt.time.fromisoformat(v) for v in value)
    except ValueError:
        return False


def _is_utm_parameters(value) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and k.startswith("utm_") and isinstance(v, str) and v
        for k, v in value.items()
    )


SETTING_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "ADAPTER": (_is_dotted_path_or_class, "a dotted path to the adapter class"),
    "SENSITIVE_CATEGORIES": (_is_text_list, "a list of category names"),
    "TRACK_WITHOUT_CONSENT": (_is_bool, "True or False"),
    "SENSITIVE_EVENTS": (lambda value: value in ("flag", "drop"), "'flag' or 'drop'"),
    "DOUBLE_OPT_IN_PURPOSES": (_is_text_list, "a list of consent purposes"),
    "SITE_URL": (_is_absolute_url, "None or an http(s) URL such as 'https://shop.example'"),
    "CONFIRMATION_LINK_MAX_AGE_DAYS": (_is_positive_int, "a positive whole number of days"),
    "ANONYMOUS_ID_COOKIE": (_is_cookie_name, "a cookie name"),
    "ANONYMOUS_ID_COOKIE_AGE": (_is_positive_int, "a positive whole number of seconds"),
    "CURRENCY": (_is_currency_or_none, "an ISO 4217 code such as 'EUR'"),
    "DEFAULT_CURRENCY": (_is_currency_or_none, "None or an ISO 4217 code such as 'EUR'"),
    "BATCH_SIZE": (_is_positive_int, "a positive whole number"),
    "JOB_MAX_ATTEMPTS": (_is_positive_int, "a positive whole number"),
    "JOB_RETRY_BACKOFF_SECONDS": (_is_positive_number, "a positive number of seconds"),
    "JOB_LEASE_SECONDS": (_is_positive_number, "a positive number of seconds"),
    "JOB_REDELIVER_AFTER_SECONDS": (_is_positive_number, "a positive number of seconds"),
    "JOB_DISPATCH_TIMEOUT_SECONDS": (_is_positive_number, "a positive number of seconds"),
    "JOB_KEEP_DONE_DAYS": (_is_positive_int, "a positive whole number of days"),
    "NEW_CUSTOMER_DAYS": (_is_positive_int, "a positive whole number of days"),
    "LAPSED_AFTER_DAYS": (_is_positive_int, "a positive whole number of days"),
    "LOYAL_MIN_ORDERS": (_is_positive_int, "a positive whole number of orders"),
    "LOYAL_WITHIN_DAYS": (_is_positive_int, "a positive whole number of days"),
    "CART_ABANDONED_AFTER_MINUTES": (_is_positive_int, "a positive whole number of minutes"),
    "CART_ABANDONED_WITHIN_DAYS": (_is_positive_int, "a positive whole number of days"),
    "FLOW_BROWSE_MIN_VIEWS": (_is_positive_int, "a positive whole number of views"),
    "FLOW_BROWSE_WINDOW_HOURS": (_is_positive_int, "a positive whole number of hours"),
    "SEGMENT_ALLOWED_SENSITIVE_CATEGORIES": (_is_text_list, "a list of category names"),
    "TRAIT_MIN_CONFIDENCE": (_is_fraction, "a number from 0 to 1, such as 0.8"),
    "RECOMMENDATION_NEIGHBOURS": (_is_positive_int, "a positive whole number"),
    "RECOMMENDATION_CO_VIEW_WEIGHT": (_is_non_negative_number, "a number of 0 or more"),
    "RECOMMENDATION_CO_VIEW_DAYS": (_is_non_negative_int, "a whole number of days, 0 or more"),
    "RECOMMENDATION_MIN_SUPPORT": (_is_positive_int, "a positive whole number"),
    "RECOMMENDATION_DURABLE_COOLDOWN_DAYS": (_is_non_negative_int, "a whole number of days"),
    "RECOMMENDATION_HISTORY_DAYS": (_is_positive_int, "a positive whole number of days"),
    "RECOMMENDATION_HALF_LIFE_DAYS": (_is_positive_number, "a positive number of days"),
    "RECOMMENDATION_BESTSELLER_DAYS": (_is_positive_int, "a positive whole number of days"),
    "RECOMMENDATION_ALLOWED_SENSITIVE_CATEGORIES": (_is_text_list, "a list of category names"),
    "RECOMMENDATION_INTERVAL_MIN_REPEATS": (_is_positive_int, "a positive whole number"),
    "RECOMMENDATION_INTERVAL_RELEARN_DAYS": (
        _is_non_negative_int,
        "a whole number of days, 0 or more",
    ),
    "RECOMMENDATION_BUILD_SCHEDULE": (
        _is_crontab_or_none,
        "None or a dict of crontab fields (minute, hour, day_of_week, day_of_month, "
        "month_of_year) with text values",
    ),
    "EVENT_RETENTION_DAYS": (_is_positive_int_or_none, "None or a positive whole number of days"),
    "PREFERENCE_LINK_EDIT_DAYS": (_is_positive_int, "a positive whole number of days"),
    "PREFERENCE_LINK_UNSUBSCRIBE_DAYS": (_is_positive_int, "a positive whole number of days"),
    "PREFERENCE_CENTRE_WORDING_VERSION": (
        lambda value: isinstance(value, str) and 0 < len(value) <= 64,
        "a version name of 1 to 64 characters",
    ),
    "SUPPRESSION_HASH_KEY": (_is_secret_or_none, "None or a secret of at least 32 characters"),
    "MESSAGE_FREQUENCY_CAP": (_is_positive_int, "a positive whole number of emails"),
    "MESSAGE_FREQUENCY_WINDOW_DAYS": (_is_positive_int, "a positive whole number of days"),
    "MESSAGE_QUIET_HOURS": (_is_quiet_hours, "a pair of 'HH:MM' times, such as ('21:00', '08:00')"),
    "MESSAGE_NO_FIRST_NAME_LOCALES": (_is_text_list, "a list of language codes"),
    "CAMPAIGN_MAX_DELAY_HOURS": (_is_positive_int, "a positive whole number of hours"),
    "MESSAGE_BATCH_SIZE": (_is_positive_int, "a positive whole number"),
    "MESSAGE_LEASE_SECONDS": (_is_positive_number, "a positive number of seconds"),
    "MESSAGE_MAX_ATTEMPTS": (_is_positive_int, "a positive whole number"),
    "MESSAGE_RETRY_BACKOFF_SECONDS": (_is_positive_number, "a positive number of seconds"),
    "EMAIL_LAYOUT_TEMPLATE": (
        lambda value: isinstance(value, str) and bool(value),
        "a template name",
    ),
    "UTM_PARAMETERS": (_is_utm_parameters, "a dict of utm_* names to text values"),
}


SETTINGS_DOCS = docs_url("reference/settings.md")


def check_setting_types() -> list[Error]:
    """One error per key of PERSONALIZATION whose value breaks its rule."""
    errors = []
    user = app_settings.user_settings
    for key, (rule, expected) in SETTING_RULES.items():
        value = user.get(key, DEFAULTS[key])
        if not rule(value):
            errors.append(
                Error(
                    f"PERSONALIZATION[{key!r}] = {value!r} is not {expected}.",
                    hint=f"The default is {DEFAULTS[key]!r}; see {SETTINGS_DOCS}.",
                    id="personalization.E006",
                )
            )
    return errors


@register()
def check_settings(app_configs, **kwargs):
    errors = []
    try:
        app_settings.user_settings  # noqa: B018  (validates the keys)
    except ConfigurationError as err:
        return [Error(str(err), id="personalization.E001")]
    errors = check_setting_types()
    if errors:
        return errors  # the checks below assume the values have the right types
    try:
        app_settings.ADAPTER  # noqa: B018  (imports the adapter)
    except ConfigurationError as err:
        errors.append(Error(str(err), id="personalization.E001"))
        return errors
    if app_settings.CURRENCY is None:
        errors.append(
            Error(
                "PERSONALIZATION['CURRENCY'] is not set: the app needs the shop's currency to "
                "count orders in, rather than add up amounts in different currencies.",
                hint="Set PERSONALIZATION['CURRENCY'] = 'EUR' (your shop's ISO 4217 code); "
                f"see {docs_url('reference/settings.md#currency')}.",
                id="personalization.E007",
            )
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
    if app_settings.PREFERENCE_LINK_UNSUBSCRIBE_DAYS < app_settings.PREFERENCE_LINK_EDIT_DAYS:
        errors.append(
            Error(
                "PERSONALIZATION['PREFERENCE_LINK_UNSUBSCRIBE_DAYS'] is shorter than "
                "PERSONALIZATION['PREFERENCE_LINK_EDIT_DAYS']: a link in an email would let the "
                "customer change their preferences but no longer unsubscribe.",
                hint="Unsubscribing must keep working at least as long as editing; see "
                f"{docs_url('reference/settings.md#preference_link_unsubscribe_days')}.",
                id="personalization.E008",
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
    errors += _check_webhook_secret()
    return errors


def _check_webhook_secret() -> list[Warning]:
    """Anymail's tracking webhooks suppress addresses and withdraw consent: without the
    shared secret, anyone who finds the URL could post fake bounces and unsubscribes."""
    backend = getattr(settings, "EMAIL_BACKEND", "")
    if (
        not backend.startswith("anymail.backends.")
        or backend == "anymail.backends.test.EmailBackend"
    ):
        return []
    anymail = getattr(settings, "ANYMAIL", {}) or {}
    if anymail.get("WEBHOOK_SECRET") or anymail.get("WEBHOOK_AUTHORIZATION"):
        return []
    return [
        Warning(
            "ANYMAIL['WEBHOOK_SECRET'] is not set: the email service's tracking webhooks "
            "(bounces, complaints, unsubscribes) would be accepted from anyone.",
            hint="Set ANYMAIL['WEBHOOK_SECRET'] = 'random:random' and give the same user and "
            "password to your ESP's webhook URL; see "
            "https://anymail.dev/en/stable/tips/securing_webhooks/ and "
            f"{docs_url('guide/messaging.md#tracking-webhooks')}.",
            id="personalization.W002",
        )
    ]
