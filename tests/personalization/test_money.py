"""One shop currency: orders and carts in another are converted through the adapter, or refused."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import checks

from personalization import signals
from personalization.adapter import DefaultAdapter
from personalization.commerce import cart_update, order_record
from personalization.exceptions import ConfigurationError, InvalidInput, UnconvertibleCurrency
from personalization.identity import Identity
from personalization.models import Cart, Order, Profile

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 5, 4, 10, tzinfo=dt.UTC)
ASKED: list[tuple[str, str, dt.datetime]] = []


class RatesAdapter(DefaultAdapter):
    """Knows what a US dollar and a Swedish krona were worth in euros."""

    RATES = {"USD": Decimal("0.9"), "SEK": Decimal("0.0875")}

    def exchange_rate(self, *, from_currency, to_currency, at):
        ASKED.append((from_currency, to_currency, at))
        if to_currency != "EUR" or from_currency not in self.RATES:
            return super().exchange_rate(
                from_currency=from_currency, to_currency=to_currency, at=at
            )
        return self.RATES[from_currency]


@pytest.fixture
def mug(product_factory):
    return product_factory(external_id="mug")


@pytest.fixture
def rates(settings):
    ASKED.clear()
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CURRENCY": "EUR"}
    settings.PERSONALIZATION["ADAPTER"] = RatesAdapter
    return ASKED


def place(order_id, total, currency, **extra):
    return signals.order_placed.send(
        sender=None,
        order_id=order_id,
        email="ann@example.com",
        placed_at=T0,
        total=total,
        currency=currency,
        **extra,
    )


def test_statistics_count_every_order_in_the_shop_currency(rates, mug):
    place("o-eur", "20.00", "EUR")
    place("o-usd", "100.00", "USD")
    place("o-sek", "199.99", "SEK")

    usd = Order.objects.get(external_id="o-usd")
    assert (usd.total, usd.currency, usd.shop_total) == (Decimal("100.00"), "USD", Decimal("90.00"))
    # 199.99 × 0.0875 = 17.499125: rounded to cents, half away from zero.
    assert Order.objects.get(external_id="o-sek").shop_total == Decimal("17.50")
    assert Order.objects.get(external_id="o-eur").shop_total == Decimal("20.00")
    profile = Profile.objects.get()
    assert (profile.orders_count, profile.total_spent) == (3, Decimal("127.50"))
    assert profile.average_order_value == Decimal("42.50")
    assert ("USD", "EUR", T0) in rates  # asked for the rate at the time of the order


def test_the_default_adapter_refuses_another_currency_and_nothing_is_written(mug):
    with pytest.raises(UnconvertibleCurrency) as err:
        place("o-usd", "100.00", "USD", first_name="Ann")

    assert err.value.field == "currency"
    assert isinstance(err.value, InvalidInput)
    assert "PERSONALIZATION['CURRENCY']" in err.value.message
    assert "exchange_rate()" in err.value.message
    assert not Order.objects.exists()
    assert not Profile.objects.exists()


def test_a_cart_in_another_currency_is_converted_or_refused(rates, mug):
    lines = [{"product_id": "mug", "quantity": 3, "unit_price": "10.00"}]
    cart, applied = cart_update(
        cart_id="c1",
        identity=Identity(anonymous_id="v1"),
        updated_at=T0,
        lines=lines,
        currency_code="USD",
    )
    assert applied
    assert (cart.total, cart.currency, cart.shop_total) == (Decimal("30.00"), "USD", Decimal("27"))

    with pytest.raises(UnconvertibleCurrency):
        cart_update(
            cart_id="c2",
            identity=Identity(anonymous_id="v2"),
            updated_at=T0,
            lines=lines,
            currency_code="GBP",
        )
    assert list(Cart.objects.values_list("external_id", flat=True)) == ["c1"]


def test_an_emptied_cart_is_worth_nothing_without_asking_for_a_rate(rates, mug):
    cart_update(cart_id="c1", identity=Identity(anonymous_id="v1"), updated_at=T0, lines=[])
    assert Cart.objects.get().shop_total == 0
    assert rates == []


@pytest.mark.parametrize("rate", [None, "0.9", 0, -1, float("nan"), True])
def test_an_adapter_returning_no_usable_rate_is_a_clear_error(settings, mug, rate):
    class Broken(DefaultAdapter):
        def exchange_rate(self, **kwargs):
            return rate

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "ADAPTER": Broken}
    with pytest.raises(TypeError, match=r"Broken.exchange_rate\(\) returned"):
        place("o-usd", "100.00", "USD")
    assert not Order.objects.exists()


def test_a_converted_amount_too_large_to_store_is_refused(settings, mug):
    class Inflated(DefaultAdapter):
        def exchange_rate(self, **kwargs):
            return Decimal("1000000")

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "ADAPTER": Inflated}
    with pytest.raises(InvalidInput) as err:
        place("o-big", "99999.00", "USD")
    assert err.value.field == "total"
    assert not Order.objects.exists()


def test_without_a_shop_currency_orders_are_a_configuration_error(settings, mug):
    settings.PERSONALIZATION = {"DEFAULT_CURRENCY": "EUR"}
    with pytest.raises(ConfigurationError, match=r"PERSONALIZATION\['CURRENCY'\]"):
        order_record(
            order_id="o1", identity=Identity(email="ann@example.com"), placed_at=T0, total="1"
        )
    assert not Order.objects.exists()


def test_a_missing_shop_currency_is_a_system_check_error(settings):
    settings.PERSONALIZATION = {"DEFAULT_CURRENCY": "EUR"}
    errors = [m for m in checks.run_checks() if m.id == "personalization.E007"]
    assert len(errors) == 1
    assert "PERSONALIZATION['CURRENCY']" in errors[0].msg

    settings.PERSONALIZATION = {"CURRENCY": "euro"}
    assert [m.id for m in checks.run_checks() if m.id.startswith("personalization.E")] == [
        "personalization.E006"
    ]


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_recorded_orders_and_carts_counting_as_before():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("personalization", "0006_event_is_sensitive")]
    after = [("personalization", "0007_order_cart_shop_total")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        profile = apps.get_model("personalization", "Profile").objects.create(email="a@example.com")
        apps.get_model("personalization", "Order").objects.create(
            external_id="o1",
            profile=profile,
            placed_at=T0,
            total=Decimal("12.34"),
            currency="EUR",
            source="signal",
        )
        apps.get_model("personalization", "Cart").objects.create(
            external_id="c1", profile=profile, total=Decimal("5.60"), source_updated_at=T0
        )
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert Order.objects.get().shop_total == Decimal("12.34")
    assert Cart.objects.get().shop_total == Decimal("5.60")
