"""A segment's definition as a queryset of profiles, whatever its kind."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from ..models import Profile, Segment, SegmentKind
from .lifecycle import lifecycle_members, lifecycle_q
from .rules import rule_members, rule_q


def segment_members(
    *, segment: Segment, now: dt.datetime, profiles: QuerySet[Profile] | None = None
) -> QuerySet[Profile]:
    """The profiles (of ``profiles``, default all) that belong in ``segment`` at ``now``."""
    if segment.kind == SegmentKind.LIFECYCLE:
        return lifecycle_members(segment.slug, now=now, profiles=profiles)
    if segment.kind == SegmentKind.RULE:
        return rule_members(segment.rule, now=now, profiles=profiles)
    raise ValueError(f"Segment {segment.slug!r} has an unknown kind {segment.kind!r}.")


def segment_q(*, segment: Segment, now: dt.datetime) -> Q:
    """``segment`` at ``now`` as a condition on one profile row (the same members)."""
    if segment.kind == SegmentKind.LIFECYCLE:
        return lifecycle_q(segment.slug, now=now)
    if segment.kind == SegmentKind.RULE:
        return rule_q(segment.rule, now=now)
    raise ValueError(f"Segment {segment.slug!r} has an unknown kind {segment.kind!r}.")
