"""Parse and check input at the app's edge, raising InvalidInput with the field's name."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import logging
import math
import re
import uuid
import zoneinfo
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.ipv6 import clean_ipv6_address
from django.utils.translation import gettext as _

from .conf import app_settings
from .exceptions import InvalidEmail, InvalidInput, NaiveDatetime

logger = logging.getLogger(__name__)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SURROGATE = re.compile("[\ud800-\udfff]")
# How far ahead of the clock an order or consent time may be (clocks differ a little).
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_POSITIVE_INTEGER = 2_147_483_647  # PositiveIntegerField on PostgreSQL
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Plain addresses, a strict subset of what Django's validate_email accepts: matching it
# spares the slower full check (imports check hundreds of thousands of addresses).
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_EMAIL = re.compile(
    rf"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,63}}"
)
MAX_EMAIL_LENGTH = 254  # Profile.email, as Django's EmailField (validate_email allows 320)
MAX_QUANTITY = 2_147_483_647  # the largest integer every supported database stores
MAX_ID_LENGTH = 64
TWO_PLACES = Decimal("0.01")
MAX_JSON_FLOAT = 1e16  # from here on, JSON writes a float with an exponent
# Far below Python's recursion limit, which json.dumps() would otherwise hit (RecursionError).
MAX_JSON_DEPTH = 32
MAX_AMOUNT = Decimal("1e10")  # DecimalField(max_digits=12, decimal_places=2)


def email_normalize(value: Any, *, field: str = "email") -> str:
    """Trim and lower-case an address, and check it is one."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidEmail(_("An email address is required."), field=field)
    email = value.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(
            _("An email address has at most %(max)d characters.") % {"max": MAX_EMAIL_LENGTH},
            field=field,
        )
    if _PLAIN_EMAIL.fullmatch(email):
        return email
    try:
        validate_email(email)
    except ValidationError as err:
        raise InvalidEmail(
            _("%(value)r is not a valid email address.") % {"value": value}, field=field
        ) from err
    return email


def external_id(value: Any, *, field: str) -> str:
    """A shop's id for an order, cart or product: a non-empty string of at most 64 chars."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(_("An id is required."), field=field)
    value = no_nul(value.strip(), field=field)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInput(
            _("Ids are at most %(max)d characters.") % {"max": MAX_ID_LENGTH}, field=field
        )
    return value


def no_nul(value: str, *, field: str) -> str:
    """Refuse what no database stores as text: a NUL character (PostgreSQL refuses it) and a
    lone surrogate (not Unicode: neither driver can encode it as UTF-8)."""
    if "\x00" in value:
        raise InvalidInput(_("Contains a NUL character."), field=field)
    if not value.isascii() and _SURROGATE.search(value):
        raise InvalidInput(
            _("Contains a lone surrogate, which is not valid Unicode."),
            field=field,
        )
    return value


def required(value: Any, *, field: str) -> Any:
    if value is None:
        raise InvalidInput(_("This argument is required."), field=field)
    return value


def aware_datetime(value: Any, *, field: str, not_future: bool = False) -> dt.datetime:
    """An aware datetime, or an ISO 8601 string with an offset, in years 1..9999 in UTC.

    ``not_future``: also refuse a time more than ``MAX_CLOCK_SKEW`` ahead of now.
    """
    value = _aware_datetime(value, field=field)
    try:
        value.astimezone(dt.UTC)
    except OverflowError as err:
        raise InvalidInput(
            _("The date and time is outside the years 1 to 9999 in UTC."), field=field
        ) from err
    if not_future:
        from django.utils import timezone

        if value > timezone.now() + MAX_CLOCK_SKEW:
            raise InvalidInput(
                _("The date and time is more than %(skew)d minutes ahead of the server's clock.")
                % {"skew": MAX_CLOCK_SKEW.seconds // 60},
                field=field,
            )
    return value


def _aware_datetime(value: Any, *, field: str) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError as err:
            raise InvalidInput(
                _("%(value)r is not an ISO 8601 date and time.") % {"value": value}, field=field
            ) from err
    if not isinstance(value, dt.datetime):
        raise InvalidInput(_("A date and time is required."), field=field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetime(
            _("The date and time has no timezone; give an aware datetime (e.g. with +00:00)."),
            field=field,
        )
    return value


def money(value: Any, *, field: str) -> Decimal:
    """A non-negative amount with at most two decimal places."""
    required(value, field=field)
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError) as err:
        raise InvalidInput(
            _("%(value)r is not an amount.") % {"value": value}, field=field
        ) from err
    if not amount.is_finite():
        raise InvalidInput(_("%(value)r is not an amount.") % {"value": value}, field=field)
    if amount < 0:
        raise InvalidInput(_("The amount cannot be negative."), field=field)
    # Before quantize(), which raises InvalidOperation for 1E+1000.
    if amount >= MAX_AMOUNT:
        raise InvalidInput(_("The amount is too large."), field=field)
    if amount != amount.quantize(TWO_PLACES):
        raise InvalidInput(_("Amounts have at most two decimal places."), field=field)
    return amount.quantize(TWO_PLACES)


def quantity(value: Any, *, field: str) -> int:
    if isinstance(value, str):
        digits = value.strip().removeprefix("-")
        # isdigit() alone would pass "²", which int() refuses.
        if digits.isascii() and digits.isdigit():
            value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(_("The quantity must be a whole number."), field=field)
    if value <= 0:
        raise InvalidInput(_("The quantity must be at least 1."), field=field)
    if value > MAX_QUANTITY:
        raise InvalidInput(_("The quantity is too large."), field=field)
    return value


def currency(value: Any, *, field: str = "currency") -> str:
    if value in (None, "") and app_settings.DEFAULT_CURRENCY:
        value = app_settings.DEFAULT_CURRENCY
    code = value.strip().upper() if isinstance(value, str) else ""
    if not _CURRENCY.match(code) or code not in _currencies():
        raise InvalidInput(
            _("%(value)r is not a three-letter ISO 4217 currency code.") % {"value": value},
            field=field,
        )
    return code


def country(value: Any, *, field: str = "country") -> str:
    code = value.strip().upper() if isinstance(value, str) else ""
    if code not in _countries():
        raise InvalidInput(
            _("%(value)r is not a two-letter ISO 3166 country code.") % {"value": value},
            field=field,
        )
    return code


@cache
def _currencies() -> frozenset[str]:
    import pycountry

    return frozenset(c.alpha_3 for c in pycountry.currencies)


@cache
def _countries() -> frozenset[str]:
    import pycountry

    return frozenset(c.alpha_2 for c in pycountry.countries)


def ip_address(value: Any, *, field: str = "ip_address") -> str | None:
    """An IPv4 or IPv6 address as text, normalised; None for None or ""."""
    if value in (None, ""):
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        address = ipaddress.ip_address(value.strip())
        if getattr(address, "scope_id", None):
            raise ValueError(value)  # fe80::1%eth0: no database column takes a zone
    except ValueError as err:
        raise InvalidInput(
            _("%(value)r is not an IP address.") % {"value": value}, field=field
        ) from err
    if address.version == 6:
        # As GenericIPAddressField stores it (::ffff:1.2.3.4, not ::ffff:102:304), so the
        # record in hand and the one read back agree.
        return clean_ipv6_address(str(address))
    return str(address)


def request_ip_address(value: Any) -> str | None:
    """The address a request came from, as the adapter read it; None when it is not one.

    A malformed ``REMOTE_ADDR`` (or proxy header) is the server's misconfiguration, not the
    shopper's mistake: their signup or checkout goes on without the evidence, and it is
    logged. An explicit ``ip_address=`` argument is refused instead (:func:`ip_address`).
    """
    try:
        return ip_address(value)
    except InvalidInput:
        logger.warning(
            "The request's client address %r is not an IP address; it is not stored. "
            "Check the adapter's ip_address_for_request() and your proxy's headers.",
            value,
        )
        return None


def text(value: Any, *, field: str, max_length: int) -> str:
    """Optional text: a string (None is empty) without NUL, of at most ``max_length``."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(_("This must be text."), field=field)
    value = no_nul(value.strip(), field=field)
    if len(value) > max_length:
        raise InvalidInput(_("At most %(max)d characters.") % {"max": max_length}, field=field)
    return value


def anonymous_id(value: Any, *, field: str = "anonymous_id") -> str:
    """A visitor's anonymous id: text (or a number or UUID) of at most 64 characters."""
    if value is None:
        return ""
    if isinstance(value, (int, uuid.UUID)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidInput(
            _("An anonymous id is text, not %(type)s.") % {"type": type(value).__name__},
            field=field,
        )
    value = no_nul(value.strip(), field=field)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInput(_("Anonymous ids are at most 64 characters."), field=field)
    return value


def positive_integer(value: Any, *, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInput(_("A whole number, at least 1."), field=field)
    if value > MAX_POSITIVE_INTEGER:
        raise InvalidInput(_("The number is too large."), field=field)
    return value


def json_clean(value: Any, *, field: str, _depth: int = 0) -> Any:
    """Refuse what JSON cannot hold or read back equal: NaN, infinities, non-string keys, NUL,
    nesting deeper than ``MAX_JSON_DEPTH`` (or a structure that contains itself)."""
    if isinstance(value, (dict, list, tuple)) and _depth >= MAX_JSON_DEPTH:
        raise InvalidInput(
            _("Properties nest at most %(max)d levels deep.") % {"max": MAX_JSON_DEPTH},
            field=field,
        )
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(_("Property names must be text."), field=field)
            no_nul(key, field=field)
            json_clean(item, field=field, _depth=_depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            json_clean(item, field=field, _depth=_depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(_("Numbers must be finite (no NaN or Infinity)."), field=field)
    elif isinstance(value, float) and abs(value) >= MAX_JSON_FLOAT:
        # JSON writes 1e23 as "1e+23"; PostgreSQL's jsonb reads it back as the integer
        # 100000000000000000000000, which is not the float 1e23.
        raise InvalidInput(
            _("Numbers of 10^16 or more must be whole numbers (int), not floats."), field=field
        )
    elif isinstance(value, str):
        no_nul(value, field=field)
    return value


def event_name(value: Any, *, field: str = "name") -> str:
    if not isinstance(value, str) or not _EVENT_NAME.match(value):
        raise InvalidInput(
            _("Event names are lower_snake_case, at most 64 characters; got %(value)r.")
            % {"value": value},
            field=field,
        )
    return value


_LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


def profile_attributes_clean(attributes: dict[str, Any], *, fields: tuple[str, ...]) -> dict:
    """Check a profile's optional attributes (names in ``fields``); drop the empty ones."""
    if not isinstance(attributes, dict):
        raise InvalidInput(
            _("Attributes are a mapping of attribute names to values."), field="attributes"
        )
    unknown = set(attributes) - set(fields)
    if unknown:
        raise InvalidInput(
            _("Unknown profile attribute(s): %(names)s.") % {"names": ", ".join(sorted(unknown))},
            field=sorted(unknown)[0],
        )
    cleaned: dict[str, Any] = {}
    for name, value in attributes.items():
        if value in (None, ""):
            continue
        if name == "birthday":
            if isinstance(value, str):
                try:
                    value = dt.date.fromisoformat(value)
                except ValueError as err:
                    raise InvalidInput(_("Birthdays are dates (YYYY-MM-DD)."), field=name) from err
            if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
                raise InvalidInput(_("Birthdays are dates (YYYY-MM-DD)."), field=name)
            from django.utils import timezone

            # A day of slack: the customer's "today" may be ahead of the server's.
            if value > timezone.now().date() + dt.timedelta(days=1):
                raise InvalidInput(_("A birthday cannot be in the future."), field=name)
        elif not isinstance(value, str):
            raise InvalidInput(_("This attribute must be text."), field=name)
        else:
            no_nul(value, field=name)
            if name == "timezone" and value not in _timezones():
                raise InvalidInput(
                    _("%(value)r is not an IANA timezone name.") % {"value": value}, field=name
                )
            elif name == "country":
                value = country(value, field=name)
            elif name == "locale" and not _LOCALE.match(value):
                raise InvalidInput(
                    _("%(value)r is not a language tag.") % {"value": value}, field=name
                )
            elif len(value) > 150:
                raise InvalidInput(_("At most 150 characters."), field=name)
        cleaned[name] = value
    return cleaned


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def identity_args_check(*, user: Any = None, request: Any = None) -> None:
    """A string where a user or a request belongs is a mistake, not an anonymous call."""
    if user is not None and not hasattr(user, "is_authenticated"):
        raise TypeError(f"user must be a user instance, not {type(user).__name__}.")
    if user is not None and user.is_authenticated and getattr(user, "pk", None) is None:
        raise TypeError("user must be a saved user instance (its pk is None).")
    if request is not None and not hasattr(request, "META"):
        raise TypeError(f"request must be an HttpRequest, not {type(request).__name__}.")


def identity_clean(identity: Any) -> Any:
    """An ``Identity`` built by hand gets the checks ``identity_from()`` gives its parts: a
    normalised email, an anonymous id that is text, a user instance that is saved."""
    identity_args_check(user=identity.user)
    return dataclasses.replace(
        identity,
        email=email_normalize(identity.email) if identity.email else "",
        anonymous_id=anonymous_id(identity.anonymous_id),
    )


def instance_check(value: Any, cls: type, *, field: str) -> Any:
    if not isinstance(value, cls):
        article = "an" if cls.__name__[0] in "AEIOU" else "a"
        raise TypeError(f"{field} must be {article} {cls.__name__}, not {type(value).__name__}.")
    return value


def saved_instance_check(value: Any, cls: type, *, field: str) -> Any:
    """A saved model instance of ``cls``: a string or an unsaved instance is a TypeError."""
    if not isinstance(value, cls):
        raise TypeError(f"{field} must be a saved {cls.__name__}, not {type(value).__name__}.")
    if value.pk is None:
        raise TypeError(f"{field} must be a saved {cls.__name__} (its pk is None).")
    return value


def choice(value: Any, choices: list[str], *, field: str) -> str:
    if value not in choices:
        raise InvalidInput(
            _("%(value)r is not one of %(choices)s.")
            % {"value": value, "choices": ", ".join(choices)},
            field=field,
        )
    return value
