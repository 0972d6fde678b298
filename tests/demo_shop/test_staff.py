"""Staff accounts are not customers: the admin and the shop make no profile from them."""

import pytest
from django.contrib.auth import get_user_model

from personalization import models as pzn

PASSWORD = "a-long-pass-phrase-9"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(
        username="clerk", email="clerk@example.com", password=PASSWORD, is_staff=True
    )


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(
        username="boss", email="boss@example.com", password=PASSWORD
    )


class CustomerStaff:
    """A shop whose staff buy as customers too."""

    def is_customer(self, user):
        return True


@pytest.mark.parametrize("who", ["staff", "superuser"])
def test_logging_in_to_the_admin_creates_no_profile(client, who, request):
    user = request.getfixturevalue(who)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": user.username, "password": PASSWORD}
    )

    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    assert not pzn.Profile.objects.exists()


def test_staff_browsing_the_shop_gets_no_profile_and_no_tracking(shopper, staff, beans):
    shopper.login(username="clerk", password=PASSWORD)
    shopper.accept_personalisation()
    shopper.view(beans)
    shopper.add(beans)

    assert not pzn.Profile.objects.exists()
    assert not pzn.Cart.objects.exists()
    assert not pzn.Event.objects.exists()
    assert "pzn_aid" not in shopper.client.cookies  # their browser gets no visitor id either


def test_staff_buying_in_the_shop_is_a_guest_of_the_address_they_give(shopper, staff, beans):
    shopper.login(username="clerk", password=PASSWORD)
    shopper.add(beans)
    shopper.checkout(email="clerk.private@example.com", first_name="Clara")

    profile = pzn.Profile.objects.get()
    assert profile.email == "clerk.private@example.com"
    assert profile.user is None  # the staff account joins no customer history
    assert profile.orders.count() == 1


def test_a_shop_whose_adapter_says_staff_are_customers_gets_their_profiles(client, staff, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "ADAPTER": _customer_staff_adapter()}
    client.post("/admin/login/?next=/admin/", {"username": "clerk", "password": PASSWORD})

    profile = pzn.Profile.objects.get()
    assert profile.user == staff
    assert profile.email == "clerk@example.com"


def _customer_staff_adapter():
    from personalization.adapter import DefaultAdapter

    return type("CustomerStaffAdapter", (CustomerStaff, DefaultAdapter), {})
