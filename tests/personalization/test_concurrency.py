"""Concurrent deliveries against real PostgreSQL row locks and unique indexes."""

import datetime as dt
import threading
from decimal import Decimal

import pytest

from personalization import commerce, identity, signals
from personalization.changes import Change
from personalization.identity import Identity, profile_find, profile_merge
from personalization.importing import orders_import_path
from personalization.models import (
    Cart,
    Event,
    Order,
    OrderStatus,
    Profile,
    ProfileAlias,
    TopicPreference,
)
from personalization.tracking import identify, track
from tests.concurrency import run_concurrently, until_another_session_waits_for_a_lock

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
T0 = dt.datetime(2026, 7, 1, 8, tzinfo=dt.UTC)


def test_the_same_order_sent_by_several_workers_at_once_is_recorded_once(product_factory):
    product_factory(external_id="mug")

    def deliver():
        signals.order_placed.send(
            sender=None,
            order_id="race-1",
            email="ann@example.com",
            placed_at=T0,
            total="12.50",
            currency="EUR",
            lines=[{"product_id": "mug", "quantity": 1, "unit_price": "12.50"}],
        )

    run_concurrently([deliver] * 6)

    assert Order.objects.count() == 1
    assert Order.objects.get().lines.count() == 1
    profile = Profile.objects.get()
    assert profile.orders_count == 1


def test_simultaneous_first_visits_with_one_email_make_one_profile():
    run_concurrently([lambda: identify(email="Ann@Example.com")] * 6)
    assert Profile.objects.count() == 1


def test_cart_updates_racing_each_other_end_with_the_newest(product_factory):
    product_factory(external_id="mug")

    def update(minute):
        return lambda: signals.cart_updated.send(
            sender=None,
            cart_id="cart-race",
            email="ann@example.com",
            currency="EUR",
            updated_at=T0 + dt.timedelta(minutes=minute),
            lines=[{"product_id": "mug", "quantity": minute, "unit_price": "1.00"}],
        )

    run_concurrently([update(minute) for minute in (3, 1, 5, 2, 4)])

    cart = Cart.objects.get()
    assert cart.lines.get().quantity == 5
    assert cart.source_updated_at == T0 + dt.timedelta(minutes=5)


# --- One lock order, one retry helper: each write path racing the others --------------------


def _cart(cart_id, *, minute=0, **identity):
    return lambda: signals.cart_updated.send(
        sender=None,
        cart_id=cart_id,
        currency="EUR",
        updated_at=T0 + dt.timedelta(minutes=minute),
        lines=[{"product_id": "mug", "quantity": 1, "unit_price": "4.00"}],
        **identity,
    )


def _order(order_id, *, day=0, **identity):
    return lambda: signals.order_placed.send(
        sender=None,
        order_id=order_id,
        placed_at=T0 + dt.timedelta(days=day),
        total="10.00",
        currency="EUR",
        lines=[{"product_id": "mug", "quantity": 1, "unit_price": "10.00"}],
        **identity,
    )


def _alias_owner(anonymous_id):
    return ProfileAlias.objects.get(kind=ProfileAlias.Kind.ANONYMOUS_ID, value=anonymous_id).profile


def _assert_stats_match_a_recount():
    for profile in Profile.objects.all():
        placed = profile.orders.filter(status=OrderStatus.PLACED)
        assert profile.orders_count == placed.count(), profile.email
        assert profile.total_spent == sum((o.total for o in placed), Decimal(0)), profile.email


def test_first_requests_with_one_new_anonymous_id_make_one_profile_holding_the_carts(
    product_factory,
):
    product_factory(external_id="mug")

    run_concurrently([_cart(f"cart-{n}", anonymous_id="anon-new") for n in range(6)])

    profile = Profile.objects.get()
    assert _alias_owner("anon-new") == profile
    assert set(Cart.objects.values_list("profile", flat=True)) == {profile.pk}


def test_first_tracked_events_of_a_new_visitor_land_on_one_profile(settings, product_factory):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "TRACK_WITHOUT_CONSENT": True}
    product_factory(external_id="mug")

    def view():
        track("product_viewed", anonymous_id="anon-new", product_id="mug")

    run_concurrently([view] * 6)

    profile = Profile.objects.get()
    assert _alias_owner("anon-new") == profile
    assert Event.objects.filter(profile=profile).count() == 6


def test_a_visitor_identifying_while_browsing_anonymously_keeps_one_profile(
    settings, product_factory
):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "TRACK_WITHOUT_CONSENT": True}
    product_factory(external_id="mug")

    def view():
        track("product_viewed", anonymous_id="anon-ann", product_id="mug")

    def log_in():
        identify(email="ann@example.com", anonymous_id="anon-ann")

    run_concurrently([view, log_in, _cart("cart-ann", anonymous_id="anon-ann"), view, log_in])

    profile = Profile.objects.get()
    assert profile.email == "ann@example.com"
    assert _alias_owner("anon-ann") == profile
    assert Event.objects.filter(profile=profile).count() == 2
    assert Cart.objects.get().profile == profile


def test_orders_of_a_new_customer_arriving_at_once_make_one_profile_with_right_stats(
    product_factory,
):
    product_factory(external_id="mug")

    run_concurrently([_order(f"o-{n}", day=n, email="ann@example.com") for n in range(6)])

    profile = Profile.objects.get()
    assert profile.orders_count == 6
    _assert_stats_match_a_recount()


@pytest.mark.parametrize("signal", [signals.order_cancelled, signals.order_refunded])
def test_a_cancellation_racing_a_new_order_of_the_customer_leaves_the_stats_right(
    product_factory, monkeypatch, signal
):
    """The cancellation arrives while the new order's transaction has counted the customer's
    orders and not yet committed: the moment that lost the new order from the stats."""
    product_factory(external_id="mug")
    _order("old", email="ann@example.com")()
    counted = threading.Event()
    recording = threading.local()
    note = commerce.profile_changed_note

    def note_then_hold(profile_ids, *what):
        if getattr(recording, "active", False) and Change.ORDERS in what:
            counted.set()
            until_another_session_waits_for_a_lock()
        return note(profile_ids, *what)

    monkeypatch.setattr(commerce, "profile_changed_note", note_then_hold)

    def record():
        recording.active = True
        _order("new", day=1, email="ann@example.com")()

    def cancel():
        counted.wait(timeout=10)
        signal.send(sender=None, order_id="old")

    run_concurrently([record, cancel])

    assert Profile.objects.get().orders_count == 1
    _assert_stats_match_a_recount()


def test_two_merges_of_one_pair_in_opposite_directions_end_in_one_profile(product_factory):
    product_factory(external_id="mug")
    pairs = []
    for n in range(3):
        _order(f"a-{n}", email=f"a{n}@example.com")()
        _order(f"b-{n}", email=f"b{n}@example.com")()
        pairs.append(
            (
                Profile.objects.get(email=f"a{n}@example.com"),
                Profile.objects.get(email=f"b{n}@example.com"),
            )
        )

    def merge(source, target):
        return lambda: profile_merge(source=source, target=target)

    run_concurrently([merge(a, b) for a, b in pairs] + [merge(b, a) for a, b in pairs])

    assert Profile.objects.count() == 3
    for n in range(3):
        profile = Profile.objects.get(orders__external_id=f"a-{n}")
        assert profile.orders.count() == 2
        assert profile_find(Identity(email=f"a{n}@example.com")) == profile
        assert profile_find(Identity(email=f"b{n}@example.com")) == profile
    _assert_stats_match_a_recount()


def test_a_merge_whose_source_another_merge_took_meanwhile_merges_what_it_became(
    product_factory, monkeypatch
):
    """a into c and, at the same moment, a into b: b ends up with all three."""
    product_factory(external_id="mug")
    for name in "abc":
        _order(f"{name}-1", email=f"{name}@example.com")()
    a, b, c = (Profile.objects.get(email=f"{name}@example.com") for name in "abc")
    locked = threading.Event()
    holding = threading.local()
    merge_choices = identity._merge_choices

    def hold_the_locks(model, key, **kwargs):
        merge_choices(model, key, **kwargs)
        if getattr(holding, "active", False) and model is TopicPreference:
            locked.set()
            until_another_session_waits_for_a_lock()

    monkeypatch.setattr(identity, "_merge_choices", hold_the_locks)

    def first():
        holding.active = True
        profile_merge(source=a, target=c)

    def second():
        locked.wait(timeout=10)
        profile_merge(source=a, target=b)

    run_concurrently([first, second])

    profile = Profile.objects.get()
    assert profile.pk == b.pk
    assert sorted(profile.orders.values_list("external_id", flat=True)) == ["a-1", "b-1", "c-1"]
    for name in "abc":
        assert profile_find(Identity(email=f"{name}@example.com")) == profile
    _assert_stats_match_a_recount()


def test_a_cancellation_racing_a_merge_of_the_orders_profile_leaves_the_stats_right(
    product_factory, monkeypatch
):
    """The cancellation looks the order's profile up just before a merge moves the order."""
    product_factory(external_id="mug")
    _order("a-1", email="a@example.com")()
    _order("a-2", day=1, email="a@example.com")()
    _order("b-1", email="b@example.com")()
    source = Profile.objects.get(email="a@example.com")
    target = Profile.objects.get(email="b@example.com")
    locked = threading.Event()
    merge_choices = identity._merge_choices

    def hold_the_locks(model, key, **kwargs):
        merge_choices(model, key, **kwargs)
        if model is TopicPreference:
            locked.set()
            until_another_session_waits_for_a_lock()

    monkeypatch.setattr(identity, "_merge_choices", hold_the_locks)

    def cancel():
        locked.wait(timeout=10)
        signals.order_cancelled.send(sender=None, order_id="a-1")

    run_concurrently([lambda: profile_merge(source=source, target=target), cancel])

    profile = Profile.objects.get()
    assert profile.pk == target.pk
    assert profile.orders_count == 2
    _assert_stats_match_a_recount()


def test_a_merge_racing_an_order_of_the_source_profile_keeps_the_order_and_stats(
    product_factory,
):
    product_factory(external_id="mug")
    _order("a-1", email="a@example.com")()
    _order("b-1", email="b@example.com")()
    source = Profile.objects.get(email="a@example.com")
    target = Profile.objects.get(email="b@example.com")

    run_concurrently(
        [
            lambda: profile_merge(source=source, target=target),
            _order("a-2", day=1, email="a@example.com"),
            _order("a-3", day=2, email="a@example.com"),
        ]
    )

    profile = Profile.objects.get()
    assert profile.pk == target.pk
    assert profile.orders.count() == 4
    _assert_stats_match_a_recount()


def _csv(tmp_path, rows):
    path = tmp_path / "orders.csv"
    header = "order_id,email,placed_at,total,currency,product_id,quantity,unit_price"
    path.write_text("\n".join([header, *rows]) + "\n")
    return str(path)


def test_an_import_beside_live_orders_and_sign_ins_for_the_same_people(
    settings, tmp_path, product_factory
):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "DEFAULT_CURRENCY": None}
    product_factory(external_id="mug")
    emails = [f"p{n:02d}@example.com" for n in range(30)]
    path = _csv(
        tmp_path,
        [
            f"imp-{n}-{k},{email},2025-0{k + 1}-01T10:00:00+00:00,20.00,EUR,mug,2,10.00"
            for n, email in enumerate(emails)
            for k in range(2)
        ],
    )

    def run_import():
        orders_import_path(path=path, batch_size=7)

    def live(offset):
        def send():
            for n, email in list(enumerate(emails))[offset::3]:
                identify(email=email, anonymous_id=f"anon-{n}")
                _order(f"live-{n}", email=email)()
                _cart(f"cart-{n}", anonymous_id=f"anon-{n}")()

        return send

    run_concurrently([run_import, live(0), live(1), live(2)])

    assert Profile.objects.count() == len(emails)
    assert sorted(Profile.objects.values_list("email", flat=True)) == emails
    for n, email in enumerate(emails):
        profile = Profile.objects.get(email=email)
        assert profile.orders_count == 3, email
        assert _alias_owner(f"anon-{n}") == profile
        assert Cart.objects.get(external_id=f"cart-{n}").profile == profile
    _assert_stats_match_a_recount()


def test_an_import_batch_racing_a_merge_of_its_customer_lands_on_the_merged_profile(
    settings, tmp_path, product_factory, monkeypatch
):
    """The batch looks the customer up while a merge deletes that profile, and must not
    record orders for a profile that is gone."""
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "DEFAULT_CURRENCY": None}
    product_factory(external_id="mug")
    _order("a-1", email="a@example.com")()
    _order("b-1", email="b@example.com")()
    source = Profile.objects.get(email="a@example.com")
    target = Profile.objects.get(email="b@example.com")
    path = _csv(tmp_path, ["imp-1,a@example.com,2025-01-01T10:00:00+00:00,20.00,EUR,mug,2,10.00"])
    locked = threading.Event()
    merge_choices = identity._merge_choices

    def hold_the_locks(model, key, **kwargs):
        merge_choices(model, key, **kwargs)
        if model is TopicPreference:
            locked.set()
            until_another_session_waits_for_a_lock()

    monkeypatch.setattr(identity, "_merge_choices", hold_the_locks)

    def run_import():
        locked.wait(timeout=10)
        orders_import_path(path=path)

    run_concurrently([lambda: profile_merge(source=source, target=target), run_import])

    profile = Profile.objects.get()
    assert profile.pk == target.pk
    assert sorted(profile.orders.values_list("external_id", flat=True)) == ["a-1", "b-1", "imp-1"]
    _assert_stats_match_a_recount()
