"""Fixtures for driving the demo shop the way a customer does: through its pages."""

from decimal import Decimal

import pytest
from django.urls import reverse

from demo_shop.shop.cart import SESSION_KEY
from demo_shop.shop.models import Product
from personalization.capture.forms import consent_form_data, wording_version_sign
from personalization.capture.wording import consent_wording_current


@pytest.fixture
def shop_product(db):
    """Create a shop product (post_save mirrors it into the app, as in the real shop)."""

    def create(slug, **fields):
        defaults = {
            "title": slug.replace("-", " ").title(),
            "category": "Food & Drink > Coffee",
            "price": Decimal("12.50"),
            "stock": 10,
        }
        return Product.objects.create(slug=slug, **{**defaults, **fields})

    return create


@pytest.fixture
def beans(shop_product):
    return shop_product(
        "espresso-beans",
        title="Espresso Beans",
        price=Decimal("12.90"),
        repurchase_interval_days=21,
    )


@pytest.fixture
def kettle(shop_product):
    return shop_product("kettle", title="Kettle", category="Home > Kitchen", price=Decimal("49.00"))


@pytest.fixture
def vitamins(shop_product):
    return shop_product(
        "vitamin-d",
        title="Vitamin D",
        category="Health > Vitamins",
        is_sensitive=True,
        price=Decimal("9.90"),
    )


def consent_data(*, marketing=False, personalisation=False) -> dict[str, str]:
    """The consent boxes of a sign-up or checkout page, as the browser posts them."""
    checked = ["email_marketing"] * marketing + ["personalization"] * personalisation
    return consent_form_data(checked=checked)


class Shopper:
    """A customer's browser session: helpers that post the shop's own forms."""

    def __init__(self, client):
        self.client = client

    @property
    def cart_id(self) -> str:
        return self.client.session[SESSION_KEY]["id"]

    def view(self, product):
        return self.client.get(product.get_absolute_url())

    def add(self, product, quantity=1):
        return self.client.post(
            reverse("shop:cart_add", args=[product.slug]), {"quantity": quantity}
        )

    def set_quantity(self, product, quantity):
        return self.client.post(
            reverse("shop:cart_update", args=[product.slug]), {"quantity": quantity}
        )

    def checkout(
        self,
        *,
        email="ann@example.com",
        first_name="Ann",
        marketing=False,
        personalisation=False,
        cart_id=None,
        **extra,
    ):
        data = {
            "cart_id": cart_id or self.cart_id,
            "email": email,
            "first_name": first_name,
            **consent_data(marketing=marketing, personalisation=personalisation),
            **extra,
        }
        return self.client.post(reverse("shop:checkout"), data)

    def accept_personalisation(self):
        # The banner posts the signed version of the wording it shows.
        wording = consent_wording_current(purpose="personalization")
        return self.client.post(
            reverse("shop:personalisation_answer"),
            {"answer": "yes", "wording": wording_version_sign(wording.version)},
        )

    def signup(
        self,
        *,
        username="ann",
        email="ann@example.com",
        password="a-long-pass-phrase-9",
        marketing=False,
        personalisation=False,
    ):
        data = {
            "username": username,
            "email": email,
            "first_name": "Ann",
            "password1": password,
            "password2": password,
        }
        data.update(consent_data(marketing=marketing, personalisation=personalisation))
        return self.client.post(reverse("shop:signup"), data)

    def login(self, *, username="ann", password="a-long-pass-phrase-9"):
        return self.client.post(reverse("login"), {"username": username, "password": password})

    def logout(self):
        return self.client.post(reverse("logout"))


@pytest.fixture
def shopper(client):
    return Shopper(client)


@pytest.fixture
def make_shopper(db):
    """Another customer with a browser of their own."""
    from django.test import Client

    return lambda: Shopper(Client())
