"""Parse and check input at the app's edge, raising InvalidInput with the field's name."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from .conf import app_settings
from .exceptions import InvalidEmail, InvalidInput, NaiveDatetime

_CURRENCY = re.compile(r"^[A-Z]{3}$")
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
    value = value.strip()
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInput(
            _("Ids are at most %(max)d characters.") % {"max": MAX_ID_LENGTH}, field=field
        )
    return value


def aware_datetime(value: Any, *, field: str) -> dt.datetime:
    """An aware datetime, or an ISO 8601 string with an offset."""
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
    if amount != amount.quantize(TWO_PLACES):
        raise InvalidInput(_("Amounts have at most two decimal places."), field=field)
    if amount >= Decimal("1e10"):
        raise InvalidInput(_("The amount is too large."), field=field)
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
    if not isinstance(value, str) or not _CURRENCY.match(value.strip().upper()):
        raise InvalidInput(
            _("%(value)r is not a three-letter ISO 4217 currency code.") % {"value": value},
            field=field,
        )
    return value.strip().upper()


def event_name(value: Any, *, field: str = "name") -> str:
    if not isinstance(value, str) or not _EVENT_NAME.match(value):
        raise InvalidInput(
            _("Event names are lower_snake_case, at most 64 characters; got %(value)r.")
            % {"value": value},
            field=field,
        )
    return value
