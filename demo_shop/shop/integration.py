"""Everything the shop tells the personalization app, in one place.

The shop talks to the app the way any third-party shop would: through the documented signals
in ``personalization.signals``, ``personalization.tracking.identify()`` and the functions in
``personalization.consent``, and records the consent boxes of its sign-up and checkout with
``personalization.capture.forms.ConsentForm``. It never writes the app's tables itself.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import get_language

from personalization import signals
from personalization.adapter import ip_address_for
from personalization.capture.forms import DEFAULT_PURPOSES, ConsentForm
from personalization.capture.wording import consent_wording_current, consent_wording_for
from personalization.conf import app_settings
from personalization.consent import consent_record, consent_state, consent_states
from personalization.exceptions import InvalidInput
from personalization.identity import identity_from, profile_find
from personalization.models import ConsentRecord, ConsentSource, ConsentState, Purpose
from personalization.models import Order as AppOrder
from personalization.tracking import identify

if TYPE_CHECKING:
    from django.dispatch import Signal
    from django.http import HttpRequest

    from .cart import SessionCart
    from .models import Order, Product

logger = logging.getLogger(__name__)

# The purposes the shop asks about at sign-up, at checkout and on the account page. The words
# shown are the app's consent wordings (admin › Consent wordings): publishing a new version
# there changes them, and the ledger keeps the version each customer saw.
CONSENT_PURPOSES = DEFAULT_PURPOSES


def wording_version(purpose: str) -> str:
    """The version of the wording shown now for ``purpose``, in the active language."""
    return consent_wording_current(purpose=purpose).version


def send_safely(signal: Signal, **kwargs: Any) -> bool:
    """Send a personalization signal; bad data is logged instead of breaking the shop.

    Why here, and why not ``send_robust()``: the shop's own work (an order, a cart change, a
    login) must never fail because marketing data was malformed, so ``InvalidInput`` is caught
    and logged. Anything else (the database is down, a bug) still raises: hiding that, as
    ``send_robust()`` would, only moves the failure somewhere harder to find.

    The send runs in its own savepoint, so whatever a receiver wrote before it failed is rolled
    back while the caller's transaction (the shop order) carries on. Returns whether it worked.
    """
    try:
        with transaction.atomic():
            signal.send(sender=_sender(signal), **kwargs)
    except InvalidInput as err:
        logger.warning("The personalization app rejected %s: %s", _name(signal), err)
        return False
    return True


def _sender(signal: Signal):
    """The shop class a signal is about, as ``sender`` (receivers may filter on it)."""
    from django.contrib.auth import get_user_model

    from .cart import SessionCart
    from .models import Order, Product

    if signal in (signals.order_placed, signals.order_cancelled, signals.order_refunded):
        return Order
    if signal in (signals.product_saved, signals.product_viewed):
        return Product
    if signal is signals.cart_updated:
        return SessionCart
    return get_user_model()


def _name(signal: Signal) -> str:
    for name in dir(signals):
        if getattr(signals, name) is signal:
            return name
    return repr(signal)


# --- Catalogue ---------------------------------------------------------------------------------


def product_payload(product: Product) -> dict[str, Any]:
    return {
        "product_id": str(product.pk),
        "sku": product.slug,
        "title": product.title,
        "url": product.get_absolute_url(),
        "image_url": product.get_image_url(),
        "price": product.price,
        "currency": "EUR",
        "category": product.category,
        "in_stock": product.in_stock,
        "active": product.is_active,
        "is_sensitive": product.is_sensitive,
        "repurchase_interval_days": product.repurchase_interval_days,
        "updated_at": product.updated_at,
    }


def product_changed(product: Product) -> bool:
    return send_safely(signals.product_saved, **product_payload(product))


def product_viewed(*, request: HttpRequest, product: Product) -> bool:
    return send_safely(signals.product_viewed, product_id=str(product.pk), request=request)


# --- Cart and orders ---------------------------------------------------------------------------


def cart_changed(*, request: HttpRequest, cart: SessionCart) -> bool:
    """Send the whole cart as it is now (a snapshot, as the signal asks)."""
    return send_safely(
        signals.cart_updated,
        cart_id=cart.id,
        updated_at=timezone.now(),
        lines=[
            {
                "product_id": str(line.product.pk),
                "quantity": line.quantity,
                "unit_price": line.unit_price,
            }
            for line in cart.lines()
        ],
        currency="EUR",
        request=request,
    )


def order_placed(*, request: HttpRequest, order: Order) -> bool:
    return send_safely(
        signals.order_placed,
        order_id=order.reference,
        placed_at=order.created_at,
        total=order.total,
        currency=order.currency,
        lines=[
            {
                "product_id": str(line.product_id),
                "quantity": line.quantity,
                "unit_price": line.unit_price,
            }
            for line in order.lines.all()
        ],
        cart_id=order.cart_id.hex,  # the same id cart_changed() sent
        email=order.email,
        first_name=order.first_name,
        last_name=order.last_name,
        # The language the customer shops in: the app's emails to them (double opt-in) use it.
        locale=get_language() or "",
        request=request,
    )


# --- Customers and consent ---------------------------------------------------------------------


def customer_signed_up(*, request: HttpRequest, user) -> bool:
    return send_safely(
        signals.customer_signed_up,
        user=user,
        first_name=user.first_name,
        locale=get_language() or "",
        request=request,
    )


def consent_given(
    *, request: HttpRequest, form: ConsentForm, source: str, user=None, order: Order | None = None
) -> list[ConsentRecord]:
    """Record the consent boxes ticked on a valid ``form``, for the customer behind ``user`` (at
    sign-up) or ``order`` (at checkout): after ``customer_signed_up()`` or ``order_placed()``
    made their profile. Returns the records written; like ``send_safely()``, bad data is
    logged and costs the shop nothing."""
    if not form.checked():
        return []
    if order is not None:
        app_order = AppOrder.objects.select_related("profile").filter(external_id=order.reference)
        profile = getattr(app_order.first(), "profile", None)
    else:
        profile = profile_find(identity_from(user=user))
    if profile is None:
        logger.warning("No profile to record the consent given at %s for.", source)
        return []
    try:
        with transaction.atomic():
            return form.capture(profile=profile, source=source, request=request)
    except InvalidInput as err:
        logger.warning("The personalization app rejected the consent given at %s: %s", source, err)
        return []


def customer_logged_in(*, request: HttpRequest | None, user) -> bool:
    """Join the visitor's anonymous history to the customer who just logged in.

    Only for requests that came through AnonymousIdMiddleware: a login without one (a
    management command, a test's ``force_login``) has no anonymous history to join.
    """
    if request is None or not hasattr(request, "personalization_anonymous_id"):
        return False
    return send_safely(signals.customer_identified, user=user, request=request)


def visitor_consents(request: HttpRequest) -> dict[str, str] | None:
    """The visitor's current consent state per purpose, or None if the app doesn't know them."""
    profile = profile_find(identity_from(user=_user(request)))
    if profile is None:
        return None
    return consent_states(profile=profile)


def personalisation_accept(request: HttpRequest, *, version: str | None) -> bool:
    """An anonymous visitor said yes to the personalisation banner, shown with the wording
    ``version`` (the banner posts it signed; None: it was missing or forged)."""
    wording = consent_wording_for(version=version or "")
    if wording is None or wording.purpose != Purpose.PERSONALIZATION:
        logger.warning("The banner's answer came without a genuine wording version.")
        return False
    try:
        profile = identify(
            request=request,
            consents={Purpose.PERSONALIZATION: wording.version},
            consent_source=ConsentSource.BANNER,
        )
    except InvalidInput as err:
        logger.warning("Could not record the visitor's personalisation consent: %s", err)
        return False
    return profile is not None  # None: a staff member, who is not a customer


class ConsentChange(enum.Enum):
    """What became of a switch on the account page, for the message the customer sees."""

    SAVED = "saved"
    CONFIRMATION_SENT = "confirmation_sent"  # a new grant awaits the emailed link
    ALREADY_AWAITING = "already_awaiting"  # the link we mailed earlier still works: no new mail
    FAILED = "failed"


def consent_change(*, request: HttpRequest, purpose: str, granted: bool) -> ConsentChange:
    """A logged-in customer switched a purpose on or off on their account page."""
    try:
        profile = profile_find(identity_from(user=_user(request)))
        if granted:
            if profile is not None and _confirmation_link_live(profile=profile, purpose=purpose):
                # Recording the grant again would mail a second link (and void the first).
                return ConsentChange.ALREADY_AWAITING
            profile = identify(
                request=request,
                consents={purpose: wording_version(purpose)},
                consent_source=ConsentSource.PREFERENCE_CENTRE,
            )
            if profile is None:
                return ConsentChange.FAILED  # a staff account is not a customer's
            if consent_state(profile=profile, purpose=purpose) == ConsentState.PENDING:
                return ConsentChange.CONFIRMATION_SENT
            return ConsentChange.SAVED
        if profile is None:
            return ConsentChange.SAVED  # Nothing was ever granted: nothing to withdraw.
        consent_record(
            profile=profile,
            purpose=purpose,
            granted=False,
            source=ConsentSource.PREFERENCE_CENTRE,
            wording_version=wording_version(purpose),
            # Through the adapter: a malformed REMOTE_ADDR is logged and not stored, rather
            # than refusing the customer's withdrawal.
            ip_address=ip_address_for(request),
        )
    except InvalidInput as err:
        logger.warning("Could not record the consent change: %s", err)
        return ConsentChange.FAILED
    return ConsentChange.SAVED


def _confirmation_link_live(*, profile, purpose: str) -> bool:
    """Whether the purpose awaits confirmation through a link mailed recently enough to work.

    Once the link has expired, switching on again is how the customer gets a new one.
    """
    if consent_state(profile=profile, purpose=purpose) != ConsentState.PENDING:
        return False
    latest = ConsentRecord.objects.filter(profile=profile, purpose=purpose).order_by("-pk").first()
    max_age = dt.timedelta(days=app_settings.CONFIRMATION_LINK_MAX_AGE_DAYS)
    return latest is not None and latest.recorded_at > timezone.now() - max_age


def _user(request: HttpRequest):
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def guest_orders_forget(*, profile_ids) -> int:
    """The app is erasing these people: their guest orders in the shop keep no name or address.

    Orders placed while logged in stay with the shop account, which the erasure does not delete
    (the customer asks the shop for that). Runs inside the erasure's transaction.
    """
    from .models import Order as ShopOrder

    references = AppOrder.objects.filter(profile_id__in=profile_ids).values("external_id")
    return ShopOrder.objects.filter(reference__in=references, user__isnull=True).update(
        email="", first_name="", last_name=""
    )
