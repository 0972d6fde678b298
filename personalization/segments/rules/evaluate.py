"""Evaluating a validated rule for one profile in plain Python: the reference semantics.

The compiled query (``compile.py``) must select exactly the profiles for which
:func:`rule_evaluate` is true; property tests check that on random rules and data. The data of
the profile is read in a few queries (only what the rule needs), then every condition is
decided in Python, giving the profile's value too (which ``segment_explain`` shows).

Semantics, condition by condition:

- a comparison with a value the profile does not have (days since the first order of a
  profile without orders, a trait it lacks) is false, whatever the operator; an inferred
  trait less sure than ``TRAIT_MIN_CONFIDENCE`` counts as lacking, a given or recorded one
  always counts;
- ``ne`` and ``not_in`` are false for such a missing value too, and otherwise the opposite of
  ``eq`` and ``in``; ``{"not": ...}`` is the opposite of its child, always;
- only orders that count (not cancelled or refunded), open carts, product views not stored
  as sensitive, and products that are neither flagged sensitive nor in a sensitive category
  the settings do not allow, are counted.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cached_property
from typing import Any

from ...consent import consent_states
from ...models import (
    Cart,
    CartLine,
    CartStatus,
    Event,
    EventName,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductCategory,
    Profile,
    Segment,
    SegmentKind,
    Topic,
    TopicPreference,
    Trait,
)
from ...traits import TraitValue, trait_min_confidence
from ..lifecycle import lifecycle_members
from .schema import TRAIT_PREFIX, Op, Param, ValueType, field_spec
from .validate import blocked_category_names, category_value_key, money_value

DAY = dt.timedelta(days=1)
MAX_SEGMENT_NESTING = 16  # a guard only: validation refuses circles


class ProfileFacts:
    """What rules read about one profile, each part loaded on first use."""

    def __init__(self, *, profile: Profile, now: dt.datetime):
        self.profile = Profile.objects.get(pk=profile.pk)
        self.now = now
        self.blocked = blocked_category_names()
        self._segments: dict[str, bool] = {}
        self._products: dict[int, tuple[str, frozenset[str], bool]] = {}

    @cached_property
    def orders(self) -> list[tuple[dt.datetime, Decimal, set[int]]]:
        """Counted orders: (placed at, amount in the shop's currency, product ids)."""
        orders = {
            pk: (placed_at, total, set())
            for pk, placed_at, total in Order.objects.filter(
                profile=self.profile, status=OrderStatus.PLACED
            ).values_list("pk", "placed_at", "shop_total")
        }
        for order_id, product_id in OrderLine.objects.filter(order_id__in=list(orders)).values_list(
            "order_id", "product_id"
        ):
            orders[order_id][2].add(product_id)
        return list(orders.values())

    @cached_property
    def views(self) -> list[tuple[dt.datetime, int | None]]:
        return list(
            Event.objects.filter(
                profile=self.profile, name=EventName.PRODUCT_VIEWED, is_sensitive=False
            ).values_list("occurred_at", "product_id")
        )

    @cached_property
    def open_carts(self) -> list[tuple[Decimal, list[int]]]:
        carts = {
            pk: (total, [])
            for pk, total in Cart.objects.filter(
                profile=self.profile, status=CartStatus.OPEN
            ).values_list("pk", "shop_total")
        }
        for cart_id, product_id in CartLine.objects.filter(cart_id__in=list(carts)).values_list(
            "cart_id", "product_id"
        ):
            carts[cart_id][1].append(product_id)
        return list(carts.values())

    def products(self, ids: set[int]) -> dict[int, tuple[str, frozenset[str], bool]]:
        """{pk: (shop product id, category keys, usable by rules)}."""
        ids = {pk for pk in ids if pk is not None}
        known = self._products
        missing = ids - set(known)
        if missing:
            keys: dict[int, set[str]] = {pk: set() for pk in missing}
            names: dict[int, set[str]] = {pk: set() for pk in missing}
            for product_id, key, name in ProductCategory.objects.filter(
                product_id__in=missing
            ).values_list("product_id", "key", "name_key"):
                keys[product_id].add(key)
                names[product_id].add(name)
            for pk, external_id, flagged in Product.objects.filter(pk__in=missing).values_list(
                "pk", "external_id", "is_sensitive"
            ):
                usable = not flagged and not (names[pk] & self.blocked)
                known[pk] = (external_id, frozenset(keys[pk]), usable)
        return {pk: known[pk] for pk in ids if pk in known}

    @cached_property
    def traits(self) -> dict[str, TraitValue]:
        """{key: the trait}, every trait of the profile; ``counts`` says which rules count."""
        least = trait_min_confidence()
        return {
            trait.key: TraitValue.of(trait, min_confidence=least)
            for trait in Trait.objects.filter(profile=self.profile)
        }

    @cached_property
    def consent(self) -> dict[str, str]:
        return consent_states(profile=self.profile)

    @cached_property
    def topic_choices(self) -> dict[str, bool]:
        return dict(
            TopicPreference.objects.filter(profile=self.profile).values_list(
                "topic__slug", "subscribed"
            )
        )

    def in_segment(self, segment: Segment, *, nesting: int = 0) -> bool:
        if segment.slug not in self._segments:
            if segment.kind == SegmentKind.RULE:
                if nesting > MAX_SEGMENT_NESTING:
                    return False
                holds = rule_holds(segment.rule, facts=self, nesting=nesting + 1)
            else:
                row = Profile.objects.filter(pk=self.profile.pk)
                holds = lifecycle_members(segment.slug, now=self.now, profiles=row).exists()
            self._segments[segment.slug] = holds
        return self._segments[segment.slug]


def rule_evaluate(rule: dict, *, profile: Profile, now: dt.datetime) -> bool:
    """Whether ``profile`` meets the (validated) ``rule`` at ``now``."""
    return rule_holds(rule, facts=ProfileFacts(profile=profile, now=now))


def rule_holds(node: dict, *, facts: ProfileFacts, nesting: int = 0) -> bool:
    if "all" in node:
        return all(rule_holds(child, facts=facts, nesting=nesting) for child in node["all"])
    if "any" in node:
        return any(rule_holds(child, facts=facts, nesting=nesting) for child in node["any"])
    if "not" in node:
        return not rule_holds(node["not"], facts=facts, nesting=nesting)
    return condition_evaluate(node, facts=facts, nesting=nesting)[1]


def _values(condition: dict) -> list[Any]:
    value = condition["value"]
    return list(value) if condition["op"] in (Op.IN, Op.NOT_IN) else [value]


def _compare(value, op: str, target) -> bool:
    if value is None:
        return False
    return {
        Op.EQ: value == target,
        Op.NE: value != target,
        Op.GT: value > target,
        Op.GTE: value >= target,
        Op.LT: value < target,
        Op.LTE: value <= target,
    }[op]


def condition_evaluate(condition: dict, *, facts: ProfileFacts, nesting: int = 0):
    """(the profile's value, whether the condition holds) for one condition."""
    name, op = condition["field"], condition["op"]
    spec = field_spec(name)
    profile = facts.profile
    group, _dot, attribute = name.partition(".")
    negated = op in (Op.NE, Op.NOT_IN)

    if name.startswith(TRAIT_PREFIX):
        trait = facts.traits.get(name[len(TRAIT_PREFIX) :])
        present = trait is not None and trait.counts  # an unsure inference is not known
        if op == Op.EXISTS:
            return trait, present == condition["value"]
        if not present:
            return trait, False
        equal = isinstance(trait.value, str) and trait.value in _values(condition)
        return trait, (not equal) if negated else equal

    if group == "profile":
        if attribute == "identified":
            value = profile.email != ""
            return value, value == condition["value"]
        value = getattr(profile, attribute)
        found = value in _values(condition)
        return value, (not found) if negated else found

    if group == "stats":
        if attribute.startswith("days_since_"):
            at = getattr(profile, attribute[len("days_since_") :] + "_at")
            value = None if at is None else (facts.now - at) // DAY
            return value, _compare(value, op, condition["value"])
        value = getattr(profile, attribute)
        target = condition["value"]
        if spec.value_type == ValueType.MONEY:
            target = money_value(target)
        return value, _compare(value, op, target)

    since = None
    if Param.WITHIN_DAYS in condition:
        since = facts.now - condition[Param.WITHIN_DAYS] * DAY
    needed = condition.get(Param.AT_LEAST, 1)

    if group == "orders":
        orders = [o for o in facts.orders if since is None or o[0] >= since]
        if attribute == "count":
            return len(orders), _compare(len(orders), op, condition["value"])
        if attribute == "sum":
            total = sum((o[1] for o in orders), Decimal("0.00"))
            return total, _compare(total, op, money_value(condition["value"]))
        matches = _matcher(condition, spec, facts, set().union(*(o[2] for o in orders)))
        count = sum(1 for o in orders if any(matches(pk) for pk in o[2]))
        return count, count >= needed

    if group == "events":
        views = [v for v in facts.views if since is None or v[0] >= since]
        matches = _matcher(condition, spec, facts, {v[1] for v in views})
        count = sum(1 for v in views if matches(v[1]))
        return count, count >= needed

    if group == "cart":
        lines = [pk for _total, products in facts.open_carts for pk in products]
        if attribute == "lines":
            return len(lines), _compare(len(lines), op, condition["value"])
        if attribute == "value":
            total = sum((c[0] for c in facts.open_carts), Decimal("0.00"))
            return total, _compare(total, op, money_value(condition["value"]))
        matches = _matcher(condition, spec, facts, set(lines))
        value = any(matches(pk) for pk in lines)
        return value, value

    if group == "consent":
        value = facts.consent.get(attribute)
        found = value in _values(condition)
        return value, (not found) if negated else found

    if group == "topics":
        defaults = dict(
            Topic.objects.filter(slug__in=_values(condition)).values_list(
                "slug", "subscribed_by_default"
            )
        )
        value = [
            slug
            for slug in _values(condition)
            if slug in defaults and facts.topic_choices.get(slug, defaults[slug])
        ]
        return value, bool(value)

    if group == "segment":
        value = [
            other.slug
            for other in Segment.objects.filter(slug__in=_values(condition)).order_by("pk")
            if facts.in_segment(other, nesting=nesting)
        ]
        return value, bool(value)

    raise ValueError(f"Field {name!r} has no evaluation.")  # unreachable after validation


def _matcher(condition: dict, spec, facts: ProfileFacts, product_ids: set[int]):
    products = facts.products(product_ids)
    if spec.value_type == ValueType.PRODUCT:
        wanted = set(_values(condition))

        def matches(pk):
            info = products.get(pk)
            return info is not None and info[2] and info[0] in wanted
    else:
        keys = {category_value_key(value) for value in _values(condition)}

        def matches(pk):
            info = products.get(pk)
            return info is not None and info[2] and bool(info[1] & keys)

    return matches
