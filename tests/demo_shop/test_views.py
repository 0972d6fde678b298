"""The demo shop end to end: its pages send the app's signals, and the app records them."""

import logging
import re
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import translation

from demo_shop.shop.models import Order as ShopOrder
from personalization import models as pzn
from personalization import signals
from personalization.capture.forms import consent_form_data
from personalization.consent import consent_state
from personalization.exceptions import InvalidInput

# The versions of the default consent wordings (English), as the checkout and sign-up show them.
MARKETING_V1, PERSONALISATION_V1 = "email_marketing.en.1", "personalization.en.1"


def app_product(shop_product):
    return pzn.Product.objects.get(external_id=str(shop_product.pk))


def viewed(profile):
    return set(
        pzn.Event.objects.filter(profile=profile, name=pzn.EventName.PRODUCT_VIEWED).values_list(
            "product__external_id", flat=True
        )
    )


# --- Catalogue --------------------------------------------------------------------------------


def test_saving_a_shop_product_keeps_the_app_mirror_in_step(beans, vitamins):
    mirror = app_product(beans)
    assert (mirror.title, mirror.price, mirror.category_path) == (
        "Espresso Beans",
        Decimal("12.90"),
        "Food & Drink > Coffee",
    )
    assert mirror.repurchase_interval_days == 21
    assert app_product(vitamins).is_sensitive

    beans.price, beans.stock = Decimal("13.50"), 0
    beans.save()
    mirror.refresh_from_db()
    assert mirror.price == Decimal("13.50")
    assert mirror.in_stock is False


def test_catalogue_filters_by_category_and_subcategory(client, beans, kettle, vitamins):
    page = client.get(reverse("shop:catalogue"), {"category": "Home"}).content.decode()
    assert "Kettle" in page
    assert "Espresso Beans" not in page and "Vitamin D" not in page

    page = client.get(reverse("shop:catalogue"), {"category": "Health > Vitamins"})
    assert [p.slug for p in page.context["products"]] == ["vitamin-d"]


def test_unknown_product_is_a_404_not_an_error(client, db):
    assert client.get("/products/no-such-thing/").status_code == 404
    assert client.post("/cart/add/no-such-thing/", {"quantity": 1}).status_code == 404


# --- Product views and consent ----------------------------------------------------------------


def test_product_view_by_an_unknown_visitor_is_not_stored(shopper, beans):
    response = shopper.view(beans)

    assert response.status_code == 200
    assert not pzn.Event.objects.exists()
    assert not pzn.Profile.objects.exists()


def test_product_view_is_stored_only_with_personalisation_consent(make_shopper, beans):
    with_consent, without = make_shopper(), make_shopper()
    with_consent.signup(username="yes", email="yes@example.com", personalisation=True)
    without.signup(username="no", email="no@example.com", marketing=True)

    with_consent.view(beans)
    without.view(beans)

    assert viewed(pzn.Profile.objects.get(email="yes@example.com")) == {str(beans.pk)}
    assert viewed(pzn.Profile.objects.get(email="no@example.com")) == set()
    assert pzn.Event.objects.count() == 1


def test_browsing_after_a_guest_checkout_joins_the_guests_profile(shopper, beans, kettle):
    shopper.add(kettle)
    shopper.checkout(email="guest@example.com", personalisation=True)

    shopper.view(beans)

    event = pzn.Event.objects.get()
    assert event.profile.email == "guest@example.com"
    assert consent_state(profile=event.profile, purpose=pzn.Purpose.PERSONALIZATION) == (
        pzn.ConsentState.GRANTED
    )


# --- Cart -------------------------------------------------------------------------------------


def test_cart_changes_send_the_whole_cart(shopper, beans, kettle):
    shopper.add(beans, 2)
    shopper.add(kettle)
    cart = pzn.Cart.objects.get(external_id=shopper.cart_id)
    lines = {line.product.external_id: line.quantity for line in cart.lines.all()}
    assert lines == {str(beans.pk): 2, str(kettle.pk): 1}
    assert cart.status == pzn.CartStatus.OPEN
    assert cart.total == Decimal("74.80")

    shopper.set_quantity(beans, 0)
    cart.refresh_from_db()
    assert [line.product.external_id for line in cart.lines.all()] == [str(kettle.pk)]

    shopper.client.post(reverse("shop:cart_remove", args=[kettle.slug]))
    cart.refresh_from_db()
    assert cart.status == pzn.CartStatus.EMPTIED
    assert not cart.lines.exists()


def test_cart_never_holds_more_than_the_stock(shopper, shop_product):
    scarce = shop_product("last-ones", stock=3)

    shopper.add(scarce, 5)

    assert shopper.client.session["shop_cart"]["items"] == {str(scarce.pk): 3}
    cart = pzn.Cart.objects.get(external_id=shopper.cart_id)
    assert cart.lines.get().quantity == 3


@pytest.mark.parametrize("quantity", ["lots", "-1", "", "1000"])
def test_bad_cart_quantity_is_refused_politely(shopper, beans, quantity):
    shopper.add(beans)

    response = shopper.set_quantity(beans, quantity)

    assert response.status_code == 302
    page = shopper.client.get(reverse("shop:cart")).content.decode()
    assert "Please enter a quantity between 0 and 99." in page
    assert shopper.client.session["shop_cart"]["items"] == {str(beans.pk): 1}


# --- Checkout ---------------------------------------------------------------------------------


def test_checkout_records_the_order_once_with_consent_and_converts_the_cart(shopper, beans, kettle):
    shopper.add(beans, 2)
    shopper.add(kettle)
    cart_id = shopper.cart_id

    first = shopper.checkout(
        email="Ann@Example.com", marketing=True, personalisation=True, cart_id=cart_id
    )
    second = shopper.checkout(
        email="Ann@Example.com", marketing=True, personalisation=True, cart_id=cart_id
    )

    shop_order = ShopOrder.objects.get()
    assert first.status_code == second.status_code == 302
    assert first.url == second.url == shop_order.get_absolute_url()
    confirmation = shopper.client.get(first.url)
    assert shop_order.reference in confirmation.content.decode()

    order = pzn.Order.objects.get()
    assert order.external_id == shop_order.reference
    assert order.total == Decimal("74.80") and order.currency == "EUR"
    assert {(line.product.external_id, line.quantity) for line in order.lines.all()} == {
        (str(beans.pk), 2),
        (str(kettle.pk), 1),
    }
    profile = order.profile
    assert profile.email == "ann@example.com" and profile.first_name == "Ann"
    assert (profile.orders_count, profile.total_spent) == (1, Decimal("74.80"))
    records = profile.consent_records.all()
    assert {(r.purpose, r.status, r.source, r.wording_version) for r in records} == {
        (
            pzn.Purpose.EMAIL_MARKETING,
            pzn.ConsentStatus.GRANTED,
            pzn.ConsentSource.CHECKOUT,
            MARKETING_V1,
        ),
        (
            pzn.Purpose.PERSONALIZATION,
            pzn.ConsentStatus.GRANTED,
            pzn.ConsentSource.CHECKOUT,
            PERSONALISATION_V1,
        ),
    }
    cart = pzn.Cart.objects.get(external_id=cart_id)
    assert cart.status == pzn.CartStatus.CONVERTED
    assert order.cart == cart
    # The shop starts a fresh cart and took the goods out of stock.
    assert shopper.cart_id != cart_id and shopper.client.session["shop_cart"]["items"] == {}
    beans.refresh_from_db()
    assert beans.stock == 8


def test_checkout_without_ticked_boxes_records_no_consent(shopper, beans):
    shopper.add(beans)

    shopper.checkout(email="quiet@example.com")

    profile = pzn.Profile.objects.get(email="quiet@example.com")
    assert profile.orders_count == 1
    assert not profile.consent_records.exists()


@pytest.mark.parametrize(
    "fields, field_with_error",
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": ""}, "email"),
        ({"first_name": "   "}, "first_name"),
        ({"cart_id": "not-a-cart"}, "cart_id"),
    ],
)
def test_bad_checkout_input_shows_form_errors_and_writes_nothing(
    shopper, beans, fields, field_with_error
):
    shopper.add(beans)
    profiles_before = pzn.Profile.objects.count()

    response = shopper.checkout(marketing=True, personalisation=True, **fields)

    assert response.status_code == 200
    assert field_with_error in response.context["form"].errors
    assert not ShopOrder.objects.exists()
    assert not pzn.Order.objects.exists()
    assert not pzn.ConsentRecord.objects.exists()
    assert pzn.Profile.objects.count() == profiles_before
    assert pzn.Cart.objects.get(external_id=shopper.cart_id).status == pzn.CartStatus.OPEN
    beans.refresh_from_db()
    assert beans.stock == 10


def test_checkout_with_an_empty_cart_sends_the_customer_back(shopper, db):
    response = shopper.client.get(reverse("shop:checkout"))

    assert response.status_code == 302 and response.url == reverse("shop:cart")


def test_checkout_refuses_more_than_is_left(shopper, beans, make_shopper):
    shopper.add(beans, 8)
    rival = make_shopper()
    rival.add(beans, 5)
    rival.checkout(email="quick@example.com")

    response = shopper.checkout()

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Sorry, we don't have enough of: Espresso Beans. Please update your cart."
    ]
    assert ShopOrder.objects.count() == pzn.Order.objects.count() == 1


@pytest.fixture
def order_placed_refused():
    """A receiver after the app's own that refuses every order, as a validation would."""

    def refuse(sender, **kwargs):
        raise InvalidInput("refused for the test", field="order_id")

    signals.order_placed.connect(refuse, dispatch_uid="test.refuse")
    yield
    signals.order_placed.disconnect(dispatch_uid="test.refuse")


def test_checkout_succeeds_when_the_app_rejects_the_data(
    shopper, beans, order_placed_refused, caplog
):
    shopper.add(beans, 2)

    with caplog.at_level(logging.WARNING, logger="demo_shop.shop.integration"):
        response = shopper.checkout(marketing=True)

    shop_order = ShopOrder.objects.get()
    assert response.status_code == 302 and response.url == shop_order.get_absolute_url()
    assert shop_order.total == Decimal("25.80")
    # What the app had written before the refusal is rolled back with its savepoint.
    assert not pzn.Order.objects.exists()
    assert not pzn.ConsentRecord.objects.exists()
    assert pzn.Cart.objects.get(external_id=shop_order.cart_id.hex).status == "open"
    assert [r.getMessage() for r in caplog.records] == [
        "The personalization app rejected order_placed: order_id: refused for the test"
    ]


def test_order_confirmation_is_private_to_whoever_placed_it(shopper, make_shopper, beans):
    shopper.add(beans)
    url = shopper.checkout().url

    assert shopper.client.get(url).status_code == 200
    assert make_shopper().client.get(url).status_code == 404


# --- Accounts ---------------------------------------------------------------------------------


def test_signup_joins_anonymous_browsing_and_records_consent(shopper, beans, kettle):
    shopper.accept_personalisation()
    shopper.view(beans)
    shopper.view(kettle)

    response = shopper.signup(email="Ann@Example.com", marketing=True)

    assert response.status_code == 302 and response.url == reverse("shop:account")
    user = get_user_model().objects.get(username="ann")
    profile = pzn.Profile.objects.get(user=user)
    assert profile.email == "ann@example.com"
    assert viewed(profile) == {str(beans.pk), str(kettle.pk)}
    assert pzn.Profile.objects.count() == 1
    assert {(r.purpose, r.source, r.wording_version) for r in profile.consent_records.all()} == {
        (pzn.Purpose.PERSONALIZATION, pzn.ConsentSource.BANNER, PERSONALISATION_V1),
        (pzn.Purpose.EMAIL_MARKETING, pzn.ConsentSource.SIGNUP, MARKETING_V1),
    }
    assert shopper.client.get(reverse("shop:account")).status_code == 200


def test_login_joins_anonymous_browsing_to_the_existing_profile(make_shopper, beans):
    first_visit = make_shopper()
    first_visit.signup(personalisation=True)
    profile = pzn.Profile.objects.get(user__username="ann")
    first_visit.logout()

    other_browser = make_shopper()
    other_browser.accept_personalisation()
    other_browser.view(beans)
    anonymous = pzn.Event.objects.get().profile
    assert anonymous.pk != profile.pk and anonymous.is_anonymous

    response = other_browser.login()

    assert response.status_code == 302
    assert viewed(profile) == {str(beans.pk)}
    assert not pzn.Profile.objects.filter(pk=anonymous.pk).exists()


def test_logout_stops_attributing_browsing_to_the_customer(shopper, beans, kettle):
    shopper.signup(personalisation=True)
    shopper.view(beans)
    shopper.logout()

    shopper.view(kettle)

    profile = pzn.Profile.objects.get(user__username="ann")
    assert viewed(profile) == {str(beans.pk)}


def test_bad_signup_shows_form_errors_and_writes_nothing(shopper, db):
    get_user_model().objects.create_user("taken", "ann@example.com", "pw")

    response = shopper.signup(username="ann2", email="ANN@example.com", marketing=True)

    assert response.status_code == 200
    assert "email" in response.context["form"].errors
    assert not get_user_model().objects.filter(username="ann2").exists()
    assert not pzn.ConsentRecord.objects.exists()


def test_account_shows_own_orders_and_current_consent(shopper, make_shopper, beans):
    stranger = make_shopper()
    stranger.add(beans)
    stranger.checkout(email="bo@example.com", first_name="Bo")
    shopper.signup(marketing=True)
    shopper.add(beans)
    shopper.checkout()

    page = shopper.client.get(reverse("shop:account"))

    text = page.content.decode()
    assert ShopOrder.objects.get(user__username="ann").reference in text
    assert ShopOrder.objects.get(email="bo@example.com").reference not in text
    states = {c["purpose"]: c["state"] for c in page.context["consents"]}
    assert states == {
        pzn.Purpose.EMAIL_MARKETING: pzn.ConsentState.GRANTED,
        pzn.Purpose.PERSONALIZATION: pzn.ConsentState.NONE,
    }


def test_account_switches_consent_off_and_on(shopper, db):
    shopper.signup(marketing=True)
    url = reverse("shop:consent_update")

    shopper.client.post(url, {"purpose": pzn.Purpose.EMAIL_MARKETING, "granted": "0"})
    shopper.client.post(url, {"purpose": pzn.Purpose.PERSONALIZATION, "granted": "1"})

    states = {
        c["purpose"]: c["state"]
        for c in shopper.client.get(reverse("shop:account")).context["consents"]
    }
    assert states == {
        pzn.Purpose.EMAIL_MARKETING: pzn.ConsentState.WITHDRAWN,
        pzn.Purpose.PERSONALIZATION: pzn.ConsentState.GRANTED,
    }
    withdrawal = pzn.ConsentRecord.objects.filter(status=pzn.ConsentStatus.WITHDRAWN).get()
    assert withdrawal.source == pzn.ConsentSource.PREFERENCE_CENTRE


def test_a_withdrawal_behind_a_misconfigured_proxy_is_recorded_without_the_address(shopper, db):
    shopper.signup(marketing=True)
    shopper.client.post(
        reverse("shop:consent_update"),
        {"purpose": pzn.Purpose.EMAIL_MARKETING, "granted": "0"},
        REMOTE_ADDR="unix:/run/gunicorn.sock",
    )

    withdrawal = pzn.ConsentRecord.objects.filter(status=pzn.ConsentStatus.WITHDRAWN).get()
    assert withdrawal.ip_address is None


@pytest.fixture
def double_opt_in(settings, db):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
    }


def confirmation_mails(mailoutbox):
    return [m for m in mailoutbox if "confirm" in m.subject.lower()]


def switch(shopper, purpose, on, capture):
    with capture(execute=True):
        return shopper.client.post(
            reverse("shop:consent_update"),
            {"purpose": purpose, "granted": "1" if on else "0"},
            follow=True,
        )


def test_a_pending_grant_says_check_your_inbox_and_switching_on_again_mails_nothing(
    shopper, double_opt_in, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        shopper.signup(marketing=True)
    assert len(confirmation_mails(mailoutbox)) == 1

    page = shopper.client.get(reverse("shop:account")).content.decode()
    assert "check your inbox" in page.lower()

    again = switch(shopper, pzn.Purpose.EMAIL_MARKETING, True, django_capture_on_commit_callbacks)

    assert len(confirmation_mails(mailoutbox)) == 1
    [message] = [str(m) for m in again.context["messages"]]
    assert "check your inbox" in message.lower()
    profile = pzn.Profile.objects.get(email="ann@example.com")
    assert pzn.ConsentRecord.objects.filter(profile=profile).count() == 1
    assert consent_state(profile=profile, purpose=pzn.Purpose.EMAIL_MARKETING) == "pending"


def test_switching_on_from_the_account_page_under_double_opt_in_mails_one_link(
    shopper, double_opt_in, mailoutbox, django_capture_on_commit_callbacks
):
    shopper.signup()

    first = switch(shopper, pzn.Purpose.EMAIL_MARKETING, True, django_capture_on_commit_callbacks)
    switch(shopper, pzn.Purpose.EMAIL_MARKETING, True, django_capture_on_commit_callbacks)

    assert len(confirmation_mails(mailoutbox)) == 1
    assert "check your inbox" in str(list(first.context["messages"])[-1]).lower()
    [row] = [c for c in first.context["consents"] if c["purpose"] == "email_marketing"]
    assert row["state"] == pzn.ConsentState.PENDING


def test_switching_on_again_after_the_link_expired_mails_a_new_one(
    shopper, double_opt_in, mailoutbox, django_capture_on_commit_callbacks
):
    import datetime as dt

    import time_machine
    from django.utils import timezone

    from personalization.conf import app_settings

    with django_capture_on_commit_callbacks(execute=True):
        shopper.signup(marketing=True)
    later = timezone.now() + dt.timedelta(days=app_settings.CONFIRMATION_LINK_MAX_AGE_DAYS, hours=1)

    with time_machine.travel(later):
        switch(shopper, pzn.Purpose.EMAIL_MARKETING, True, django_capture_on_commit_callbacks)

    assert len(confirmation_mails(mailoutbox)) == 2


def test_switching_off_a_pending_grant_withdraws_it(
    shopper, double_opt_in, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        shopper.signup(marketing=True)

    page = switch(shopper, pzn.Purpose.EMAIL_MARKETING, False, django_capture_on_commit_callbacks)

    [row] = [c for c in page.context["consents"] if c["purpose"] == "email_marketing"]
    assert row["state"] == pzn.ConsentState.WITHDRAWN


def test_declining_the_banner_stores_nothing_and_hides_it(shopper, beans):
    assert "personalisation-banner" in shopper.client.get("/").content.decode()

    shopper.client.post(reverse("shop:personalisation_answer"), {"answer": "no"})
    shopper.view(beans)

    assert "personalisation-banner" not in shopper.client.get("/").content.decode()
    assert not pzn.Profile.objects.exists()


# --- Outbox -----------------------------------------------------------------------------------


def test_outbox_shows_the_order_confirmation(
    shopper, beans, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    shopper.add(beans, 2)
    with django_capture_on_commit_callbacks(execute=True):
        shopper.checkout(email="ann@example.com")
    reference = ShopOrder.objects.get().reference

    listing = shopper.client.get(reverse("shop:outbox"))

    [message] = listing.context["outbox_messages"]
    assert message.subject == f"Your Demo Shop order {reference}"
    assert message.to == "ann@example.com"
    detail = shopper.client.get(
        reverse("shop:outbox_message", args=[message.file_name, message.index])
    )
    assert "2 × Espresso Beans" in detail.content.decode()
    # The email leads to the customer's preference centre, which opens from it: the HTML
    # version's links open in a new tab (the shop's pages cannot be framed), the text's are links.
    html = detail.content.decode()
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in html
    assert "&lt;base target=&quot;_blank&quot;&gt;" in html
    assert '<a href="http://' in html.split('class="email-text"')[1]
    link = re.search(
        r"https?://[^\s\"<]+/personalization/preferences/[-\w:.]+", detail.content.decode()
    ).group()
    page = shopper.client.get(urlsplit(link).path)
    assert page.status_code == 200
    assert "ann@example.com" in page.content.decode()


def test_outbox_never_opens_files_outside_it(client, db):
    assert client.get("/outbox/..%2Fsettings.py/0/").status_code == 404
    assert client.get("/outbox/missing.log/0/").status_code == 404


def test_double_opt_in_at_checkout_counts_only_after_the_emailed_link_is_used(
    settings, shopper, kettle, mailoutbox, django_capture_on_commit_callbacks
):
    import re

    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
    }
    shopper.add(kettle)
    with django_capture_on_commit_callbacks(execute=True):
        shopper.checkout(email="ann@example.com", marketing=True)
    profile = pzn.Profile.objects.get(email="ann@example.com")
    assert consent_state(profile=profile, purpose=pzn.Purpose.EMAIL_MARKETING) == "pending"

    [confirmation] = [m for m in mailoutbox if "confirm" in m.subject.lower()]
    link = re.search(r"http://127\.0\.0\.1:8000(/\S+)", confirmation.body).group(1)
    shopper.client.post(link)

    assert consent_state(profile=profile, purpose=pzn.Purpose.EMAIL_MARKETING) == "granted"


# --- The app's pages inside the shop ------------------------------------------------------------


@pytest.fixture
def pending_confirmation(settings, shopper, kettle, mailoutbox, django_capture_on_commit_callbacks):
    """A checkout with the newsletter ticked under double opt-in; the emailed link's path."""
    import re

    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
    }
    shopper.add(kettle)
    with django_capture_on_commit_callbacks(execute=True):
        shopper.checkout(email="ann@example.com", marketing=True)
    [confirmation] = [m for m in mailoutbox if "confirm" in m.subject.lower()]
    return re.search(r"https?://[^/\s]+(/\S+)", confirmation.body).group(1)


def _shop_layout(html: str) -> dict[str, bool]:
    return {
        "shop navigation": 'class="main-nav"' in html and "nav-cart" in html,
        "link back to the shop": f'href="{reverse("shop:catalogue")}"' in html,
        "shop stylesheet": "shop/shop.css" in html,
    }


@pytest.mark.parametrize("method", ["get", "post"])
def test_confirmation_pages_use_the_shops_layout_and_link_back(
    shopper, pending_confirmation, method
):
    page = getattr(shopper.client, method)(pending_confirmation)

    assert page.status_code == 200
    html = page.content.decode()
    assert _shop_layout(html) == dict.fromkeys(_shop_layout(html), True)
    assert html.count("<html") == 1  # the app's page sits inside the shop's, not beside it


def test_a_bad_confirmation_link_is_shown_in_the_shops_layout_too(client, db):
    page = client.get(reverse("personalization:consent-confirm", args=["not-a-token"]))

    assert page.status_code == 400
    html = page.content.decode()
    assert _shop_layout(html) == dict.fromkeys(_shop_layout(html), True)


# --- Whose word changes a customer's name ------------------------------------------------------


def test_a_guest_checkout_with_a_customers_email_records_the_order_but_keeps_their_name(
    make_shopper, beans
):
    ann = make_shopper()
    ann.signup(email="ann@example.com")
    profile = pzn.Profile.objects.get(user__username="ann")
    assert profile.first_name == "Ann"

    stranger = make_shopper()
    stranger.add(beans)
    response = stranger.checkout(email="ann@example.com", first_name="Mallory", last_name="X")

    assert response.status_code == 302
    profile.refresh_from_db()
    assert (profile.first_name, profile.last_name) == ("Ann", "")
    assert profile.orders_count == 1
    assert pzn.Profile.objects.count() == 1


def test_a_signed_in_customer_changes_their_own_name_at_checkout(shopper, beans):
    shopper.signup(email="ann@example.com")
    shopper.add(beans)

    shopper.checkout(email="ann@example.com", first_name="Annie", last_name="Smith")

    profile = pzn.Profile.objects.get(user__username="ann")
    assert (profile.first_name, profile.last_name) == ("Annie", "Smith")


def test_a_checkout_in_a_currency_the_app_cannot_convert_still_sells(
    shopper, beans, settings, caplog
):
    # A shop counting in kronor, with the default adapter that knows no exchange rates.
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CURRENCY": "SEK"}
    shopper.add(beans)

    with caplog.at_level(logging.WARNING, logger="demo_shop.shop.integration"):
        response = shopper.checkout(email="ann@example.com")

    assert response.status_code == 302
    assert ShopOrder.objects.count() == 1
    assert not pzn.Order.objects.exists()
    assert "PERSONALIZATION['CURRENCY']" in caplog.text


# --- Consent boxes (the app's ConsentForm) -----------------------------------------------------


def test_the_signup_boxes_speak_the_visitors_language_and_record_that_wording(shopper, db):
    page = shopper.client.get(reverse("shop:signup"), HTTP_ACCEPT_LANGUAGE="sv-SE,sv;q=0.9")
    html = page.content.decode()
    assert "Jag vill få nyheter" in html
    assert 'type="checkbox" name="consent_email_marketing"' in html and "checked" not in html
    data = {
        "username": "ann",
        "email": "ann@example.com",
        "first_name": "Ann",
        "password1": "a-long-pass-phrase-9",
        "password2": "a-long-pass-phrase-9",
    }
    with translation.override("sv"):
        data.update(consent_form_data(checked=["email_marketing"]))
    shopper.client.post(reverse("shop:signup"), data, HTTP_ACCEPT_LANGUAGE="sv")
    [record] = pzn.Profile.objects.get(email="ann@example.com").consent_records.all()
    assert (record.source, record.wording_version) == ("signup", "email_marketing.sv.1")


def test_a_checkout_with_a_tampered_wording_version_places_no_order_and_says_so(shopper, beans):
    shopper.add(beans)
    response = shopper.checkout(
        marketing=True, consent_email_marketing_version="email_marketing.en.1"
    )
    assert response.status_code == 200
    assert "could not tell which wording you were shown" in response.content.decode()
    assert not ShopOrder.objects.exists()
    assert not pzn.ConsentRecord.objects.exists()


def test_signing_up_for_email_under_double_opt_in_says_check_your_inbox(
    shopper, double_opt_in, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = shopper.signup(marketing=True)
    page = shopper.client.get(response.url).content.decode()
    assert "check your inbox" in page.lower()
    assert len(confirmation_mails(mailoutbox)) == 1
    profile = pzn.Profile.objects.get(email="ann@example.com")
    assert consent_state(profile=profile, purpose=pzn.Purpose.EMAIL_MARKETING) == "pending"


def test_erasing_a_guest_forgets_their_name_on_the_shops_own_order(
    shopper, beans, django_capture_on_commit_callbacks
):
    from personalization.privacy.erasure import profile_erase, profile_for_email

    shopper.add(beans, 1)
    with django_capture_on_commit_callbacks(execute=True):
        shopper.checkout(email="ann@example.com")
    profile_erase(profile=profile_for_email(email="ann@example.com"), source="preference_centre")
    order = ShopOrder.objects.get()
    assert (order.email, order.first_name, order.last_name) == ("", "", "")
