"""Receivers for the signals a shop sends: each parses its arguments and calls a domain function.

Connected in ``PersonalizationConfig.ready()``.
"""

from __future__ import annotations

from typing import Any

from anymail.signals import tracking as anymail_tracking

from . import signals
from .adapter import ip_address_for
from .catalogue import product_upsert
from .commerce import cart_update, order_record, order_status_set
from .confirmation import confirmation_enqueue
from .identity import ATTRIBUTE_FIELDS, identity_from
from .messaging.tracking import tracking_event_record
from .models import ConsentSource, EventName, OrderStatus
from .segments import segment_stays_release
from .segments.jobs import segments_update_enqueue, segments_update_jobs_forget
from .tracking import identify, track

IDENTITY_ARGS = ("email", "user", "anonymous_id", "request")


def _identity(kwargs: dict[str, Any]):
    return identity_from(**_identity_kwargs(kwargs))


def _identity_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {name: kwargs.get(name) for name in IDENTITY_ARGS}


def _attributes(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {name: kwargs[name] for name in ATTRIBUTE_FIELDS if name in kwargs}


def on_order_placed(sender, **kwargs):
    order, _created = order_record(
        order_id=kwargs.get("order_id"),
        identity=_identity(kwargs),
        placed_at=kwargs.get("placed_at"),
        total=kwargs.get("total"),
        currency_code=kwargs.get("currency"),
        lines=kwargs.get("lines"),
        cart_id=kwargs.get("cart_id"),
        consents=kwargs.get("consents"),
        attributes=_attributes(kwargs),
        ip_address=ip_address_for(kwargs.get("request")),
        trusted=kwargs.get("trusted", False),
    )
    return order


def on_order_cancelled(sender, **kwargs):
    return order_status_set(
        order_id=kwargs.get("order_id"), status=OrderStatus.CANCELLED, at=kwargs.get("at")
    )


def on_order_refunded(sender, **kwargs):
    return order_status_set(
        order_id=kwargs.get("order_id"), status=OrderStatus.REFUNDED, at=kwargs.get("at")
    )


def on_cart_updated(sender, **kwargs):
    cart, _applied = cart_update(
        cart_id=kwargs.get("cart_id"),
        identity=_identity(kwargs),
        updated_at=kwargs.get("updated_at"),
        lines=kwargs.get("lines"),
        currency_code=kwargs.get("currency"),
    )
    return cart


def on_product_viewed(sender, **kwargs):
    return track(
        EventName.PRODUCT_VIEWED,
        product_id=kwargs.get("product_id"),
        occurred_at=kwargs.get("occurred_at"),
        **_identity_kwargs(kwargs),
    )


def on_customer_signed_up(sender, **kwargs):
    return identify(
        consents=kwargs.get("consents"),
        consent_source=ConsentSource.SIGNUP,
        trusted=kwargs.get("trusted", False),
        **_identity_kwargs(kwargs),
        **_attributes(kwargs),
    )


def on_customer_identified(sender, **kwargs):
    return identify(
        trusted=kwargs.get("trusted", False),
        **_identity_kwargs(kwargs),
        **_attributes(kwargs),
    )


def on_product_saved(sender, **kwargs):
    data = {k: v for k, v in kwargs.items() if k not in ("signal", "product_id", "updated_at")}
    product, _applied = product_upsert(
        product_id=kwargs.get("product_id"), updated_at=kwargs.get("updated_at"), **data
    )
    return product


def on_consent_recorded(sender, record, **kwargs):
    # The email is a job, so a broker outage delays it instead of failing the shop's request.
    return confirmation_enqueue(record=record)


def on_profile_changed(sender, profile_ids, changes, **kwargs):
    # After the commit: their segments are re-evaluated by a job, so a shop's request does not
    # wait for it. Were the job lost in a crash, the next scheduled refresh catches up.
    return segments_update_enqueue(profile_ids=profile_ids, changes=changes)


def on_profiles_removing(sender, profile_ids, into, **kwargs):
    # Inside the deleting transaction: their open stays close (member counts stay right, the
    # exits are announced) and, for a merge, their history moves to the profile they became.
    # Erased (no ``into``): no segment job may keep their ids either.
    released = segment_stays_release(profile_ids=profile_ids, into=into)
    if into is None:
        segments_update_jobs_forget(profile_ids=profile_ids)
    return released


CONNECTIONS = {
    signals.order_placed: on_order_placed,
    signals.order_cancelled: on_order_cancelled,
    signals.order_refunded: on_order_refunded,
    signals.cart_updated: on_cart_updated,
    signals.product_viewed: on_product_viewed,
    signals.customer_signed_up: on_customer_signed_up,
    signals.customer_identified: on_customer_identified,
    signals.product_saved: on_product_saved,
    signals.consent_recorded: on_consent_recorded,
    signals.profile_changed: on_profile_changed,
    signals.profiles_removing: on_profiles_removing,
}


def on_anymail_tracking(sender, event, esp_name, **kwargs):
    """Anymail's tracking webhooks (``anymail.signals.tracking``): onto the message ledger."""
    tracking_event_record(event=event, esp_name=esp_name)


def connect() -> None:
    for signal, receiver in CONNECTIONS.items():
        signal.connect(receiver, dispatch_uid=f"personalization.{receiver.__name__}")
    anymail_tracking.connect(
        on_anymail_tracking, dispatch_uid="personalization.on_anymail_tracking"
    )
