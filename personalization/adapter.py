"""The adapter: the one place a shop customises how the app sees it.

Subclass :class:`DefaultAdapter`, override what differs in your shop, and name your class in
``PERSONALIZATION["ADAPTER"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from .conf import app_settings
from .exceptions import UnconvertibleCurrency
from .validation import request_ip_address

if TYPE_CHECKING:
    import datetime as dt
    from decimal import Decimal

    from django.http import HttpRequest


# What the adapter tells about who is behind a request; identity resolution
# (personalization.identity, which re-exports it) turns it into a profile.
@dataclass(frozen=True)
class Identity:
    """Whatever is known about who did something. At least one part must be set."""

    email: str = ""
    user: Any = None
    anonymous_id: str = ""
    # A shop user was named who is not a customer (DefaultAdapter.is_customer), and left out.
    not_customer: bool = False

    def __bool__(self) -> bool:
        return bool(self.email or self.user is not None or self.anonymous_id)

    @property
    def only_not_customer(self) -> bool:
        """Nothing but a user who is not a customer: there is no one to record anything for."""
        return self.not_customer and not self


class DefaultAdapter:
    def is_customer(self, user) -> bool:
        """Whether this shop user is a customer, whose account gets a profile.

        Staff and superusers are not: signing in to the admin, or browsing the shop while
        signed in as staff, makes no profile and joins no history (their requests count as
        a visitor nobody knows, see ``docs/guide/integrate.md``). Override this to decide
        otherwise, e.g. ``return True`` in a shop whose staff also buy as customers.
        """
        return not (getattr(user, "is_staff", False) or getattr(user, "is_superuser", False))

    def identity_for_request(self, request: HttpRequest) -> Identity:
        """Who is behind this request: the logged-in user and the anonymous-id cookie.

        Nobody, for a user who is not a customer (:meth:`is_customer`): their browser is not
        given an anonymous id either.
        """
        user = getattr(request, "user", None)
        if user is not None and not user.is_authenticated:
            user = None
        if user is not None and not self.is_customer(user):
            return Identity(not_customer=True)
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

    def incentive_code(self, *, profile, flow: str, step: int, key: str) -> str:
        """A code (a discount, free shipping) for a flow step that asks for an incentive, or
        ``""`` for none.

        ``flow`` is the flow's kind (``"abandoned_cart"``, ``"win_back"``, ``"welcome"``,
        ``"loyal"``, ``"birthday"``, …) and ``step`` its step number, so that win-back's
        offers can rise from step to step. ``key`` names the message (its ledger dedupe key):
        a message that is rendered again (a retry after the email service failed) asks again
        with the same key, so return the same code for it. Called while the email is put
        together, for each recipient; an exception fails that message alone.

        The default gives none: a flow never promises an incentive the shop did not give (the
        default copy shows the code only when there is one).
        """
        return ""

    def exchange_rate(self, *, from_currency: str, to_currency: str, at: dt.datetime) -> Decimal:
        """How many units of ``to_currency`` one unit of ``from_currency`` was worth at ``at``.

        Asked for whenever an order or a cart arrives in another currency than the shop's
        (``to_currency`` is ``PERSONALIZATION["CURRENCY"]``; ``at`` is when the order was
        placed or the cart changed; an import asks once per currency and UTC day, at 00:00
        UTC). Return a positive ``Decimal``; raise
        :class:`~personalization.exceptions.UnconvertibleCurrency` for a pair or a date you
        have no rate for. The app multiplies and rounds to cents.

        The default knows no rates and refuses, so amounts in different currencies are never
        added up as if they were one.
        """
        raise UnconvertibleCurrency(
            _(
                "%(from)s is not the shop's currency (PERSONALIZATION['CURRENCY'] = %(to)s) and "
                "the adapter cannot convert it: implement exchange_rate() on the class named "
                "in PERSONALIZATION['ADAPTER']."
            )
            % {"from": from_currency, "to": to_currency},
            field="currency",
        )


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
