"""Campaign scheduling and planning: send now, at a time, at a time in each recipient's zone."""

import datetime as dt

import pytest
import time_machine
from django.test import override_settings

from personalization.messaging import (
    CampaignStateError,
    campaign_cancel,
    campaign_plan,
    campaign_schedule,
    messages_dispatch,
)
from personalization.models import CampaignStatus, MessageState

from .shop import T0, campaign, customer, join, segment

pytestmark = pytest.mark.django_db


def not_before_by_profile(made) -> dict:
    return dict(made.messages.values_list("profile_id", "not_before"))


@override_settings(TIME_ZONE="Europe/Stockholm")
def test_local_time_sends_at_the_same_wall_clock_time_in_each_recipients_zone():
    everyone = segment()
    sto = customer(segment=everyone, timezone="Europe/Stockholm")
    nyc = customer(segment=everyone, timezone="America/New_York")
    tyo = customer(segment=everyone, timezone="Asia/Tokyo")
    lost = customer(segment=everyone, timezone="Atlantis/Lost")
    # 10:00 on 2 March, read in the shop's zone (Stockholm).
    ten = dt.datetime(2027, 3, 2, 9, tzinfo=dt.UTC)
    made = campaign(include=[everyone], send_mode="local", send_at=ten)

    with time_machine.travel(T0, tick=False):
        made, _lint = campaign_schedule(campaign=made)
        # Planned when the first zone on Earth (UTC+14) reaches 10:00.
        assert made.plan_at == dt.datetime(2027, 3, 1, 20, tzinfo=dt.UTC)
        assert campaign_plan(campaign_id=made.pk) == 0  # not due yet: still scheduled, unplanned

    with time_machine.travel(made.plan_at, tick=False):
        assert campaign_plan(campaign_id=made.pk) == 4

    assert not_before_by_profile(made) == {
        sto.pk: dt.datetime(2027, 3, 2, 9, tzinfo=dt.UTC),
        nyc.pk: dt.datetime(2027, 3, 2, 15, tzinfo=dt.UTC),
        tyo.pk: dt.datetime(2027, 3, 2, 1, tzinfo=dt.UTC),
        lost.pk: dt.datetime(2027, 3, 2, 9, tzinfo=dt.UTC),  # an unknown zone: the shop's
    }
    with time_machine.travel(dt.datetime(2027, 3, 2, 9, 30, tzinfo=dt.UTC), tick=False):
        messages_dispatch()
    sent = set(made.messages.filter(state=MessageState.SENT).values_list("profile_id", flat=True))
    assert sent == {sto.pk, tyo.pk, lost.pk}  # New York's 10:00 has not come yet


def test_a_campaign_at_a_time_is_planned_then_and_only_members_then_get_it():
    everyone = segment()
    early = customer(segment=everyone)
    made = campaign(include=[everyone], send_mode="at", send_at=T0 + dt.timedelta(hours=3))
    with time_machine.travel(T0, tick=False):
        campaign_schedule(campaign=made)
    late = customer()
    join(everyone, late)  # joined before the send time: in the audience

    with time_machine.travel(T0 + dt.timedelta(hours=3), tick=False):
        campaign_plan(campaign_id=made.pk)

    assert set(not_before_by_profile(made)) == {early.pk, late.pk}


def test_leaving_out_a_segment_leaves_out_its_members():
    everyone, vips = segment(), segment("VIP")
    regular = customer(segment=everyone)
    vip = customer(segment=everyone)
    join(vips, vip)
    made = campaign(include=[everyone], exclude=[vips])
    with time_machine.travel(T0, tick=False):
        campaign_schedule(campaign=made)
        campaign_plan(campaign_id=made.pk)

    assert set(not_before_by_profile(made)) == {regular.pk}


def test_scheduling_twice_or_in_the_past_is_a_clear_error():
    made = campaign(include=[segment()], send_mode="at", send_at=T0 - dt.timedelta(hours=1))
    with time_machine.travel(T0, tick=False), pytest.raises(CampaignStateError) as error:
        campaign_schedule(campaign=made)
    assert error.value.field == "send_at"

    made.send_mode = "now"
    made.save()
    with time_machine.travel(T0, tick=False):
        campaign_schedule(campaign=made)
        with pytest.raises(CampaignStateError, match="Only a draft"):
            campaign_schedule(campaign=made)


def test_cancelling_before_planning_plans_nothing_and_a_sent_campaign_cannot_be_cancelled():
    everyone = segment()
    customer(segment=everyone)
    made = campaign(include=[everyone], send_mode="at", send_at=T0 + dt.timedelta(hours=1))
    with time_machine.travel(T0, tick=False):
        campaign_schedule(campaign=made)
        assert campaign_cancel(campaign=made) == 0
        assert campaign_plan(campaign_id=made.pk) == 0
    assert made.status == CampaignStatus.CANCELLED and not made.messages.exists()
    with pytest.raises(CampaignStateError):
        campaign_cancel(campaign=made)
