"""The shop's background jobs, run through the personalization app's job outbox.

Discovered at start-up (every installed app's ``jobs.py`` is imported). Each handler is thin:
it takes ids and calls a function.
"""

from anymail.exceptions import AnymailAPIError

from personalization.jobs import job_handler

from .emails import order_confirmation_send

ORDER_CONFIRMATION_SEND = "shop.order_confirmation_send"


# An SMTP or network error (OSError) or the ESP's is worth another try; a missing order is not.
@job_handler(ORDER_CONFIRMATION_SEND, retry_for=(AnymailAPIError, OSError))
def order_confirmation_send_job(*, order_id: int, language: str | None = None) -> None:
    # Jobs recorded before they carried a language are sent in the default one.
    order_confirmation_send(order_id=order_id, language=language)
