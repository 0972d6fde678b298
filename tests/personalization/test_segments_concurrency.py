"""Segment refreshes beside each other and beside realtime updates, on real PostgreSQL."""

import datetime as dt
from collections import Counter

import pytest
from django.db.models import Count

from personalization.models import Order, Profile, Segment, SegmentMembership
from personalization.segments import segment_refresh, segments_update_for_profiles
from personalization.signals import segment_entered
from tests.concurrency import run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def customers():
    """200 new customers, written directly: these tests are about the refresh, not ingest."""
    profiles = Profile.objects.bulk_create(
        Profile(email=f"c{i}@example.com", orders_count=1, first_order_at=NOW, last_order_at=NOW)
        for i in range(200)
    )
    Order.objects.bulk_create(
        Order(
            external_id=f"O{p.pk}",
            profile=p,
            placed_at=NOW,
            total=10,
            shop_total=10,
            currency="EUR",
            source="api",
        )
        for p in profiles
    )
    return profiles


@pytest.fixture
def entries():
    heard = Counter()

    def receiver(sender, segment, profile_ids, **kwargs):
        heard.update((segment.slug, pid) for pid in profile_ids)

    segment_entered.connect(receiver)
    yield heard
    segment_entered.disconnect(receiver)


def open_stays_per_profile(slug):
    return Counter(
        SegmentMembership.objects.current()
        .filter(segment__slug=slug)
        .values("profile")
        .annotate(n=Count("pk"))
        .values_list("n", flat=True)
    )


def test_two_refreshes_of_one_segment_at_once_store_each_entry_once(customers, entries):
    segment = Segment.objects.get(slug="new_customer")
    run_concurrently([lambda: segment_refresh(segment=segment, now=NOW)] * 4)

    assert open_stays_per_profile("new_customer") == {1: 200}
    assert SegmentMembership.objects.filter(segment=segment).count() == 200
    # Each customer's entry is announced once, however many refreshes ran.
    assert set(entries.values()) == {1} and len(entries) == 200
    segment.refresh_from_db()
    assert segment.member_count == 200


def test_realtime_updates_beside_a_refresh_leave_one_stay_each(customers, entries):
    segment = Segment.objects.get(slug="new_customer")
    ids = [p.pk for p in customers]
    halves = [ids[:100], ids[100:]]
    run_concurrently(
        [
            lambda: segment_refresh(segment=segment, now=NOW),
            lambda: segments_update_for_profiles(profile_ids=halves[0], now=NOW),
            lambda: segments_update_for_profiles(profile_ids=halves[1], now=NOW),
            lambda: segments_update_for_profiles(profile_ids=ids, now=NOW),
        ]
    )
    assert open_stays_per_profile("new_customer") == {1: 200}
    assert Counter(slug for slug, _pid in entries.elements()) == {"new_customer": 200}
    # The count follows the members, whichever ran first.
    segment.refresh_from_db()
    assert segment.member_count == 200
