"""An erasure racing an order of the same customer, against real PostgreSQL row locks."""

import datetime as dt
import threading

import pytest
from django.db import transaction

from personalization.commerce import order_record
from personalization.consent import consent_state
from personalization.identity import Identity
from personalization.models import (
    ConsentRecord,
    Order,
    Profile,
    Suppression,
    SuppressionSource,
)
from personalization.privacy.erasure import profile_erase
from tests.concurrency import run_concurrently, until_another_session_waits_for_a_lock

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
T0 = dt.datetime(2026, 7, 1, 8, tzinfo=dt.UTC)
EMAIL = "ann@example.com"


def place(order_id: str):
    return order_record(
        order_id=order_id,
        identity=Identity(email=EMAIL),
        placed_at=T0,
        total="12.50",
        currency_code="EUR",
        lines=[{"product_id": "mug", "quantity": 1, "unit_price": "12.50"}],
        consents={"email_marketing": "checkout-1"},
    )


@pytest.fixture
def ann(product_factory):
    product_factory(external_id="mug")
    place("O-old")
    return Profile.objects.get(email=EMAIL)


def erase(profile):
    return profile_erase(profile=profile, source=SuppressionSource.PREFERENCE_CENTRE)


def test_an_order_waiting_for_an_erasure_is_recorded_for_a_new_profile(ann):
    erasing = threading.Event()

    def erase_then_hold():
        with transaction.atomic():
            erase(ann)
            erasing.set()
            until_another_session_waits_for_a_lock()  # the order waits for the profile

    def order_after():
        assert erasing.wait(10)
        place("O-new")

    run_concurrently([erase_then_hold, order_after])

    assert Order.objects.get(external_id="O-old").profile is None
    new = Order.objects.get(external_id="O-new").profile
    assert new is not None and new.pk != ann.pk and new.email == EMAIL
    assert new.orders_count == 1
    # Ticking the box at checkout is a new consent of the person's own.
    assert consent_state(profile=new, purpose="email_marketing") == "granted"
    assert not Profile.objects.filter(pk=ann.pk).exists()
    assert Suppression.objects.erased().count() == 1


def test_an_erasure_waiting_for_an_order_detaches_that_order_too(ann):
    ordering = threading.Event()

    def order_then_hold():
        with transaction.atomic():
            place("O-new")
            ordering.set()
            until_another_session_waits_for_a_lock()  # the erasure waits for the profile

    def erase_after():
        assert ordering.wait(10)
        erase(ann)

    run_concurrently([order_then_hold, erase_after])

    assert set(Order.objects.values_list("profile", flat=True)) == {None}
    assert Order.objects.count() == 2
    assert not Profile.objects.exists()
    assert not ConsentRecord.objects.exists()


def test_many_orders_and_an_erasure_at_once_leave_no_half_erased_person(ann):
    run_concurrently([lambda: erase(ann)] + [lambda n=n: place(f"O-{n}") for n in range(5)])

    for order in Order.objects.exclude(external_id="O-old").select_related("profile"):
        # Each order is either detached (recorded before the erasure) or a new profile's.
        assert order.profile is None or order.profile.pk != ann.pk
    assert Order.objects.get(external_id="O-old").profile is None
    profiles = Profile.objects.all()
    assert len(profiles) <= 1
    for profile in profiles:
        assert profile.orders_count == Order.objects.filter(profile=profile).count() > 0
