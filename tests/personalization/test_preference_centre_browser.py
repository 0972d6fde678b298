"""The preference centre in a real (headless) Chromium, as a customer uses it from the link in
an email: change topics and frequency, take a break, turn personalisation off, switch
language, download their data, unsubscribe; axe-core finds no serious accessibility problem
at any step, on a desktop and on a phone. Then the database holds the ledger and history
entries. A failing step leaves a screenshot in var/screenshots/."""

import datetime as dt
import json
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from personalization.consent import consent_record, consent_state
from personalization.models import (
    ConsentRecord,
    ConsentSource,
    ConsentState,
    Frequency,
    PreferenceChange,
    PreferenceSource,
    Profile,
    Purpose,
)
from personalization.preferences.tokens import preference_token
from personalization.traits import traits_set
from tests.browser import BROWSER_MARKS, axe_violations

pytestmark = BROWSER_MARKS


@pytest.fixture
def customer(transactional_db, topic_factory):
    # The default consent wordings are there again after an earlier transactional test emptied
    # the tables: the flush's post_migrate publishes them (personalization.capture.defaults).
    # (serialized_rollback would re-insert the content types the flush already re-created.)
    topic_factory(slug="news", name="News", description="What is new in the shop", position=1)
    topic_factory(
        slug="offers",
        name="Offers",
        description="Sales and discounts",
        position=2,
        subscribed_by_default=False,
    )
    profile = Profile.objects.create(email="ann@example.com", first_name="Ann", locale="en")
    consent_record(profile=profile, purpose=Purpose.EMAIL_MARKETING, granted=True, source="signup")
    consent_record(profile=profile, purpose=Purpose.PERSONALIZATION, granted=True, source="signup")
    traits_set(
        profile=profile, values={"favourite_category": "Coffee"}, source="inferred", confidence=0.9
    )
    return profile


class CentrePage:
    """The preference centre, driven through what a customer sees and does."""

    def __init__(self, driver, url):
        from selenium.webdriver.common.by import By

        self.driver = driver
        self.url = url
        self.by = By

    def open(self, query=""):
        self.driver.get(self.url + query)

    def label(self, text):
        return self.driver.find_element(self.by.XPATH, f"//label[normalize-space()='{text}']")

    def tick(self, text, *, on):
        box = self.driver.find_element(self.by.ID, self.label(text).get_attribute("for"))
        if box.is_selected() != on:
            self.label(text).click()  # the label, as a person clicks it
        assert box.is_selected() == on

    def choose(self, text):
        self.label(text).click()

    def press(self, text, *, loads=True):
        """Click the button; wait for the next page unless it ``loads`` none (a download)."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        def next_page_loaded(driver):
            try:  # the old page's marker is gone once the new page has loaded
                return driver.execute_script(
                    "return document.readyState === 'complete' && !window.pznOldPage"
                )
            except WebDriverException:  # between the two pages
                return False

        self.driver.execute_script("window.pznOldPage = true")
        self.driver.find_element(self.by.XPATH, f"//button[normalize-space()='{text}']").click()
        if loads:
            WebDriverWait(self.driver, 10).until(next_page_loaded)

    def status(self):
        return self.driver.find_element(self.by.CSS_SELECTOR, "[role=status]").text

    def language(self):
        return self.driver.find_element(self.by.TAG_NAME, "html").get_attribute("lang")

    def assert_accessible(self):
        assert axe_violations(self.driver) == []

    def assert_fits(self):
        overflow = self.driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, f"the page is {overflow}px wider than the screen"


def test_a_customer_steers_their_email_from_the_link(live_server, browser, customer, tmp_path):
    browser.set_window_size(1280, 1400)
    browser.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    token = preference_token(profile=customer)
    page = CentrePage(
        browser, live_server.url + reverse("personalization:preferences", kwargs={"token": token})
    )
    page.open()
    assert page.language() == "en"
    assert "ann@example.com" in browser.page_source
    page.assert_accessible()

    page.tick("News", on=False)
    page.tick("Offers", on=True)
    page.choose("At most one email a month")
    page.choose("For 1 month")
    page.tick(
        browser.find_element(page.by.CSS_SELECTOR, "label[for=id_personalization]").text, on=False
    )
    page.press("Save my choices")
    assert page.status() == "Your choices are saved."
    assert "Keep my break until" in browser.page_source
    page.assert_accessible()

    # A guess they do not like: removed, and it stays removed.
    assert "our guess from your activity" in browser.page_source
    page.press("Remove Favourite category")
    assert page.status() == "Removed. We will not use it any more."
    assert "Favourite category" not in browser.page_source

    # The choices stick.
    page.open()
    assert not browser.find_element(page.by.ID, "id_topics_0").is_selected()
    assert browser.find_element(page.by.ID, "id_topics_1").is_selected()
    assert not browser.find_element(page.by.ID, "id_personalization").is_selected()

    # Switch language: the whole page follows, and stays after saving.
    browser.find_element(page.by.CSS_SELECTOR, "a[hreflang=sv]").click()
    assert page.language() == "sv"
    page.assert_accessible()
    page.press("Spara mina val")
    assert page.language() == "sv"
    page.open("?language=en")

    page.press("Download my data", loads=False)
    download = tmp_path / "my-data.json"
    for _ in range(50):
        if download.exists():
            break
        time.sleep(0.1)
    data = json.loads(download.read_text())
    assert data["profile"]["email"] == "ann@example.com"

    page.press("Unsubscribe from all marketing emails")
    assert page.status() == "You are unsubscribed from all marketing emails."
    page.assert_accessible()

    # On a phone: everything fits the screen and is still accessible.
    browser.set_window_size(375, 812)
    page.open()
    page.assert_fits()
    page.assert_accessible()

    customer.refresh_from_db()
    assert customer.frequency == Frequency.MONTHLY
    assert customer.paused_until > timezone.now() + dt.timedelta(days=29)
    history = PreferenceChange.objects.filter(profile=customer)
    assert {(change.field, change.subject) for change in history} == {
        ("topic", "news"),
        ("topic", "offers"),
        ("frequency", ""),
        ("pause", ""),
    }
    assert {change.source for change in history} == {PreferenceSource.PREFERENCE_CENTRE}
    assert consent_state(profile=customer, purpose=Purpose.PERSONALIZATION) == (
        ConsentState.WITHDRAWN
    )
    assert consent_state(profile=customer, purpose=Purpose.EMAIL_MARKETING) == (
        ConsentState.WITHDRAWN
    )
    assert (
        ConsentRecord.objects.filter(
            profile=customer, source=ConsentSource.PREFERENCE_CENTRE
        ).count()
        == 2
    )


def test_deleting_my_data_in_the_browser(live_server, browser, customer):
    browser.set_window_size(1280, 1400)
    url = reverse(
        "personalization:preferences", kwargs={"token": preference_token(profile=customer)}
    )
    page = CentrePage(browser, live_server.url + url)
    page.open()
    page.press("Delete my data…")
    assert "This cannot be undone." in browser.page_source
    page.assert_accessible()
    page.press("Yes, delete my data")
    assert "Your data is deleted" in browser.page_source
    assert not Profile.objects.filter(pk=customer.pk).exists()


def test_the_neutral_page_for_a_bad_link_is_accessible(live_server, browser, customer):
    browser.get(live_server.url + reverse("personalization:preferences", kwargs={"token": "x"}))
    assert "This link cannot be used" in browser.page_source
    assert axe_violations(browser) == []
