"""Transactional email the shop itself sends (not marketing: no consent needed)."""

from __future__ import annotations

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from .models import Order


def order_confirmation_send(*, order_id: int) -> None:
    order = Order.objects.prefetch_related("lines").get(pk=order_id)
    context = {"order": order, "lines": list(order.lines.all())}
    message = EmailMultiAlternatives(
        subject=_("Your Demo Shop order %(reference)s") % {"reference": order.reference},
        body=render_to_string("shop/emails/order_confirmation.txt", context),
        to=[order.email],
    )
    message.attach_alternative(
        render_to_string("shop/emails/order_confirmation.html", context), "text/html"
    )
    message.send()
