"""Rule segments: a marketer's definition as a JSON tree, validated against an allowlist,
compiled to one query for everybody and evaluated with the same semantics for one profile.

- :func:`rule_validate` checks a rule (raises ``InvalidRule`` naming the path);
- :func:`rule_members` is the compiled definition as a queryset of profiles;
- :func:`rule_evaluate` decides it for one profile in Python;
- :func:`rule_depends_on` says which kinds of change can move a profile in or out.
"""

from ...changes import Change
from ...models import Segment, SegmentKind
from ..lifecycle import LIFECYCLE_DEPENDS_ON
from .compile import rule_members, rule_q
from .evaluate import rule_evaluate
from .schema import field_spec
from .validate import rule_conditions, rule_segment_slugs, rule_validate

__all__ = [
    "rule_depends_on",
    "rule_evaluate",
    "rule_members",
    "rule_q",
    "rule_segment_slugs",
    "rule_validate",
]


def rule_depends_on(rule: dict, *, segments: dict | None = None) -> frozenset[str]:
    """The kinds of change (``personalization.changes.Change``) that can move a profile in or
    out of a segment defined by ``rule``; ``segments`` maps slug → (kind, rule) for the
    segments it names (read from the database when not given)."""
    if segments is None:
        segments = {s.slug: (s.kind, s.rule) for s in Segment.objects.all()}
    depends: set[str] = {Change.MERGE}
    seen: set[str] = set()
    pending = [rule]
    while pending:
        current = pending.pop()
        for _path, condition in rule_conditions(current):
            spec = field_spec(condition.get("field", ""))
            if spec is not None:
                depends |= spec.depends_on
        for slug in rule_segment_slugs(current) - seen:
            seen.add(slug)
            kind, other = segments.get(slug, (None, None))
            if kind == SegmentKind.LIFECYCLE:
                depends |= LIFECYCLE_DEPENDS_ON
            elif kind == SegmentKind.RULE:
                pending.append(other)
    return frozenset(depends)
