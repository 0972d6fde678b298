from ..messaging.conftest import _anymail_test_backend, _double_opt_in, marketer  # noqa: F401
