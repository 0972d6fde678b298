"""The history of a customer's preference changes: how a change is written down, and read.

One :class:`~personalization.models.PreferenceChange` per preference that changed, with the
value before and after as text (``on``/``off`` for a topic or channel, the choice's value for
frequency and greeting, the end of the pause in ISO 8601 or empty for none), the source and
the wording version the customer was shown. Consent (the personalisation switch, unsubscribe)
is not repeated here: it is in the consent ledger.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from ..models import Channel, Frequency, Greeting, PreferenceChange, PreferenceField, Profile, Topic
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
    """``profile``'s preference changes, newest first; each with ``topic_name`` (the topic's
    name for a topic change, else None) for :func:`preference_change_texts`."""
    saved_instance_check(profile, Profile, field="profile")
    return with_topic_names(PreferenceChange.objects.filter(profile=profile).latest_first())


def with_topic_names(queryset: QuerySet[PreferenceChange]) -> QuerySet[PreferenceChange]:
    names = Topic.objects.filter(slug=OuterRef("subject")).values("name")[:1]
    return queryset.annotate(topic_name=Subquery(names))


def preference_change_texts(change: PreferenceChange) -> tuple[str, str, str]:
    """What changed, from what, to what, in words: ("Topic: Coffee news", "on", "off"),
    ("How often", "As it happens", "At most one email a month"), ("Break", "–", "until …")."""
    field = change.field
    if field == PreferenceField.TOPIC:
        what = _("Topic: %(name)s") % {
            "name": getattr(change, "topic_name", None) or change.subject
        }
    elif field == PreferenceField.CHANNEL:
        what = _("Channel: %(name)s") % {"name": choice_label(Channel, change.subject)}
    else:
        what = str(PreferenceField(field).label).capitalize()
    return what, _value_text(field, change.old_value), _value_text(field, change.new_value)


def _value_text(field: str, value: str) -> str:
    if field in (PreferenceField.TOPIC, PreferenceField.CHANNEL):
        return _("on") if value == ON else _("off")
    if field == PreferenceField.FREQUENCY:
        return choice_label(Frequency, value)
    if field == PreferenceField.GREETING:
        return choice_label(Greeting, value)
    if not value:  # a pause that ends, or none
        return _("no break")
    until = timezone.localtime(dt.datetime.fromisoformat(value))
    return _("break until %(when)s") % {"when": formats.date_format(until, "DATETIME_FORMAT")}


def choice_label(choices, value: str) -> str:
    """The label of a stored choice value; the value itself if this version has no such choice."""
    try:
        return str(choices(value).label)
    except ValueError:  # a value of an older or newer version of the app
        return value
