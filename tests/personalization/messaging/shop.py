"""A small shop for the messaging tests: customers with consent, a topic, a segment."""

import datetime as dt
import itertools

import time_machine

from personalization.consent import consent_confirm, consent_record
from personalization.messaging import campaign_plan, campaign_schedule, messages_dispatch
from personalization.models import (
    Campaign,
    Message,
    Profile,
    Segment,
    SegmentMembership,
    Topic,
)

# In the future of the migrations' real clock, so consent wordings are in the past. 10:00 UTC
# is 11:00 in Stockholm: outside the quiet hours.
T0 = dt.datetime(2027, 3, 1, 10, tzinfo=dt.UTC)
_serial = itertools.count(1)


def customer(
    *,
    marketing=True,
    personalization=True,
    timezone="Europe/Stockholm",
    locale="en",
    segment=None,
    **fields,
) -> Profile:
    n = next(_serial)
    fields.setdefault("email", f"m{n}@example.com")
    fields.setdefault("first_name", f"Anna{n}")
    profile = Profile.objects.create(timezone=timezone, locale=locale, **fields)
    if marketing:
        grant = consent_record(
            profile=profile, purpose="email_marketing", granted=True, source="api"
        )
        if marketing != "pending":
            consent_confirm(grant=grant)  # double opt-in, as the shop's default asks
    if personalization:
        consent_record(profile=profile, purpose="personalization", granted=True, source="api")
    if segment is not None:
        join(segment, profile)
    return profile


def join(segment: Segment, *profiles: Profile) -> None:
    SegmentMembership.objects.bulk_create(
        SegmentMembership(segment=segment, profile=p, entered_at=T0 - dt.timedelta(days=1))
        for p in profiles
    )


def segment(name="Everyone") -> Segment:
    n = next(_serial)
    return Segment.objects.create(
        slug=f"s{n}",
        name=name,
        kind="rule",
        rule={"all": [{"field": "orders_count", "op": "gte", "value": 0}]},
    )


def topic(**fields) -> Topic:
    n = next(_serial)
    fields.setdefault("subscribed_by_default", True)
    return Topic.objects.create(slug=f"t{n}", name=f"News {n}", **fields)


def campaign(*, include, exclude=(), **fields) -> Campaign:
    fields.setdefault("name", "Spring")
    fields.setdefault("topic", topic())
    fields.setdefault("subject", "{{ greeting }} spring is here")
    fields.setdefault("body", "<p>{{ greeting }}</p><p>New things in the shop.</p>")
    made = Campaign.objects.create(**fields)
    made.include_segments.set(include)
    made.exclude_segments.set(exclude)
    return made


def send_campaign(*, include, at=T0, **fields):
    """Schedule, plan and dispatch a campaign at ``at``; its messages by profile."""
    made = campaign(include=include, **fields)
    with time_machine.travel(at, tick=False):
        campaign_schedule(campaign=made)
        campaign_plan(campaign_id=made.pk)
        messages_dispatch()
    return {m.profile_id: m for m in Message.objects.filter(campaign=made)}
