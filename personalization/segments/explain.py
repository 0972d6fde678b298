"""Why a profile is (or is not) in a segment: the definition, condition by condition, with the
profile's own value and whether each condition holds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from ..conf import app_settings
from ..models import (
    Cart,
    CartLine,
    ConsentState,
    Order,
    Profile,
    Purpose,
    Segment,
    SegmentKind,
)
from ..traits import TraitValue
from .lifecycle import Lifecycle
from .rules.evaluate import ProfileFacts, condition_evaluate
from .rules.schema import OP_LABELS, TRAIT_PREFIX, Param, field_spec
from .rules.validate import path_join

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Explanation:
    """One node of a segment's definition for one profile."""

    kind: str  # "all", "any", "not" or "condition"
    text: str  # the condition (or group) in words
    holds: bool
    value: Any = None  # the profile's value, for a condition
    path: str = ""
    children: tuple[Explanation, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "text": self.text, "holds": self.holds}
        if self.kind == "condition":
            data["value"] = _plain(self.value)
        if self.children:
            data["children"] = [child.as_dict() for child in self.children]
        return data


def _plain(value: Any) -> Any:
    if isinstance(value, TraitValue):
        return {
            "value": value.value,
            "source": value.source,
            "confidence": None if value.confidence is None else str(value.confidence),
            "counts": value.counts,
        }
    if isinstance(value, (str, int, float, bool, list)) or value is None:
        return value
    return str(value)


def segment_explain(
    *, segment: Segment, profile: Profile, now: dt.datetime | None = None
) -> Explanation:
    """The definition of ``segment`` evaluated for ``profile`` at ``now`` (default: now)."""
    facts = ProfileFacts(profile=profile, now=now or timezone.now())
    return _explain(segment, facts)


def profile_segments_explain(
    *, profile: Profile, now: dt.datetime | None = None
) -> list[tuple[Segment, Explanation]]:
    """Why ``profile`` is in each segment it belongs to now (an open stay), by name.

    The profile's data (orders, carts, consent, …) is read once for all of them, so the
    number of queries does not grow with its orders or its segments' conditions: one for the
    segments, a few for the data their definitions read, and one per lifecycle segment.
    """
    segments = Segment.objects.filter(
        memberships__profile=profile, memberships__exited_at__isnull=True
    ).order_by("name", "pk")
    facts = ProfileFacts(profile=profile, now=now or timezone.now())
    return [(segment, _explain(segment, facts)) for segment in segments]


def _explain(segment: Segment, facts: ProfileFacts) -> Explanation:
    if segment.kind == SegmentKind.RULE:
        return _node(segment.rule, facts, "")
    return _lifecycle(segment, facts)


def _node(node: dict, facts: ProfileFacts, path: str) -> Explanation:
    for key, text in (("all", _("all of")), ("any", _("any of"))):
        if key in node:
            here = path_join(path, key)
            children = tuple(
                _node(child, facts, path_join(here, index)) for index, child in enumerate(node[key])
            )
            holds = (
                all(c.holds for c in children) if key == "all" else any(c.holds for c in children)
            )
            return Explanation(kind=key, text=text, holds=holds, path=path, children=children)
    if "not" in node:
        child = _node(node["not"], facts, path_join(path, "not"))
        return Explanation(
            kind="not", text=_("not"), holds=not child.holds, path=path, children=(child,)
        )
    value, holds = condition_evaluate(node, facts=facts)
    return Explanation(
        kind="condition", text=condition_text(node), holds=holds, value=value, path=path
    )


def condition_text(condition: dict) -> str:
    """A condition in words: 'bought in the category is Coffee, in the last 90 days'."""
    name = condition["field"]
    spec = field_spec(name)
    label = str(spec.label) if spec else name
    if name.startswith(TRAIT_PREFIX):
        label = _("trait %(key)s") % {"key": name[len(TRAIT_PREFIX) :]}
    value = condition["value"]
    shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    if isinstance(value, bool):
        shown = _("yes") if value else _("no")
    text = f"{label} {OP_LABELS.get(condition['op'], condition['op'])} {shown}"
    if Param.AT_LEAST in condition:
        text += ", " + _("at least %(n)d times") % {"n": condition[Param.AT_LEAST]}
    if Param.WITHIN_DAYS in condition:
        text += ", " + _("in the last %(n)d days") % {"n": condition[Param.WITHIN_DAYS]}
    return text


def _condition(text: str, value: Any, holds: bool) -> Explanation:
    return Explanation(kind="condition", text=text, holds=holds, value=value)


def _lifecycle(segment: Segment, facts: ProfileFacts) -> Explanation:
    profile, now = facts.profile, facts.now
    slug = segment.slug
    parts: list[Explanation] = []
    orders = facts.orders
    if slug == Lifecycle.LEAD:
        state = facts.consent.get(Purpose.EMAIL_MARKETING)
        parts.append(
            _condition(
                _("email marketing consent (needs granted)"), state, state == ConsentState.GRANTED
            )
        )
        parts.append(
            _condition(_("orders (needs none)"), profile.orders_count, profile.orders_count == 0)
        )
    elif slug == Lifecycle.NEW_CUSTOMER:
        limit = app_settings.NEW_CUSTOMER_DAYS
        days = None if profile.first_order_at is None else (now - profile.first_order_at) // DAY
        parts.append(
            _condition(
                _("days since the first order (needs at most %(n)d)") % {"n": limit},
                days,
                profile.first_order_at is not None and profile.first_order_at >= now - limit * DAY,
            )
        )
    elif slug == Lifecycle.LAPSED:
        limit = app_settings.LAPSED_AFTER_DAYS
        days = None if profile.last_order_at is None else (now - profile.last_order_at) // DAY
        parts.append(
            _condition(
                _("orders (needs at least 1)"), profile.orders_count, profile.orders_count > 0
            )
        )
        parts.append(
            _condition(
                _("days since the last order (needs more than %(n)d)") % {"n": limit},
                days,
                profile.last_order_at is not None and profile.last_order_at < now - limit * DAY,
            )
        )
    elif slug == Lifecycle.LOYAL:
        within, minimum = app_settings.LOYAL_WITHIN_DAYS, app_settings.LOYAL_MIN_ORDERS
        recent = sum(
            1 for placed_at, _total, _products in orders if placed_at >= now - within * DAY
        )
        parts.append(
            _condition(
                _("orders in the last %(days)d days (needs at least %(n)d)")
                % {"days": within, "n": minimum},
                recent,
                recent >= minimum,
            )
        )
    elif slug == Lifecycle.CART_ABANDONER:
        after = dt.timedelta(minutes=app_settings.CART_ABANDONED_AFTER_MINUTES)
        within = app_settings.CART_ABANDONED_WITHIN_DAYS * DAY
        abandoned = 0
        carts = Cart.objects.open().filter(
            profile=profile, source_updated_at__gte=now - within, source_updated_at__lte=now - after
        )
        for cart in carts:
            has_lines = CartLine.objects.filter(cart=cart).exists()
            ordered = Order.objects.counted().filter(
                profile=profile, placed_at__gt=cart.source_updated_at
            )
            if has_lines and not ordered.exists():
                abandoned += 1
        parts.append(
            _condition(
                _(
                    "open carts with lines, last changed %(after)d minutes to %(days)d days ago, "
                    "with no order since (needs at least 1)"
                )
                % {"after": app_settings.CART_ABANDONED_AFTER_MINUTES, "days": within.days},
                abandoned,
                abandoned > 0,
            )
        )
    return Explanation(
        kind="all",
        text=_("all of"),
        holds=facts.in_segment(segment),
        children=tuple(parts),
    )
