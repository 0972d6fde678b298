"""``profile_changed``: every write path announces the profiles it touched, after commit."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import transaction

from personalization import signals
from personalization.changes import (
    Change,
    changes_collected,
    profile_changed_note,
    profile_merged_note,
)
from personalization.consent import consent_record
from personalization.models import Profile
from personalization.tracking import identify, track

T0 = dt.datetime(2026, 7, 1, 8, tzinfo=dt.UTC)


@pytest.fixture
def announced():
    """The ``changes`` of every profile_changed sent while the test runs, in order."""
    calls: list[dict[int, frozenset[str]]] = []

    def receiver(sender, profile_ids, changes, **kwargs):
        assert sender is Profile
        assert profile_ids == frozenset(changes)
        calls.append(dict(changes))

    signals.profile_changed.connect(receiver, dispatch_uid="test-announced")
    yield calls
    signals.profile_changed.disconnect(dispatch_uid="test-announced")


# --- The mechanism ----------------------------------------------------------------------------


def test_notes_inside_one_collection_are_announced_once_after_commit(
    db, announced, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic(), changes_collected():
            profile_changed_note(1, Change.ORDERS)
            profile_changed_note([1, 2], Change.CONSENT)
            with changes_collected():  # a nested write adds to the outer one
                profile_changed_note(2, Change.CART)
            assert announced == []  # not before the commit

    assert announced == [
        {1: {Change.ORDERS, Change.CONSENT}, 2: {Change.CONSENT, Change.CART}},
    ]


def test_a_write_that_fails_announces_nothing(db, announced, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(ValueError):
            with transaction.atomic(), changes_collected():
                profile_changed_note(1, Change.ORDERS)
                raise ValueError("the write failed")
    assert announced == []


def test_a_rolled_back_transaction_announces_nothing(db, announced):
    # Outside the test's own transaction nothing commits here: on_commit never runs.
    with transaction.atomic(), changes_collected():
        profile_changed_note(1, Change.ORDERS)
    assert announced == []


def test_a_merged_away_profile_is_announced_as_its_target(
    db, announced, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with changes_collected():
            profile_changed_note(7, Change.EVENTS)
            profile_merged_note(source_id=7, target_id=3)

    assert announced == [{3: {Change.MERGE, Change.EVENTS}}]


def test_a_failing_receiver_does_not_fail_the_committed_write(
    db, announced, django_capture_on_commit_callbacks
):
    def broken(sender, **kwargs):
        raise RuntimeError("a receiver's bug")

    signals.profile_changed.connect(broken, dispatch_uid="test-broken")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            profile_changed_note(1, Change.ORDERS)
    finally:
        signals.profile_changed.disconnect(dispatch_uid="test-broken")


def test_notes_of_a_nested_write_that_failed_are_dropped(
    db, announced, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with changes_collected():
            profile_changed_note(1, Change.ORDERS)
            with pytest.raises(ValueError), transaction.atomic(), changes_collected():
                profile_changed_note(2, Change.PROFILE)  # an attempt that was rolled back
                raise ValueError("retry")
    assert announced == [{1: {Change.ORDERS}}]


# --- Every write path ---------------------------------------------------------------------------


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a write as a request would: its on-commit callbacks run when it returns."""

    def run(write):
        with django_capture_on_commit_callbacks(execute=True):
            return write()

    return run


def _order(order_id, **extra):
    return dict(
        sender=None,
        order_id=order_id,
        email="ann@example.com",
        placed_at=T0,
        total="12.50",
        currency="EUR",
        lines=[{"product_id": "mug", "quantity": 1, "unit_price": "12.50"}],
        **extra,
    )


def test_an_order_with_consent_and_a_cart_is_one_announcement(
    product_factory, announced, committed
):
    product_factory(external_id="mug")
    cart_lines = [{"product_id": "mug", "quantity": 1, "unit_price": "12.50"}]
    committed(
        lambda: signals.cart_updated.send(
            sender=None,
            cart_id="c1",
            email="ann@example.com",
            updated_at=T0,
            currency="EUR",
            lines=cart_lines,
        )
    )
    committed(
        lambda: signals.order_placed.send(
            **_order("O1", cart_id="c1", consents={"email_marketing": "v1"})
        )
    )
    ann = Profile.objects.get(email="ann@example.com")
    assert announced == [
        {ann.pk: {Change.PROFILE, Change.CART}},
        {ann.pk: {Change.ORDERS, Change.CONSENT, Change.CART}},
    ]

    announced.clear()
    committed(lambda: signals.order_placed.send(**_order("O1")))  # a repeat delivery
    assert announced == []
    committed(lambda: signals.order_cancelled.send(sender=None, order_id="O1"))
    assert announced == [{ann.pk: {Change.ORDERS}}]


def test_a_stale_cart_update_announces_nothing(product_factory, announced, committed):
    product_factory(external_id="mug")

    def update(at):
        return lambda: signals.cart_updated.send(
            sender=None, cart_id="c1", email="ann@example.com", updated_at=at, lines=[]
        )

    committed(update(T0))
    announced.clear()
    committed(update(T0 - dt.timedelta(minutes=1)))
    assert announced == []


def test_a_tracked_event_a_consent_and_a_merge_are_announced(product_factory, announced, committed):
    product_factory(external_id="mug")
    visitor = committed(
        lambda: identify(anonymous_id="device1", consents={"personalization": "banner-1"})
    )
    committed(lambda: track("product_viewed", anonymous_id="device1", product_id="mug"))
    assert announced == [
        {visitor.pk: {Change.PROFILE, Change.CONSENT}},
        {visitor.pk: {Change.EVENTS}},
    ]

    announced.clear()
    ann = committed(lambda: identify(email="ann@example.com", first_name="Ann"))
    committed(lambda: identify(email="ann@example.com", anonymous_id="device1"))
    assert not Profile.objects.filter(pk=visitor.pk).exists()
    # The visitor's history joined Ann: announced for Ann, never for the profile that is gone.
    assert announced == [{ann.pk: {Change.PROFILE}}, {ann.pk: {Change.MERGE}}]

    announced.clear()
    committed(
        lambda: consent_record(
            profile=ann, purpose="email_marketing", granted=False, source="admin"
        )
    )
    assert announced == [{ann.pk: {Change.CONSENT}}]


def test_identifying_again_with_nothing_new_announces_nothing(db, announced, committed):
    committed(lambda: identify(email="ann@example.com", first_name="Ann"))
    announced.clear()
    committed(lambda: identify(email="ann@example.com", first_name="Ann"))
    assert announced == []


# --- Import batches -----------------------------------------------------------------------------


def test_an_import_announces_its_profiles_in_bulk(
    db, tmp_path, announced, settings, django_capture_on_commit_callbacks
):
    settings.PERSONALIZATION = {"CURRENCY": "EUR", "DEFAULT_CURRENCY": "EUR"}
    rows = [
        f"O{n},c{n % 3}@example.com,2024-03-0{n % 9 + 1}T10:00:00+00:00,10.00,EUR"
        for n in range(12)
    ]
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(["order_id,email,placed_at,total,currency", *rows, ""]))

    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_orders", str(path), stdout=open("/dev/null", "w"))

    customers = set(Profile.objects.values_list("pk", flat=True))
    assert len(customers) == 3
    assert len(announced) == 1  # one signal for the chunk, not one per order
    assert announced[0] == {pk: {Change.ORDERS} for pk in customers}


# --- The admin ------------------------------------------------------------------------------------


def test_preferences_and_attributes_edited_in_the_admin_are_announced(
    admin_client, profile_factory, topic_factory, announced, django_capture_on_commit_callbacks
):
    from tests.personalization.test_admin import _change_form_data, url

    bob, topic = profile_factory(), topic_factory()
    page = url("profile", "change", bob.pk)
    data = _change_form_data(admin_client.get(page))
    prefix = next(
        inline.formset.prefix
        for inline in admin_client.get(page).context["inline_admin_formsets"]
        if inline.formset.model.__name__ == "TopicPreference"
    )
    data.update(
        {
            "country": "AT",
            f"{prefix}-TOTAL_FORMS": "1",
            f"{prefix}-0-topic": str(topic.pk),
            # Off: a change from the topic's default (leaving it on would choose nothing).
            f"{prefix}-0-subscribed": "",
            f"{prefix}-0-profile": str(bob.pk),
            "_save": "Save",
        }
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post(page, data).status_code == 302

    assert announced == [{bob.pk: {Change.PROFILE, Change.PREFERENCES}}]


def test_saving_the_admin_form_unchanged_announces_nothing(
    admin_client, profile_factory, announced, django_capture_on_commit_callbacks
):
    from tests.personalization.test_admin import _change_form_data, url

    bob = profile_factory()
    page = url("profile", "change", bob.pk)
    data = {**_change_form_data(admin_client.get(page)), "_save": "Save"}
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post(page, data).status_code == 302

    assert announced == []
