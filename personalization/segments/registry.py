"""The built-in lifecycle segments exist in every installation: created after ``migrate``.

Creating only ever adds what is missing: a segment a marketer renamed or described anew keeps
their words. (Delete one and run ``migrate`` to get it back as the app ships it.)
"""

from __future__ import annotations

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.utils import translation

from ..models import Segment, SegmentKind
from .lifecycle import LIFECYCLE_TEXTS


def lifecycle_segments_ensure(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """Create the lifecycle segments that do not exist yet. Returns how many it created."""
    existing = set(Segment.objects.using(using).values_list("slug", flat=True))
    missing = [slug for slug in LIFECYCLE_TEXTS if slug not in existing]
    # Named in the site's language: the names are the marketer's to edit from then on.
    with translation.override(settings.LANGUAGE_CODE):
        Segment.objects.using(using).bulk_create(
            [
                Segment(
                    slug=slug,
                    name=str(LIFECYCLE_TEXTS[slug][0]),
                    description=str(LIFECYCLE_TEXTS[slug][1]),
                    kind=SegmentKind.LIFECYCLE,
                )
                for slug in missing
            ],
            ignore_conflicts=True,  # another process creating them at the same moment
        )
    return len(missing)


def lifecycle_segments_ensure_after_migrate(**kwargs) -> None:
    from django.db import connections

    using = kwargs.get("using", DEFAULT_DB_ALIAS)
    if Segment._meta.db_table in connections[using].introspection.table_names():
        lifecycle_segments_ensure(using=using)
