"""Identity resolution: turn an email, a shop user or an anonymous id into one profile.

When a visitor identifies (logs in, signs up, checks out), the history gathered under their
anonymous id joins their profile, and two profiles found to be one person are merged without
losing orders, carts, events, consent records or preferences.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext as _

from .changes import Change, changes_collected, profile_changed_note, profile_merged_note
from .exceptions import InvalidInput, MissingIdentity, NotACustomer
from .models import (
    Cart,
    ChannelPreference,
    ConsentRecord,
    Event,
    Frequency,
    Greeting,
    Order,
    Profile,
    ProfileAlias,
    TopicPreference,
)
from .signals import profiles_merged
from .validation import email_normalize, identity_args_check, no_nul, profile_attributes_clean

logger = logging.getLogger(__name__)

# Profile fields a signal or call may set, besides the identifiers.
ATTRIBUTE_FIELDS = ("first_name", "last_name", "locale", "timezone", "country", "birthday")


@dataclass(frozen=True)
class Identity:
    """Whatever is known about who did something. At least one part must be set."""

    email: str = ""
    user: Any = None
    anonymous_id: str = ""
    # A shop user was named who is not a customer (DefaultAdapter.is_customer), and left out.
    not_customer: bool = False

    def __bool__(self) -> bool:
        return bool(self.email or self.user is not None or self.anonymous_id)

    @property
    def only_not_customer(self) -> bool:
        """Nothing but a user who is not a customer: there is no one to record anything for."""
        return self.not_customer and not self


def identity_from(
    *, email: Any = None, user: Any = None, anonymous_id: Any = None, request: Any = None
) -> Identity:
    """Build an Identity from the identity arguments the signals and track() accept."""
    identity_args_check(user=user, request=request)
    not_customer = False
    if request is not None:
        from .adapter import get_adapter

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
    anonymous_id = no_nul(str(anonymous_id or "").strip(), field="anonymous_id")
    if len(anonymous_id) > 64:
        raise InvalidInput(_("Anonymous ids are at most 64 characters."), field="anonymous_id")
    return Identity(
        email=email_normalize(email) if email else "",
        user=user,
        anonymous_id=anonymous_id,
        not_customer=not_customer,
    )


def user_is_customer(user: Any) -> bool:
    """Whether this shop user's account may have a profile (``DefaultAdapter.is_customer``)."""
    from .adapter import get_adapter

    return bool(get_adapter().is_customer(user))


def customers_only(identity: Identity) -> Identity:
    """The identity without its user when that user is not a customer (staff)."""
    if identity.user is None or user_is_customer(identity.user):
        return identity
    return Identity(email=identity.email, anonymous_id=identity.anonymous_id, not_customer=True)


def attributes_clean(attributes: dict[str, Any]) -> dict[str, Any]:
    """Check the optional profile attributes; drop the empty ones."""
    return profile_attributes_clean(attributes, fields=ATTRIBUTE_FIELDS)


def profile_find(identity: Identity) -> Profile | None:
    """The profile this identity already resolves to, without creating or changing anything."""
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
    for attempt in range(3):
        try:
            with transaction.atomic(), changes_collected():
                return _resolve(identity, cleaned, lock=lock, trusted=trusted)
        except IntegrityError:
            # Another request created the same profile or alias at the same moment.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


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


def _resolve(
    identity: Identity, attributes: dict[str, Any], *, lock: bool, trusted: bool
) -> Profile:
    by_user = None
    if identity.user is not None and identity.user.pk is not None:
        by_user = _locked(Profile.objects.filter(user=identity.user), lock)
    by_email = _by_email(identity.email, lock=lock) if identity.email else None
    by_anonymous = (
        _by_alias(ProfileAlias.Kind.ANONYMOUS_ID, identity.anonymous_id, lock=lock)
        if identity.anonymous_id
        else None
    )

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


def _locked(queryset, lock: bool) -> Profile | None:
    if lock:
        queryset = queryset.select_for_update()
    return queryset.first()


def _by_email(email: str, *, lock: bool = False) -> Profile | None:
    profile = _locked(Profile.objects.filter(email=email), lock)
    if profile is None:
        profile = _by_alias(ProfileAlias.Kind.EMAIL, email, lock=lock)
    return profile


def _by_alias(kind: str, value: str, *, lock: bool = False) -> Profile | None:
    return _locked(Profile.objects.filter(aliases__kind=kind, aliases__value=value), lock)


def _alias_add(profile: Profile, kind: str, value: str) -> None:
    ProfileAlias.objects.get_or_create(kind=kind, value=value, defaults={"profile": profile})


_FREQUENCY_STRICTNESS = [
    Frequency.DEFAULT,
    Frequency.FEW_PER_WEEK,
    Frequency.WEEKLY,
    Frequency.MONTHLY,
]


@transaction.atomic
def profile_merge(*, source: Profile, target: Profile) -> Profile:
    """Fold ``source`` into ``target`` and delete ``source``. Returns the refreshed target.

    Orders, carts, events, consent records and aliases move over unchanged. Where both chose
    a topic or channel, the later choice wins; for pace and pause the more protective one does.
    """
    from .commerce import profile_stats_refresh

    if source.pk == target.pk:
        return target
    source, target = (
        Profile.objects.select_for_update().get(pk=source.pk),
        Profile.objects.select_for_update().get(pk=target.pk),
    )
    for model in (Order, Cart, Event, ProfileAlias):
        model.objects.filter(profile=source).update(profile=target)
    ConsentRecord.objects.filter(profile=source).merge_into(profile=target)
    _merge_choices(TopicPreference, "topic", source=source, target=target)
    _merge_choices(ChannelPreference, "channel", source=source, target=target)

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
    target.traits = {**source.traits, **target.traits}
    pauses = [t for t in (source.paused_until, target.paused_until) if t]
    target.paused_until = max(pauses, default=None)
    target.frequency = max((source.frequency, target.frequency), key=_FREQUENCY_STRICTNESS.index)
    if target.greeting == Greeting.DEFAULT:
        target.greeting = source.greeting
    target.save()
    source_id = source.pk
    source.delete()
    profile_stats_refresh(profile_id=target.pk)
    target.refresh_from_db()
    profile_merged_note(source_id=source_id, target_id=target.pk)
    logger.info("Merged profile %s into %s.", source_id, target.pk)
    transaction.on_commit(
        lambda: profiles_merged.send(sender=Profile, target=target, source_id=source_id)
    )
    return target


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
