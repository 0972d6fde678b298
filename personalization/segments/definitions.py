"""Segments as code: create or update a rule segment from its definition, and export
definitions as JSON that :func:`rule_segment_define` (and ``manage.py segment_define``) read back.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from ..exceptions import InvalidInput
from ..models import Segment, SegmentKind
from .rules import rule_validate
from .rules.validate import rule_segment_slugs

SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")


def segment_slug_clean(slug: Any) -> str:
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise InvalidInput(
            _("A slug is 1 to 64 letters, digits, hyphens or underscores."), field="slug"
        )
    return slug


@transaction.atomic
def rule_segment_define(
    *,
    slug: str,
    rule: Any,
    name: str | None = None,
    description: str | None = None,
) -> tuple[Segment, bool]:
    """Create the rule segment ``slug`` or replace its rule; (segment, created).

    The rule is validated as the admin validates it (``InvalidRule`` naming the path); name and
    description are kept when not given. Membership follows at the next refresh.
    """
    slug = segment_slug_clean(slug)
    for field, value in (("name", name), ("description", description)):
        if value is not None and not isinstance(value, str):
            raise InvalidInput(_("This must be text."), field=field)
    if name is not None and not (0 < len(name.strip()) <= 200):
        raise InvalidInput(_("A name is 1 to 200 characters."), field="name")
    segment = Segment.objects.select_for_update().filter(slug=slug).first()
    if segment is not None and segment.kind != SegmentKind.RULE:
        raise InvalidInput(
            _("%(slug)s is a built-in lifecycle segment; its definition is not a rule.")
            % {"slug": slug},
            field="slug",
        )
    rule_validate(rule, slug=slug)
    created = segment is None
    if created:
        segment = Segment(slug=slug, kind=SegmentKind.RULE, name=(name or slug).strip())
    elif name is not None:
        segment.name = name.strip()
    if description is not None:
        segment.description = description
    segment.rule = rule
    segment.save()
    return segment, created


def segment_export(segment: Segment) -> dict[str, Any]:
    """One segment's definition, as ``segment_define`` reads it."""
    data: dict[str, Any] = {
        "slug": segment.slug,
        "name": segment.name,
        "description": segment.description,
        "kind": segment.kind,
    }
    if segment.kind == SegmentKind.RULE:
        data["rule"] = segment.rule
    return data


def segments_referring_to(segment: Segment) -> list[str]:
    """The slugs of the rule segments whose rule names ``segment``."""
    return sorted(
        slug
        for slug, rule in Segment.objects.filter(kind=SegmentKind.RULE)
        .exclude(pk=segment.pk)
        .values_list("slug", "rule")
        if segment.slug in rule_segment_slugs(rule)
    )
