import pytest


@pytest.fixture(autouse=True)
def _anymail_test_backend(settings):
    """Anymail's test backend (Django's test runner swaps in locmem): messages get an ESP
    message id and a status, as with a real ESP."""
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"


@pytest.fixture(autouse=True)
def _double_opt_in(settings):
    """Marketing consent needs its confirmation, as the shop's default asks."""
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
    }
