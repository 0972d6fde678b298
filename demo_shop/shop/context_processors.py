from .cart import SessionCart

BANNER_SESSION_KEY = "shop_personalisation_answered"


def cart(request):
    """The cart count for the header, and whether to ask about personalisation."""
    session = getattr(request, "session", None)
    if session is None:
        return {}
    user = getattr(request, "user", None)
    return {
        "cart_count": SessionCart(session).count,
        "ask_personalisation": (
            user is not None and not user.is_authenticated and not session.get(BANNER_SESSION_KEY)
        ),
    }
