"""Checking a rule against the allowlist (``schema``) before it is stored or compiled.

:func:`rule_validate` raises :class:`~personalization.exceptions.InvalidRule` naming the path
of the first problem in the tree (``all[1].value``); the admin shows it as a form error and
``segment_define`` as a ``CommandError``. Only a rule that passed it is ever compiled.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from ...catalogue import category_path_normalize
from ...conf import app_settings
from ...exceptions import InvalidInput, InvalidRule
from ...models import ConsentState, Product, Segment, SegmentKind, Topic
from ...models.catalogue import category_key, category_rows
from .schema import (
    CONDITION_KEYS,
    GROUP_KEYS,
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_INTEGER,
    MAX_LIST,
    MAX_MONEY_DIGITS,
    MAX_TEXT,
    MAX_WITHIN_DAYS,
    FieldSpec,
    Op,
    Param,
    ValueType,
    field_spec,
)


def blocked_category_names() -> frozenset[str]:
    """Level names (case folded) of SENSITIVE_CATEGORIES not allowed for segments."""
    allowed = {name.casefold() for name in app_settings.SEGMENT_ALLOWED_SENSITIVE_CATEGORIES}
    return frozenset(
        name.casefold()
        for name in app_settings.SENSITIVE_CATEGORIES
        if name.casefold() not in allowed
    )


def path_join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path or 'rule'}[{part}]"
    return f"{path}.{part}" if path else part


def _fail(path: str, message: str) -> InvalidRule:
    return InvalidRule(message, field=path or "rule")


def rule_conditions(rule: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    """Every condition of a (structurally valid) rule with its path, in tree order."""
    if not isinstance(rule, dict):
        return
    for key in GROUP_KEYS:
        if key in rule:
            children = rule[key]
            if key == "not":
                yield from rule_conditions(children, path_join(path, "not"))
            elif isinstance(children, list):
                for index, child in enumerate(children):
                    yield from rule_conditions(child, path_join(path_join(path, key), index))
            return
    if "field" in rule:
        yield path, rule


def rule_segment_slugs(rule: Any) -> set[str]:
    """The slugs of the segments a rule names (tolerant of a malformed rule)."""
    slugs: set[str] = set()
    for _path, condition in rule_conditions(rule):
        if condition.get("field") == "segment":
            value = condition.get("value")
            values = value if isinstance(value, list) else [value]
            slugs.update(v for v in values if isinstance(v, str))
    return slugs


def rule_validate(rule: Any, *, slug: str | None = None) -> Any:
    """Check ``rule`` for the rule segment ``slug`` (None: a new segment without a slug yet).

    Returns the rule unchanged; raises :class:`InvalidRule` naming the path of the problem.
    """
    counter = [0]
    references: dict[str, list[tuple[str, str]]] = {"product": [], "topic": [], "segment": []}
    _node(rule, "", depth=1, counter=counter, references=references)
    _products_check(references["product"])
    _topics_check(references["topic"])
    _segments_check(references["segment"], slug=slug)
    return rule


def _node(node: Any, path: str, *, depth: int, counter: list[int], references) -> None:
    if depth > MAX_DEPTH:
        raise _fail(path, _("Groups nest at most %(max)d deep.") % {"max": MAX_DEPTH})
    if not isinstance(node, dict):
        raise _fail(
            path,
            _('Expected a group ({"all": [...]}, {"any": [...]}, {"not": {...}}) or a condition.'),
        )
    groups = [key for key in GROUP_KEYS if key in node]
    if groups:
        key = groups[0]
        if len(node) != 1:
            extra = sorted(set(node) - {key})[0]
            raise _fail(
                path_join(path, extra),
                _("A group has only its one key %(key)r.") % {"key": key},
            )
        if key == "not":
            _node(
                node["not"],
                path_join(path, "not"),
                depth=depth + 1,
                counter=counter,
                references=references,
            )
            return
        children = node[key]
        here = path_join(path, key)
        if not isinstance(children, list) or not children:
            raise _fail(here, _("A group holds a non-empty list of conditions or groups."))
        for index, child in enumerate(children):
            _node(
                child,
                path_join(here, index),
                depth=depth + 1,
                counter=counter,
                references=references,
            )
        return
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise _fail(path, _("A rule has at most %(max)d conditions.") % {"max": MAX_CONDITIONS})
    _condition(node, path, references=references)


def _condition(node: dict, path: str, *, references) -> None:
    unknown = sorted(set(node) - CONDITION_KEYS, key=str)
    if unknown:
        raise _fail(
            path_join(path, str(unknown[0])),
            _(
                "Unknown key %(key)r; a condition has field, op, value and, for some fields, "
                "within_days and at_least."
            )
            % {"key": unknown[0]},
        )
    for key in ("field", "op"):
        if key not in node:
            raise _fail(path_join(path, key), _("This key is required."))
    name = node["field"]
    spec = field_spec(name) if isinstance(name, str) else None
    if spec is None:
        raise _fail(
            path_join(path, "field"),
            _("Unknown field %(field)r; see the list of fields in the segments guide.")
            % {"field": name},
        )
    op = node["op"]
    if op not in spec.ops:
        raise _fail(
            path_join(path, "op"),
            _("Unknown operator %(op)r for %(field)s; use one of %(ops)s.")
            % {"op": op, "field": name, "ops": ", ".join(spec.ops)},
        )
    for param in Param:
        if param not in node:
            continue
        if param not in spec.params:
            raise _fail(
                path_join(path, param),
                _("%(field)s takes no %(param)s.") % {"field": name, "param": param},
            )
        limit = MAX_WITHIN_DAYS if param == Param.WITHIN_DAYS else MAX_INTEGER
        _integer(node[param], path_join(path, param), low=1, high=limit)
    if "value" not in node:
        raise _fail(path_join(path, "value"), _("This key is required."))
    _value(spec, op, node["value"], path_join(path, "value"), references=references)


def _value(spec: FieldSpec, op: str, value: Any, path: str, *, references) -> None:
    if op == Op.EXISTS:
        if not isinstance(value, bool):
            raise _fail(path, _("Must be true or false."))
        return
    if op in (Op.IN, Op.NOT_IN):
        if not isinstance(value, list) or not value:
            raise _fail(path, _("Must be a non-empty list."))
        if len(value) > MAX_LIST:
            raise _fail(path, _("At most %(max)d values.") % {"max": MAX_LIST})
        for index, item in enumerate(value):
            _scalar(spec, item, path_join(path, index), references=references)
        return
    _scalar(spec, value, path, references=references)


def _scalar(spec: FieldSpec, value: Any, path: str, *, references) -> None:
    kind = spec.value_type
    if kind == ValueType.INTEGER:
        _integer(value, path, low=0, high=MAX_INTEGER)
    elif kind == ValueType.MONEY:
        money_value(value, path=path)
    elif kind == ValueType.BOOLEAN:
        if not isinstance(value, bool):
            raise _fail(path, _("Must be true or false."))
    elif kind == ValueType.CONSENT_STATE:
        if value not in ConsentState.values:
            raise _fail(
                path,
                _("Unknown consent state %(value)r; use one of %(states)s.")
                % {"value": value, "states": ", ".join(ConsentState.values)},
            )
    else:
        # Profile fields and traits may be compared with "" (unknown); names may not be empty.
        _text(value, path, allow_empty=kind == ValueType.TEXT)
        if kind == ValueType.CATEGORY:
            _category(value, path)
        elif kind in (ValueType.PRODUCT, ValueType.TOPIC, ValueType.SEGMENT):
            references[str(kind)].append((path, value))


def _integer(value: Any, path: str, *, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, _("Must be a whole number."))
    if not low <= value <= high:
        raise _fail(path, _("Must be between %(low)d and %(high)d.") % {"low": low, "high": high})


def money_value(value: Any, *, path: str = "value") -> Decimal:
    """An amount in a rule (a JSON number or a numeric string) as a Decimal."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _fail(path, _("Must be an amount such as 25 or 19.90."))
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(path, _("Must be an amount such as 25 or 19.90."))
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as err:
        raise _fail(path, _("Must be an amount such as 25 or 19.90.")) from err
    if not amount.is_finite() or amount < 0:
        raise _fail(path, _("Must be an amount of 0 or more."))
    if amount != amount.quantize(Decimal("0.01")) or amount.adjusted() >= MAX_MONEY_DIGITS - 2:
        raise _fail(path, _("At most 10 digits before and 2 after the decimal point."))
    return amount.quantize(Decimal("0.01"))


def _text(value: Any, path: str, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise _fail(path, _("Must be text."))
    if not allow_empty and not value.strip():
        raise _fail(path, _("Must be non-empty text."))
    if len(value) > MAX_TEXT or "\x00" in value:
        raise _fail(path, _("At most %(max)d characters of text.") % {"max": MAX_TEXT})


def _category(value: str, path: str) -> None:
    try:
        normal = category_path_normalize(value)
    except InvalidInput as err:
        raise _fail(path, err.message) from err
    blocked = blocked_category_names()
    sensitive = [name for _p, _k, name, _d in category_rows(normal) if name in blocked]
    if sensitive:
        raise _fail(
            path,
            _(
                "%(category)r is a sensitive category: it cannot be used in a segment unless "
                "SEGMENT_ALLOWED_SENSITIVE_CATEGORIES allows it."
            )
            % {"category": value},
        )


def category_value_key(value: str) -> str:
    """The ProductCategory key a (valid) category value in a rule matches."""
    return category_key(category_path_normalize(value))


def _products_check(references: list[tuple[str, str]]) -> None:
    if not references:
        return
    ids = {value for _path, value in references}
    blocked = blocked_category_names()
    found = {
        external_id: (flagged, path)
        for external_id, flagged, path in Product.objects.filter(external_id__in=ids).values_list(
            "external_id", "is_sensitive", "category_path"
        )
    }
    for path, value in references:
        if value not in found:
            raise _fail(path, _("No product with the id %(id)r.") % {"id": value})
        flagged, category = found[value]
        names = {name for _p, _k, name, _d in category_rows(category)}
        if flagged or names & blocked:
            raise _fail(
                path,
                _(
                    "The product %(id)r is sensitive: it cannot be used in a segment (a "
                    "product in a category SEGMENT_ALLOWED_SENSITIVE_CATEGORIES allows can)."
                )
                % {"id": value},
            )


def _topics_check(references: list[tuple[str, str]]) -> None:
    if not references:
        return
    known = set(
        Topic.objects.filter(slug__in={v for _p, v in references}).values_list("slug", flat=True)
    )
    for path, value in references:
        if value not in known:
            raise _fail(path, _("No topic with the slug %(slug)r.") % {"slug": value})


def _segments_check(references: list[tuple[str, str]], *, slug: str | None) -> None:
    if not references:
        return
    segments = dict(Segment.objects.values_list("slug", "kind"))
    rules = dict(
        Segment.objects.filter(kind=SegmentKind.RULE).exclude(slug=slug).values_list("slug", "rule")
    )
    for path, value in references:
        if value not in segments and value != slug:
            raise _fail(path, _("No segment with the slug %(slug)r.") % {"slug": value})
        if slug is None:
            continue
        chain = _chain_to(value, slug, rules)
        if chain is not None:
            raise _fail(
                path,
                _("Segments cannot refer to each other in a circle: %(chain)s.")
                % {"chain": " → ".join([slug, *chain])},
            )


def _chain_to(start: str, target: str, rules: dict[str, Any]) -> list[str] | None:
    """The chain of segment references from ``start`` to ``target``, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        current, chain = stack.pop()
        if current == target:
            return chain
        if current in seen:
            continue
        seen.add(current)
        for referenced in sorted(rule_segment_slugs(rules.get(current))):
            stack.append((referenced, [*chain, referenced]))
    return None
