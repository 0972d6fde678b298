"""Rendering a marketing email: the copy over plain data, in the shop's layout, ready for mail
clients (CSS inlined with css-inline, a plain-text part (:mod:`.plaintext`), the shop's UTM
parameters on its links, RFC 8058 one-click unsubscribe headers).

The copy is compiled once per campaign and variant (:class:`Copy`); each recipient costs one
context (:func:`recipient_context`: plain data only, with recommendations and cart lines read
only when the copy shows them) and one render (:func:`email_render`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import css_inline
from django.conf import settings
from django.template import Context
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from ..adapter import get_adapter
from ..conf import app_settings
from ..models import (
    Campaign,
    CartLine,
    Event,
    EventName,
    FlowEntry,
    FlowKind,
    FlowStep,
    OrderLine,
    Product,
    Profile,
    Variant,
)
from ..models.catalogue import category_or_below
from ..preferences.links import preference_links
from ..recommendations import recommend_for_profile, recommend_for_profiles, recommend_popular
from .plaintext import html_to_text
from .templates import (
    CART_KEY,
    RECOMMENDATIONS_KEY,
    CartLinesNode,
    RecommendationsNode,
    mail_template_compile,
    uses,
)

MAX_RECOMMENDATIONS = 12
_HREF = re.compile(r'href="([^"]+)"')


@dataclass(frozen=True)
class Copy:
    """A campaign's (or flow step's) copy for one variant, compiled."""

    subject: object
    preheader: object
    body: object
    needs_recommendations: bool
    needs_cart: bool
    utm_campaign: str = ""
    topic_name: str = ""

    @classmethod
    def compile(
        cls, *, subject: str, preheader: str, body: str, utm_campaign: str = "", topic_name=""
    ) -> Copy:
        compiled = [mail_template_compile(text) for text in (subject, preheader, body)]
        return cls(
            *compiled,
            needs_recommendations=any(uses(c, RecommendationsNode) for c in compiled),
            needs_cart=any(uses(c, CartLinesNode) for c in compiled),
            utm_campaign=utm_campaign,
            topic_name=topic_name,
        )


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Extras:
    """What a message's source adds to the recipient's context (a flow step's incentive code,
    browse abandonment's category)."""

    incentive_code: str = ""
    # Picks from this category only (browse abandonment), leaving out ``picks_exclude`` (what
    # the customer looked at, or just bought), with reasons naming no product when
    # ``picks_anonymous`` (their own views are not quoted back at them).
    picks_category: str = ""
    picks_exclude: frozenset[int] = frozenset()
    picks_anonymous: bool = False
    # The cart the message is about (an abandoned-cart reminder): its lines are shown in
    # either variant, being the reason for the message rather than a use of the customer's
    # data for tailoring.
    cart_id: int | None = None


NO_EXTRAS = Extras()


def greeting_text(*, first_name: str, by_name: bool) -> str:
    """The salutation, in the active language."""
    if by_name and first_name:
        return _("Hi %(name)s,") % {"name": first_name}
    return _("Hello,")


def _product_data(recommendation) -> dict:
    product = recommendation.product
    return {
        "title": product.title,
        "url": product.url,
        "image_url": product.image_url,
        "price": str(product.price) if product.price is not None else "",
        "currency": product.currency,
        "why": recommendation.reason_text,
    }


def recipient_context(
    *,
    profile: Profile,
    variant: str,
    by_name: bool,
    copy: Copy,
    now: dt.datetime,
    shared: dict | None = None,
    version_read: bool = False,
    extras: Extras = NO_EXTRAS,
) -> dict:
    """The plain data the copy is rendered over, for one recipient (in their language).

    ``shared``: a dict kept for a batch of recipients, where what is the same for all of them
    (the generic variant's popular picks, per language) is read once, and where
    :func:`recommendations_prefetch` put the tailored picks of the whole batch.
    ``version_read``: the profile's ``link_version`` was just read (for the links' token)."""
    tailored = variant == Variant.TAILORED
    links = preference_links(profile=profile, version_read=version_read)
    context = {
        "greeting": greeting_text(first_name=profile.first_name, by_name=by_name),
        "first_name": profile.first_name if by_name else "",
        "shop_name": shop_name(),
        "site_url": app_settings.SITE_URL or "",
        "preference_centre_url": links.manage,
        "unsubscribe_url": links.unsubscribe,
        "personalized": False,
        "_headers": links.headers,
    }
    if extras.incentive_code:
        context["incentive_code"] = extras.incentive_code
    if copy.needs_recommendations and (extras.picks_category or extras.picks_exclude):
        context.update(_picks_for(profile, extras, tailored=tailored, now=now))
    elif copy.needs_recommendations and tailored:
        picks = (shared or {}).get(_TAILORED, {}).get(profile.pk) or recommend_for_profile(
            profile=profile, limit=MAX_RECOMMENDATIONS, now=now
        )
        context["personalized"] = picks.personalized
        context[RECOMMENDATIONS_KEY] = [_product_data(item) for item in picks.items]
    elif copy.needs_recommendations:
        # The generic variant: the same popular picks for everyone, never tailored ones.
        shared = {} if shared is None else shared
        key = ("popular", translation.get_language())
        if key not in shared:
            picks = recommend_popular(limit=MAX_RECOMMENDATIONS, now=now)
            shared[key] = [_product_data(item) for item in picks.items]
        context[RECOMMENDATIONS_KEY] = shared[key]
    if copy.needs_cart and (tailored or extras.cart_id is not None):
        # Never a sensitive product in an email, whatever the cart holds.
        lines = CartLine.objects.filter(cart__profile=profile, cart__status="open").exclude(
            product__in=Product.objects.sensitive().values("pk")
        )
        if extras.cart_id is not None:
            lines = lines.filter(cart_id=extras.cart_id)
        context[CART_KEY] = [
            {
                "title": line.product.title,
                "url": line.product.url,
                "image_url": line.product.image_url,
                "quantity": line.quantity,
                "price": str(line.unit_price),
            }
            for line in lines.select_related("product").order_by("pk")
        ]
    return context


def _picks_for(profile: Profile, extras: Extras, *, tailored: bool, now: dt.datetime):
    """Picks as a flow step's extras ask: within a category, without some products (in either
    variant: leaving out what someone just bought is tact, not tailoring), with reasons that
    name no product."""
    limit = MAX_RECOMMENDATIONS + len(extras.picks_exclude)
    category = extras.picks_category or None
    if tailored:
        picks = recommend_for_profile(profile=profile, limit=limit, category=category, now=now)
    else:
        picks = recommend_popular(limit=limit, category=category, now=now)
    items = []
    for item in picks.items:
        if item.product.pk in extras.picks_exclude:
            continue
        data = _product_data(item)
        if extras.picks_anonymous and item.because_of is not None:
            data["why"] = ""
        items.append(data)
    return {"personalized": picks.personalized, RECOMMENDATIONS_KEY: items[:MAX_RECOMMENDATIONS]}


# Flows whose messages pick their own products (see flow_extras): not from a batch's prefetch.
OWN_PICKS_FLOWS = frozenset({FlowKind.BROWSE_ABANDONMENT, FlowKind.POST_PURCHASE})


_TAILORED = "tailored"


def recommendations_prefetch(*, shared: dict, profiles: list[Profile], now: dt.datetime) -> None:
    """Read the tailored picks of a batch of recipients at once (a few set-based queries instead
    of a handful per recipient), for :func:`recipient_context` to take from ``shared``."""
    if profiles:
        shared[_TAILORED] = recommend_for_profiles(
            profiles=profiles, limit=MAX_RECOMMENDATIONS, now=now
        )


def shop_name() -> str:
    site = app_settings.SITE_URL or ""
    return urlsplit(site).hostname or ""


def utm_tagged(html: str, *, campaign: str, own: tuple[str, ...] = ()) -> str:
    """Add the shop's UTM parameters to every link into SITE_URL, but not to the customer's
    own links (``own``: the preference centre and unsubscribe addresses), which are not
    marketing and must work exactly as signed."""
    params = dict(app_settings.UTM_PARAMETERS)
    site = (app_settings.SITE_URL or "").rstrip("/")
    if not params or not site:
        return html
    if campaign:
        params["utm_campaign"] = campaign

    def tag(match: re.Match) -> str:
        url = match.group(1).replace("&amp;", "&")
        if not url.startswith(site) or any(
            own_link and url.startswith(own_link) for own_link in own
        ):
            return match.group(0)
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        for key, value in params.items():
            query.setdefault(key, value)
        return f'href="{escape(urlunsplit(parts._replace(query=urlencode(query))))}"'

    return _HREF.sub(tag, html)


@cache
def _inliner() -> css_inline.CSSInliner:
    # Styles stay in <head> too: media queries (dark mode, narrow screens) cannot be inlined.
    return css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)


def layout_render(*, subject: str, preheader: str, body: str, context: dict, topic_name: str):
    """The shop's layout (``EMAIL_LAYOUT_TEMPLATE``) around a rendered body."""
    return render_to_string(
        app_settings.EMAIL_LAYOUT_TEMPLATE,
        {
            "subject": subject,
            "preheader": preheader,
            "body": body,
            "shop_name": context.get("shop_name", ""),
            "site_url": context.get("site_url", ""),
            "preference_centre_url": context["preference_centre_url"],
            "unsubscribe_url": context["unsubscribe_url"],
            "topic_name": topic_name,
        },
    )


def email_render(*, copy: Copy, context: dict, to: str) -> Email:
    """Render one recipient's email (in the active language: the caller activates theirs)."""
    data = Context({key: value for key, value in context.items() if key != "_headers"})
    subject = " ".join(copy.subject.render(data).split())
    preheader = " ".join(copy.preheader.render(data).split())
    body = copy.body.render(data)
    html = layout_render(
        subject=subject,
        preheader=preheader,
        body=mark_safe(body),  # rendered with autoescape by the mail engine
        context=context,
        topic_name=copy.topic_name,
    )
    own = (context["preference_centre_url"], context["unsubscribe_url"])
    html = _inliner().inline(utm_tagged(html, campaign=copy.utm_campaign, own=own))
    return Email(
        to=to,
        subject=subject,
        html=html,
        text=html_to_text(html),
        headers=dict(context["_headers"]),
    )


def campaign_copy(*, campaign: Campaign, variant: str) -> Copy:
    """A campaign's copy for a variant (the generic one falls back on the tailored texts)."""
    generic = variant == Variant.GENERIC
    return Copy.compile(
        subject=(generic and campaign.generic_subject) or campaign.subject,
        preheader=campaign.preheader,
        body=(generic and campaign.generic_body) or campaign.body,
        utm_campaign=campaign.utm_campaign,
        topic_name=campaign.topic.name,
    )


def step_copy(*, step: FlowStep, variant: str) -> Copy:
    """A flow step's copy for a variant (the generic one falls back on the tailored texts)."""
    generic = variant == Variant.GENERIC
    topic = step.flow.topic
    return Copy.compile(
        subject=(generic and step.generic_subject) or step.subject,
        preheader=step.preheader,
        body=(generic and step.generic_body) or step.body,
        utm_campaign=step.utm_campaign,
        topic_name=topic.name if topic else "",
    )


def flow_extras(*, step: FlowStep, entry: FlowEntry | None, profile: Profile, key: str) -> Extras:
    """A flow message's extras: the shop's incentive code when the step asks for one (the
    adapter may give none: then the copy promises nothing), and browse abandonment's area."""
    code = ""
    if step.incentive:
        code = get_adapter().incentive_code(
            profile=profile, flow=step.flow.kind, step=step.position, key=key
        )
    if entry is not None and step.flow.kind == FlowKind.ABANDONED_CART:
        return Extras(incentive_code=code or "", cart_id=entry.cart_id)
    if entry is not None and entry.order_id and step.flow.kind == FlowKind.POST_PURCHASE:
        bought = OrderLine.objects.filter(order_id=entry.order_id).values_list("product_id")
        return Extras(incentive_code=code or "", picks_exclude=frozenset(pk for (pk,) in bought))
    if entry is None or step.flow.kind != FlowKind.BROWSE_ABANDONMENT:
        return Extras(incentive_code=code or "")
    # Everything they looked at in the area (or below it) lately, up to now.
    area = entry.category
    watched = Event.objects.filter(
        category_or_below(area, "product__category_path"),
        profile=profile,
        name=EventName.PRODUCT_VIEWED,
        occurred_at__gte=entry.triggered_at - dt.timedelta(days=7),
    ).values_list("product_id", flat=True)
    return Extras(
        incentive_code=code or "",
        picks_category=entry.category,
        picks_exclude=frozenset(watched),
        picks_anonymous=True,
    )


def email_for(
    *,
    copy: Copy,
    profile: Profile,
    variant: str,
    by_name: bool,
    now: dt.datetime,
    shared: dict | None = None,
    version_read: bool = False,
    extras: Extras = NO_EXTRAS,
) -> Email:
    """One recipient's email, with the greeting, the picks' reasons and the layout in their
    language (``shared``: see :func:`recipient_context`)."""
    with translation.override(profile.locale or settings.LANGUAGE_CODE):
        context = recipient_context(
            profile=profile,
            variant=variant,
            by_name=by_name,
            copy=copy,
            now=now,
            shared=shared,
            version_read=version_read,
            extras=extras,
        )
        return email_render(copy=copy, context=context, to=profile.email or "")
