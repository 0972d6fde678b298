import datetime as dt
from decimal import Decimal

import pytest

from personalization import signals
from personalization.exceptions import (
    InvalidEmail,
    InvalidInput,
    MissingIdentity,
    NaiveDatetime,
    UnknownOrder,
    UnknownProduct,
)
from personalization.models import Cart, ConsentRecord, Order, OrderLine, Product, Profile
from personalization.stats import profile_stats_rebuild, profile_stats_refresh

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 5, 4, 10, tzinfo=dt.UTC)


@pytest.fixture
def mug(product_factory):
    return product_factory(external_id="mug", price=Decimal("12.50"))


def order_kwargs(**overrides):
    kwargs = dict(
        sender=None,
        order_id="1001",
        email="ann@example.com",
        placed_at=T0,
        total="25.00",
        currency="EUR",
        lines=[{"product_id": "mug", "quantity": 2, "unit_price": "12.50"}],
    )
    kwargs.update(overrides)
    return kwargs


def test_the_same_order_delivered_twice_is_recorded_once(mug):
    signals.order_placed.send(**order_kwargs())
    signals.order_placed.send(**order_kwargs(total="99.00"))

    order = Order.objects.get()
    assert order.total == Decimal("25.00")
    assert OrderLine.objects.get().quantity == 2
    profile = Profile.objects.get()
    assert (profile.orders_count, profile.total_spent) == (1, Decimal("25.00"))


def test_profile_stats_follow_orders_cancellations_and_refunds(mug):
    for n, (day, total) in enumerate([(1, "10.00"), (5, "30.00"), (9, "20.00")]):
        signals.order_placed.send(
            **order_kwargs(order_id=f"o{n}", placed_at=T0 + dt.timedelta(days=day), total=total)
        )
    profile = Profile.objects.get()
    assert profile.orders_count == 3
    assert profile.total_spent == Decimal("60.00")
    assert profile.average_order_value == Decimal("20.00")
    assert profile.first_order_at == T0 + dt.timedelta(days=1)
    assert profile.last_order_at == T0 + dt.timedelta(days=9)

    signals.order_cancelled.send(sender=None, order_id="o2")
    signals.order_refunded.send(sender=None, order_id="o0", at=T0 + dt.timedelta(days=20))
    profile.refresh_from_db()
    assert (profile.orders_count, profile.total_spent) == (1, Decimal("30.00"))
    assert profile.last_order_at == T0 + dt.timedelta(days=5)
    assert Order.objects.get(external_id="o0").status == "refunded"


def test_stats_rebuild_is_set_based_and_matches_the_live_stats(mug, profile_factory, order_factory):
    profiles = profile_factory.create_batch(5)
    for i, profile in enumerate(profiles):
        for j in range(i):
            order_factory(
                profile=profile, total=Decimal(10 * (j + 1)), placed_at=T0 + dt.timedelta(days=j)
            )
        profile_stats_refresh(profile_id=profile.pk)
    expected = list(
        Profile.objects.order_by("pk").values_list(
            "orders_count", "total_spent", "average_order_value", "first_order_at", "last_order_at"
        )
    )
    Profile.objects.update(
        orders_count=99,
        total_spent=1,
        average_order_value=1,
        first_order_at=None,
        last_order_at=None,
    )

    profile_stats_rebuild()

    rebuilt = list(
        Profile.objects.order_by("pk").values_list(
            "orders_count", "total_spent", "average_order_value", "first_order_at", "last_order_at"
        )
    )
    assert rebuilt == expected
    assert expected[3][:3] == (3, Decimal("60.00"), Decimal("20.00"))


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        (
            {"lines": [{"product_id": "nope", "quantity": 1, "unit_price": "1"}]},
            UnknownProduct,
            "lines",
        ),
        ({"email": "ann@"}, InvalidEmail, "email"),
        (
            {"lines": [{"product_id": "mug", "quantity": -1, "unit_price": "1"}]},
            InvalidInput,
            "lines[0].quantity",
        ),
        ({"placed_at": dt.datetime(2026, 5, 4, 10)}, NaiveDatetime, "placed_at"),
        ({"order_id": ""}, InvalidInput, "order_id"),
        ({"total": "-5"}, InvalidInput, "total"),
        ({"total": "abc"}, InvalidInput, "total"),
        ({"currency": "euro"}, InvalidInput, "currency"),
        ({"email": None}, MissingIdentity, "email"),
    ],
)
def test_bad_orders_raise_a_clear_error_and_write_nothing(settings, mug, overrides, error, field):
    settings.PERSONALIZATION = {"CURRENCY": "EUR"}
    with pytest.raises(error) as err:
        signals.order_placed.send(**order_kwargs(**overrides))
    assert err.value.field == field
    assert not Order.objects.exists()
    assert not Profile.objects.exists()


def test_a_consent_failure_at_checkout_leaves_no_half_written_order(mug):
    with pytest.raises(InvalidInput):
        signals.order_placed.send(**order_kwargs(consents={"mind_reading": "v1"}))
    assert not Order.objects.exists()
    assert not ConsentRecord.objects.exists()


def test_send_robust_hands_the_error_back_instead_of_raising(mug):
    responses = signals.order_placed.send_robust(**order_kwargs(email="broken"))
    [(_receiver, result)] = responses
    assert isinstance(result, InvalidEmail)


def test_checkout_consents_are_recorded_with_source_and_wording(mug):
    signals.order_placed.send(**order_kwargs(consents={"email_marketing": "checkout-v7"}))
    record = ConsentRecord.objects.get()
    assert (record.purpose, record.status, record.source, record.wording_version) == (
        "email_marketing",
        "granted",
        "checkout",
        "checkout-v7",
    )


def test_status_change_for_an_unknown_order_is_refused():
    with pytest.raises(UnknownOrder):
        signals.order_cancelled.send(sender=None, order_id="ghost")


def cart_kwargs(**overrides):
    kwargs = dict(
        sender=None,
        cart_id="c1",
        anonymous_id="visitor1",
        updated_at=T0,
        currency="EUR",
        lines=[{"product_id": "mug", "quantity": 1, "unit_price": "12.50"}],
    )
    kwargs.update(overrides)
    return kwargs


def test_a_late_older_cart_update_never_overwrites_a_newer_one(mug, product_factory):
    product_factory(external_id="pot")
    newer = [{"product_id": "pot", "quantity": 3, "unit_price": "5.00"}]
    signals.cart_updated.send(**cart_kwargs(updated_at=T0 + dt.timedelta(minutes=5), lines=newer))
    signals.cart_updated.send(**cart_kwargs(updated_at=T0))  # arrives late

    cart = Cart.objects.get()
    assert [(line.product.external_id, line.quantity) for line in cart.lines.all()] == [("pot", 3)]
    assert cart.total == Decimal("15.00")
    assert cart.source_updated_at == T0 + dt.timedelta(minutes=5)


def test_cart_lifecycle_open_emptied_converted(mug):
    signals.cart_updated.send(**cart_kwargs())
    assert Cart.objects.get().status == "open"
    signals.cart_updated.send(**cart_kwargs(updated_at=T0 + dt.timedelta(minutes=1), lines=[]))
    cart = Cart.objects.get()
    assert cart.status == "emptied" and cart.lines.count() == 0
    signals.cart_updated.send(**cart_kwargs(updated_at=T0 + dt.timedelta(minutes=2)))
    signals.order_placed.send(
        **order_kwargs(
            anonymous_id="visitor1", cart_id="c1", placed_at=T0 + dt.timedelta(minutes=10)
        )
    )
    cart = Cart.objects.get()
    assert cart.status == "converted"
    assert Order.objects.get().cart == cart
    # The anonymous cart now belongs to the customer who checked out.
    assert cart.profile.email == "ann@example.com"
    # An update from before the order, delivered late, cannot reopen the cart.
    signals.cart_updated.send(**cart_kwargs(updated_at=T0 + dt.timedelta(minutes=9)))
    assert Cart.objects.get().status == "converted"


def test_repeated_product_lines_in_a_cart_are_added_up(mug):
    lines = [{"product_id": "mug", "quantity": 1, "unit_price": "12.50"}] * 2
    signals.cart_updated.send(**cart_kwargs(lines=lines))
    assert Cart.objects.get().lines.get().quantity == 2


def test_bad_cart_update_writes_nothing(mug):
    with pytest.raises(NaiveDatetime):
        signals.cart_updated.send(**cart_kwargs(updated_at=dt.datetime(2026, 1, 1)))
    with pytest.raises(InvalidInput):
        signals.cart_updated.send(
            **cart_kwargs(lines=[{"product_id": "mug", "quantity": 0, "unit_price": "1"}])
        )
    assert not Cart.objects.exists() and not Profile.objects.exists()


def test_product_saved_mirrors_the_product_and_ignores_a_late_older_change(settings):
    settings.PERSONALIZATION = {"SENSITIVE_CATEGORIES": ["Health"]}
    signals.product_saved.send(
        sender=None,
        product_id=42,
        title="Vitamin D",
        price="9.90",
        currency="eur",
        category=["Health", "Vitamins"],
        repurchase_interval_days=60,
        updated_at=T0 + dt.timedelta(hours=1),
    )
    signals.product_saved.send(sender=None, product_id="42", title="Old title", updated_at=T0)
    product = Product.objects.get()
    assert (product.external_id, product.title, product.category_path, product.currency) == (
        "42",
        "Vitamin D",
        "Health > Vitamins",
        "EUR",
    )
    assert list(Product.objects.sensitive()) == [product]
    assert not Product.objects.not_sensitive().exists()


def test_a_new_product_needs_a_title():
    with pytest.raises(InvalidInput) as err:
        signals.product_saved.send(sender=None, product_id="x1", price="3")
    assert err.value.field == "title"
    assert not Product.objects.exists()


@pytest.mark.parametrize(
    ("totals", "average"),
    [(["100", "0", "0"], Decimal("33.33")), (["0.25", "0"], Decimal("0.13"))],
)
def test_average_order_value_is_rounded_to_cents_the_same_way_live_and_in_the_rebuild(
    mug, totals, average
):
    for n, total in enumerate(totals):
        signals.order_placed.send(**order_kwargs(order_id=f"avg{n}", total=total))
    assert Profile.objects.get().average_order_value == average
    Profile.objects.update(average_order_value=0)
    profile_stats_rebuild()
    assert Profile.objects.get().average_order_value == average


def test_rebuilding_a_filtered_set_also_resets_profiles_that_leave_the_filter(mug):
    signals.order_placed.send(**order_kwargs())
    Order.objects.update(status="cancelled")  # changed behind the app's back
    profile_stats_rebuild(profiles=Profile.objects.filter(orders_count__gt=0))
    profile = Profile.objects.get()
    assert (profile.orders_count, profile.total_spent, profile.average_order_value) == (
        0,
        Decimal("0.00"),
        Decimal("0.00"),
    )


def test_clearing_the_cart_after_checkout_keeps_it_converted(mug):
    signals.cart_updated.send(**cart_kwargs())
    signals.order_placed.send(
        **order_kwargs(
            anonymous_id="visitor1", cart_id="c1", placed_at=T0 + dt.timedelta(minutes=1)
        )
    )
    signals.cart_updated.send(**cart_kwargs(updated_at=T0 + dt.timedelta(minutes=2), lines=[]))
    cart = Cart.objects.get()
    assert cart.status == "converted" and cart.lines.count() == 0
    # A shop that keeps using the same cart id reopens it with new contents.
    signals.cart_updated.send(**cart_kwargs(updated_at=T0 + dt.timedelta(minutes=3)))
    assert Cart.objects.get().status == "open"


def test_consents_arriving_with_an_imported_order_are_recorded_as_imported(mug):
    from personalization.commerce import order_record
    from personalization.identity import Identity

    order_record(
        order_id="hist-1",
        identity=Identity(email="ann@example.com"),
        placed_at=T0,
        total="1.00",
        currency_code="EUR",
        consents={"email_marketing": "2019"},
        source="import",
    )
    record = ConsentRecord.objects.get()
    assert (record.source, record.recorded_at) == ("import", T0)
