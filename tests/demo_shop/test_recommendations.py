"""The demo's recommendation shelves, as a shopper sees them: "Customers also bought" on a
product page, "For you" on the account page, "You might also like" in the cart, each pick with
its "why" line, and a plain "Popular right now" wherever nothing was tailored."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from personalization.recommendations import recommendations_build

PREFERENCES_URL = reverse("personalization:account-preferences")


@pytest.fixture
def grinder(shop_product):
    return shop_product("burr-grinder", title="Burr Grinder", price=Decimal("89.00"))


@pytest.fixture
def filters(shop_product):
    return shop_product("paper-filters", title="Paper Filters", price=Decimal("3.50"))


@pytest.fixture
def buy(make_shopper):
    """Guests each checking out one basket of these products."""
    serial = iter(range(1, 1000))

    def checkout(*products, times=1):
        for _ in range(times):
            guest = make_shopper()
            for product in products:
                guest.add(product)
            response = guest.checkout(email=f"guest{next(serial)}@example.com")
            assert response.status_code == 302, response.content.decode()[:500]

    return checkout


def shelf_html(response, shelf_id) -> str | None:
    page = response.content.decode()
    section = re.search(rf'<section class="shelf" id="{shelf_id}".*?</section>', page, re.S)
    return section.group(0) if section else None


def shelf(response, shelf_id):
    """(heading, [(title, link, price, why)]) of a shelf on the page, or None without it."""
    section = shelf_html(response, shelf_id)
    if section is None:
        return None
    heading = re.search(r"<h2[^>]*>(.*?)</h2>", section, re.S).group(1).strip()
    picks = re.findall(
        r'<a href="([^"]+)" class="pick-title">(.*?)</a>\s*'
        r'<span class="price">(.*?)</span>\s*<small class="why">(.*?)</small>',
        section,
        re.S,
    )
    return heading, [(title, link, price, why) for link, title, price, why in picks]


def titles(found):
    return [pick[0] for pick in found[1]]


# --- Product page ------------------------------------------------------------------------------


def test_a_product_page_shows_what_customers_also_bought(client, buy, beans, grinder, kettle):
    buy(beans, grinder, times=2)
    buy(kettle)
    recommendations_build()

    heading, picks = shelf(client.get(beans.get_absolute_url()), "also-bought")

    assert heading == "Customers also bought"
    assert picks[0] == (
        "Burr Grinder",
        grinder.get_absolute_url(),
        "€89.00",
        "Often bought with Espresso Beans",
    )
    # Filled up with what sells, saying so.
    assert ("Kettle", kettle.get_absolute_url(), "€49.00", "A bestseller") in picks
    assert "Espresso Beans" not in titles((heading, picks))


def test_before_any_model_a_product_page_says_popular_not_also_bought(client, buy, beans, grinder):
    buy(grinder)

    heading, picks = shelf(client.get(beans.get_absolute_url()), "also-bought")

    assert heading == "Popular right now"
    assert [(title, why) for title, _link, _price, why in picks] == [
        ("Burr Grinder", "Popular in Coffee")
    ]


def test_a_product_page_with_nothing_to_show_has_no_empty_shelf(client, beans):
    response = client.get(beans.get_absolute_url())
    assert shelf(response, "also-bought") is None
    assert "Customers also bought" not in response.content.decode()


def test_sold_out_and_sensitive_products_are_never_picked(
    client, buy, beans, grinder, filters, vitamins
):
    buy(beans, grinder, filters, vitamins, times=2)
    recommendations_build()
    grinder.stock = 0
    grinder.save()

    found = shelf(client.get(beans.get_absolute_url()), "also-bought")

    assert titles(found) == ["Paper Filters"]


def test_a_sensitive_products_page_gets_bestsellers_under_a_plain_heading(
    client, buy, beans, grinder, vitamins
):
    buy(vitamins, beans, times=2)
    buy(grinder)
    recommendations_build()

    heading, picks = shelf(client.get(vitamins.get_absolute_url()), "also-bought")

    assert heading == "Popular right now"
    assert {why for *_rest, why in picks} == {"A bestseller"}
    assert "Customers also bought" not in client.get(vitamins.get_absolute_url()).content.decode()


def test_what_a_consenting_customer_bought_is_left_out_for_them_only(
    make_shopper, buy, beans, grinder, filters
):
    buy(beans, grinder, filters, times=2)
    recommendations_build()
    tailored, plain = make_shopper(), make_shopper()
    tailored.signup(username="yes", email="yes@example.com", personalisation=True)
    plain.signup(username="no", email="no@example.com")
    for customer in (tailored, plain):
        customer.add(grinder)
        customer.checkout(email=f"{'yes' if customer is tailored else 'no'}@example.com")

    assert "Burr Grinder" not in titles(shelf(tailored.view(beans), "also-bought"))
    # Without personalisation consent the shop does not read what they bought.
    assert "Burr Grinder" in titles(shelf(plain.view(beans), "also-bought"))


def test_the_product_page_does_not_grow_with_the_number_of_picks(client, buy, shop_product, beans):
    others = [shop_product(f"coffee-{n}", title=f"Coffee {n}") for n in range(6)]
    buy(beans, *others, times=2)
    recommendations_build()

    with CaptureQueriesContext(connection) as queries:
        found = shelf(client.get(beans.get_absolute_url()), "also-bought")

    assert len(found[1]) == 4
    on_shop_products = [q["sql"] for q in queries if 'FROM "shop_product"' in q["sql"]]
    # The page's own product, then all the picks at once.
    assert len(on_shop_products) == 2, on_shop_products
    assert len(queries) <= 30, [q["sql"] for q in queries]


# --- Account page ------------------------------------------------------------------------------


def test_the_account_page_shows_picks_for_a_customer_who_allows_it(shopper, buy, beans, grinder):
    buy(beans, grinder, times=2)
    shopper.signup(personalisation=True)
    shopper.add(beans)
    shopper.checkout()
    recommendations_build()

    response = shopper.client.get(reverse("shop:account"))

    heading, picks = shelf(response, "for-you")
    assert heading == "For you"
    assert picks[0] == (
        "Burr Grinder",
        grinder.get_absolute_url(),
        "€89.00",
        "Often bought with Espresso Beans",
    )
    assert "turn on personalisation" not in response.content.decode()


def test_without_consent_the_account_page_is_plain_and_says_where_to_change_it(
    shopper, buy, beans, grinder
):
    buy(beans, grinder, times=2)
    shopper.signup(marketing=True)
    shopper.add(beans)
    shopper.checkout()
    recommendations_build()

    response = shopper.client.get(reverse("shop:account"))

    heading, picks = shelf(response, "for-you")
    assert heading == "Popular right now"
    assert {why for *_rest, why in picks} == {"A bestseller"}
    section = shelf_html(response, "for-you")
    assert "turn on personalisation" in section
    assert f'href="{PREFERENCES_URL}"' in section
    assert "For you" not in response.content.decode()


def test_a_consenting_customer_with_no_history_yet_is_not_told_to_turn_it_on(
    shopper, buy, beans, grinder
):
    buy(beans, grinder)
    shopper.signup(personalisation=True)

    response = shopper.client.get(reverse("shop:account"))

    heading, _picks = shelf(response, "for-you")
    assert heading == "Popular right now"
    page = response.content.decode()
    assert "Once you have bought or looked at a few things" in page
    assert "turn on personalisation" not in page


def test_the_account_page_does_not_grow_with_the_number_of_picks(shopper, buy, shop_product, beans):
    others = [shop_product(f"coffee-{n}", title=f"Coffee {n}") for n in range(6)]
    buy(beans, *others, times=2)
    shopper.signup(personalisation=True)
    shopper.add(beans)
    shopper.checkout()
    recommendations_build()

    with CaptureQueriesContext(connection) as queries:
        found = shelf(shopper.client.get(reverse("shop:account")), "for-you")

    assert found[0] == "For you" and len(found[1]) == 4
    on_shop_products = [q["sql"] for q in queries if 'FROM "shop_product"' in q["sql"]]
    assert len(on_shop_products) == 1, on_shop_products
    assert len(queries) <= 40, [q["sql"] for q in queries]


# --- Cart --------------------------------------------------------------------------------------


def test_the_cart_suggests_what_goes_with_it_but_never_what_is_in_it(
    shopper, buy, beans, grinder, filters
):
    buy(beans, grinder, filters, times=2)
    recommendations_build()
    shopper.signup(personalisation=True)
    shopper.add(beans)
    shopper.add(filters)

    heading, picks = shelf(shopper.client.get(reverse("shop:cart")), "also-like")

    assert heading == "You might also like"
    assert titles((heading, picks)) == ["Burr Grinder"]


def test_without_consent_the_cart_suggests_only_what_sells_and_says_so(
    shopper, buy, beans, grinder, kettle
):
    buy(beans, grinder, times=2)
    buy(kettle)
    recommendations_build()
    shopper.add(beans)

    heading, picks = shelf(shopper.client.get(reverse("shop:cart")), "also-like")

    assert heading == "Popular right now"
    assert {why for *_rest, why in picks} == {"A bestseller"}
    assert "Espresso Beans" not in titles((heading, picks))
