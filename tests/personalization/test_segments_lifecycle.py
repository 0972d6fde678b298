"""The five lifecycle segments: who is in them, and how refreshes store entries and exits."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from personalization.commerce import cart_update, order_record, order_status_set
from personalization.consent import consent_record
from personalization.identity import Identity, profile_merge
from personalization.models import Segment, SegmentDailyCount, SegmentMembership
from personalization.segments import (
    lifecycle_segments_ensure,
    membership,
    segment_refresh,
    segments_refresh,
    segments_update_for_profiles,
)
from personalization.signals import segment_entered, segment_exited

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture(autouse=True)
def mug(product_factory):
    return product_factory(external_id="mug", price=Decimal("12.50"))


_orders = iter(range(1, 10**6))


def order(email: str, placed_at: dt.datetime, **kwargs):
    created, _ = order_record(
        order_id=f"O{next(_orders)}",
        identity=Identity(email=email),
        placed_at=placed_at,
        total="12.50",
        currency_code="EUR",
        lines=[{"product_id": "mug", "quantity": 1, "unit_price": "12.50"}],
        **kwargs,
    )
    return created


def cart(email: str, cart_id: str, updated_at: dt.datetime, *, lines: int = 1):
    cart_update(
        cart_id=cart_id,
        identity=Identity(email=email),
        updated_at=updated_at,
        lines=[{"product_id": "mug", "quantity": lines, "unit_price": "12.50"}] if lines else [],
        currency_code="EUR",
    )


def members(slug: str, *, now: dt.datetime = NOW) -> set[str]:
    segment = Segment.objects.get(slug=slug)
    segment_refresh(segment=segment, now=now)
    return set(
        SegmentMembership.objects.current()
        .filter(segment=segment)
        .values_list("profile__email", flat=True)
    )


def subscribe(profile, granted=True):
    consent_record(
        profile=profile, purpose="email_marketing", granted=granted, source="preference_centre"
    )


def test_every_installation_has_the_five_lifecycle_segments():
    slugs = set(Segment.objects.filter(kind="lifecycle").values_list("slug", flat=True))
    assert slugs == {"lead", "new_customer", "lapsed", "loyal", "cart_abandoner"}
    # A marketer's new name survives the next migrate.
    Segment.objects.filter(slug="loyal").update(name="Our regulars")
    assert lifecycle_segments_ensure() == 0
    assert Segment.objects.get(slug="loyal").name == "Our regulars"


def test_leads_are_subscribers_who_have_not_ordered(profile_factory):
    ann, bob, cy = (profile_factory(email=f"{n}@example.com") for n in ("ann", "bob", "cy"))
    subscribe(ann)
    subscribe(bob)
    subscribe(cy)
    subscribe(cy, granted=False)
    order("bob@example.com", NOW - DAY)
    assert members("lead") == {"ann@example.com"}


def test_a_cancelled_or_refunded_order_does_not_count(profile_factory):
    subscribe(profile_factory(email="ann@example.com"))
    first = order("ann@example.com", NOW - 3 * DAY)
    assert members("lead") == set()
    assert members("new_customer") == {"ann@example.com"}
    order_status_set(order_id=first.external_id, status="cancelled")
    assert members("lead") == {"ann@example.com"}
    assert members("new_customer") == set()


def test_new_customers_placed_their_first_order_within_30_days(clock):
    order("ann@example.com", NOW - 29 * DAY)
    order("bob@example.com", NOW - 31 * DAY)
    order("bob@example.com", NOW - DAY)  # a second order does not make bob new again
    assert members("new_customer") == {"ann@example.com"}
    assert members("new_customer", now=NOW + 2 * DAY) == set()


def test_lapsed_customers_last_ordered_more_than_180_days_ago():
    order("ann@example.com", NOW - 181 * DAY)
    order("bob@example.com", NOW - 179 * DAY)
    order("cy@example.com", NOW - 300 * DAY)
    order("cy@example.com", NOW - 10 * DAY)
    assert members("lapsed") == {"ann@example.com"}


def test_loyal_customers_ordered_three_times_within_a_year():
    for days in (10, 100, 300):
        order("ann@example.com", NOW - days * DAY)
    for days in (10, 100, 400):  # the third is too old
        order("bob@example.com", NOW - days * DAY)
    assert members("loyal") == {"ann@example.com"}


def test_loyalty_thresholds_are_settings(settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "LOYAL_MIN_ORDERS": 2,
        "LOYAL_WITHIN_DAYS": 30,
    }
    order("ann@example.com", NOW - 5 * DAY)
    order("ann@example.com", NOW - 20 * DAY)
    order("bob@example.com", NOW - 5 * DAY)
    order("bob@example.com", NOW - 40 * DAY)
    assert members("loyal") == {"ann@example.com"}


def test_cart_abandoners_left_a_cart_between_an_hour_and_seven_days_ago():
    hour = dt.timedelta(hours=1)
    cart("fresh@example.com", "c1", NOW - 30 * dt.timedelta(minutes=1))
    cart("abandoned@example.com", "c2", NOW - 2 * hour)
    cart("stale@example.com", "c3", NOW - 8 * DAY)
    cart("emptied@example.com", "c4", NOW - 3 * hour)
    cart("emptied@example.com", "c4", NOW - 2 * hour, lines=0)
    cart("bought@example.com", "c5", NOW - 3 * hour)
    order("bought@example.com", NOW - 2 * hour)  # another order after the cart changed
    cart("older-order@example.com", "c6", NOW - 2 * hour)
    order("older-order@example.com", NOW - 3 * DAY)
    assert members("cart_abandoner") == {"abandoned@example.com", "older-order@example.com"}
    # Half an hour on, the fresh cart counts as abandoned too.
    later = NOW + 31 * dt.timedelta(minutes=1)
    assert "fresh@example.com" in members("cart_abandoner", now=later)


def test_a_refresh_stores_entries_and_exits_and_a_return_is_a_new_stay():
    segment = Segment.objects.get(slug="new_customer")
    order("ann@example.com", NOW - DAY)
    first = segment_refresh(segment=segment, now=NOW)
    assert (first.entered, first.exited, first.members) == (1, 0, 1)
    again = segment_refresh(segment=segment, now=NOW + DAY)
    assert (again.entered, again.exited, again.members) == (0, 0, 1)
    gone = segment_refresh(segment=segment, now=NOW + 40 * DAY)
    assert (gone.entered, gone.exited, gone.members) == (0, 1, 0)

    [stay] = SegmentMembership.objects.filter(segment=segment)
    assert (stay.entered_at, stay.exited_at) == (NOW, NOW + 40 * DAY)
    segment.refresh_from_db()
    assert (segment.member_count, segment.refreshed_at) == (0, NOW + 40 * DAY)
    days = dict(SegmentDailyCount.objects.filter(segment=segment).values_list("day", "members"))
    assert days == {NOW.date(): 1, (NOW + DAY).date(): 1, (NOW + 40 * DAY).date(): 0}


def test_entries_and_exits_are_announced_after_commit_in_batches(
    monkeypatch, django_capture_on_commit_callbacks
):
    from personalization.segments import membership

    monkeypatch.setattr(membership, "SEGMENT_SIGNAL_BATCH", 2)
    for name in ("a", "b", "c"):
        order(f"{name}@example.com", NOW - DAY)
    heard = []

    def listen(signal_name):
        def receiver(sender, segment, profile_ids, at, by, **kwargs):
            heard.append((signal_name, segment.slug, len(profile_ids), at, by))

        return receiver

    on_enter, on_exit = listen("entered"), listen("exited")
    segment_entered.connect(on_enter)
    segment_exited.connect(on_exit)
    try:
        segment = Segment.objects.get(slug="new_customer")
        with django_capture_on_commit_callbacks() as callbacks:
            segment_refresh(segment=segment, now=NOW)
            assert heard == []  # nothing before the commit
        for callback in callbacks:
            callback()
        assert sorted(heard) == [
            ("entered", "new_customer", 1, NOW, "refresh"),
            ("entered", "new_customer", 2, NOW, "refresh"),
        ]
        heard.clear()
        with django_capture_on_commit_callbacks(execute=True):
            segment_refresh(segment=segment, now=NOW + 31 * DAY)
        assert sorted(heard) == [
            ("exited", "new_customer", 1, NOW + 31 * DAY, "refresh"),
            ("exited", "new_customer", 2, NOW + 31 * DAY, "refresh"),
        ]
    finally:
        segment_entered.disconnect(on_enter)
        segment_exited.disconnect(on_exit)


def test_refreshing_every_segment_reports_each(profile_factory):
    subscribe(profile_factory(email="ann@example.com"))
    order("bob@example.com", NOW - DAY)
    seen = []
    results = segments_refresh(now=NOW, progress=seen.append)
    assert results == seen
    by_slug = {result.segment: result.members for result in results}
    assert by_slug == {
        "lead": 1,
        "new_customer": 1,
        "lapsed": 0,
        "loyal": 0,
        "cart_abandoner": 0,
    }


def test_realtime_update_follows_one_customers_order(profile_factory):
    ann = profile_factory(email="ann@example.com")
    subscribe(ann)
    segments_refresh(now=NOW)
    assert members("lead") == {"ann@example.com"}

    order("ann@example.com", NOW)
    changes = segments_update_for_profiles(profile_ids=[ann.pk])
    assert changes == {
        "lead": (frozenset(), frozenset({ann.pk})),
        "new_customer": (frozenset({ann.pk}), frozenset()),
    }
    current = set(
        SegmentMembership.objects.current()
        .filter(profile=ann)
        .values_list("segment__slug", flat=True)
    )
    assert current == {"new_customer"}
    counts = dict(Segment.objects.values_list("slug", "member_count"))
    assert (counts["lead"], counts["new_customer"]) == (0, 1)
    # Nothing changed since: nothing happens.
    assert segments_update_for_profiles(profile_ids=[ann.pk]) == {}


def test_realtime_update_takes_the_same_few_queries_however_many_profiles(profile_factory):
    for index in range(30):
        order(f"c{index}@example.com", NOW - (index + 1) * 20 * DAY)
    segments_refresh(now=NOW)
    ann = profile_factory(email="ann@example.com")
    subscribe(ann)

    def queries(profile_ids):
        with CaptureQueriesContext(connection) as captured:
            segments_update_for_profiles(profile_ids=profile_ids)
        return len(captured)

    one = queries([ann.pk])  # enters lead
    many = queries(list(SegmentMembership.objects.values_list("profile_id", flat=True)))
    assert one <= 10
    assert many <= one + 2


def test_a_merged_away_profile_leaves_its_segments_and_its_history_moves_along(
    profile_factory, django_capture_on_commit_callbacks
):
    old = profile_factory(email="old@example.com")
    order("old@example.com", NOW - 200 * DAY)  # lapsed
    ann = profile_factory(email="ann@example.com")
    subscribe(ann)  # lead
    segments_refresh(now=NOW)
    exits = []
    segment_exited.connect(
        lambda segment, profile_ids, **kw: exits.append((segment.slug, profile_ids)),
        weak=False,
        dispatch_uid="test-merge-exits",
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            profile_merge(source=old, target=ann)
    finally:
        segment_exited.disconnect(dispatch_uid="test-merge-exits")

    assert ("lapsed", frozenset({old.pk})) in exits
    counts = dict(Segment.objects.values_list("slug", "member_count"))
    # The merge's own update (a job after commit) then places Ann, who now has the order.
    assert counts["lead"] == 0
    assert counts["lapsed"] == 1
    current = SegmentMembership.objects.current()
    assert set(current.values_list("segment__slug", "profile_id")) == {("lapsed", ann.pk)}
    # Both stays of the old profile's history are Ann's now, the lapsed one closed at the merge.
    assert SegmentMembership.objects.filter(profile=ann, segment__slug="lapsed").count() == 2
    assert segments_refresh(now=NOW) and all(
        segment.member_count == current.filter(segment=segment).count()
        for segment in Segment.objects.all()
    )


@pytest.mark.parametrize("pairs_per_statement", [1000, 2])
def test_realtime_and_full_refresh_agree(profile_factory, monkeypatch, pairs_per_statement):
    # With 2, the realtime writes go out in many small statements: the same outcome.
    monkeypatch.setattr(membership, "PAIRS_PER_STATEMENT", pairs_per_statement)
    for index in range(12):
        email = f"c{index}@example.com"
        profile = profile_factory(email=email)
        if index % 3 == 0:
            subscribe(profile)
        for back in range(index % 4):
            order(email, NOW - (index * 37 + back * 90) * DAY)
        if index % 5 == 0:
            cart(email, f"cart{index}", NOW - (index + 2) * dt.timedelta(hours=1))
    from personalization.models import Profile

    segments_update_for_profiles(profile_ids=Profile.objects.values_list("pk", flat=True))
    realtime = set(SegmentMembership.objects.current().values_list("segment_id", "profile_id"))
    results = segments_refresh()
    assert all(result.entered == result.exited == 0 for result in results)
    assert set(SegmentMembership.objects.current().values_list("segment_id", "profile_id")) == (
        realtime
    )


def test_refresh_segments_command_reports_progress_and_a_summary(capsys):
    from django.core.management import call_command

    order("ann@example.com", NOW - DAY)
    call_command("refresh_segments", "--segment", "new_customer", "--segment", "lapsed")
    out, err = capsys.readouterr()
    assert "[1/2] new_customer: 1 members (+1, -0)" in err
    assert "[2/2] lapsed: 0 members (+0, -0)" in err
    assert "Refreshed 2 segment(s)" in out and "1 entered, 0 left." in out


def test_refresh_segments_names_an_unknown_segment():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="No segment nope. Known segments: cart_abandoner"):
        call_command("refresh_segments", "--segment", "nope")


def test_segment_counts_json_maps_every_slug_to_its_count(capsys):
    import json

    from django.core.management import call_command

    order("ann@example.com", NOW - DAY)
    call_command("refresh_segments")
    capsys.readouterr()
    call_command("segment_counts", "--json")
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "cart_abandoner": 0,
        "lapsed": 0,
        "lead": 0,
        "loyal": 0,
        "new_customer": 1,
    }
    call_command("segment_counts")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines][-1] == ["new_customer", "1"]
    assert "refreshed 2026-06-01T12:00:00+00:00" in lines[-1]


def test_beat_refreshes_cart_abandoners_every_5_minutes_and_the_rest_every_15():
    import json

    from django_celery_beat.models import PeriodicTask

    tasks = {
        task.name: task
        for task in PeriodicTask.objects.filter(task="personalization.segments_refresh")
    }
    abandoners = tasks["personalization: refresh cart abandoners"]
    rest = tasks["personalization: refresh segments"]
    assert (abandoners.crontab.minute, rest.crontab.minute) == ("*/5", "*/15")
    assert json.loads(abandoners.kwargs) == {"slugs": ["cart_abandoner"]}
    assert json.loads(rest.kwargs) == {"exclude": ["cart_abandoner"]}


def test_the_scheduled_task_refreshes_what_its_schedule_names(profile_factory):
    from personalization.tasks import segments_refresh_task

    order("ann@example.com", NOW - DAY)
    cart("bob@example.com", "c1", NOW - 2 * dt.timedelta(hours=1))
    segments_refresh_task(slugs=["cart_abandoner"])
    refreshed = set(Segment.objects.filter(refreshed_at=NOW).values_list("slug", flat=True))
    assert refreshed == {"cart_abandoner"}
    segments_refresh_task(exclude=["cart_abandoner"])
    assert Segment.objects.filter(refreshed_at=NOW).count() == 5
