"""Campaigns: the audience, scheduling, planning the ledger in bulk, cancelling.

A campaign's life: ``draft`` → :func:`campaign_schedule` → ``scheduled`` (its ``plan_at``
set) → :func:`campaign_plan` (Beat, at ``plan_at``) writes one ``Message`` per member of the
audience in one statement and turns it ``sending`` → the dispatcher sends → ``sent`` when no
message is left open (:func:`campaigns_finish`). :func:`campaign_cancel` stops everything not
yet handed to the email service.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from ..conf import app_settings
from ..consent import consented_q
from ..exceptions import InvalidInput
from ..models import (
    OPEN_STATES,
    Campaign,
    CampaignStatus,
    DecisionReason,
    Message,
    MessageSource,
    MessageState,
    Profile,
    Purpose,
    SegmentMembership,
    SendMode,
    TopicPreference,
)
from .lint import LintReport, campaign_lint
from .planning import Source, Sql, planned_messages_insert, zoned_moment_sql

# The earliest any time zone reaches a wall-clock time (UTC+14, Kiribati): a campaign sent in
# each recipient's own time zone is planned this long before the shop's wall-clock time.
EARLIEST_OFFSET = dt.timedelta(hours=14)


class CampaignStateError(InvalidInput):
    """The campaign is not in a state that allows this (e.g. scheduling a sent campaign)."""


# --- The audience ------------------------------------------------------------------------------


def campaign_audience(*, campaign: Campaign):
    """Profiles in any included segment and in no excluded one, now."""
    include = SegmentMembership.objects.current().filter(
        segment__in=campaign.include_segments.all(), profile=OuterRef("pk")
    )
    exclude = SegmentMembership.objects.current().filter(
        segment__in=campaign.exclude_segments.all(), profile=OuterRef("pk")
    )
    return Profile.objects.filter(Exists(include)).exclude(Exists(exclude))


@dataclass(frozen=True)
class AudienceCount:
    members: int  # in the segments
    reachable: int  # of them: an address, marketing consent, the topic on, not paused


def campaign_audience_count(*, campaign: Campaign, now: dt.datetime | None = None) -> AudienceCount:
    """How many the campaign would reach if planned now (two counts). ``reachable`` leaves
    out what the policy would skip for reasons known in advance; the frequency cap, quiet
    hours and suppressions are decided at send time."""
    now = now or timezone.now()
    audience = campaign_audience(campaign=campaign)
    topic = campaign.topic
    chosen = TopicPreference.objects.filter(profile=OuterRef("pk"), topic=topic)
    topic_on = (
        ~Exists(chosen.filter(subscribed=False))
        if topic.subscribed_by_default
        else Exists(chosen.filter(subscribed=True))
    )
    reachable = (
        audience.exclude(email__isnull=True)
        .exclude(email="")
        .filter(consented_q(Purpose.EMAIL_MARKETING))
        .filter(topic_on)
        .exclude(paused_until__gt=now)
    )
    return AudienceCount(
        members=audience.count(), reachable=reachable.count() if topic.is_active else 0
    )


# --- Scheduling and cancelling -----------------------------------------------------------------


def campaign_send_time(*, campaign: Campaign, now: dt.datetime) -> dt.datetime:
    """When the campaign goes out (for LOCAL: the shop's wall-clock time, read in UTC+14's)."""
    if campaign.send_mode == SendMode.NOW:
        return now
    if campaign.send_mode == SendMode.AT:
        return campaign.send_at
    return _local_wall_clock(campaign).replace(tzinfo=dt.UTC) - EARLIEST_OFFSET


def _local_wall_clock(campaign: Campaign) -> dt.datetime:
    """The campaign's send time as a naive wall-clock time in the shop's time zone."""
    shop_zone = zoneinfo.ZoneInfo(settings.TIME_ZONE or "UTC")
    return campaign.send_at.astimezone(shop_zone).replace(tzinfo=None)


def campaign_schedule(
    *, campaign: Campaign, now: dt.datetime | None = None
) -> tuple[Campaign, LintReport]:
    """Schedule a draft: lint its copy first. Errors block; warnings block until the campaign
    says they were read (``lint_acknowledged``). Raises ``CampaignStateError`` (not a draft,
    a send time in the past) or ``CampaignLintError``; returns the campaign and the report."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status != CampaignStatus.DRAFT:
            raise CampaignStateError(
                _("Only a draft can be scheduled; this campaign is %(status)s.")
                % {"status": locked.get_status_display()},
                field="status",
            )
        report = campaign_lint(campaign=locked)
        report.raise_if_blocking(acknowledged=locked.lint_acknowledged)
        if locked.send_mode != SendMode.NOW and locked.send_at is None:
            raise CampaignStateError(_("Say when to send it."), field="send_at")
        if locked.send_mode == SendMode.AT and locked.send_at < now:
            raise CampaignStateError(_("The send time is in the past."), field="send_at")
        plan_at = max(campaign_send_time(campaign=locked, now=now), now)
        Campaign.objects.filter(pk=locked.pk).update(
            status=CampaignStatus.SCHEDULED, plan_at=plan_at, scheduled_at=now
        )
    campaign.refresh_from_db()
    return campaign, report


def campaign_cancel(*, campaign: Campaign, now: dt.datetime | None = None) -> int:
    """Cancel the campaign and every message of it not yet handed to the email service; how
    many messages were cancelled. Messages a worker holds are skipped by it (the policy sees
    the campaign cancelled). Cancelling a sent or cancelled campaign raises
    ``CampaignStateError``."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status in (CampaignStatus.SENT, CampaignStatus.CANCELLED):
            raise CampaignStateError(
                _("This campaign is %(status)s: there is nothing left to cancel.")
                % {"status": locked.get_status_display()},
                field="status",
            )
        Campaign.objects.filter(pk=locked.pk).update(
            status=CampaignStatus.CANCELLED, cancelled_at=now
        )
        cancelled = Message.objects.filter(
            campaign=locked, state__in=(MessageState.PLANNED, MessageState.DEFERRED)
        ).update(state=MessageState.CANCELLED, reason=DecisionReason.CANCELLED, decided_at=now)
    campaign.refresh_from_db()
    return cancelled


# --- Planning ----------------------------------------------------------------------------------


def _send_times(
    *, campaign: Campaign, now: dt.datetime, zones: list[str], later: dt.timedelta
) -> Sql:
    """SQL for each recipient's send time plus ``later`` (a CASE over their time zones when
    the campaign goes out in each one's own)."""
    if campaign.send_mode != SendMode.LOCAL:
        adapt = connection.ops.adapt_datetimefield_value
        return Sql("%s", (adapt(campaign_send_time(campaign=campaign, now=now) + later),))
    wall = _local_wall_clock(campaign)
    return zoned_moment_sql(
        moment=lambda zone: wall.replace(tzinfo=zone).astimezone(dt.UTC) + later, zones=zones
    )


def campaign_plan(*, campaign_id: int, now: dt.datetime | None = None) -> int:
    """Plan a due campaign: one ``Message`` per member of its audience, written in one
    ``INSERT … SELECT`` that skips keys already there (a second planner writes nothing).
    Returns how many messages were new; 0 when the campaign is not scheduled, or not due yet
    (its audience is taken at ``plan_at``, not before)."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update()
            .filter(pk=campaign_id, status=CampaignStatus.SCHEDULED, plan_at__lte=now)
            .first()
        )
        if campaign is None:
            return 0
        audience = campaign_audience(campaign=campaign)
        zones = []
        if campaign.send_mode == SendMode.LOCAL:
            zones = sorted(set(audience.order_by().values_list("timezone", flat=True).distinct()))
        planned = _messages_insert(campaign=campaign, audience=audience, zones=zones, now=now)
        Campaign.objects.filter(pk=campaign.pk).update(
            status=CampaignStatus.SENDING,
            planned_at=now,
            audience_count=Message.objects.filter(campaign=campaign).count(),
        )
    return planned


def _messages_insert(*, campaign: Campaign, audience, zones: list[str], now: dt.datetime) -> int:
    audience_sql, audience_params = audience.values("pk").order_by().query.sql_with_params()
    return planned_messages_insert(
        source=Source(
            source=MessageSource.CAMPAIGN,
            campaign_id=campaign.pk,
            topic_id=campaign.topic_id,
            priority=campaign.priority,
        ),
        rows=Sql(
            f"FROM {connection.ops.quote_name(Profile._meta.db_table)} p "
            f"WHERE p.id IN ({audience_sql})",
            tuple(audience_params),
        ),
        key=Sql("%s || p.id", (f"campaign:{campaign.pk}:",)),
        profile="p.id",
        send=_send_times(campaign=campaign, now=now, zones=zones, later=dt.timedelta(0)),
        expires=_send_times(
            campaign=campaign,
            now=now,
            zones=zones,
            later=dt.timedelta(hours=app_settings.CAMPAIGN_MAX_DELAY_HOURS),
        ),
        now=now,
    )


def campaigns_due(*, now: dt.datetime | None = None) -> list[int]:
    """Ids of the scheduled campaigns whose planning time has come."""
    now = now or timezone.now()
    return list(Campaign.objects.due(now).order_by("plan_at", "pk").values_list("pk", flat=True))


def campaigns_finish(*, now: dt.datetime | None = None) -> int:
    """Mark ``sent`` the sending campaigns with no message left to send; how many."""
    now = now or timezone.now()
    unfinished = Message.objects.filter(
        campaign=OuterRef("pk"),
        state__in=(*OPEN_STATES, MessageState.READY, MessageState.SENDING),
    )
    return (
        Campaign.objects.filter(status=CampaignStatus.SENDING)
        .filter(~Exists(unfinished))
        .update(status=CampaignStatus.SENT, finished_at=now)
    )


def campaign_results(*, campaign: Campaign) -> dict[str, int]:
    """Messages of the campaign by state (one query), as the admin shows them."""
    return dict(
        Message.objects.filter(campaign=campaign)
        .values_list("state")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("state", "n")
    )
