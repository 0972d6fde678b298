"""Transactional email the shop itself sends (not marketing: no consent needed)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from .models import Order


def order_confirmation_send(*, order_id: int, language: str | None = None) -> None:
    """Email the order's confirmation in ``language``, the one the customer checked out in."""
    order = Order.objects.prefetch_related("lines").get(pk=order_id)
    context = {"order": order, "lines": list(order.lines.all())}
    with translation.override(language or settings.LANGUAGE_CODE):
        subject = _("Your Demo Shop order %(reference)s") % {"reference": order.reference}
        text = render_to_string("shop/emails/order_confirmation.txt", context)
        html = render_to_string("shop/emails/order_confirmation.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=[order.email])
    message.attach_alternative(html, "text/html")
    message.send()
