"""Identity resolution: turn an email, a shop user or an anonymous id into one profile.

When a visitor identifies (logs in, signs up, checks out), the history gathered under their
anonymous id joins their profile, and two profiles found to be one person are merged without
losing orders, carts, events, consent records or preferences.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _

from .adapter import Identity, get_adapter
from .changes import Change, profile_changed_note, profile_merged_note
from .concurrency import TransactionRetry, atomic_retried, profiles_lock
from .exceptions import ConcurrentUpdate, InvalidInput, MissingIdentity, NotACustomer
from .models import (
    Cart,
    ChannelPreference,
    ConsentRecord,
    Event,
    Frequency,
    Greeting,
    Order,
    PreferenceChange,
    Profile,
    ProfileAlias,
    TopicPreference,
)
from .signals import profiles_merged, profiles_removing
from .stats import profile_stats_refresh
from .traits import traits_merge
from .validation import anonymous_id as anonymous_id_clean
from .validation import (
    email_normalize,
    identity_args_check,
    instance_check,
    profile_attributes_clean,
    saved_instance_check,
)

logger = logging.getLogger(__name__)

# Profile fields a signal or call may set, besides the identifiers.
ATTRIBUTE_FIELDS = ("first_name", "last_name", "locale", "timezone", "country", "birthday")


def identity_from(
    *, email: Any = None, user: Any = None, anonymous_id: Any = None, request: Any = None
) -> Identity:
    """Build an Identity from the identity arguments the signals and track() accept."""
    identity_args_check(user=user, request=request)
    not_customer = False
    if request is not None:
        from_request = get_adapter().identity_for_request(request)
        if from_request.not_customer or (
            from_request.user is not None and not user_is_customer(from_request.user)
        ):
            # Staff at work in the shop or the admin: neither their account nor the browser
            # they use is a customer's history.
            from_request, not_customer = Identity(), True
        email = email or from_request.email
        user = user if user is not None else from_request.user
        anonymous_id = anonymous_id or from_request.anonymous_id
    if user is not None and not getattr(user, "is_authenticated", True):
        user = None
    if user is not None and not user_is_customer(user):
        user, not_customer = None, True
    if user is not None and not email:
        email = getattr(user, "email", "") or ""
    anonymous_id = anonymous_id_clean(anonymous_id)
    return Identity(
        email=email_normalize(email) if email else "",
        user=user,
        anonymous_id=anonymous_id,
        not_customer=not_customer,
    )


def user_is_customer(user: Any) -> bool:
    """Whether this shop user's account may have a profile (``DefaultAdapter.is_customer``)."""
    return bool(get_adapter().is_customer(user))


def customers_only(identity: Identity) -> Identity:
    """The identity without its user when that user is not a customer (staff)."""
    if identity.user is None or user_is_customer(identity.user):
        return identity
    return Identity(email=identity.email, anonymous_id=identity.anonymous_id, not_customer=True)


def attributes_clean(attributes: dict[str, Any]) -> dict[str, Any]:
    """Check the optional profile attributes; drop the empty ones."""
    return profile_attributes_clean(attributes, fields=ATTRIBUTE_FIELDS)


def profiles_search(term: str) -> Q:
    """Profiles a marketer means by ``term``, as a condition on profiles. A whole email
    address (current or former) or an anonymous visitor id is looked up exactly, through
    indexes, at any size; anything else matches the start of an email address or of a first
    or last name (case-insensitive), which reads the profiles table once."""
    term = term.strip()
    if not term:
        return Q()
    if "@" in term:
        try:
            email = email_normalize(term, field="q")
        except InvalidInput:
            return Q(pk__in=Profile.objects.filter(email__startswith=term.lower()).values("pk"))
        # Looked up first: a list ordered by id, filtered by "this or that alias", would
        # walk the whole id index looking for the one match.
        return Q(pk__in=_exact_matches(email, ProfileAlias.Kind.EMAIL, email=email))
    by_name = (
        Q(email__startswith=term.lower())
        | Q(first_name__istartswith=term)
        | Q(last_name__istartswith=term)
    )
    return Q(pk__in=Profile.objects.filter(by_name).values("pk")) | Q(
        pk__in=_exact_matches(term, ProfileAlias.Kind.ANONYMOUS_ID)
    )


def _exact_matches(value: str, kind: str, *, email: str = "") -> list[int]:
    found = set(
        ProfileAlias.objects.filter(kind=kind, value=value).values_list("profile_id", flat=True)
    )
    if email:
        found.update(Profile.objects.filter(email=email).values_list("pk", flat=True))
    return sorted(found)


def profile_find(identity: Identity) -> Profile | None:
    """The profile this identity already resolves to, without creating or changing anything."""
    instance_check(identity, Identity, field="identity")
    identity = customers_only(identity)
    if identity.user is not None and identity.user.pk is not None:
        profile = Profile.objects.filter(user=identity.user).first()
        if profile:
            return profile
    if identity.email:
        profile = _by_email(identity.email)
        if profile:
            return profile
    if identity.anonymous_id:
        return _by_alias(ProfileAlias.Kind.ANONYMOUS_ID, identity.anonymous_id)
    return None


def profile_resolve(
    identity: Identity,
    *,
    attributes: dict[str, Any] | None = None,
    lock: bool = True,
    trusted: bool = False,
) -> Profile:
    """The one profile for this identity, created, joined or merged as needed.

    - The shop user and the email point at the same person: their profiles are merged.
    - An anonymous id whose profile is still anonymous joins the identified profile.
    - An anonymous id last used by another known person (a shared computer) moves to this
      profile; the other person's history stays theirs.

    ``attributes`` (``ATTRIBUTE_FIELDS``) are written only on the word of someone entitled
    to: the customer's own account (the identity names the profile's user), the shop's
    server code vouching for them (``trusted=True``), or, for a profile this call gives its
    first email or user, whoever gave it. Otherwise, as for a guest checkout with a known
    customer's email, they are left out: typing someone's address must not rename them.
    """
    instance_check(identity, Identity, field="identity")
    trusted = trusted_check(trusted)
    identity = customers_only(identity)
    if identity.only_not_customer:
        raise NotACustomer(
            _(
                "This user is not a customer (staff and superusers are not, unless the "
                "adapter's is_customer() says so): give the customer's email instead."
            ),
            field="user",
        )
    if not identity:
        raise MissingIdentity(
            _("Give at least one of email, user, anonymous_id or request."), field="email"
        )
    if not trusted:
        identity = _account_address(identity)
    cleaned = attributes_clean(attributes or {})
    # Another request creating the same profile or alias at the same moment makes this one
    # start over (atomic_retried), and find what the other created.
    return _resolve(identity, cleaned, lock=lock, trusted=trusted)


def _account_address(identity: Identity) -> Identity:
    """With a shop user, the account's own address is the one that counts.

    Another address given beside it (a contact address typed at a signed-in checkout) was
    checked by nobody: it neither becomes the account's address nor merges the profile of
    whoever uses it into the account. Server code that vouches for it passes trusted=True.
    """
    if identity.user is None or not identity.email:
        return identity
    try:
        account_email = email_normalize(getattr(identity.user, "email", "") or "")
    except InvalidInput:
        return identity  # an account without a usable address: the one given stands
    if not account_email or account_email == identity.email:
        return identity
    logger.info(
        "Not applying %s to the account of user %s, whose address is another.",
        identity.email,
        identity.user.pk,
    )
    return Identity(email=account_email, user=identity.user, anonymous_id=identity.anonymous_id)


def trusted_check(trusted: Any) -> bool:
    if not isinstance(trusted, bool):
        raise InvalidInput(_("trusted is True or False."), field="trusted")
    return trusted


def _found(identity: Identity) -> tuple[Profile | None, Profile | None, Profile | None]:
    """The profiles of the identity's user, email and anonymous id, as committed now."""
    by_user = None
    if identity.user is not None and identity.user.pk is not None:
        by_user = Profile.objects.filter(user=identity.user).first()
    by_email = _by_email(identity.email) if identity.email else None
    by_anonymous = (
        _by_alias(ProfileAlias.Kind.ANONYMOUS_ID, identity.anonymous_id)
        if identity.anonymous_id
        else None
    )
    return by_user, by_email, by_anonymous


def _found_locked(identity: Identity) -> tuple[Profile | None, Profile | None, Profile | None]:
    """As _found(), with the profiles locked in the one lock order (ascending pk)."""
    found = _found(identity)
    locked = profiles_lock(profile.pk for profile in found if profile is not None)
    # A merge that committed between the lookup and the lock may have deleted one of them or
    # moved an alias: the identity may now name other profiles. Start over to lock those.
    if [p and p.pk for p in _found(identity)] != [p and p.pk for p in found]:
        raise TransactionRetry
    return tuple(locked[profile.pk] if profile is not None else None for profile in found)


@atomic_retried
def _resolve(
    identity: Identity, attributes: dict[str, Any], *, lock: bool, trusted: bool
) -> Profile:
    by_user, by_email, by_anonymous = _found_locked(identity) if lock else _found(identity)

    if (
        by_email is not None
        and identity.user is not None
        and by_email.user_id not in (None, identity.user.pk)
    ):
        # The address belongs to another account: never join two accounts' histories.
        logger.warning(
            "Email %s belongs to profile %s of another user; user %s keeps a profile of its own.",
            identity.email,
            by_email.pk,
            identity.user.pk,
        )
        by_email = None
        identity = Identity(user=identity.user, anonymous_id=identity.anonymous_id)

    target = by_user or by_email
    if by_user and by_email and by_user.pk != by_email.pk:
        target = profile_merge(source=by_email, target=by_user)

    names_someone = bool(identity.email) or identity.user is not None
    if target is None:
        if by_anonymous is not None and (by_anonymous.is_anonymous or not names_someone):
            # Still anonymous, or nobody new named: the device stands for its last user.
            target = by_anonymous
        else:
            target = Profile.objects.create()
            profile_changed_note(target.pk, Change.PROFILE)
    if by_anonymous is not None and by_anonymous.pk != target.pk:
        if by_anonymous.is_anonymous:
            target = profile_merge(source=by_anonymous, target=target)
        else:
            # A device last used by another known person: the id moves on, their history stays.
            ProfileAlias.objects.filter(
                kind=ProfileAlias.Kind.ANONYMOUS_ID, value=identity.anonymous_id
            ).update(profile=target)

    # A profile nobody could be told apart by yet (new, or an anonymous visitor's).
    unclaimed = not target.email and target.user_id is None
    changed: set[str] = set()
    if identity.user is not None and target.user_id != identity.user.pk:
        if target.user_id is None:
            target.user = identity.user
            changed.add("user")
    found_by_former_address = by_email is not None and by_email.email != identity.email
    if (
        identity.email
        and target.email != identity.email
        and not (
            # A guest checkout with an old address doesn't undo a change of address; only the
            # account (the user) or a profile without one sets the primary address.
            found_by_former_address and by_user is None and target.email
        )
    ):
        if target.email:
            # The customer changed address: the old one still finds them.
            _alias_add(target, ProfileAlias.Kind.EMAIL, target.email)
        ProfileAlias.objects.filter(kind=ProfileAlias.Kind.EMAIL, value=identity.email).delete()
        target.email = identity.email
        changed.add("email")
    own_account = identity.user is not None and target.user_id == identity.user.pk
    first_claim = unclaimed and names_someone
    if attributes and not (trusted or own_account or first_claim):
        # An unauthenticated source (a guest checkout, a newsletter form) may add to this
        # profile but not rewrite who it is, nor fill in what its owner left empty.
        logger.info(
            "Left %s of profile %s unchanged: the caller is neither its owner nor trusted.",
            ", ".join(sorted(attributes)),
            target.pk,
        )
        attributes = {}
    for name, value in attributes.items():
        if getattr(target, name) != value:
            setattr(target, name, value)
            changed.add(name)
    if changed:
        target.save(update_fields=[*changed, "updated_at"])
        profile_changed_note(target.pk, Change.PROFILE)
    if identity.anonymous_id:
        _alias_add(target, ProfileAlias.Kind.ANONYMOUS_ID, identity.anonymous_id)
    return target


def _by_email(email: str) -> Profile | None:
    profile = Profile.objects.filter(email=email).first()
    if profile is None:
        profile = _by_alias(ProfileAlias.Kind.EMAIL, email)
    return profile


def _by_alias(kind: str, value: str) -> Profile | None:
    return Profile.objects.filter(aliases__kind=kind, aliases__value=value).first()


def _alias_add(profile: Profile, kind: str, value: str) -> None:
    """Point the alias at ``profile``; an anonymous id another request took first is a lost race.

    Not get_or_create: that would hand back the other request's alias and let this request go
    on with a profile the anonymous id does not lead to (two profiles for one visitor).
    """
    try:
        with transaction.atomic():
            ProfileAlias.objects.create(profile=profile, kind=kind, value=value)
    except IntegrityError:
        owner = (
            ProfileAlias.objects.filter(kind=kind, value=value)
            .values_list("profile_id", flat=True)
            .first()
        )
        if owner == profile.pk or (owner is not None and kind == ProfileAlias.Kind.EMAIL):
            return  # already ours; a former address keeps leading where it led
        raise  # the unique conflict: atomic_retried resolves again and finds the other profile


_FREQUENCY_STRICTNESS = [Frequency.DEFAULT, Frequency.WEEKLY, Frequency.MONTHLY]


@atomic_retried
def profile_merge(*, source: Profile, target: Profile) -> Profile:
    """Fold ``source`` into ``target`` and delete ``source``. Returns the refreshed target.

    Orders, carts, events, consent records, preference history and aliases move over
    unchanged. Where both chose a topic or channel, the later choice wins; for pace and pause
    the more protective one does. The target keeps its traits and takes the source's others,
    and a trait removed on either stays removed (``personalization.traits.traits_merge``).
    """
    saved_instance_check(source, Profile, field="source")
    saved_instance_check(target, Profile, field="target")
    if source.pk == target.pk:
        return target
    # Both locked in ascending pk: two merges of the same pair in opposite directions wait for
    # each other instead of deadlocking.
    locked = profiles_lock([source.pk, target.pk])
    if len(locked) < 2:
        return _merge_after_concurrent_merge(source=source, target=target, locked=locked)
    source, target = locked[source.pk], locked[target.pk]
    for model in (Order, Cart, Event, ProfileAlias, PreferenceChange):
        model.objects.filter(profile=source).update(profile=target)
    ConsentRecord.objects.filter(profile=source).merge_into(profile=target)
    _merge_choices(TopicPreference, "topic", source=source, target=target)
    _merge_choices(ChannelPreference, "channel", source=source, target=target)
    traits_merge(source=source, target=target)

    source_email, source_user_id = source.email, source.user_id
    # Free the unique email and user before the target takes them over.
    Profile.objects.filter(pk=source.pk).update(email="", user=None)
    if source_email and source_email != target.email:
        if target.email:
            _alias_add(target, ProfileAlias.Kind.EMAIL, source_email)
        else:
            target.email = source_email
    if target.user_id is None and source_user_id is not None:
        target.user_id = source_user_id
    for name in ATTRIBUTE_FIELDS:
        if not getattr(target, name) and getattr(source, name):
            setattr(target, name, getattr(source, name))
    pauses = [t for t in (source.paused_until, target.paused_until) if t]
    target.paused_until = max(pauses, default=None)
    target.frequency = max((source.frequency, target.frequency), key=_FREQUENCY_STRICTNESS.index)
    if target.greeting == Greeting.DEFAULT:
        target.greeting = source.greeting
    target.save()
    source_id = source.pk
    profiles_removing.send(sender=Profile, profile_ids=frozenset({source_id}), into=target.pk)
    source.delete()
    profile_stats_refresh(profile_id=target.pk)
    target.refresh_from_db()
    profile_merged_note(source_id=source_id, target_id=target.pk)
    logger.info("Merged profile %s into %s.", source_id, target.pk)
    transaction.on_commit(
        lambda: profiles_merged.send(sender=Profile, target=target, source_id=source_id)
    )
    return target


def _merge_after_concurrent_merge(
    *, source: Profile, target: Profile, locked: dict[int, Profile]
) -> Profile:
    """A concurrent merge deleted ``source`` or ``target`` while this one waited for its locks.

    A deleted profile lives on in the one that took over its shop user or email: merge what
    the two have become (nothing to do when they became one).
    """
    source_now = locked.get(source.pk) or _merged_into(source)
    target_now = locked.get(target.pk) or _merged_into(target)
    if target_now is None:
        raise ConcurrentUpdate(
            _("Profile %(pk)s was merged into another or erased meanwhile.") % {"pk": target.pk},
            attempts=1,
        )
    if source_now is None or source_now.pk == target_now.pk:
        target_now.refresh_from_db()
        return target_now
    return profile_merge(source=source_now, target=target_now)


def _merged_into(profile: Profile) -> Profile | None:
    if profile.user_id is not None:
        found = Profile.objects.filter(user_id=profile.user_id).first()
        if found is not None:
            return found
    return _by_email(profile.email) if profile.email else None


def _merge_choices(model, key: str, *, source: Profile, target: Profile) -> None:
    """Move source's choices to target; where both chose, keep the later choice."""
    same_choice_later_on_target = model.objects.filter(
        profile=target, **{key: OuterRef(key)}, updated_at__gte=OuterRef("updated_at")
    )
    model.objects.filter(profile=source).filter(Exists(same_choice_later_on_target)).delete()
    same_choice_later_on_source = model.objects.filter(
        profile=source, **{key: OuterRef(key)}, updated_at__gt=OuterRef("updated_at")
    )
    model.objects.filter(profile=target).filter(Exists(same_choice_later_on_source)).delete()
    model.objects.filter(profile=source).update(profile=target)
