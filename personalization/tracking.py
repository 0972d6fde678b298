"""track() and identify(): the calls a shop makes for behaviour and identity."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .adapter import ip_address_for
from .catalogue import products_by_external_id
from .changes import Change, changes_collected, profile_changed_note
from .concurrency import atomic_retried
from .conf import app_settings
from .consent import consent_grant_many, consent_source_clean, consents_clean, has_consent
from .exceptions import InvalidInput
from .identity import (
    Identity,
    attributes_clean,
    identity_from,
    profile_find,
    profile_resolve,
    trusted_check,
)
from .models import ConsentSource, Event, Product, Profile, Purpose
from .validation import aware_datetime, event_name, external_id, json_clean


@atomic_retried
def track(
    name: str,
    *,
    email: str | None = None,
    user: Any = None,
    anonymous_id: str | None = None,
    request: Any = None,
    product_id: Any = None,
    occurred_at: dt.datetime | None = None,
    properties: dict[str, Any] | None = None,
) -> Event | None:
    """Record that a customer did something (viewed a product, searched, …).

    Behaviour is personal data used to tailor content, so the event is stored only when the
    customer granted the personalisation consent (or ``TRACK_WITHOUT_CONSENT`` is set).
    Returns the stored event, or ``None`` when it was not stored.
    """
    name = event_name(name)
    identity = identity_from(email=email, user=user, anonymous_id=anonymous_id, request=request)
    occurred_at = (
        aware_datetime(occurred_at, field="occurred_at", not_future=True)
        if occurred_at is not None
        else timezone.now()
    )
    properties = _properties_clean(properties)
    product_pk, sensitive = None, False
    if product_id not in (None, ""):
        product_id = external_id(product_id, field="product_id")
        product_pk = products_by_external_id([product_id], field="product_id")[product_id]
        sensitive = Product.objects.filter(pk=product_pk).sensitive().exists()
        if sensitive and app_settings.SENSITIVE_EVENTS == "drop":
            return None
    if identity.only_not_customer:
        return None  # staff browsing the shop: nobody's behaviour

    # One transaction: a failure leaves neither a profile nor an event behind, and the
    # savepoint keeps the caller's own atomic block usable.
    with transaction.atomic(), changes_collected():
        if not app_settings.TRACK_WITHOUT_CONSENT:
            # The consent that counts is that of the person the event would be stored for.
            if not has_consent(profile=_event_owner(identity), purpose=Purpose.PERSONALIZATION):
                return None
        profile = profile_resolve(identity)
        event = Event.objects.create(
            profile=profile,
            name=name,
            occurred_at=occurred_at,
            product_id=product_pk,
            is_sensitive=sensitive,
            properties=properties,
        )
        profile_changed_note(profile.pk, Change.EVENTS)
    return event


@atomic_retried
def identify(
    *,
    email: str | None = None,
    user: Any = None,
    anonymous_id: str | None = None,
    request: Any = None,
    consents: dict[str, str] | None = None,
    consent_source: str = ConsentSource.SIGNUP,
    trusted: bool = False,
    **attributes: Any,
) -> Profile | None:
    """Tie what we know of a visitor to one profile, merging as needed, and return it.

    ``attributes`` (first_name, last_name, locale, timezone, country, birthday) change a
    profile only for its own signed-in customer (``user``, or the request's user), for a
    profile this call identifies for the first time, or with ``trusted=True``: the shop's own
    server code vouching for them. See ``profile_resolve``.

    Returns ``None``, recording nothing, when the only identity is a shop user who is not a
    customer (staff; see ``DefaultAdapter.is_customer``).
    """
    identity = identity_from(email=email, user=user, anonymous_id=anonymous_id, request=request)
    consents = consents_clean(consents)
    consent_source_clean(consent_source, field="consent_source")
    trusted = trusted_check(trusted)
    if identity.only_not_customer:
        attributes_clean(attributes)  # bad input is refused all the same
        return None
    # A malformed client address is stored as None and logged (see ip_address_for).
    ip_address = ip_address_for(request)
    with transaction.atomic(), changes_collected():
        profile = profile_resolve(identity, attributes=attributes, trusted=trusted)
        consent_grant_many(
            profile=profile, consents=consents, source=consent_source, ip_address=ip_address
        )
    return profile


def _event_owner(identity: Identity) -> Profile | None:
    """The existing profile profile_resolve() would store this identity's event on, if any."""
    known = identity.email or identity.user is not None
    if known:
        owner = profile_find(Identity(email=identity.email, user=identity.user))
        if owner is not None:
            return owner
    if identity.anonymous_id:
        device = profile_find(Identity(anonymous_id=identity.anonymous_id))
        # A device last used by another known person does not lend their consent.
        if device is not None and (device.is_anonymous or not known):
            return device
    return None


def _properties_clean(properties: Any) -> dict[str, Any]:
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise InvalidInput(_("Properties are a mapping of names to values."), field="properties")
    # First: it bounds the nesting, so json.dumps() cannot run out of stack.
    json_clean(properties, field="properties")
    try:
        encoded = json.dumps(properties)
    except (TypeError, ValueError) as err:
        raise InvalidInput(
            _("Properties must be JSON-serialisable: %(error)s") % {"error": err},
            field="properties",
        ) from err
    if len(encoded) > 16_384:
        raise InvalidInput(_("Properties are at most 16 KB of JSON."), field="properties")
    return properties
