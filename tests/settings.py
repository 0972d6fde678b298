"""Test settings: the demo shop's, with fast hashing, in-memory mail and eager Celery."""

import os

os.environ.setdefault("DEMO_VAR_DIR", "/tmp/django-personalization-tests")

from demo_shop.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
LOGGING = {"version": 1, "disable_existing_loggers": False}

# Tests that exercise double opt-in switch it on themselves; elsewhere a grant counts at once.
PERSONALIZATION = {**PERSONALIZATION, "DOUBLE_OPT_IN_PURPOSES": []}  # noqa: F405
