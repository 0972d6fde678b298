"""Settings for a real Celery worker process started by a test (``test_worker_kill``).

The test settings, with a real broker instead of eager tasks, the test process's database, and
a file outbox whose backend takes a moment per email, so that a test can kill the worker while
it is handing a batch over. Everything it needs comes from the environment the test sets:
``DATABASE_URL`` (read by the demo's settings), ``PZN_WORKER_BROKER_URL``, ``PZN_WORKER_OUTBOX``.
"""

import os

from tests.settings import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = os.environ["PZN_WORKER_BROKER_URL"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
EMAIL_BACKEND = "tests.slow_email.SlowFileBackend"
EMAIL_FILE_PATH = os.environ["PZN_WORKER_OUTBOX"]
SLOW_EMAIL_SECONDS = float(os.environ.get("PZN_WORKER_EMAIL_SECONDS", "0.02"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"personalization": {"handlers": ["console"], "level": "INFO"}},
}
PERSONALIZATION = {
    **PERSONALIZATION,  # noqa: F405
    "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
    "MESSAGE_BATCH_SIZE": int(os.environ.get("PZN_WORKER_BATCH_SIZE", "20")),
    "MESSAGE_LEASE_SECONDS": int(os.environ.get("PZN_WORKER_LEASE_SECONDS", "2")),
    # The worker runs on the real clock: no quiet hours, whatever the time of the test run.
    "MESSAGE_QUIET_HOURS": ("00:00", "00:00"),
}
