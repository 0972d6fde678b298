"""Compiling a validated rule into one ORM condition over profiles (set-based, for everyone).

Every condition becomes a ``Q`` that is true or false for each profile, never unknown (a
missing value makes a comparison false and its negation true), so ``not`` behaves as in the
Python evaluation (``evaluate.py``), which states the same semantics for one profile. Values
only ever reach SQL as query parameters; field names come from the allowlist.
"""

from __future__ import annotations

import datetime as dt
import operator
from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
)

from ...consent import consent_in_states
from ...models import (
    Cart,
    CartLine,
    CartStatus,
    Event,
    EventName,
    Order,
    OrderLine,
    OrderStatus,
    ProductCategory,
    Profile,
    Segment,
    SegmentKind,
    Topic,
    TopicPreference,
    Trait,
)
from ...traits import trait_min_confidence
from ..lifecycle import lifecycle_members
from .schema import TRAIT_PREFIX, Op, Param, ValueType, field_spec
from .validate import blocked_category_names, category_value_key, money_value

DAY = dt.timedelta(days=1)
_LOOKUPS = {
    Op.EQ: Exact,
    Op.GT: GreaterThan,
    Op.GTE: GreaterThanOrEqual,
    Op.LT: LessThan,
    Op.LTE: LessThanOrEqual,
}
_PYTHON_OPS = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.GT: operator.gt,
    Op.GTE: operator.ge,
    Op.LT: operator.lt,
    Op.LTE: operator.le,
}
_MONEY = DecimalField(max_digits=14, decimal_places=2)
_CORRELATED = object()  # rows of the profile in the outer query (the default)


def rule_q(rule: dict, *, now: dt.datetime) -> Q:
    """The condition a profile meets to be in a segment defined by ``rule`` (validated), as
    correlated subqueries on the profile's row: the form for evaluating a few profiles."""
    return _Compiler(now=now).node(rule)


def rule_members(
    rule: dict, *, now: dt.datetime, profiles: QuerySet[Profile] | None = None
) -> QuerySet[Profile]:
    """The profiles (of ``profiles``, default all) that meet ``rule`` at ``now``.

    The form for everybody: what every member must meet (the rule itself, or a child of its
    top ``all``) becomes one ``id IN (…)`` when it is a count or an amount of orders that
    zero does not meet (grouped once over the orders), or an ``any`` group of conditions on
    orders, views or carts (``… UNION …``): PostgreSQL joins those once instead of counting
    per profile (see B1-rule in docs/benchmarks.md). The same members as :func:`rule_q`.
    """
    profiles = Profile.objects.all() if profiles is None else profiles
    return profiles.filter(_Compiler(now=now, sets=True).top(rule))


def _values(condition: dict) -> list[Any]:
    value = condition["value"]
    return list(value) if condition["op"] in (Op.IN, Op.NOT_IN) else [value]


def _meets(number, op: str, value) -> bool:
    """``number op value`` in Python, for the number operators."""
    return _PYTHON_OPS[op](number, value)


def _compare(expression, op: str, value) -> Q:
    """``expression op value`` for an expression that is never NULL."""
    if op == Op.NE:
        return ~Q(Exact(expression, value))
    return Q(_LOOKUPS[op](expression, value))


class _Compiler:
    def __init__(self, *, now: dt.datetime, sets: bool = False):
        self.now = now
        self.sets = sets  # may compile what every member must meet as sets (rule_members)
        self.blocked = blocked_category_names()
        self.min_confidence = trait_min_confidence()

    def top(self, node: dict) -> Q:
        """The rule, with what every member must meet (the rule itself, or each child of its
        top "all") as a set of profile ids where it is one of the sets below, written first."""
        if not self.sets:
            return self.node(node)
        sets, others = Q(), Q()
        for child in node["all"] if "all" in node else [node]:
            found = self._as_set(child)
            if found is None:
                others &= self.node(child)
            else:
                sets &= found
        # The sets first: PostgreSQL searches the join order a few items at a time
        # (join_collapse_limit) in the order they are written. After the sets, the correlated
        # conditions (EXISTS) are probed for the profiles left; before them, it may compute
        # one for everybody (B1-rule: a year of orders with coffee, 3 s of 4 when first).
        return sets & others

    def _as_set(self, node: dict) -> Q | None:
        """``node`` as ``id IN (…)`` if it is one of the sets below, else None. Only where it
        is met positively (NOT IN would read a NULL as unknown)."""
        if "any" in node:
            # An "any" group of conditions met by having rows: one IN (… UNION …), as an OR
            # of correlated subqueries cannot be joined.
            sets = [self._profiles_with_rows(child) for child in node["any"]]
            if any(found is None for found in sets):
                return None
            union = sets[0]
            for other in sets[1:]:
                union = union.union(other)
            return Q(pk__in=union)
        if node.get("field") in ("orders.count", "orders.sum"):
            # A count or amount of orders: grouped once over the orders, as a correlated
            # count cannot be joined. Not a bought / viewed / in-cart condition: as EXISTS,
            # PostgreSQL probes it for the few profiles left, where a set reads every order.
            found = self._orders_totalled(node, field_spec(node["field"]))
            if found is not None:
                return Q(pk__in=found)
        return None

    def _profiles_with_rows(self, node: dict) -> QuerySet | None:
        """The profile ids meeting a condition on orders, views or carts, uncorrelated; None
        for any other node, and for a count or an amount that a profile without rows meets."""
        name = node.get("field", "")
        spec = field_spec(name) if name else None
        if name in ("orders.count", "orders.sum"):
            return self._orders_totalled(node, spec)
        if name in ("orders.bought_product", "orders.bought_category"):
            lines = OrderLine.objects.filter(order=OuterRef("pk")).filter(
                self._product_match(node, spec, "product__")
            )
            rows = self._orders(node, profile=None).filter(Exists(lines))
        elif name in ("events.viewed_product", "events.viewed_category"):
            rows = self._views(node, profile=None)
        elif name in ("cart.contains_product", "cart.contains_category"):
            rows = self._open_lines(profile=None).filter(
                self._product_match(node, spec, "product__")
            )
            return rows.values_list("cart__profile", flat=True)
        else:
            return None
        rows = rows.filter(profile__isnull=False).values("profile")
        needed = node.get(Param.AT_LEAST, 1)
        if needed > 1:
            rows = rows.annotate(n=Count("pk")).filter(n__gte=needed)
        return rows.values_list("profile", flat=True)

    def node(self, node: dict) -> Q:
        if "all" in node:
            result = Q()
            for child in node["all"]:
                result &= self.node(child)
            return result
        if "any" in node:
            children = [self.node(child) for child in node["any"]]
            result = children[0]
            for child in children[1:]:
                result |= child
            return result
        if "not" in node:
            return ~self.node(node["not"])
        return self.condition(node)

    def condition(self, condition: dict) -> Q:
        name = condition["field"]
        spec = field_spec(name)
        if name.startswith(TRAIT_PREFIX):
            return self.trait(name[len(TRAIT_PREFIX) :], condition)
        group, _dot, attribute = name.partition(".")
        if group == "consent":
            return self._consent(attribute, condition)
        method = getattr(self, f"{group}_{attribute}" if attribute else group)
        return method(condition, spec)

    # --- profile ----------------------------------------------------------------------------

    def _text(self, column: str, condition: dict) -> Q:
        op, values = condition["op"], _values(condition)
        match = Q(**{f"{column}__in": values})
        return ~match if op in (Op.NE, Op.NOT_IN) else match

    def profile_country(self, condition, spec) -> Q:
        return self._text("country", condition)

    def profile_locale(self, condition, spec) -> Q:
        return self._text("locale", condition)

    def profile_timezone(self, condition, spec) -> Q:
        return self._text("timezone", condition)

    def profile_identified(self, condition, spec) -> Q:
        identified = ~Q(email="")
        return identified if condition["value"] else ~identified

    def trait(self, key: str, condition: dict) -> Q:
        # A semi-join over the profile's trait with this key, when it counts (stated, or
        # inferred at least TRAIT_MIN_CONFIDENCE sure). A profile has one row per key (a
        # unique constraint), so "is not" is: the trait counts and its value is none of these.
        # A value that is not text (a number, true) equals no text: JSON compares types too.
        counted = Trait.objects.filter(profile=OuterRef("pk"), key=key).confident(
            self.min_confidence
        )
        if condition["op"] == Op.EXISTS:
            present = Q(Exists(counted))
            return present if condition["value"] else ~present
        values = _values(condition)
        if condition["op"] in (Op.NE, Op.NOT_IN):
            return Q(Exists(counted.exclude(value__in=values)))
        return Q(Exists(counted.filter(value__in=values)))

    # --- statistics -------------------------------------------------------------------------

    def _number(self, column: str, condition: dict, spec) -> Q:
        value = condition["value"]
        if spec.value_type == ValueType.MONEY:
            value = money_value(value)
        op = condition["op"]
        lookup = {Op.EQ: "exact", Op.GT: "gt", Op.GTE: "gte", Op.LT: "lt", Op.LTE: "lte"}
        if op == Op.NE:
            return ~Q(**{column: value})
        return Q(**{f"{column}__{lookup[op]}": value})

    def stats_orders_count(self, condition, spec) -> Q:
        return self._number("orders_count", condition, spec)

    def stats_total_spent(self, condition, spec) -> Q:
        return self._number("total_spent", condition, spec)

    def stats_average_order_value(self, condition, spec) -> Q:
        return self._number("average_order_value", condition, spec)

    def _days_since(self, column: str, condition: dict) -> Q:
        # Whole days since ``column`` is d when now - (d+1) days < column <= now - d days.
        # Without a value (no order yet) every comparison is false.
        days, op = condition["value"], condition["op"]

        def at_least(n: int) -> Q:  # d >= n
            return Q(**{f"{column}__lte": self.now - n * DAY})

        def below(n: int) -> Q:  # d < n
            return Q(**{f"{column}__gt": self.now - n * DAY})

        if op == Op.GTE:
            return at_least(days)
        if op == Op.GT:
            return at_least(days + 1)
        if op == Op.LT:
            return below(days)
        if op == Op.LTE:
            return below(days + 1)
        if op == Op.EQ:
            return at_least(days) & below(days + 1)
        return below(days) | at_least(days + 1)  # ne

    def stats_days_since_first_order(self, condition, spec) -> Q:
        return self._days_since("first_order_at", condition)

    def stats_days_since_last_order(self, condition, spec) -> Q:
        return self._days_since("last_order_at", condition)

    # --- orders -----------------------------------------------------------------------------

    def _orders(self, condition: dict, *, profile=_CORRELATED):
        orders = Order.objects.filter(status=OrderStatus.PLACED)
        if profile is _CORRELATED:
            orders = orders.filter(profile=OuterRef("pk"))
        if Param.WITHIN_DAYS in condition:
            orders = orders.filter(placed_at__gte=self.now - condition[Param.WITHIN_DAYS] * DAY)
        return orders.order_by()

    def orders_count(self, condition, spec) -> Q:
        counted = Subquery(
            self._orders(condition).values("profile").annotate(n=Count("pk")).values("n"),
            output_field=IntegerField(),
        )
        return _compare(Coalesce(counted, 0), condition["op"], condition["value"])

    def _orders_totalled(self, condition: dict, spec) -> QuerySet | None:
        """The profile ids whose count (or amount) of orders meets ``condition``, grouped over
        the orders once; None when no orders at all would meet it (then it is not a set of
        profiles with orders)."""
        op, value = condition["op"], condition["value"]
        if spec.value_type == ValueType.MONEY:
            value = money_value(value)
        if _meets(0, op, value):
            return None
        total = Count("pk") if condition["field"] == "orders.count" else Sum("shop_total")
        rows = (
            self._orders(condition, profile=None)
            .filter(profile__isnull=False)
            .values("profile")
            .annotate(total=total)
            .filter(_compare(F("total"), op, value))
        )
        return rows.values_list("profile", flat=True)

    def orders_sum(self, condition, spec) -> Q:
        summed = Subquery(
            self._orders(condition).values("profile").annotate(s=Sum("shop_total")).values("s"),
            output_field=_MONEY,
        )
        value = Value(money_value(condition["value"]), output_field=_MONEY)
        total = Coalesce(summed, Value(Decimal("0.00")), output_field=_MONEY)
        return _compare(total, condition["op"], value)

    def _usable(self, prefix: str) -> Q:
        """Products a rule may count: not flagged sensitive, not in a blocked category."""
        usable = Q(**{f"{prefix}is_sensitive": False})
        if self.blocked:
            usable &= ~Exists(
                ProductCategory.objects.filter(
                    product=OuterRef(f"{prefix}pk"), name_key__in=sorted(self.blocked)
                )
            )
        return usable

    def _product_match(self, condition: dict, spec, prefix: str) -> Q:
        values = _values(condition)
        if spec.value_type == ValueType.PRODUCT:
            match = Q(**{f"{prefix}external_id__in": values})
        else:
            keys = sorted({category_value_key(value) for value in values})
            match = Q(
                Exists(
                    ProductCategory.objects.filter(product=OuterRef(f"{prefix}pk"), key__in=keys)
                )
            )
        return match & self._usable(prefix)

    def _at_least(self, rows: QuerySet, condition: dict) -> Q:
        needed = condition.get(Param.AT_LEAST, 1)
        if needed == 1:
            return Q(Exists(rows))
        counted = Subquery(
            rows.values("profile").annotate(n=Count("pk")).values("n"),
            output_field=IntegerField(),
        )
        return Q(GreaterThanOrEqual(Coalesce(counted, 0), needed))

    def _bought(self, condition, spec) -> Q:
        lines = OrderLine.objects.filter(order=OuterRef("pk")).filter(
            self._product_match(condition, spec, "product__")
        )
        return self._at_least(self._orders(condition).filter(Exists(lines)), condition)

    orders_bought_product = _bought
    orders_bought_category = _bought

    # --- events -----------------------------------------------------------------------------

    def _views(self, condition: dict, *, profile=_CORRELATED):
        spec = field_spec(condition["field"])
        views = Event.objects.filter(name=EventName.PRODUCT_VIEWED, is_sensitive=False)
        if profile is _CORRELATED:
            views = views.filter(profile=OuterRef("pk"))
        if Param.WITHIN_DAYS in condition:
            views = views.filter(occurred_at__gte=self.now - condition[Param.WITHIN_DAYS] * DAY)
        return views.filter(self._product_match(condition, spec, "product__")).order_by()

    def _viewed(self, condition, spec) -> Q:
        return self._at_least(self._views(condition), condition)

    events_viewed_product = _viewed
    events_viewed_category = _viewed

    # --- cart -------------------------------------------------------------------------------

    def _open_lines(self, *, profile=_CORRELATED):
        lines = CartLine.objects.filter(cart__status=CartStatus.OPEN)
        if profile is _CORRELATED:
            lines = lines.filter(cart__profile=OuterRef("pk"))
        else:
            lines = lines.filter(cart__profile__isnull=False)
        return lines.order_by()

    def cart_lines(self, condition, spec) -> Q:
        counted = Subquery(
            self._open_lines().values("cart__profile").annotate(n=Count("pk")).values("n"),
            output_field=IntegerField(),
        )
        return _compare(Coalesce(counted, 0), condition["op"], condition["value"])

    def cart_value(self, condition, spec) -> Q:
        summed = Subquery(
            Cart.objects.filter(profile=OuterRef("pk"), status=CartStatus.OPEN)
            .order_by()
            .values("profile")
            .annotate(s=Sum("shop_total"))
            .values("s"),
            output_field=_MONEY,
        )
        value = Value(money_value(condition["value"]), output_field=_MONEY)
        total = Coalesce(summed, Value(Decimal("0.00")), output_field=_MONEY)
        return _compare(total, condition["op"], value)

    def _cart_holds(self, condition, spec) -> Q:
        return Q(
            Exists(self._open_lines().filter(self._product_match(condition, spec, "product__")))
        )

    cart_contains_product = _cart_holds
    cart_contains_category = _cart_holds

    # --- consent, topics, segments ----------------------------------------------------------

    def _consent(self, purpose: str, condition: dict) -> Q:
        # Each state said as semi- and anti-joins over the ledger: deriving every profile's
        # state (profiles_with_consent) costs five index probes per profile.
        match = consent_in_states(purpose, _values(condition))
        return ~match if condition["op"] in (Op.NE, Op.NOT_IN) else match

    def topics_subscribed(self, condition, spec) -> Q:
        # Hears about a topic: chose it, or never chose and the topic is on by default. The
        # default is read in SQL, so that a compiled statement stays right when it changes.
        # A profile has one choice at most per topic (a unique constraint), so that is: no
        # choice against it, and it is on by default or chosen; the first part an anti-join,
        # the second decided by the default (computed once) before any choice is read.
        result = Q(pk__in=[])
        for slug in _values(condition):
            choices = TopicPreference.objects.filter(profile=OuterRef("pk"), topic__slug=slug)
            on_by_default = Topic.objects.filter(slug=slug, subscribed_by_default=True)
            result |= ~Q(Exists(choices.filter(subscribed=False))) & (
                Q(Exists(on_by_default)) | Q(Exists(choices.filter(subscribed=True)))
            )
        return result

    def segment(self, condition, spec) -> Q:
        # Belongs in the other segment now, by its definition (not by its last refresh).
        result = Q(pk__in=[])
        row = Profile.objects.filter(pk=OuterRef("pk"))
        for other in Segment.objects.filter(slug__in=_values(condition)).order_by("pk"):
            if other.kind == SegmentKind.LIFECYCLE:
                members = lifecycle_members(other.slug, now=self.now, profiles=row)
            else:
                members = rule_members(other.rule, now=self.now, profiles=row)
            result |= Q(Exists(members))
        return result
