"""The marketer's path through flows in the admin: switch off, retime, rewrite (with the lint),
preview a step for any customer, test-send it, read each step's results."""

import datetime as dt
import re

import pytest
from django.core import mail
from django.urls import reverse

from personalization.models import Flow, FlowKind

from .shop import T0, abandoned_cart, beat, customer, flow, place_order

pytestmark = pytest.mark.django_db


def change_url(kind: str) -> str:
    return reverse("admin:personalization_flow_change", args=[flow(kind).pk])


def form_data(page) -> dict:
    """The change form's current values, as the browser would post them back."""
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    formset = page.context["inline_admin_formsets"][0].formset
    data.update(
        {f"{formset.prefix}-{key}": value for key, value in formset.management_form.initial.items()}
    )
    for index, step_form in enumerate(formset.forms):
        for name in step_form.fields:
            value = step_form[name].value()
            if value is None:
                continue
            if isinstance(value, dt.timedelta):
                value = str(value)
            data[f"{formset.prefix}-{index}-{name}"] = value
    return {k: ("on" if v is True else v) for k, v in data.items() if v is not False}


def test_every_flow_is_listed_on_and_can_be_switched_off(marketer):
    page = marketer.get(reverse("admin:personalization_flow_changelist"))
    assert page.status_code == 200
    assert Flow.objects.count() == 8 and all(f.enabled for f in Flow.objects.all())

    data = form_data(marketer.get(change_url(FlowKind.BIRTHDAY)))
    data.pop("enabled")
    answer = marketer.post(change_url(FlowKind.BIRTHDAY), data)

    assert answer.status_code == 302, answer.context["errors"] if answer.context else ""
    assert flow(FlowKind.BIRTHDAY).enabled is False


def test_a_step_is_retimed_and_copy_that_promises_an_unasked_code_is_a_form_error(marketer):
    data = form_data(marketer.get(change_url(FlowKind.ABANDONED_CART)))
    data["steps-0-delay"] = "00:30:00"
    data["steps-0-body"] = "<p>{{ greeting }}</p><p>Use {{ incentive_code }} today!</p>"

    page = marketer.post(change_url(FlowKind.ABANDONED_CART), data)

    assert page.status_code == 200
    assert "customers would be promised a code" in page.content.decode()
    data["steps-0-body"] = "<p>{{ greeting }}</p>{% cart_lines %}"
    assert marketer.post(change_url(FlowKind.ABANDONED_CART), data).status_code == 302
    first = flow(FlowKind.ABANDONED_CART).steps.get(position=1)
    assert first.delay == dt.timedelta(minutes=30)


def test_preview_a_step_for_a_customer_and_send_a_test(marketer, product_factory):
    anna = customer()
    abandoned_cart(anna, product_factory(title="Copper Kettle"), at=T0 - dt.timedelta(hours=3))
    url = reverse("admin:personalization_flow_preview", args=[flow(FlowKind.ABANDONED_CART).pk])

    page = marketer.get(url, {"step": 1, "profile": anna.email})
    assert "Would get it now" in page.content.decode()
    assert "Copper Kettle" in page.context["preview"].email.html

    marketer.post(url, {"step": 1, "profile": anna.email, "_test_send": "1"})
    (test,) = mail.outbox
    assert test.to == ["marketer@shop.example"] and test.subject.startswith("[Test]")
    assert marketer.get(url, {"step": 9, "profile": anna.email}).status_code == 200


def test_each_steps_results_show_sent_skipped_and_who_left(marketer, product_factory):
    kettle = product_factory(title="Copper Kettle")
    anna, bo = customer(), customer()
    for someone in (anna, bo):
        abandoned_cart(someone, kettle, at=T0)
    beat(T0 + dt.timedelta(hours=2, minutes=1))
    place_order(bo, kettle, at=T0 + dt.timedelta(hours=3))
    beat(T0 + dt.timedelta(hours=26, minutes=2))

    page = marketer.get(change_url(FlowKind.ABANDONED_CART)).content.decode()

    assert "2 entered: 0 in the flow, 1 completed, 1 left early." in page
    assert "1 ordered" in page


def test_swapping_two_steps_saves_and_a_negative_delay_is_a_form_error(marketer):
    data = form_data(marketer.get(change_url(FlowKind.ABANDONED_CART)))
    data["steps-0-position"], data["steps-1-position"] = "2", "1"

    assert marketer.post(change_url(FlowKind.ABANDONED_CART), data).status_code == 302
    steps = dict(flow(FlowKind.ABANDONED_CART).steps.values_list("position", "subject"))
    assert steps == {1: "Still thinking it over?", 2: "Your cart is saved for you"}

    data = form_data(marketer.get(change_url(FlowKind.ABANDONED_CART)))
    data["steps-0-delay"] = "-1 00:00:00"
    page = marketer.post(change_url(FlowKind.ABANDONED_CART), data)
    assert page.status_code == 200 and "A delay cannot be negative." in page.content.decode()


def test_a_step_results_link_lists_that_steps_sent_messages_and_odd_queries_are_no_500(
    marketer, product_factory
):
    anna = customer()
    abandoned_cart(anna, product_factory(title="Copper Kettle"), at=T0)
    beat(T0 + dt.timedelta(hours=2, minutes=1))
    page = marketer.get(change_url(FlowKind.ABANDONED_CART))
    (link,) = [
        href
        for href in re.findall(r'href="([^"]+)"', page.content.decode())
        if "flow_step__id__exact" in href
    ][:1]

    listing = marketer.get(link.replace("&amp;", "&"))

    assert listing.status_code == 200 and len(listing.context["cl"].result_list) == 1
    preview = reverse("admin:personalization_flow_preview", args=[flow(FlowKind.WELCOME).pk])
    for query in ("²", "9" * 30, "nobody@example.com"):
        answer = marketer.get(preview, {"profile": query})
        assert answer.status_code == 200 and answer.context["error"]
