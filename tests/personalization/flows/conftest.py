from ..messaging.conftest import _anymail_test_backend, _double_opt_in  # noqa: F401
