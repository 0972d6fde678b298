"""A shopper in a real (headless) Chromium: browse, add to cart, check out with consent."""

import pytest

from demo_shop.shop.models import Order as ShopOrder
from personalization import models as pzn
from personalization.recommendations import recommendations_build
from tests.browser import BROWSER_MARKS, axe_violations

pytestmark = BROWSER_MARKS


@pytest.fixture
def coffee(transactional_db, shop_product):
    shop_product("teapot", title="Glass Teapot", category="Home > Kitchen")
    return shop_product("house-blend", title="House Blend Beans", category="Food & Drink > Coffee")


def test_a_shopper_checks_out_with_consent_in_a_real_browser(live_server, browser, coffee):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 10)
    browser.get(live_server.url + "/")
    browser.find_element(By.LINK_TEXT, "Food & Drink").click()
    wait.until(ec.title_contains("Food & Drink"))
    assert "Glass Teapot" not in browser.page_source

    browser.find_element(By.LINK_TEXT, "House Blend Beans").click()
    wait.until(ec.title_contains("House Blend Beans"))
    quantity = browser.find_element(By.ID, "id_quantity")
    quantity.clear()
    quantity.send_keys("2")
    browser.find_element(By.ID, "add-to-cart").click()

    wait.until(ec.presence_of_element_located((By.ID, "go-to-checkout"))).click()
    wait.until(ec.presence_of_element_located((By.ID, "checkout-form")))
    browser.find_element(By.NAME, "email").send_keys("selenium@example.com")
    browser.find_element(By.NAME, "first_name").send_keys("Sel")
    consent_box = browser.find_element(By.NAME, "consent_personalization")
    # The customer sees the exact words they agree to.
    label = browser.find_element(By.CSS_SELECTOR, f"label[for='{consent_box.get_attribute('id')}']")
    assert "tailor the products and offers I see" in label.text
    consent_box.click()
    browser.find_element(By.ID, "place-order").click()

    heading = wait.until(ec.presence_of_element_located((By.ID, "confirmation")))
    assert heading.text == "Thank you, Sel!"
    shop_order = ShopOrder.objects.get()
    assert shop_order.reference in browser.page_source

    order = pzn.Order.objects.get(external_id=shop_order.reference)
    assert order.profile.email == "selenium@example.com"
    assert order.lines.get().quantity == 2
    [consent] = order.profile.consent_records.all()
    assert (consent.purpose, consent.source, consent.wording_version) == (
        pzn.Purpose.PERSONALIZATION,
        pzn.ConsentSource.CHECKOUT,
        "personalization.en.1",
    )
    assert consent.ip_address == "127.0.0.1"
    assert order.cart.status == pzn.CartStatus.CONVERTED
    assert order.cart.external_id == shop_order.cart_id.hex


def test_a_customer_follows_a_pick_from_their_account_page(
    live_server, browser, transactional_db, shop_product, make_shopper
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    beans = shop_product("house-blend", title="House Blend Beans")
    grinder = shop_product("burr-grinder", title="Burr Grinder")
    for number in range(2):
        guest = make_shopper()
        guest.add(beans)
        guest.add(grinder)
        guest.checkout(email=f"guest{number}@example.com")
    customer = make_shopper()
    customer.signup(personalisation=True)
    customer.add(beans)
    customer.checkout()
    recommendations_build()

    wait = WebDriverWait(browser, 10)
    browser.get(live_server.url + "/")
    browser.add_cookie({"name": "sessionid", "value": customer.client.cookies["sessionid"].value})
    browser.get(live_server.url + "/account/")
    shelf = browser.find_element(By.ID, "for-you")
    assert shelf.find_element(By.TAG_NAME, "h2").text == "For you"
    pick = shelf.find_element(By.CSS_SELECTOR, "[data-product='burr-grinder']")
    assert "Often bought with House Blend Beans" in pick.text
    assert axe_violations(browser) == []

    pick.find_element(By.LINK_TEXT, "Burr Grinder").click()

    wait.until(ec.title_contains("Burr Grinder"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Burr Grinder"
    assert axe_violations(browser) == []
