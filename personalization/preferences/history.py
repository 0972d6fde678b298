"""The history of a customer's preference changes: how a change is written down, and read.

One :class:`~personalization.models.PreferenceChange` per preference that changed, with the
value before and after as text (``on``/``off`` for a topic or channel, the choice's value for
frequency and greeting, the end of the pause in ISO 8601 or empty for none), the source and
the wording version the customer was shown. Consent (the personalisation switch, unsubscribe)
is not repeated here: it is in the consent ledger.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from ..models import PreferenceChange, PreferenceField, Profile
from ..models.preferences import OFF, ON
from ..validation import saved_instance_check


def switch_text(value: bool) -> str:
    """How a topic or channel's on/off is written in the history."""
    return ON if value else OFF


def pause_text(value: dt.datetime | None) -> str:
    """How the end of a pause is written in the history (UTC, ISO 8601; empty: no pause)."""
    return value.astimezone(dt.UTC).isoformat() if value is not None else ""


def preference_change_build(
    *,
    profile: Profile,
    field: PreferenceField | str,
    old_value: str,
    new_value: str,
    source: str,
    wording_version: str,
    changed_at: dt.datetime,
    subject: str = "",
) -> PreferenceChange:
    """An unsaved history row; the services save the rows of one update together."""
    return PreferenceChange(
        profile=profile,
        field=field,
        subject=subject,
        old_value=old_value,
        new_value=new_value,
        source=source,
        wording_version=wording_version,
        changed_at=changed_at,
    )


def preference_history(*, profile: Profile) -> QuerySet[PreferenceChange]:
    """``profile``'s preference changes, newest first."""
    saved_instance_check(profile, Profile, field="profile")
    return PreferenceChange.objects.filter(profile=profile).latest_first()
