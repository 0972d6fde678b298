"""The plain-text part: what a reader of the text part (or a screen reader, or a spam filter)
gets from the HTML email."""

import datetime as dt

import pytest
from django.core import mail
from hypothesis import given
from hypothesis import strategies as st

from personalization.messaging.plaintext import html_to_text

from .shop import T0, customer, segment, send_campaign


def test_table_rows_become_paragraphs_and_links_keep_their_address():
    html = """<html><head><title>Hidden title</title><style>p{color:red}</style></head><body>
    <span style="display: none; max-height: 0">The preheader</span>
    <table><tr><td><a href="https://shop.test/p/1"><img src="x.png" alt=""></a></td>
    <td><a href="https://shop.test/p/1">Copper   Kettle</a><br>15.00 EUR<br>A bestseller</td></tr>
    <tr><td>Mug</td><td>9.00 EUR</td></tr></table>
    <p>Read <a href="https://shop.test/">the shop</a> or <a href="#top">go up</a>.</p>
    <ul><li>One</li><li>Two</li></ul><!-- a comment -->
    </body></html>"""

    assert html_to_text(html) == (
        "Copper Kettle (https://shop.test/p/1)\n15.00 EUR\nA bestseller\n\n"
        "Mug 9.00 EUR\n\n"
        "Read the shop (https://shop.test/) or go up.\n\n"
        "- One\n\n- Two\n"
    )


def test_an_image_with_alt_text_is_read_and_a_link_that_is_its_address_is_not_doubled():
    html = (
        '<p><img src="logo.png" alt="Coffee &amp; Co"></p>'
        '<p><a href="https://shop.test/">https://shop.test/</a></p>'
        '<p><a href="mailto:help@shop.test">help@shop.test</a></p>'
    )

    assert html_to_text(html) == ("Coffee & Co\n\nhttps://shop.test/\n\nhelp@shop.test\n")


@given(st.text(alphabet=st.sampled_from(list("<>/ap =\"'&;#\n\tx<td><br>é")), max_size=200))
def test_any_markup_gives_text_never_an_error(markup):
    text = html_to_text(markup)

    assert text.endswith("\n")
    assert all(line == line.strip() for line in text.splitlines())


@pytest.mark.django_db
def test_a_sent_email_has_a_readable_text_part_with_the_unsubscribe_address(
    product_factory, order_factory, settings
):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "SITE_URL": "https://shop.test",
        "UTM_PARAMETERS": {"utm_source": "newsletter"},
    }
    mug = product_factory(title="Stoneware Mug", url="https://shop.test/p/mug")
    order = order_factory(placed_at=T0 - dt.timedelta(days=2))
    order.lines.create(product=mug, quantity=1, unit_price=mug.price)
    everyone = segment()
    customer(segment=everyone)

    send_campaign(include=[everyone], body="<p>{{ greeting }}</p>{% recommendations 2 %}")

    (sent,) = mail.outbox
    unsubscribe = sent.extra_headers["List-Unsubscribe"].strip("<>")
    assert "Stoneware Mug (https://shop.test/p/mug?utm_source=newsletter)" in sent.body
    assert f"Unsubscribe ({unsubscribe})" in sent.body  # the customer's own link: untagged
    assert unsubscribe.startswith("https://shop.test/") and "utm_" not in unsubscribe
    assert "display" not in sent.body and "  " not in sent.body
    assert all(line == line.strip() for line in sent.body.splitlines())
