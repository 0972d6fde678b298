"""Celery tasks of the shop: thin wrappers that take ids and call a function."""

from celery import shared_task

from .emails import order_confirmation_send


@shared_task(name="shop.order_confirmation_send")
def order_confirmation_send_task(order_id: int) -> None:
    order_confirmation_send(order_id=order_id)
