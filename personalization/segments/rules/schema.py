"""The allowlist of rule segments: every field a condition may name, the operators it takes,
the type of its value and the extra parameters it accepts. Nothing else is accepted.

A rule is a tree. A group is ``{"all": [...]}`` (every child holds), ``{"any": [...]}`` (at
least one holds) or ``{"not": {...}}``; a condition is
``{"field": ..., "op": ..., "value": ...}`` with, for some fields, ``within_days`` (only the
last so many days count) and ``at_least`` (how many orders or views are needed, default 1).
``docs/guide/segments.md`` describes each field with examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from ...changes import Change
from ...models import TRAIT_KEY, Purpose


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"
    EXISTS = "exists"


OP_LABELS: dict[str, Promise] = {
    Op.EQ: _("is"),
    Op.NE: _("is not"),
    Op.GT: _("is more than"),
    Op.GTE: _("is at least"),
    Op.LT: _("is less than"),
    Op.LTE: _("is at most"),
    Op.IN: _("is one of"),
    Op.NOT_IN: _("is none of"),
    Op.EXISTS: _("is present"),
}


class ValueType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"  # a whole number >= 0
    MONEY = "money"  # an amount >= 0 in the shop's currency, at most 2 decimals
    BOOLEAN = "boolean"
    PRODUCT = "product"  # the shop's product id
    CATEGORY = "category"  # a category path such as "Home > Kitchen" (this level or below)
    CONSENT_STATE = "consent_state"
    TOPIC = "topic"  # a topic slug
    SEGMENT = "segment"  # another segment's slug


class Param(StrEnum):
    WITHIN_DAYS = "within_days"
    AT_LEAST = "at_least"


NUMBER_OPS = (Op.EQ, Op.NE, Op.GT, Op.GTE, Op.LT, Op.LTE)
TEXT_OPS = (Op.EQ, Op.NE, Op.IN, Op.NOT_IN)
SET_OPS = (Op.EQ, Op.IN)  # "is X" / "is one of X, Y" for products, categories, topics, segments


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: Promise
    value_type: ValueType
    ops: tuple[Op, ...]
    params: frozenset[Param]
    depends_on: frozenset[str]  # the kinds of change (personalization.changes.Change) it reads

    @property
    def group(self) -> str:
        return self.name.split(".", 1)[0]


def _spec(name, label, value_type, ops, params=(), depends_on=()) -> FieldSpec:
    return FieldSpec(name, label, value_type, tuple(ops), frozenset(params), frozenset(depends_on))


_PROFILE = (Change.PROFILE,)
_ORDERS = (Change.ORDERS,)
_WINDOWED = (Param.WITHIN_DAYS, Param.AT_LEAST)

FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in [
        _spec("profile.country", _("country"), ValueType.TEXT, TEXT_OPS, (), _PROFILE),
        _spec("profile.locale", _("locale"), ValueType.TEXT, TEXT_OPS, (), _PROFILE),
        _spec("profile.timezone", _("timezone"), ValueType.TEXT, TEXT_OPS, (), _PROFILE),
        _spec(
            "profile.identified",
            _("has an email address"),
            ValueType.BOOLEAN,
            (Op.EQ,),
            (),
            _PROFILE,
        ),
        _spec("stats.orders_count", _("orders"), ValueType.INTEGER, NUMBER_OPS, (), _ORDERS),
        _spec("stats.total_spent", _("total spent"), ValueType.MONEY, NUMBER_OPS, (), _ORDERS),
        _spec(
            "stats.average_order_value",
            _("average order value"),
            ValueType.MONEY,
            NUMBER_OPS,
            (),
            _ORDERS,
        ),
        _spec(
            "stats.days_since_first_order",
            _("days since the first order"),
            ValueType.INTEGER,
            NUMBER_OPS,
            (),
            _ORDERS,
        ),
        _spec(
            "stats.days_since_last_order",
            _("days since the last order"),
            ValueType.INTEGER,
            NUMBER_OPS,
            (),
            _ORDERS,
        ),
        _spec(
            "orders.count",
            _("number of orders"),
            ValueType.INTEGER,
            NUMBER_OPS,
            (Param.WITHIN_DAYS,),
            _ORDERS,
        ),
        _spec(
            "orders.sum",
            _("amount ordered"),
            ValueType.MONEY,
            NUMBER_OPS,
            (Param.WITHIN_DAYS,),
            _ORDERS,
        ),
        _spec(
            "orders.bought_product",
            _("bought the product"),
            ValueType.PRODUCT,
            SET_OPS,
            _WINDOWED,
            _ORDERS,
        ),
        _spec(
            "orders.bought_category",
            _("bought in the category"),
            ValueType.CATEGORY,
            SET_OPS,
            _WINDOWED,
            _ORDERS,
        ),
        _spec(
            "events.viewed_product",
            _("viewed the product"),
            ValueType.PRODUCT,
            SET_OPS,
            _WINDOWED,
            (Change.EVENTS,),
        ),
        _spec(
            "events.viewed_category",
            _("viewed in the category"),
            ValueType.CATEGORY,
            SET_OPS,
            _WINDOWED,
            (Change.EVENTS,),
        ),
        _spec(
            "cart.lines",
            _("lines in open carts"),
            ValueType.INTEGER,
            NUMBER_OPS,
            (),
            (Change.CART,),
        ),
        _spec(
            "cart.value",
            _("value of open carts"),
            ValueType.MONEY,
            NUMBER_OPS,
            (),
            (Change.CART,),
        ),
        _spec(
            "cart.contains_product",
            _("open cart holds the product"),
            ValueType.PRODUCT,
            SET_OPS,
            (),
            (Change.CART,),
        ),
        _spec(
            "cart.contains_category",
            _("open cart holds a product in the category"),
            ValueType.CATEGORY,
            SET_OPS,
            (),
            (Change.CART,),
        ),
        *(
            _spec(
                f"consent.{purpose}",
                label,
                ValueType.CONSENT_STATE,
                TEXT_OPS,
                (),
                (Change.CONSENT,),
            )
            for purpose, label in Purpose.choices
        ),
        _spec(
            "topics.subscribed",
            _("hears about the topic"),
            ValueType.TOPIC,
            SET_OPS,
            (),
            (Change.PREFERENCES,),
        ),
        # What a segment condition depends on is what the named segment depends on.
        _spec("segment", _("belongs to the segment"), ValueType.SEGMENT, SET_OPS),
    ]
}

# traits.<key>: one of the profile's traits (personalization.models.Trait), compared as text;
# an inferred one counts only from TRAIT_MIN_CONFIDENCE on.
TRAIT_PREFIX = "traits."
TRAIT_OPS = (*TEXT_OPS, Op.EXISTS)


def trait_spec(name: str) -> FieldSpec:
    return _spec(name, _("trait"), ValueType.TEXT, TRAIT_OPS, (), (Change.TRAITS,))


def field_spec(name: str) -> FieldSpec | None:
    """The spec of a field name, or None when it is not in the allowlist."""
    if name in FIELDS:
        return FIELDS[name]
    if name.startswith(TRAIT_PREFIX) and TRAIT_KEY.match(name[len(TRAIT_PREFIX) :]):
        return trait_spec(name)
    return None


GROUP_KEYS = ("all", "any", "not")
CONDITION_KEYS = frozenset({"field", "op", "value", *Param})

# Bounds that keep one rule a reasonable query.
MAX_DEPTH = 8
MAX_CONDITIONS = 50
MAX_LIST = 100
MAX_TEXT = 255
MAX_INTEGER = 1_000_000_000
MAX_MONEY_DIGITS = 12
MAX_WITHIN_DAYS = 3650
