"""What kinds of change can move a profile in or out of the segments that exist."""

from __future__ import annotations

from ..models import Segment, SegmentKind
from .lifecycle import LIFECYCLE_DEPENDS_ON
from .rules import rule_depends_on


def segments_depend_on() -> frozenset[str]:
    """The union, over every segment, of the kinds of change (``Change``) its definition reads:
    a change of anything else (a product view, when no rule reads views) moves nobody."""
    segments = {
        slug: (kind, rule)
        for slug, kind, rule in Segment.objects.values_list("slug", "kind", "rule")
    }
    depends: set[str] = set()
    for kind, rule in segments.values():
        if kind == SegmentKind.LIFECYCLE:
            depends |= LIFECYCLE_DEPENDS_ON
        elif kind == SegmentKind.RULE:
            depends |= rule_depends_on(rule, segments=segments)
    return frozenset(depends)
