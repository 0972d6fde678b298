"""The demo shop in Swedish and Turkish: pages, the language switcher, and the emails."""

import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from personalization import models as pzn

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("language", "heading", "label"),
    [("en", "Your cart", "Language"), ("sv", "Din varukorg", "Språk"), ("tr", "Sepetiniz", "Dil")],
)
def test_a_page_speaks_the_browsers_language(client, language, heading, label):
    page = client.get(reverse("shop:cart"), HTTP_ACCEPT_LANGUAGE=language).content.decode()

    assert f'<html lang="{language}">' in page
    assert f"<h1>{heading}</h1>" in page
    assert f'<label for="language-select">{label}</label>' in page


def test_the_language_switcher_is_a_plain_form_that_sticks(client):
    page = client.get(reverse("shop:cart")).content.decode()
    [form] = re.findall(r'<form action="([^"]+)" method="post" class="language-switcher">', page)
    assert form == reverse("set_language")
    options = re.findall(r'<option value="(\w+)" lang="\w+"[^>]*>([^<]+)</option>', page)
    assert options == [("en", "English"), ("sv", "Svenska"), ("tr", "Türkçe")]

    switched = client.post(form, {"language": "tr", "next": reverse("shop:cart")})

    assert switched.status_code == 302 and switched.url == reverse("shop:cart")
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "tr"
    # The choice outranks what the browser asks for.
    page = client.get(reverse("shop:cart"), HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "<h1>Sepetiniz</h1>" in page
    assert '<option value="tr" lang="tr" selected>' in page


def test_the_order_email_is_in_the_language_of_the_checkout(
    shopper, beans, mailoutbox, django_capture_on_commit_callbacks
):
    shopper.client.post(reverse("set_language"), {"language": "sv"})
    shopper.add(beans)
    with django_capture_on_commit_callbacks(execute=True):
        shopper.checkout()

    [message] = mailoutbox
    assert message.subject.startswith("Din beställning DS-")
    assert "Tack för din beställning" in message.body
    assert "Tack för din beställning" in message.alternatives[0][0]


def test_the_double_opt_in_mail_and_page_follow_the_language_of_the_checkout(
    shopper, beans, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
    }
    shopper.client.post(reverse("set_language"), {"language": "tr"})
    shopper.add(beans)
    with django_capture_on_commit_callbacks(execute=True):
        shopper.checkout(marketing=True)

    assert pzn.Profile.objects.get(email="ann@example.com").locale == "tr"
    [confirm] = [m for m in mailoutbox if "DS-" not in m.subject]  # not the order email
    assert confirm.subject == "Lütfen aboneliğinizi onaylayın"
    assert "E-posta ile pazarlama" in confirm.body  # the purpose's label, translated
    path = re.search(r"https?://[^/\s]+(/\S+)", confirm.body).group(1)

    # Opened on another device that has never been to the shop: still Turkish.
    page = Client().get(path, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<h1>Aboneliğinizi onaylayın</h1>" in page
    assert '<html lang="tr">' in page
