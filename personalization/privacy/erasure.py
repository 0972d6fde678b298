"""Erasure: a person asks to be forgotten, and the app forgets them.

:func:`profile_erase` removes the profile and everything that identifies the person: events,
carts, consent records, aliases (anonymous ids and former addresses), topic and channel
choices and segment stays. The orders stay, for the shop's revenue figures, detached from
anyone (no profile; an order holds no email, name or address of its own). The email address
and every former one go on the suppression list as salted hashes
(:mod:`.suppression`), so that an import cannot re-subscribe the person without a new consent
of their own.

Carts are deleted rather than detached: no revenue figure counts them (revenue is orders), they
only serve the cart-abandoner segment and reminders, which are about a person. An order that
converted one keeps its total and lines and loses the link to the cart.

The shop's own user account and its own records are the shop's to delete: a shop user who
signs in again after an erasure gets a new profile, without consent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ..adapter import Identity
from ..changes import profile_removed_note
from ..concurrency import atomic_retried, profiles_lock
from ..exceptions import UnknownProfile
from ..identity import profile_find
from ..models import (
    Cart,
    ChannelPreference,
    ConsentRecord,
    Event,
    Order,
    Profile,
    ProfileAlias,
    SegmentMembership,
    SuppressionReason,
    SuppressionSource,
    TopicPreference,
    Trait,
    TraitRemoval,
)
from ..signals import profiles_removing
from ..validation import choice, email_normalize, saved_instance_check
from .suppression import suppression_add

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure removed (or, from :func:`profile_erasure_preview`, would remove)."""

    source: str
    orders_detached: int
    carts_deleted: int
    events_deleted: int
    consent_records_deleted: int
    aliases_deleted: int
    choices_deleted: int  # topic and channel choices
    traits_deleted: int  # traits and the markers of traits the person removed
    segment_stays_deleted: int
    addresses_suppressed: int  # the email and the former ones, hashed on the suppression list
    preview: bool = False

    def removed(self) -> list[str]:
        """What is (or would be) deleted, one line each, in the user's language."""
        counts = [
            (self.events_deleted, ngettext("%(n)d event", "%(n)d events", self.events_deleted)),
            (self.carts_deleted, ngettext("%(n)d cart", "%(n)d carts", self.carts_deleted)),
            (
                self.consent_records_deleted,
                ngettext(
                    "%(n)d consent record",
                    "%(n)d consent records",
                    self.consent_records_deleted,
                ),
            ),
            (
                self.aliases_deleted,
                ngettext(
                    "%(n)d alias (anonymous id or former address)",
                    "%(n)d aliases (anonymous ids and former addresses)",
                    self.aliases_deleted,
                ),
            ),
            (
                self.choices_deleted,
                ngettext(
                    "%(n)d topic or channel choice",
                    "%(n)d topic and channel choices",
                    self.choices_deleted,
                ),
            ),
            (
                self.traits_deleted,
                ngettext("%(n)d trait", "%(n)d traits", self.traits_deleted),
            ),
            (
                self.segment_stays_deleted,
                ngettext("%(n)d segment stay", "%(n)d segment stays", self.segment_stays_deleted),
            ),
        ]
        lines = [_("the profile: email address, names, attributes, preferences")]
        return lines + [text % {"n": n} for n, text in counts if n]

    def kept(self) -> list[str]:
        """What stays (or would stay), one line each, in the user's language."""
        return [
            ngettext(
                "%(n)d order with its lines, detached from the person (no profile, email, "
                "name or address): it still counts in revenue figures",
                "%(n)d orders with their lines, detached from the person (no profile, email, "
                "name or address): they still count in revenue figures",
                self.orders_detached,
            )
            % {"n": self.orders_detached},
            ngettext(
                "%(n)d salted hash of the email address on the suppression list, so that an "
                "import cannot subscribe the person again without a new consent",
                "%(n)d salted hashes of the current and former email addresses on the "
                "suppression list, so that an import cannot subscribe the person again "
                "without a new consent",
                self.addresses_suppressed,
            )
            % {"n": self.addresses_suppressed},
        ]


def _emails(profile: Profile) -> list[str]:
    former = ProfileAlias.objects.filter(profile=profile, kind=ProfileAlias.Kind.EMAIL)
    emails = {profile.email} | set(former.values_list("value", flat=True))
    return sorted(email for email in emails if email)


def profile_for_email(*, email: str) -> Profile:
    """The profile an email address (current or former) leads to; UnknownProfile if none."""
    email = email_normalize(email)
    profile = profile_find(Identity(email=email))
    if profile is None:
        raise UnknownProfile(
            _("No profile has the email address %(email)s (nor had it before).") % {"email": email},
            field="email",
        )
    return profile


def profile_erasure_preview(*, profile: Profile, source: str) -> ErasureReport:
    """What :func:`profile_erase` would remove and detach now, without changing anything."""
    saved_instance_check(profile, Profile, field="profile")
    source = choice(source, SuppressionSource.values, field="source")
    mine = Q(profile=profile)
    return ErasureReport(
        source=source,
        orders_detached=Order.objects.filter(mine).count(),
        carts_deleted=Cart.objects.filter(mine).count(),
        events_deleted=Event.objects.filter(mine).count(),
        consent_records_deleted=ConsentRecord.objects.filter(mine).count(),
        aliases_deleted=ProfileAlias.objects.filter(mine).count(),
        choices_deleted=TopicPreference.objects.filter(mine).count()
        + ChannelPreference.objects.filter(mine).count(),
        traits_deleted=Trait.objects.filter(mine).count()
        + TraitRemoval.objects.filter(mine).count(),
        segment_stays_deleted=SegmentMembership.objects.filter(mine).count(),
        addresses_suppressed=len(_emails(profile)),
        preview=True,
    )


@atomic_retried
def profile_erase(*, profile: Profile, source: str) -> ErasureReport:
    """Erase the person behind ``profile``, in one transaction; see the module's docstring.

    ``source`` says who asked (a :class:`~personalization.models.SuppressionSource`). Raises
    :class:`~personalization.exceptions.UnknownProfile` when the profile no longer exists
    (erased, or merged into another, meanwhile): nothing was written.
    """
    saved_instance_check(profile, Profile, field="profile")
    source = choice(source, SuppressionSource.values, field="source")
    profile_id = profile.pk
    # The one lock order: the profile; then its orders; then its carts; then the rest. An
    # order or cart of this customer being recorded meanwhile holds the same lock: it
    # commits first (and is detached or deleted below) or waits, and then finds no profile
    # and records its order for a new one.
    profile = profiles_lock([profile_id]).get(profile_id)
    if profile is None:
        raise UnknownProfile(
            _("The profile was erased, or merged into another, meanwhile."), field="profile"
        )
    emails = _emails(profile)

    # Sent before anything is deleted: the app's receiver closes the segment stays (member
    # counts stay right, the exits are announced) and forgets the ids in segment jobs.
    profiles_removing.send(sender=Profile, profile_ids=frozenset({profile_id}), into=None)

    orders_detached = Order.objects.filter(profile_id=profile_id).update(profile=None)
    carts = Cart.objects.filter(profile_id=profile_id)
    # The orders first (lock order), then the carts; the lines go with their cart.
    Order.objects.filter(cart__in=carts).update(cart=None)
    carts_deleted = carts.count()
    carts.delete()
    events_deleted, _n = Event.objects.filter(profile_id=profile_id).delete()
    aliases_deleted, _n = ProfileAlias.objects.filter(profile_id=profile_id).delete()
    topics_deleted, _n = TopicPreference.objects.filter(profile_id=profile_id).delete()
    channels_deleted, _n = ChannelPreference.objects.filter(profile_id=profile_id).delete()
    stays_deleted, _n = SegmentMembership.objects.filter(profile_id=profile_id).delete()
    # The consent ledger goes with the profile (its records cannot be deleted one by one).
    _total, deleted = profile.delete()
    profile_removed_note(profile_id)
    suppression_add(emails=emails, reason=SuppressionReason.ERASED, source=source)
    report = ErasureReport(
        source=source,
        orders_detached=orders_detached,
        carts_deleted=carts_deleted,
        events_deleted=events_deleted,
        consent_records_deleted=deleted.get(ConsentRecord._meta.label, 0),
        aliases_deleted=aliases_deleted,
        choices_deleted=topics_deleted + channels_deleted,
        # The traits go with the profile (a cascade), as the ledger does.
        traits_deleted=deleted.get(Trait._meta.label, 0) + deleted.get(TraitRemoval._meta.label, 0),
        segment_stays_deleted=stays_deleted,
        addresses_suppressed=len(emails),
    )
    # Neither the id nor the address: the log must not remember whom it was about.
    logger.info(
        "Erased a profile (asked by %s): %d orders detached, %d consent records deleted.",
        source,
        orders_detached,
        report.consent_records_deleted,
    )
    return report
