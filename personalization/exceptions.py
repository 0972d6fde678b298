"""Exceptions raised by django-personalization.

Every exception derives from :class:`PersonalizationError` and also from the built-in or
Django exception it resembles, so callers may catch either. Input errors carry the name of the
offending ``field`` so that forms, API views and commands can point at it.
"""

from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import OperationalError
from django.utils.translation import gettext


class PersonalizationError(Exception):
    """Base class for every error this app raises on purpose."""


class ConfigurationError(PersonalizationError, ImproperlyConfigured):
    """The ``PERSONALIZATION`` setting is missing something or holds a wrong value."""


class InvalidInput(PersonalizationError, ValueError):
    """Data handed to the app is malformed. Nothing was written.

    ``field`` names the argument or CSV column that was wrong.
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidEmail(InvalidInput):
    """An email address could not be normalised into a deliverable form."""


class NaiveDatetime(InvalidInput):
    """A datetime without a timezone was given; the app only accepts aware datetimes."""


class MissingIdentity(InvalidInput):
    """A call needs a customer identity (email, user or anonymous id) and got none."""


class NotACustomer(MissingIdentity):
    """The only identity given was a shop user who is not a customer (staff, by default).

    See ``DefaultAdapter.is_customer``. ``track()``, ``identify()`` and ``cart_update`` record
    nothing for such a user instead of raising; an order needs the customer's email.
    """


class UnknownProduct(InvalidInput, LookupError):
    """A product id was given that the catalogue mirror does not know.

    Send ``product_saved`` for the product first (or import it).
    """


class UnconvertibleCurrency(InvalidInput):
    """An amount is in another currency than the shop's and cannot be converted to it.

    Raised (with ``field="currency"``) by the default adapter, which knows no exchange rates:
    implement ``exchange_rate()`` on your adapter (``PERSONALIZATION["ADAPTER"]``), or send
    amounts in ``PERSONALIZATION["CURRENCY"]``. Nothing was written.
    """


class InvalidRule(InvalidInput):
    """A segment rule names a field, operator or value outside the allowlist, or is malformed.

    ``field`` is the path of the problem in the rule tree, such as ``all[1].value``.
    """


class UnknownOrder(InvalidInput, LookupError):
    """A status change names an order that was never recorded."""


class InvalidLink(PersonalizationError, PermissionDenied):
    """A preference link (``personalization.preferences.tokens``) cannot be used.

    Whatever was wrong with it (forged, tampered with, expired for this purpose, made for
    another purpose, revoked, or its profile is gone), the message is the same neutral one, so
    that a page answering with it tells nobody which links or profiles exist. The reason is
    only logged. As a ``PermissionDenied``, Django answers it with a 403 where a view lets it
    through.
    """

    def __init__(self) -> None:
        message = gettext(
            "This link cannot be used. Please use the link in the newest email from us, or "
            "sign in to your account to manage your preferences."
        )
        super().__init__(message)
        self.message = message


class UnknownProfile(InvalidInput, LookupError):
    """No profile has this email address (current or former), or the profile named is gone:
    erased, or merged into another, meanwhile."""


class ImmutableRecord(PersonalizationError, TypeError):
    """An append-only record (the consent ledger) was asked to change. Record a new one."""


class ConcurrentUpdate(PersonalizationError, OperationalError):
    """Concurrent requests kept changing the same rows: the write was rolled back, retried a few
    times (see ``personalization.concurrency``) and given up. Nothing of it was written.

    Inside a transaction of the caller's own, a deadlock or serialization failure raises it at
    once: the caller's block is still usable, and only retrying the caller's whole transaction
    can help. It is an ``OperationalError`` as the deadlock it stands for is (PEP 249: an error
    of the database's operation, not of the program), so code and task queues that already
    retry transient database errors (Celery's ``autoretry_for``) treat it alike. ``attempts``
    says how many attempts were made; the last error is its ``__cause__``.
    """

    def __init__(self, message: str, *, attempts: int):
        super().__init__(message)
        self.message = message
        self.attempts = attempts


class ImportFileError(PersonalizationError, ValueError):
    """A backfill file as a whole cannot be imported: no header, missing columns, wrong encoding.

    The batches before the problem (if any) were imported; ``result`` (an
    ``personalization.importing.ImportResult``) says how far it got.
    """

    def __init__(self, message: str, *, result=None):
        super().__init__(message)
        self.message = message
        self.result = result


class NoConsentWording(PersonalizationError, LookupError):
    """No consent wording is published for a purpose, in the language asked for nor in any
    fallback (``LANGUAGE_CODE``, English). Publish one (admin › Consent wordings, or
    ``personalization.capture.wording.consent_wording_publish``)."""
