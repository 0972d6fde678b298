from personalization.capture.forms import wording_version_sign
from personalization.capture.wording import consent_wording_current
from personalization.exceptions import NoConsentWording
from personalization.models import Purpose

from .cart import SessionCart

BANNER_SESSION_KEY = "shop_personalisation_answered"


def cart(request):
    """The cart count for the header, and whether to ask about personalisation."""
    session = getattr(request, "session", None)
    if session is None:
        return {}
    user = getattr(request, "user", None)
    ask = user is not None and not user.is_authenticated and not session.get(BANNER_SESSION_KEY)
    context = {"cart_count": SessionCart(session).count, "ask_personalisation": False}
    if ask:
        # The banner shows the exact words of the consent it records, and posts their version;
        # with no wording published, it does not ask.
        try:
            wording = consent_wording_current(purpose=Purpose.PERSONALIZATION)
        except NoConsentWording:
            return context
        context["ask_personalisation"] = True
        context["personalisation_wording"] = wording
        context["personalisation_wording_signed"] = wording_version_sign(wording.version)
    return context
