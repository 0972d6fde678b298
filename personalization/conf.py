"""The app's settings: one ``PERSONALIZATION`` dict in the project's settings.

Read them through ``from personalization.conf import app_settings`` and
``app_settings.SENSITIVE_CATEGORIES``. Every key and its default is listed in ``DEFAULTS`` and
in ``docs/reference/settings.md``. The accessor is reset when tests change the setting.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .docs import docs_url
from .exceptions import ConfigurationError

DEFAULTS: dict[str, Any] = {
    # Dotted path of the adapter class: the one place a shop customises how the app sees it
    # (the customer behind a request, their IP address behind a proxy).
    "ADAPTER": "personalization.adapter.DefaultAdapter",
    # Category names (any level of a product's category path, case-insensitive) whose products
    # count as sensitive even when the shop did not flag the product itself.
    "SENSITIVE_CATEGORIES": [],
    # What track() does with an event about a sensitive product (Product.objects.sensitive()):
    # "flag" stores it with Event.is_sensitive set (Event.objects.not_sensitive() leaves it
    # out), "drop" does not store it at all.
    "SENSITIVE_EVENTS": "flag",
    # Store browse events (product views, searches, …) even without the customer's
    # personalisation consent. Only set this when the shop has another legal basis.
    "TRACK_WITHOUT_CONSENT": False,
    # Consent purposes whose grant only counts once the customer confirmed it (double opt-in).
    # Email marketing by default, as EU practice expects; [] switches double opt-in off.
    "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
    # Absolute base URL of the shop, for links in emails (e.g. "https://shop.example.com").
    "SITE_URL": None,
    # How long a double opt-in confirmation link stays valid.
    "CONFIRMATION_LINK_MAX_AGE_DAYS": 7,
    # Cookie that carries the anonymous visitor id set by AnonymousIdMiddleware.
    "ANONYMOUS_ID_COOKIE": "pzn_aid",
    "ANONYMOUS_ID_COOKIE_AGE": 60 * 60 * 24 * 365,
    # The shop's one currency (ISO 4217, e.g. "EUR"): statistics and every money rule count in
    # it, and an order or cart in another currency is converted through the adapter's
    # exchange_rate(). Required: the system check personalization.E007 names it when unset.
    "CURRENCY": None,
    # Currency assumed when an import row or signal leaves it out. None: currency is required.
    "DEFAULT_CURRENCY": None,
    # Rows per database round trip in import_orders and the data generator.
    "BATCH_SIZE": 2000,
    # Background jobs (personalization.jobs). Tries before a job is marked failed, unless its
    # handler asks for another number.
    "JOB_MAX_ATTEMPTS": 5,
    # Wait before the first retry of a failed attempt; doubled for each further one (max 1 h).
    "JOB_RETRY_BACKOFF_SECONDS": 60,
    # How long a worker holds a job it started; then the sweep gives it to another worker.
    "JOB_LEASE_SECONDS": 600,
    # A job handed to the broker that no worker started within this time is handed over again.
    "JOB_REDELIVER_AFTER_SECONDS": 900,
    # Longest a request waits for the broker when handing over its jobs after commit; on
    # failure the jobs stay pending for the sweep, and the process leaves the broker alone
    # for a while.
    "JOB_DISPATCH_TIMEOUT_SECONDS": 0.5,
    # Finished jobs are deleted by the daily purge after this many days (failed ones are kept).
    "JOB_KEEP_DONE_DAYS": 14,
    # Lifecycle segments (personalization.segments.lifecycle). Only orders that are not
    # cancelled or refunded count.
    # new_customer: the first order was placed within this many days.
    "NEW_CUSTOMER_DAYS": 30,
    # lapsed: at least one order, the last one more than this many days ago.
    "LAPSED_AFTER_DAYS": 180,
    # loyal: at least LOYAL_MIN_ORDERS orders within the last LOYAL_WITHIN_DAYS days.
    "LOYAL_MIN_ORDERS": 3,
    "LOYAL_WITHIN_DAYS": 365,
    # cart_abandoner: an open cart with lines, last changed between CART_ABANDONED_AFTER_MINUTES
    # and CART_ABANDONED_WITHIN_DAYS ago, and no order placed since.
    "CART_ABANDONED_AFTER_MINUTES": 60,
    "CART_ABANDONED_WITHIN_DAYS": 7,
    # Flows: browse abandonment starts after FLOW_BROWSE_MIN_VIEWS views of one category within
    # FLOW_BROWSE_WINDOW_HOURS, with no cart and no order since.
    "FLOW_BROWSE_MIN_VIEWS": 3,
    "FLOW_BROWSE_WINDOW_HOURS": 48,
    # Rule segments: names from SENSITIVE_CATEGORIES that rules may use anyway (case-insensitive).
    # Products in other sensitive categories, and products the shop flagged sensitive, are never
    # used by a rule: they cannot be named, and their orders, cart lines and views do not count.
    "SEGMENT_ALLOWED_SENSITIVE_CATEGORIES": [],
    # Traits (personalization.traits). An inferred trait counts in rule segments only when it
    # is at least this sure (0 to 1); given and recorded traits always count.
    "TRAIT_MIN_CONFIDENCE": 0.8,
    # Recommendations (personalization.recommendations): the item-to-item model, rebuilt by
    # the personalization.recommendations_build task and manage.py build_recommendations.
    # Neighbours kept per product (K).
    "RECOMMENDATION_NEIGHBOURS": 20,
    # What one customer viewing both products counts for, against one order containing both.
    "RECOMMENDATION_CO_VIEW_WEIGHT": 0.25,
    # Product views of the last this many days count as co-views (0 leaves views out).
    "RECOMMENDATION_CO_VIEW_DAYS": 90,
    # A pair is kept only when at least this many orders and viewers had both products.
    "RECOMMENDATION_MIN_SUPPORT": 2,
    # Reading recommendations (recommend_for_profile, recommend_for_product).
    # After a durable product (Product.purchase_cycle "durable") is bought, nothing from its
    # categories is recommended to the buyer for this many days (no sofa after a sofa).
    "RECOMMENDATION_DURABLE_COOLDOWN_DAYS": 180,
    # A profile's purchases, views and cart lines of the last this many days seed its picks;
    # a seed's weight halves every RECOMMENDATION_HALF_LIFE_DAYS.
    "RECOMMENDATION_HISTORY_DAYS": 180,
    "RECOMMENDATION_HALF_LIFE_DAYS": 30,
    # Bestsellers (the non-personal picks) count placed orders of the last this many days.
    "RECOMMENDATION_BESTSELLER_DAYS": 30,
    # Names from SENSITIVE_CATEGORIES whose products may be recommended anyway, and only to a
    # customer with personalisation consent (case-insensitive). Products the shop flagged
    # sensitive itself are never recommended.
    "RECOMMENDATION_ALLOWED_SENSITIVE_CATEGORIES": [],
    # Replenishment: a product without a repurchase interval of its own gets one learned by
    # each build (the median gap between a customer's purchases of it) once customers bought
    # it again at least this many times.
    "RECOMMENDATION_INTERVAL_MIN_REPEATS": 20,
    # How long learned intervals hold: a build carries the current ones over (a copy of a few
    # hundred rows) until they are this many days old, then learns them again from all orders
    # (the build's most expensive step after the neighbours). 0 learns them at every build.
    "RECOMMENDATION_INTERVAL_RELEARN_DAYS": 7,
    # Crontab fields (minute, hour, day_of_week, day_of_month, month_of_year) of the Beat
    # schedule registered at migrate; fields left out mean "*". None registers no schedule.
    # Like every schedule, it is only created when missing: later edits happen in the admin.
    "RECOMMENDATION_BUILD_SCHEDULE": {"minute": "23", "hour": "4"},
    # Privacy (personalization.privacy). Raw events older than this many days are deleted by
    # the daily personalization.events_expire task. None keeps them for ever.
    "EVENT_RETENTION_DAYS": 365,
    # Preference links in emails (personalization.preferences.tokens). A link lets the customer
    # change their preferences for this many days after it was made...
    "PREFERENCE_LINK_EDIT_DAYS": 30,
    # ...and unsubscribe from all marketing for this many (at least PREFERENCE_LINK_EDIT_DAYS).
    "PREFERENCE_LINK_UNSUBSCRIBE_DAYS": 400,
    # The version of the preference centre's text, kept with every change made there. Raise it
    # when you change what the page says (e.g. after overriding its templates).
    "PREFERENCE_CENTRE_WORDING_VERSION": "preference-centre-1",
    # Key of the HMAC that turns an email address into its entry on the suppression list
    # (personalization.privacy.suppression). None: derived from SECRET_KEY. Set a long random
    # string of its own, so that SECRET_KEY can be rotated: changing this key (or SECRET_KEY
    # while this is None) makes every stored hash stop matching, and erased or unsubscribed
    # people could then be re-subscribed by an import.
    "SUPPRESSION_HASH_KEY": None,
    # Messaging (personalization.messaging): the guardrail policy every message goes through.
    # At most this many marketing emails per customer in any MESSAGE_FREQUENCY_WINDOW_DAYS
    # days, across campaigns and flows (a customer's own stricter choice also applies).
    "MESSAGE_FREQUENCY_CAP": 3,
    "MESSAGE_FREQUENCY_WINDOW_DAYS": 7,
    # Night time in the customer's own time zone ("HH:MM" start and end; equal: none).
    # Marketing mail is deferred to its end, never dropped.
    "MESSAGE_QUIET_HOURS": ("21:00", "08:00"),
    # Languages in which customers are greeted without their first name unless they chose
    # otherwise (most Nordic customers find it pushy from a shop).
    "MESSAGE_NO_FIRST_NAME_LOCALES": ["sv", "da", "nb", "nn", "no", "fi", "is"],
    # A campaign message deferred (caps, quiet hours) more than this many hours after it was
    # due is skipped instead: it would arrive out of its time.
    "CAMPAIGN_MAX_DELAY_HOURS": 72,
    # Messages a dispatcher claims, decides and sends together, and how long a claim lasts
    # before Beat's sweep hands unsent ones to another worker.
    "MESSAGE_BATCH_SIZE": 500,
    "MESSAGE_LEASE_SECONDS": 600,
    # Transient failures of the email service (429, 5xx, timeouts) retried this many times
    # with growing pauses from MESSAGE_RETRY_BACKOFF_SECONDS, then the message fails.
    "MESSAGE_MAX_ATTEMPTS": 5,
    "MESSAGE_RETRY_BACKOFF_SECONDS": 60,
    # The HTML layout every marketing email is rendered in; override the template (or name
    # another) to give it your brand.
    "EMAIL_LAYOUT_TEMPLATE": "personalization/email/layout.html",
    # Added to every link into SITE_URL in marketing email (e.g. {"utm_source": "newsletter",
    # "utm_medium": "email"}); utm_campaign comes from the campaign. Empty: links as written.
    "UTM_PARAMETERS": {},
}

# Keys whose value is a dotted path to import.
IMPORT_STRINGS = {"ADAPTER"}


class AppSettings:
    """Lazy view of ``settings.PERSONALIZATION`` merged over ``DEFAULTS``."""

    @cached_property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "PERSONALIZATION", {})
        if not isinstance(value, dict):
            raise ConfigurationError(
                f"settings.PERSONALIZATION must be a dict. See {docs_url('reference/settings.md')}."
            )
        unknown = set(value) - set(DEFAULTS)
        if unknown:
            raise ConfigurationError(
                "Unknown key(s) in settings.PERSONALIZATION: "
                + ", ".join(sorted(unknown))
                + f". See {docs_url('reference/settings.md')} for the keys there are."
            )
        return value

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"No PERSONALIZATION setting named {name!r}.")
        value = self.user_settings.get(name, DEFAULTS[name])
        if name in IMPORT_STRINGS and isinstance(value, str):
            try:
                value = import_string(value)
            except ImportError as err:
                raise ConfigurationError(
                    f"PERSONALIZATION[{name!r}] = {value!r} cannot be imported: {err}. "
                    f"See {docs_url('reference/settings.md#' + name.lower())}."
                ) from err
        # Cache on the instance; __getattr__ is only called for missing attributes.
        self.__dict__[name] = value
        return value

    def reload(self) -> None:
        self.__dict__.clear()


app_settings = AppSettings()


@receiver(setting_changed)
def _reload_app_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == "PERSONALIZATION":
        app_settings.reload()
