"""A file outbox that takes a moment per email, as an email service's API does."""

import time

from django.conf import settings
from django.core.mail.backends import filebased


class SlowFileBackend(filebased.EmailBackend):
    """Django's file backend (each email written and flushed at once), after a short pause:
    a worker killed mid-batch has handed over some of the batch's emails, not all."""

    def write_message(self, message):
        time.sleep(getattr(settings, "SLOW_EMAIL_SECONDS", 0.02))
        super().write_message(message)
