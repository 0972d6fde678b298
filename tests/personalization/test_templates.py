"""The app's customer-facing pages stand on their own until a shop gives them its layout."""

import copy

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def without_shop_overrides(settings):
    """Template settings of a shop that did not override personalization/base.html."""
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["DIRS"] = []
    settings.TEMPLATES = templates


@pytest.mark.parametrize(
    ("site_url", "home"), [("https://shop.example", "https://shop.example"), (None, "/")]
)
def test_the_standalone_confirmation_page_links_back_to_the_shop(
    client, settings, without_shop_overrides, site_url, home
):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SITE_URL": site_url}

    page = client.get(reverse("personalization:consent-confirm", args=["not-a-token"]))

    assert page.status_code == 400
    assert [t.name for t in page.templates] == [
        "personalization/consent_confirm.html",
        "personalization/base.html",
    ]
    html = page.content.decode()
    assert f'<a href="{home}">Back to the shop</a>' in html
    assert "<title>We could not confirm this</title>" in html
