"""The segment admin's rule builder in a real (headless) Chromium, as a marketer uses it:
build a rule by picking, preview who matches, save; a bad rule typed by hand; edit a rule."""

import datetime as dt
import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from personalization.catalogue import product_upsert
from personalization.commerce import order_record
from personalization.identity import Identity
from personalization.models import Segment, SegmentMembership
from personalization.segments import rule_segment_define, segment_refresh
from tests.browser import BROWSER_MARKS

pytestmark = BROWSER_MARKS

SCREENSHOTS = "/tmp"  # pzn-segment-<step>.png, to look at the page as a marketer sees it
RULE = {
    "all": [
        {"field": "stats.orders_count", "op": "gte", "value": 2},
        {"field": "orders.bought_category", "op": "eq", "value": "Food > Coffee"},
    ]
}


@pytest.fixture
def catalogue(transactional_db):
    product_upsert(product_id="beans", title="House Beans", category="Food > Coffee > Beans")
    product_upsert(product_id="pan", title="Frying Pan", category="Home > Kitchen")


@pytest.fixture
def customers(catalogue):
    """Two repeat coffee buyers (who match RULE), a repeat kitchen buyer, a one-time coffee
    buyer."""
    now = timezone.now()
    bought = {
        "ann@example.com": ["beans", "pan"],
        "bob@example.com": ["beans", "beans", "beans"],
        "cat@example.com": ["pan", "pan"],
        "dan@example.com": ["beans"],
    }
    for email, products in bought.items():
        for index, product in enumerate(products):
            order_record(
                order_id=f"{email}-{index}",
                identity=Identity(email=email),
                placed_at=now - dt.timedelta(days=index + 1),
                total="12.50",
                currency_code="EUR",
                lines=[{"product_id": product, "quantity": 1, "unit_price": "12.50"}],
            )
    return {"ann@example.com", "bob@example.com"}


@pytest.fixture
def admin(live_server, browser, admin_user):
    """The browser, logged in to the admin as a superuser."""
    client = Client()
    client.force_login(admin_user)
    browser.get(live_server.url + reverse("admin:login"))
    browser.add_cookie({"name": "sessionid", "value": client.cookies["sessionid"].value})
    return SegmentPage(browser, live_server.url)


class SegmentPage:
    """The segment add or change page, driven through what a marketer sees and does."""

    def __init__(self, driver, base_url):
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.base_url = base_url
        self.wait = WebDriverWait(driver, 10)
        driver.set_window_size(1280, 1400)

    def open(self, url):
        self.driver.get(self.base_url + url)
        self.wait_for("#segment_form")

    def wait_for(self, css):
        """The first element matching ``css`` once there is one (after a page load)."""
        self.wait.until(lambda _: self.find_all(css))
        return self.find(css)

    def find(self, css, within=None):
        return (within or self.driver).find_element("css selector", css)

    def find_all(self, css, within=None):
        return (within or self.driver).find_elements("css selector", css)

    def fill(self, css, text):
        self.type_into(self.find(css), text)

    def type_into(self, element, text):
        from selenium.webdriver.common.keys import Keys

        element.clear()
        element.send_keys(text, Keys.TAB)  # leaving the field sends "change"

    def submit(self, name):
        self.find(f"input[type=submit][name={name}]").click()

    # The builder draws itself again after each change of structure: find elements afresh.
    def conditions(self):
        return self.find_all(".pzn-rule-builder .pzn-rb-condition")

    def in_condition(self, index, css):
        return self.find(css, within=self.conditions()[index])

    def choose(self, element, value):
        from selenium.webdriver.support.ui import Select

        Select(element).select_by_value(value)

    def click_button(self, text):
        next(b for b in self.find_all(".pzn-rule-builder button") if b.text == text).click()

    def suggestions(self, value_input, expected):
        """Wait until the value's suggestions are ``expected`` (their values)."""
        css = f"#{value_input.get_attribute('list')} option"
        self.wait.until(
            lambda _: {o.get_attribute("value") for o in self.find_all(css)} == expected
        )

    def rule_text(self):
        return self.find("#id_rule").get_property("value")

    def rule_json(self):
        return json.loads(self.rule_text())

    def js_errors(self):
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]
        ]

    def screenshot(self, step):
        self.driver.save_screenshot(f"{SCREENSHOTS}/pzn-segment-{step}.png")


def test_a_marketer_builds_previews_and_saves_a_rule_without_typing_json(admin, customers):
    admin.open(reverse("admin:personalization_segment_add"))
    admin.fill("#id_name", "Coffee regulars")
    admin.fill("#id_slug", "coffee_regulars")

    # At least two orders...
    admin.click_button("+ condition")
    admin.choose(admin.in_condition(0, "select"), "stats.orders_count")
    admin.choose(admin.in_condition(0, "select:nth-of-type(2)"), "gte")
    admin.type_into(admin.in_condition(0, "input[type=number]"), "2")

    # ... and bought in a category, picked from what the builder suggests for "coff".
    admin.click_button("+ condition")
    admin.choose(admin.in_condition(1, "select"), "orders.bought_category")
    category = admin.in_condition(1, "input[list]")
    category.send_keys("coff")
    admin.suggestions(category, {"Food > Coffee", "Food > Coffee > Beans"})
    # The browser draws a datalist's menu out of WebDriver's reach: enter what it offers.
    admin.type_into(category, "Food > Coffee")

    assert admin.rule_json() == RULE
    admin.screenshot("add")

    admin.submit("_preview")
    preview = admin.wait_for(".pzn-preview")
    assert "2 profiles match this rule now." in preview.text
    assert {link.text for link in admin.find_all("a", within=preview)} == customers
    assert not Segment.objects.filter(slug="coffee_regulars").exists()
    # The page that shows the preview keeps the rule, in the JSON and in the builder.
    assert admin.rule_json() == RULE
    fields = [admin.find("select", within=c).get_attribute("value") for c in admin.conditions()]
    assert fields == ["stats.orders_count", "orders.bought_category"]
    admin.screenshot("preview")

    admin.submit("_save")
    admin.wait_for("#changelist")
    segment = Segment.objects.get(slug="coffee_regulars")
    assert segment.rule == RULE
    segment_refresh(segment=segment)
    members = SegmentMembership.objects.current().filter(segment=segment)
    assert {m.profile.email for m in members} == customers
    assert admin.js_errors() == []


def test_an_invalid_rule_typed_in_the_json_gets_an_error_naming_its_path(admin, transactional_db):
    admin.open(reverse("admin:personalization_segment_add"))
    admin.fill("#id_name", "Broken")
    admin.fill("#id_slug", "broken")
    typed = {"all": [{"field": "stats.orders_count", "op": "like", "value": 2}]}
    admin.fill("#id_rule", json.dumps(typed))
    # The builder follows the JSON typed by hand.
    assert admin.in_condition(0, "select").get_attribute("value") == "stats.orders_count"
    admin.submit("_save")

    error = admin.wait_for(".field-rule .errorlist")
    assert error.text.startswith("all[0].op: Unknown operator 'like' for stats.orders_count")
    assert admin.find(".errornote").text == "Please correct the error below."  # not a 500
    assert admin.rule_json() == typed  # still there to correct
    # The builder shows the operator it does not know rather than one it does.
    shown_op = admin.in_condition(0, "select:nth-of-type(2)").get_attribute("value")
    assert shown_op == "like"
    assert not Segment.objects.filter(slug="broken").exists()
    admin.screenshot("invalid")
    assert admin.js_errors() == []


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        (
            '{"all": [{"field": "stats.orders_count", "op": "gte", "value": 2}',
            "Enter a valid JSON.",
        ),
        ('{"all": "stats.orders_count"}', "all: "),
    ],
    ids=["not-json", "not-a-list"],
)
def test_json_the_builder_cannot_draw_stays_as_typed(admin, transactional_db, typed, error):
    admin.open(reverse("admin:personalization_segment_add"))
    admin.fill("#id_name", "Broken")
    admin.fill("#id_slug", "broken")
    admin.fill("#id_rule", typed)
    admin.submit("_save")

    assert admin.wait_for(".field-rule .errorlist").text.startswith(error)
    # As typed: the builder may indent JSON it parses, never change or drop it.
    assert "".join(admin.rule_text().split()) == "".join(typed.split())
    assert admin.js_errors() == []


def test_editing_a_rule_segment_loads_its_rule_into_the_builder(admin, catalogue):
    rule = {
        "any": [
            {
                "field": "orders.bought_category",
                "op": "in",
                "value": ["Home", "Food > Coffee"],
                "within_days": 30,
            },
            {"not": {"field": "profile.identified", "op": "eq", "value": True}},
        ]
    }
    segment, _created = rule_segment_define(slug="mixed", name="Mixed", rule=rule)
    admin.open(reverse("admin:personalization_segment_change", args=[segment.pk]))

    assert admin.find(".pzn-rule-builder > .pzn-rb-group > select").get_attribute("value") == "any"
    first, second = admin.conditions()
    assert admin.find("select", within=first).get_attribute("value") == "orders.bought_category"
    categories = admin.find("input[list]", within=first)
    assert categories.get_attribute("value") == "Home, Food > Coffee"
    # The extra keys, as the builder shows them: at least … times, in the last … days.
    extras = admin.find_all("input[type=number]", within=first)
    assert [extra.get_attribute("value") for extra in extras] == ["", "30"]
    assert admin.find_all(".pzn-rule-builder .pzn-rb-not")
    assert admin.find("select", within=second).get_attribute("value") == "profile.identified"
    assert admin.rule_json() == rule
    admin.screenshot("edit")

    # One more category from the suggestions (which keep the ones before it), a longer window:
    # the rest of the rule stays as it was.
    categories.send_keys(", kitch")
    admin.suggestions(categories, {"Home, Food > Coffee, Home > Kitchen"})
    admin.type_into(categories, "Home, Food > Coffee, Home > Kitchen")
    admin.type_into(admin.find_all("input[type=number]", within=admin.conditions()[0])[1], "60")
    admin.submit("_save")
    admin.wait_for("#changelist")
    segment.refresh_from_db()
    changed = {**rule["any"][0], "value": ["Home", "Food > Coffee", "Home > Kitchen"]}
    assert segment.rule == {"any": [{**changed, "within_days": 60}, rule["any"][1]]}
    assert admin.js_errors() == []


def test_changing_the_operator_keeps_a_value_that_fits_it(admin, transactional_db):
    admin.open(reverse("admin:personalization_segment_add"))
    admin.click_button("+ condition")
    admin.choose(admin.in_condition(0, "select"), "traits.")
    admin.type_into(admin.in_condition(0, "input[type=text]"), "plan")

    def operator(op):
        admin.choose(admin.in_condition(0, "select:nth-of-type(2)"), op)
        [condition] = admin.rule_json()["all"]
        return condition

    assert operator("exists") == {"field": "traits.plan", "op": "exists", "value": True}
    assert operator("in") == {"field": "traits.plan", "op": "in", "value": [""]}
    trait_key, values = admin.find_all("input[type=text]", within=admin.conditions()[0])
    assert trait_key.get_attribute("value") == "plan"
    admin.type_into(values, "gold, silver")
    assert admin.rule_json()["all"][0]["value"] == ["gold", "silver"]
    assert operator("eq") == {"field": "traits.plan", "op": "eq", "value": "gold"}
    assert admin.js_errors() == []
