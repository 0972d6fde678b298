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


@pytest.fixture
def marketer(client, admin_user, time_machine):
    """A staff member signed in at T0 (a session from the real clock would have expired)."""
    from .shop import T0

    time_machine.move_to(T0, tick=False)
    admin_user.email = "marketer@shop.example"
    admin_user.save()
    client.force_login(admin_user)
    return client
