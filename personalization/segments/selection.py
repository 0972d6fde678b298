"""Picking segments by slug, for commands, tasks and the admin."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from ..exceptions import InvalidInput
from ..models import Segment


def segments_select(
    *, slugs: Iterable[str] | None = None, exclude: Iterable[str] | None = None
) -> QuerySet[Segment]:
    """The segments named (default: all), less those excluded; an unknown slug is an error."""
    segments = Segment.objects.all()
    if slugs is not None:
        slugs = list(slugs)
        unknown = sorted(
            set(slugs) - set(Segment.objects.filter(slug__in=slugs).values_list("slug", flat=True))
        )
        if unknown:
            raise InvalidInput(
                _("No segment %(slugs)s. Known segments: %(known)s.")
                % {
                    "slugs": ", ".join(unknown),
                    "known": ", ".join(
                        Segment.objects.order_by("slug").values_list("slug", flat=True)
                    ),
                },
                field="segment",
            )
        segments = segments.filter(slug__in=slugs)
    if exclude:
        segments = segments.exclude(slug__in=list(exclude))
    return segments.order_by("pk")
