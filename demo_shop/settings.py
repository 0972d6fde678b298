"""Settings for the demo shop. Everything works with no environment at all:

- DATABASE_URL      default: SQLite in var/demo.sqlite3 (e.g. postgres://postgres@127.0.0.1/shop)
- CELERY_BROKER_URL default: an embedded file-system broker in var/celery/ (e.g. redis://…)
- EMAIL_BACKEND     default: files in var/outbox/, shown at /outbox/
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DEMO_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-shop-not-secret-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_celery_beat",
    "anymail",
    "personalization",
    "demo_shop.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "personalization.middleware.AnonymousIdMiddleware",
]

ROOT_URLCONF = "demo_shop.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-level overrides of the apps' templates, e.g. personalization/base.html.
        "DIRS": [BASE_DIR / "demo_shop" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "demo_shop.shop.context_processors.cart",
            ],
        },
    },
]

WSGI_APPLICATION = "demo_shop.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'demo.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server, Celery worker and Beat share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("sv", "Svenska"), ("tr", "Türkçe")]
# The demo's own catalogues (`make messages`); the app's ship inside personalization/locale/.
LOCALE_PATHS = [BASE_DIR / "demo_shop" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "shop:account"
LOGOUT_REDIRECT_URL = "shop:catalogue"

# --- Email: a local sink by default --------------------------------------------------------
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "outbox"
DEFAULT_FROM_EMAIL = "Demo Shop <shop@example.com>"
ANYMAIL = {}

# --- Celery: an embedded file-system broker unless CELERY_BROKER_URL is set ----------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "celery" / "queue"
    (VAR_DIR / "celery" / "processed").mkdir(parents=True, exist_ok=True)
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        # Broadcast/pidbox exchanges; kombu's default is ./control in the working directory.
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = os.environ.get("CELERY_TASK_ALWAYS_EAGER") == "1"

# --- The app ---------------------------------------------------------------------------------
PERSONALIZATION = {
    "SENSITIVE_CATEGORIES": ["Health"],
    # The shop sells in euros: the app counts every order in them.
    "CURRENCY": "EUR",
    "DEFAULT_CURRENCY": "EUR",
    # The demo asks for a confirmation click before marketing email counts (see /outbox/).
    "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
}

# Trying the abandoned-cart reminder yourself without waiting an hour: a cart counts as left
# after this many minutes (the default is 60). Shorten the first step's delay in the admin too
# (Flows › Abandoned cart), see README.
if os.environ.get("DEMO_CART_ABANDONED_AFTER_MINUTES"):
    PERSONALIZATION["CART_ABANDONED_AFTER_MINUTES"] = int(
        os.environ["DEMO_CART_ABANDONED_AFTER_MINUTES"]
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"personalization": {"handlers": ["console"], "level": "INFO"}},
}

# The /outbox/ page lists the emails in EMAIL_FILE_PATH. A demo convenience: never in production.
DEMO_OUTBOX_ENABLED = os.environ.get("DEMO_OUTBOX_ENABLED", "1") == "1"
# Password of the demo superuser `admin` that rundemo creates.
DEMO_ADMIN_PASSWORD = os.environ.get("DEMO_ADMIN_PASSWORD", "demo-admin")
LOGGING["loggers"]["demo_shop"] = {"handlers": ["console"], "level": "INFO"}
# Links in the app's emails (double opt-in confirmation, preference centre) point here.
# rundemo sets DEMO_SITE_URL for its children from --addr.
PERSONALIZATION["SITE_URL"] = os.environ.get("DEMO_SITE_URL", "http://127.0.0.1:8000")
# …and the web server answers for that host too (e.g. rundemo --addr 192.168.1.5:8000).
ALLOWED_HOSTS.append(urlsplit(PERSONALIZATION["SITE_URL"]).hostname or "localhost")
