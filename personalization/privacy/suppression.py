"""The suppression list: who must not be mailed, or re-subscribed without a new consent.

An address is kept only as an HMAC-SHA256 of its normalised form (trimmed, lower case), keyed
with ``SUPPRESSION_HASH_KEY`` (default: derived from ``SECRET_KEY``) through Django's
``salted_hmac`` and a fixed salt of its own. The list can tell whether an address it is shown
is on it; nobody can read the addresses back out of it. Changing the key (or ``SECRET_KEY``
while the key is derived from it) makes every stored hash stop matching.

The rule that keeps an erased person from being re-subscribed behind their back lives here
(:func:`suppression_blocks_grant`), and :func:`personalization.consent.consent_record`, the
one writer of grants, asks it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.crypto import salted_hmac

from ..conf import app_settings
from ..exceptions import InvalidInput
from ..models import ConsentSource, Suppression, SuppressionReason, SuppressionSource
from ..validation import choice, email_normalize

# Fixed forever: changing it, like changing the key, makes every stored hash stop matching.
KEY_SALT = "personalization.privacy.suppression.email"

# Consent sources that are the person's own act, now: a box they ticked at checkout or sign-up,
# in the preference centre or the consent banner, or in a headless frontend's form (API). An
# import or a staff member (admin) reports an old or second-hand consent, which does not undo
# an erasure: such grants for an erased address are not recorded.
NEW_CONSENT_SOURCES = frozenset(
    {
        ConsentSource.CHECKOUT,
        ConsentSource.SIGNUP,
        ConsentSource.PREFERENCE_CENTRE,
        ConsentSource.BANNER,
        ConsentSource.API,
    }
)


def email_hash(email: str) -> str:
    """The suppression list's hash of ``email`` (normalised first): 64 hex characters.

    Raises :class:`~personalization.exceptions.InvalidEmail` for something that is not an
    address.
    """
    normalised = email_normalize(email)
    key = app_settings.SUPPRESSION_HASH_KEY
    return salted_hmac(KEY_SALT, normalised, secret=key or None, algorithm="sha256").hexdigest()


def _hashes(emails: Iterable[str]) -> set[str]:
    hashes = set()
    for email in emails:
        try:
            hashes.add(email_hash(email))
        except InvalidInput:
            continue  # an address stored before the rules were strict: nothing to match
    return hashes


def suppression_add(*, emails: Iterable[str], reason: str, source: str) -> int:
    """Put these addresses on the suppression list for ``reason``; how many were new.

    An address already on it for that reason keeps its first entry (and its date). Safe
    against a concurrent add of the same address (the unique key decides, nobody fails).
    """
    reason = choice(reason, SuppressionReason.values, field="reason")
    source = choice(source, SuppressionSource.values, field="source")
    hashes = sorted(_hashes(emails))
    if not hashes:
        return 0
    already = set(
        Suppression.objects.filter(email_hash__in=hashes, reason=reason).values_list(
            "email_hash", flat=True
        )
    )
    Suppression.objects.bulk_create(
        [Suppression(email_hash=h, reason=reason, source=source) for h in hashes],
        ignore_conflicts=True,
    )
    return len(set(hashes) - already)


def _emails_by_hash(emails: Iterable[str]) -> dict[str, set[str]]:
    """The addresses by their hash (an address that is not one has nothing to match)."""
    by_hash: dict[str, set[str]] = {}
    for email in set(emails):
        try:
            by_hash.setdefault(email_hash(email), set()).add(email)
        except InvalidInput:
            continue
    return by_hash


def emails_suppressed(*, emails: Iterable[str], reason: str) -> set[str]:
    """Those of ``emails`` that are on the suppression list for ``reason`` (one query)."""
    by_hash = _emails_by_hash(emails)
    if not by_hash:
        return set()
    found = Suppression.objects.filter(email_hash__in=list(by_hash), reason=reason).values_list(
        "email_hash", flat=True
    )
    return {email for digest in found for email in by_hash[digest]}


# When an address is on the list for several reasons, the one named first is reported.
_REASON_ORDER = ("erased", "complaint", "hard_bounce", "unsubscribed")


def emails_suppression_reasons(*, emails: Iterable[str]) -> dict[str, str]:
    """{email: reason} for those of ``emails`` on the suppression list for any reason (one
    query); an address on it for several reasons gets the gravest."""
    by_hash = _emails_by_hash(emails)
    if not by_hash:
        return {}
    found: dict[str, str] = {}
    rows = Suppression.objects.filter(email_hash__in=list(by_hash)).values_list(
        "email_hash", "reason"
    )
    for digest, reason in sorted(rows, key=lambda row: _REASON_ORDER.index(row[1])):
        for email in by_hash[digest]:
            found.setdefault(email, reason)
    return found


def email_suppressed(*, email: str, reason: str) -> bool:
    """Whether ``email`` is on the suppression list for ``reason``."""
    return bool(emails_suppressed(emails=[email], reason=reason)) if email else False


def suppression_blocks_grant(*, email: str, source: str) -> bool:
    """Whether a consent grant from ``source`` for ``email`` must not be recorded.

    True when the address was erased and the grant is not a new consent of the person's own
    (:data:`NEW_CONSENT_SOURCES`): an import or a staff member cannot re-subscribe someone who
    asked to be forgotten. A new consent they give themselves is recorded as any other.
    """
    if source in NEW_CONSENT_SOURCES or not email:
        return False
    return email_suppressed(email=email, reason=SuppressionReason.ERASED)
