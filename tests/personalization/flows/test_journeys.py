"""Every flow's trigger, timing and exits, with the clock moved by time-machine."""

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from personalization.consent import consent_record
from personalization.flows import flow_run
from personalization.models import (
    EntryState,
    Event,
    EventName,
    ExitReason,
    FlowEntry,
    Message,
    MessageState,
    Profile,
    Segment,
)
from personalization.segments import segments_refresh

from .shop import T0, FlowKind, abandoned_cart, beat, customer, entry_of, flow, place_order, sent_to

pytestmark = pytest.mark.django_db

HOUR, DAY, MINUTE = dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(minutes=1)


def refresh(slug: str, at: dt.datetime) -> None:
    with time_machine.travel(at, tick=False):
        segments_refresh(segments=Segment.objects.filter(slug=slug), now=at)


def lapse(*profiles, at=T0) -> None:
    Profile.objects.filter(pk__in=[p.pk for p in profiles]).update(
        orders_count=2, last_order_at=at - dt.timedelta(days=200)
    )
    refresh("lapsed", at)


def html_of(profile) -> str:
    (message,) = [m for m in mail.outbox if m.to == [profile.email]]
    return message.alternatives[0][0]


@pytest.fixture
def generous(settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "ADAPTER": "tests.personalization.flows.adapters.GenerousAdapter",
    }


def new_subscriber():
    with time_machine.travel(T0 - 10 * MINUTE, tick=False):
        return customer()


def test_a_new_subscriber_is_welcomed_within_minutes_without_a_promised_code():
    anna = new_subscriber()
    old_friend = customer()  # subscribed months ago: reaching "lead" now is not news
    refresh("lead", T0)

    beat(T0 + 6 * MINUTE)

    assert sent_to(anna, FlowKind.WELCOME) == ["Welcome to 127.0.0.1"]
    html = html_of(anna)
    assert "Tell us what interests you" in html and "/preferences/" in html
    assert "code" not in html.lower()  # the default adapter gives none: nothing is promised
    assert sent_to(old_friend, FlowKind.WELCOME) == []


def test_the_welcome_carries_the_shops_code_when_the_adapter_gives_one(generous):
    bo = new_subscriber()
    refresh("lead", T0)

    beat(T0 + 6 * MINUTE)

    assert "WELCOME-5" in html_of(bo)


def test_win_back_escalates_three_times_and_stops_on_a_purchase(generous, product_factory):
    anna, bo = customer(), customer()
    lapse(anna, bo)

    beat(T0 + MINUTE)
    assert sent_to(anna) == ["It has been a while"]
    place_order(bo, product_factory(), at=T0 + 3 * DAY)
    beat(T0 + 14 * DAY + 2 * MINUTE)
    beat(T0 + 30 * DAY + 3 * MINUTE)

    assert sent_to(anna, FlowKind.WIN_BACK) == [
        "It has been a while",
        "Something for your next order",
        "One last thing from us",
    ]
    codes = [m.alternatives[0][0] for m in mail.outbox if m.to == [anna.email]]
    assert "WIN_BACK-10" in codes[1] and "WIN_BACK-15" in codes[2]
    assert sent_to(bo, FlowKind.WIN_BACK) == ["It has been a while"]
    assert entry_of(bo, FlowKind.WIN_BACK).exit_reason == ExitReason.ORDERED


def test_entering_is_set_based_whatever_the_number_of_customers():
    def statements_for(count: int, at: dt.datetime) -> tuple[int, int]:
        people = [customer() for _ in range(count)]
        lapse(*people, at=at)
        with CaptureQueriesContext(connection) as queries:
            report = flow_run(flow_id=flow(FlowKind.WIN_BACK).pk, now=at)
        assert report.entered == count and report.planned >= count
        return len(queries.captured_queries), Message.objects.filter(profile__in=people).count()

    few = statements_for(3, T0)
    many = statements_for(40, T0 + 30 * DAY)

    assert few[0] == many[0]  # the same statements for 3 and for 40
    assert (few[1], many[1]) == (3, 40)


@pytest.mark.parametrize(
    ("zone", "birthday", "morning_utc"),
    [
        # New York moves its clocks on 14 March 2027: 09:00 there is 13:00 UTC that day.
        ("America/New_York", dt.date(1990, 3, 14), dt.datetime(2027, 3, 14, 13, tzinfo=dt.UTC)),
        ("America/New_York", dt.date(1990, 3, 13), dt.datetime(2027, 3, 13, 14, tzinfo=dt.UTC)),
        # Stockholm on 28 March 2027: 09:00 there is 07:00 UTC; the day before 08:00 UTC.
        ("Europe/Stockholm", dt.date(1985, 3, 28), dt.datetime(2027, 3, 28, 7, tzinfo=dt.UTC)),
        ("Europe/Stockholm", dt.date(1985, 3, 27), dt.datetime(2027, 3, 27, 8, tzinfo=dt.UTC)),
        ("Asia/Tokyo", dt.date(2000, 3, 28), dt.datetime(2027, 3, 28, 0, tzinfo=dt.UTC)),
    ],
)
def test_a_birthday_email_arrives_in_the_recipients_local_morning(zone, birthday, morning_utc):
    ida = customer(timezone=zone, birthday=birthday)
    local = zoneinfo.ZoneInfo(zone)
    midnight = dt.datetime(2027, birthday.month, birthday.day, tzinfo=local).astimezone(dt.UTC)

    beat(midnight - HOUR)  # entered the evening before, nothing planned yet
    assert not Message.objects.filter(profile=ida, flow_step__flow__kind=FlowKind.BIRTHDAY)
    beat(midnight + MINUTE)  # the day has begun there: planned for the morning
    (planned,) = Message.objects.filter(profile=ida, flow_step__flow__kind=FlowKind.BIRTHDAY)
    assert planned.not_before == morning_utc
    beat(morning_utc - MINUTE)
    assert sent_to(ida, FlowKind.BIRTHDAY) == []
    beat(morning_utc + MINUTE)

    assert sent_to(ida, FlowKind.BIRTHDAY) == ["Happy birthday!"]
    sent_at = Message.objects.get(pk=planned.pk).sent_at.astimezone(local)
    assert (sent_at.month, sent_at.day, sent_at.hour) == (birthday.month, birthday.day, 9)
    beat(morning_utc + 3 * HOUR)
    assert len(sent_to(ida, FlowKind.BIRTHDAY)) == 1


def test_a_birthday_planned_late_after_an_outage_still_goes_that_day(settings):
    settings.TIME_ZONE = "Pacific/Auckland"  # a shop far east of UTC: its own dates differ
    ida = customer(timezone="Europe/Stockholm", birthday=dt.date(1990, 3, 5))
    beat(dt.datetime(2027, 3, 4, 13, tzinfo=dt.UTC))  # entered the day before

    beat(dt.datetime(2027, 3, 5, 10, tzinfo=dt.UTC))  # Beat was down all morning: 11:00 there

    assert sent_to(ida, FlowKind.BIRTHDAY) == ["Happy birthday!"]


def test_a_step_at_a_local_time_waits_for_the_next_one_after_its_delay():
    welcome = flow(FlowKind.WELCOME).steps.get()
    welcome.local_time = dt.time(9)
    welcome.save()
    with time_machine.travel(T0.replace(hour=14), tick=False):  # 15:00 in Stockholm
        anna = customer()
    refresh("lead", T0.replace(hour=14))

    beat(T0.replace(hour=14, minute=6))
    (planned,) = Message.objects.filter(profile=anna, flow_step=welcome)

    assert planned.not_before == dt.datetime(2027, 3, 2, 8, tzinfo=dt.UTC)  # 09:00 next day


def _view(profile, product, *, at, times=3):
    Event.objects.bulk_create(
        Event(profile=profile, name=EventName.PRODUCT_VIEWED, product=product, occurred_at=at)
        for _ in range(times)
    )


def test_browse_abandonment_sends_picks_from_the_area_never_naming_what_was_watched(
    product_factory,
):
    watched = product_factory(title="Ethiopia Sidamo", category_path="Food > Coffee")
    other = product_factory(title="Kenya Nyeri", category_path="Food > Coffee")
    for buyer in (customer(), customer()):
        place_order(buyer, other, watched, at=T0 - 5 * DAY)
    anna = customer()
    _view(anna, watched, at=T0 - 2 * HOUR)

    beat(T0)
    beat(T0 + HOUR + MINUTE)  # an hour after the last view

    assert sent_to(anna, FlowKind.BROWSE_ABANDONMENT) == ["A few ideas for you"]
    html = html_of(anna)
    assert "Kenya Nyeri" in html
    assert "Ethiopia Sidamo" not in html and "viewed" not in html.lower()


def test_no_browse_abandonment_without_personalisation_consent_or_for_sensitive_products(
    product_factory, settings
):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SENSITIVE_CATEGORIES": ["Health"]}
    remedy = product_factory(title="Sleep aid", category_path="Health > Sleep")
    coffee = product_factory(title="Kenya Nyeri", category_path="Food > Coffee")
    private, unasked = customer(), customer(personalization=False)
    _view(private, remedy, at=T0 - 2 * HOUR)
    _view(unasked, coffee, at=T0 - 2 * HOUR)

    beat(T0)
    beat(T0 + 2 * HOUR)

    assert not FlowEntry.objects.filter(flow__kind=FlowKind.BROWSE_ABANDONMENT).exists()
    assert mail.outbox == []


def test_replenishment_is_cancelled_by_a_rebuy(product_factory):
    beans = product_factory(title="Beans", purchase_cycle="repeat", repurchase_interval_days=30)
    evening = T0.replace(hour=20, minute=30)  # 21:30 in Stockholm: held back to the morning
    anna, bo = customer(), customer()
    for someone in (anna, bo):
        place_order(someone, beans, at=evening - 30 * DAY)

    beat(evening)
    assert Message.objects.filter(flow_step__flow__kind=FlowKind.REPLENISHMENT).count() == 2
    place_order(bo, beans, at=evening + 2 * HOUR)
    beat(evening + 12 * HOUR)  # 09:30 there

    print(
        list(
            Message.objects.filter(flow_step__flow__kind=FlowKind.REPLENISHMENT).values(
                "profile_id",
                "state",
                "reason",
                "not_before",
                "sent_at",
                "flow_entry__entered_at",
                "flow_entry__state",
            )
        ),
        bo.pk,
    )
    assert sent_to(anna, FlowKind.REPLENISHMENT) == ["Time to restock?"]
    assert sent_to(bo, FlowKind.REPLENISHMENT) == []
    assert entry_of(bo, FlowKind.REPLENISHMENT).exit_reason == ExitReason.REBOUGHT


@pytest.mark.parametrize("personalization", [True, False])
def test_post_purchase_thanks_then_suggests_complements_never_what_was_bought(
    product_factory, personalization
):
    machine = product_factory(title="Espresso Machine", category_path="Kitchen > Machines")
    grinder = product_factory(title="Burr Grinder", category_path="Kitchen > Grinders")
    for buyer in (customer(), customer(), customer()):
        place_order(buyer, machine, at=T0 - 10 * DAY)  # the bestseller
    for buyer in (customer(), customer()):
        place_order(buyer, machine, grinder, at=T0 - 10 * DAY)
    anna = customer(personalization=personalization)
    place_order(anna, machine, at=T0)

    beat(T0 + HOUR + MINUTE)
    beat(T0 + HOUR + 7 * DAY + 2 * MINUTE)

    assert sent_to(anna, FlowKind.POST_PURCHASE) == [
        "Thank you for your order",
        "Goes well with what you got",
    ]
    cross_sell = [m for m in mail.outbox if m.to == [anna.email]][-1].alternatives[0][0]
    assert "Burr Grinder" in cross_sell and "Espresso Machine" not in cross_sell


@pytest.mark.parametrize("leaves", ["withdraws", "unsubscribes", "pauses"])
def test_a_customer_who_withdraws_unsubscribes_or_pauses_leaves_the_flow(leaves, client):
    anna = customer()
    lapse(anna)
    beat(T0 + MINUTE)
    if leaves == "withdraws":
        consent_record(profile=anna, purpose="email_marketing", granted=False, source="api")
    elif leaves == "unsubscribes":
        (first,) = mail.outbox
        target = first.extra_headers["List-Unsubscribe"].strip("<>").split("127.0.0.1:8000")[1]
        assert client.post(target, {"List-Unsubscribe": "One-Click"}).status_code == 200
    else:
        Profile.objects.filter(pk=anna.pk).update(paused_until=T0 + 60 * DAY)

    beat(T0 + 14 * DAY + 2 * MINUTE)

    assert sent_to(anna, FlowKind.WIN_BACK) == ["It has been a while"]
    entry = entry_of(anna, FlowKind.WIN_BACK)
    assert entry.state == EntryState.EXITED
    expected = ExitReason.PAUSED if leaves == "pauses" else ExitReason.NO_CONSENT
    assert entry.exit_reason == expected


def test_entering_a_flow_that_goes_first_ends_the_one_after_it(product_factory):
    coffee = product_factory(title="Kenya Nyeri", category_path="Food > Coffee")
    anna = customer()
    _view(anna, coffee, at=T0 - 30 * MINUTE)
    beat(T0)
    abandoned_cart(anna, coffee, at=T0 + 10 * MINUTE)  # the cart flow goes first

    beat(T0 + 31 * MINUTE)
    beat(T0 + 3 * HOUR)

    assert sent_to(anna, FlowKind.BROWSE_ABANDONMENT) == []
    browse = entry_of(anna, FlowKind.BROWSE_ABANDONMENT)
    assert browse.exit_reason in (ExitReason.HIGHER_PRIORITY, ExitReason.CARTED)


def test_a_flow_switched_off_starts_nobody_and_its_planned_messages_are_skipped():
    anna = customer()
    lapse(anna)
    evening = T0.replace(hour=20, minute=30)
    beat(evening)  # planned, held back for the night
    welcome = flow(FlowKind.WIN_BACK)
    welcome.enabled = False
    welcome.save()
    bo = customer()
    lapse(bo, at=evening + HOUR)

    beat(evening + 12 * HOUR)

    assert mail.outbox == [] or all(m.to != [anna.email] for m in mail.outbox)
    assert Message.objects.get(profile=anna, flow_step__flow=welcome).reason == "flow_exited"
    assert not FlowEntry.objects.filter(profile=bo, flow=welcome).exists()
    assert entry_of(anna, FlowKind.WIN_BACK).exit_reason == ExitReason.FLOW_OFF
    assert Message.objects.get(profile=anna, flow_step__flow=welcome).state == MessageState.SKIPPED


def test_a_customer_entering_loyal_hears_about_early_access_a_day_later():
    anna = customer()
    Profile.objects.filter(pk=anna.pk).update(orders_count=4, last_order_at=T0 - 10 * DAY)
    for days in (10, 40, 80):
        place_order(anna, at=T0 - days * DAY)
    refresh("loyal", T0)

    beat(T0 + MINUTE)
    assert sent_to(anna, FlowKind.LOYAL) == []
    beat(T0 + DAY + 2 * MINUTE)

    assert sent_to(anna, FlowKind.LOYAL) == ["Thank you for being a regular"]


def test_a_cart_left_later_ends_a_restock_reminder_still_held_for_the_night(product_factory):
    beans = product_factory(title="Beans", purchase_cycle="repeat", repurchase_interval_days=30)
    evening = T0.replace(hour=20, minute=30)  # 21:30 in Stockholm
    anna = customer()
    place_order(anna, beans, at=evening - 30 * DAY)
    beat(evening)  # the restock reminder is planned and held back until 08:00
    abandoned_cart(anna, beans, at=evening + 30 * MINUTE)
    beat(evening + 90 * MINUTE + MINUTE)  # the cart counts as left: the cart flow goes first

    beat(evening + 11 * HOUR)  # 08:30 there

    restock = entry_of(anna, FlowKind.REPLENISHMENT)
    assert (restock.state, restock.exit_reason) == (EntryState.EXITED, ExitReason.HIGHER_PRIORITY)
    assert sent_to(anna, FlowKind.REPLENISHMENT) == []
    assert sent_to(anna, FlowKind.ABANDONED_CART) == ["Your cart is saved for you"]


def test_a_leap_day_birthday_is_celebrated_on_the_28th_in_other_years():
    ida = customer(timezone="Europe/Stockholm", birthday=dt.date(2000, 2, 29))

    beat(dt.datetime(2027, 2, 27, 13, tzinfo=dt.UTC))
    beat(dt.datetime(2027, 2, 28, 8, 1, tzinfo=dt.UTC))  # 09:01 there

    assert sent_to(ida, FlowKind.BIRTHDAY) == ["Happy birthday!"]


def test_a_step_on_condition_is_skipped_when_the_previous_email_was_clicked():
    from anymail.signals import AnymailTrackingEvent, tracking

    win_back = flow(FlowKind.WIN_BACK)
    win_back.steps.filter(position=2).update(condition="previous_not_clicked")
    clicker, other = customer(), customer()
    lapse(clicker, other)
    beat(T0 + MINUTE)
    first = Message.objects.get(profile=clicker, flow_step__flow=win_back)
    tracking.send(
        sender=object,
        event=AnymailTrackingEvent(
            event_type="clicked",
            timestamp=T0 + HOUR,
            event_id="click-1",
            message_id=first.esp_message_id,
            recipient=first.to_email,
        ),
        esp_name="TestESP",
    )

    beat(T0 + 14 * DAY + 2 * MINUTE)

    second = Message.objects.get(profile=clicker, flow_step__flow=win_back, flow_step__position=2)
    assert (second.state, second.reason) == (MessageState.SKIPPED, "flow_condition")
    assert sent_to(other, FlowKind.WIN_BACK) == [
        "It has been a while",
        "Something for your next order",
    ]
    beat(T0 + 30 * DAY + 3 * MINUTE)  # the flow goes on after a skipped step
    assert sent_to(clicker, FlowKind.WIN_BACK) == ["It has been a while", "One last thing from us"]


def test_entries_waiting_for_a_deleted_step_go_on_to_the_next(product_factory):
    from personalization.models import FlowStep

    FlowStep.objects.filter(flow=flow(FlowKind.ABANDONED_CART), position=1).delete()
    anna = customer()
    abandoned_cart(anna, product_factory(title="Kettle"), at=T0)

    for hours in (2, 3, 26, 30):
        beat(T0 + hours * HOUR)

    assert sent_to(anna, FlowKind.ABANDONED_CART) == ["Still thinking it over?"]
    assert entry_of(anna, FlowKind.ABANDONED_CART).state == EntryState.COMPLETED


def test_two_orders_placed_together_are_one_first_order(product_factory):
    kettle = product_factory(title="Kettle")
    anna = customer()
    place_order(anna, kettle, at=T0)
    place_order(anna, kettle, at=T0)

    beat(T0 + HOUR + MINUTE)

    assert sent_to(anna, FlowKind.POST_PURCHASE) == ["Thank you for your order"]


def test_a_cart_reminder_never_names_a_sensitive_product(product_factory, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SENSITIVE_CATEGORIES": ["Health"]}
    test_kit = product_factory(title="Pregnancy test", category_path="Health > Pregnancy")
    kettle = product_factory(title="Copper Kettle")
    only_sensitive, mixed = customer(personalization=False), customer(personalization=False)
    abandoned_cart(only_sensitive, test_kit, at=T0)
    abandoned_cart(mixed, test_kit, kettle, at=T0)

    beat(T0 + 2 * HOUR + MINUTE)

    assert sent_to(only_sensitive, FlowKind.ABANDONED_CART) == []
    (reminder,) = [m for m in mail.outbox if m.to == [mixed.email]]
    html = reminder.alternatives[0][0]
    assert "Copper Kettle" in html and "Pregnancy" not in html and "Pregnancy" not in reminder.body


def test_a_restock_reminder_stops_when_personalisation_consent_is_withdrawn(product_factory):
    beans = product_factory(title="Beans", purchase_cycle="repeat", repurchase_interval_days=30)
    evening = T0.replace(hour=20, minute=30)
    anna = customer()
    place_order(anna, beans, at=evening - 30 * DAY)
    beat(evening)  # planned, held back for the night
    consent_record(profile=anna, purpose="personalization", granted=False, source="api")

    beat(evening + 12 * HOUR)

    assert sent_to(anna, FlowKind.REPLENISHMENT) == []
    assert entry_of(anna, FlowKind.REPLENISHMENT).exit_reason == ExitReason.NO_PERSONALIZATION


def test_a_subscriber_who_confirms_late_is_still_welcomed(settings):
    from personalization.consent import consent_confirm, consent_pending_grant

    with time_machine.travel(T0 - 3 * DAY, tick=False):
        late = customer(marketing="pending")
    with time_machine.travel(T0 - 10 * MINUTE, tick=False):
        consent_confirm(grant=consent_pending_grant(profile=late, purpose="email_marketing"))
    refresh("lead", T0)

    beat(T0 + 6 * MINUTE)

    assert sent_to(late, FlowKind.WELCOME) == ["Welcome to 127.0.0.1"]


def test_browse_abandonment_waits_until_the_customer_stops_and_leaves_out_all_they_viewed(
    product_factory,
):
    first = product_factory(title="Ethiopia Sidamo", category_path="Food > Coffee")
    later = product_factory(title="Kenya Nyeri", category_path="Food > Coffee")
    beans = product_factory(title="Guatemala Beans", category_path="Food > Coffee > Beans")
    other = product_factory(title="Colombia Huila", category_path="Food > Coffee")
    for buyer in (customer(), customer()):
        place_order(buyer, first, later, beans, other, at=T0 - 5 * DAY)
    anna = customer()
    _view(anna, first, at=T0 - 10 * MINUTE)
    beat(T0)  # enters
    _view(anna, later, at=T0 + 30 * MINUTE, times=2)  # still browsing
    _view(anna, beans, at=T0 + 40 * MINUTE, times=1)

    beat(T0 + HOUR)  # an hour after the first views, but not after the last
    assert sent_to(anna, FlowKind.BROWSE_ABANDONMENT) == []
    beat(T0 + 40 * MINUTE + HOUR + MINUTE)

    assert sent_to(anna, FlowKind.BROWSE_ABANDONMENT) == ["A few ideas for you"]
    html = html_of(anna)
    assert "Colombia Huila" in html
    assert not {"Ethiopia Sidamo", "Kenya Nyeri", "Guatemala Beans"} & set(
        title for title in ("Ethiopia Sidamo", "Kenya Nyeri", "Guatemala Beans") if title in html
    )


def test_a_birthday_found_late_in_the_evening_is_not_sent_the_next_day():
    ida = customer(timezone="Europe/Stockholm", birthday=dt.date(1990, 3, 5))

    beat(dt.datetime(2027, 3, 5, 21, 30, tzinfo=dt.UTC))  # 22:30 there: quiet hours
    beat(dt.datetime(2027, 3, 6, 7, 1, tzinfo=dt.UTC))  # 08:01 the next day

    assert sent_to(ida, FlowKind.BIRTHDAY) == []
    (held,) = Message.objects.filter(profile=ida, flow_step__flow__kind=FlowKind.BIRTHDAY)
    assert held.state == MessageState.SKIPPED
