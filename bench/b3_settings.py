"""Settings for B3 (``bench/messaging_campaign.py``): the demo shop's, with Anymail's test
email backend, a public site address for the links, and quiet hours off.

The recipients live from London to Istanbul and the benchmark runs whenever it is started:
with the default quiet hours (21:00–08:00 in the recipient's zone) a run in the evening would
defer everyone instead of sending. ``("00:00", "00:00")`` turns them off. Double opt-in stays
on for email marketing as in the demo: the benchmark writes each grant with its confirmation.
"""

from demo_shop.settings import *  # noqa: F403
from demo_shop.settings import PERSONALIZATION

# Every message kept in django.core.mail.outbox (the benchmark empties it after each batch).
EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
DEFAULT_FROM_EMAIL = "Bench Shop <news@shop.example.com>"

PERSONALIZATION = {
    **PERSONALIZATION,
    "SITE_URL": "https://shop.example.com",
    "MESSAGE_QUIET_HOURS": ("00:00", "00:00"),
    "UTM_PARAMETERS": {"utm_source": "newsletter", "utm_medium": "email"},
}
