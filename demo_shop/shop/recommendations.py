"""The shop's recommendation shelves: the app's picks as the shop's own products.

The app recommends from its catalogue mirror (``personalization.models.Product``, whose
``external_id`` is the shop product's primary key, see ``integration.product_payload``). A
shelf maps the picks back to the shop's products in one query, whatever the number of picks,
and chooses a heading that says no more than the picks do: "Customers also bought" only when a
pick was bought together with the product, "For you" only when the customer's own history
shaped the picks (``Recommendations.personalized``).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from personalization.identity import identity_from, profile_find
from personalization.models import Product as AppProduct
from personalization.models import Profile
from personalization.recommendations import (
    Reason,
    Recommendations,
    recommend_for_product,
    recommend_for_profile,
)

from .models import Product

if TYPE_CHECKING:
    from django.http import HttpRequest

SHELF_SIZE = 4


@dataclass(frozen=True)
class Pick:
    """One product on a shelf, with the "why am I seeing this" line."""

    product: Product
    reason: str
    reason_text: str


@dataclass(frozen=True)
class Shelf:
    heading: str | Promise
    picks: tuple[Pick, ...]
    personalized: bool

    def __bool__(self) -> bool:
        return bool(self.picks)

    def __len__(self) -> int:
        return len(self.picks)


EMPTY = Shelf(heading="", picks=(), personalized=False)


def visitor_profile(request: HttpRequest) -> Profile | None:
    """The profile the app keeps for whoever is behind ``request`` (a logged-in customer, or a
    visitor its anonymous-id cookie names); None for a stranger or staff."""
    return profile_find(identity_from(request=request))


def shop_picks(
    recommendations: Recommendations, *, leave_out: Set[int] = frozenset()
) -> tuple[Pick, ...]:
    """The picks as the shop's products, best first: one query, however many picks.

    Only what the shop still sells in stock: the mirror may be a moment behind the shop.
    ``leave_out``: shop product ids not to show (e.g. those already on the page).
    """
    ids: dict[int, int] = {}  # shop product id → position among the picks
    for position, item in enumerate(recommendations.items):
        try:
            ids.setdefault(int(item.product.external_id), position)
        except ValueError:  # not one of ours (an import from elsewhere)
            continue
    products = Product.objects.active().filter(stock__gt=0).exclude(pk__in=leave_out).in_bulk(ids)
    items = recommendations.items
    return tuple(
        Pick(
            product=products[pk],
            reason=items[position].reason,
            reason_text=items[position].reason_text,
        )
        for pk, position in ids.items()
        if pk in products
    )


def _heading_for_product(picks: tuple[Pick, ...]) -> str | Promise:
    reasons = {pick.reason for pick in picks}
    if Reason.BOUGHT_TOGETHER in reasons:
        return _("Customers also bought")
    if Reason.VIEWED_TOGETHER in reasons:
        return _("Customers also viewed")
    return _("Popular right now")


def product_shelf(*, request: HttpRequest, product: Product, limit: int = SHELF_SIZE) -> Shelf:
    """What to show next to ``product``: what goes with it, or else what sells.

    The visitor's profile is passed when there is one: the app then leaves out what they
    bought or have in their cart, if (and only if) they consented to personalisation.
    """
    mirror = AppProduct.objects.filter(external_id=str(product.pk)).first()
    if mirror is None:
        return EMPTY
    result = recommend_for_product(product=mirror, limit=limit, profile=visitor_profile(request))
    picks = shop_picks(result, leave_out={product.pk})
    return Shelf(heading=_heading_for_product(picks), picks=picks, personalized=result.personalized)


def customer_shelf(
    *,
    request: HttpRequest,
    limit: int = SHELF_SIZE,
    personal_heading: str | Promise = "",
    leave_out: Set[int] = frozenset(),
) -> Shelf:
    """Picks for the visitor from their own purchases, views and cart when they allow it
    (``personal_heading``, "For you" by default), else what sells ("Popular right now").
    Empty for a visitor the app does not know."""
    profile = visitor_profile(request)
    if profile is None:
        return EMPTY
    result = recommend_for_profile(profile=profile, limit=limit)
    picks = shop_picks(result, leave_out=leave_out)
    heading = (personal_heading or _("For you")) if result.personalized else _("Popular right now")
    return Shelf(heading=heading, picks=picks, personalized=result.personalized)
