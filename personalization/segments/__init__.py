"""Segments: the built-in lifecycle segments, kept current for everyone and in realtime.

Public surface:

- :func:`segment_refresh` recomputes one segment for everyone (set-based) and stores the
  difference as entries and exits; :func:`segments_refresh` does it for several.
- :func:`segments_update_for_profiles` re-evaluates every segment for a few profiles (the
  realtime path, run after their data changed).
- :func:`segment_members` is the definition as a queryset of profiles.
- :func:`rule_segment_define` creates or updates a rule segment (``rules`` holds the format);
  :func:`segment_export` gives a definition back as data.
- :func:`segment_explain` says why a profile is or is not in a segment;
  :func:`profile_segments_explain` why it is in each of its segments.
"""

from .definitions import rule_segment_define, segment_export
from .explain import Explanation, profile_segments_explain, segment_explain
from .lifecycle import LIFECYCLE_TEXTS, Lifecycle, lifecycle_members
from .members import segment_members
from .membership import (
    RefreshResult,
    Trigger,
    segment_refresh,
    segment_stays_release,
    segments_refresh,
    segments_update_for_profiles,
)
from .registry import lifecycle_segments_ensure

__all__ = [
    "Explanation",
    "LIFECYCLE_TEXTS",
    "Lifecycle",
    "RefreshResult",
    "Trigger",
    "lifecycle_members",
    "lifecycle_segments_ensure",
    "profile_segments_explain",
    "rule_segment_define",
    "segment_explain",
    "segment_export",
    "segment_members",
    "segment_refresh",
    "segment_stays_release",
    "segments_refresh",
    "segments_update_for_profiles",
]
