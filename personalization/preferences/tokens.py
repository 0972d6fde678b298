"""Signed preference links: the token in every email's preference and unsubscribe link.

A token names one profile and the profile's ``link_version``, signed with ``SECRET_KEY`` (and
read with ``SECRET_KEY_FALLBACKS`` too, so a key rotation keeps the links already mailed
working) under a salt of its own: it identifies the profile for this purpose only, and no
other signed value of the site (a confirmation link, a session) reads as one.

One token serves two purposes, each with its own lifetime counted from when it was made:

- ``manage``: see and change the preferences, while the token is younger than
  ``PREFERENCE_LINK_EDIT_DAYS`` (30);
- ``unsubscribe``: unsubscribe from all marketing, while it is younger than
  ``PREFERENCE_LINK_UNSUBSCRIBE_DAYS`` (400), so an old email's link still unsubscribes.

:func:`preference_links_revoke` raises the profile's ``link_version``: every token made before
stops working for both purposes. Every failure raises the one :class:`InvalidLink` with the one
neutral message; only the log says what was wrong.
"""

from __future__ import annotations

import datetime as dt
import logging
from enum import StrEnum
from typing import Any

from django.core import signing
from django.db.models import F
from django.utils.translation import gettext as _

from ..conf import app_settings
from ..exceptions import InvalidInput, InvalidLink
from ..models import Profile
from ..validation import saved_instance_check

logger = logging.getLogger(__name__)

_SALT = "personalization.preferences.link"
# A token is short: a longer string is not one of ours, and is not worth an HMAC.
_MAX_TOKEN_LENGTH = 256


class LinkPurpose(StrEnum):
    """What a preference link is being used for; each has its own lifetime."""

    MANAGE = "manage"
    UNSUBSCRIBE = "unsubscribe"


def _max_age(purpose: str) -> dt.timedelta:
    if purpose == LinkPurpose.MANAGE:
        return dt.timedelta(days=app_settings.PREFERENCE_LINK_EDIT_DAYS)
    if purpose == LinkPurpose.UNSUBSCRIBE:
        return dt.timedelta(days=app_settings.PREFERENCE_LINK_UNSUBSCRIBE_DAYS)
    raise InvalidInput(
        _("Unknown link purpose %(value)r; choose one of %(choices)s.")
        % {"value": purpose, "choices": ", ".join(LinkPurpose)},
        field="purpose",
    )


def preference_token(*, profile: Profile, version_read: bool = False) -> str:
    """A signed token for ``profile``'s preference and unsubscribe links (URL-safe).

    ``version_read``: the caller has just read ``profile.link_version`` from the database (a
    batch of emails reads them all at once); otherwise it is read here."""
    saved_instance_check(profile, Profile, field="profile")
    # The stored version, not the instance's: a token made from a stale instance after a
    # revocation would be dead on arrival.
    version = (
        profile.link_version
        if version_read
        else Profile.objects.filter(pk=profile.pk).values_list("link_version", flat=True).first()
    )
    if version is None:
        raise InvalidInput(_("The profile no longer exists."), field="profile")
    profile.link_version = version
    return signing.dumps({"p": profile.pk, "v": version}, salt=_SALT, compress=True)


def preference_token_read(token: Any, *, purpose: str) -> Profile:
    """The profile a token names, if it may be used for ``purpose`` now; else ``InvalidLink``.

    ``purpose`` is ``"manage"`` or ``"unsubscribe"`` (:class:`LinkPurpose`); another value is
    the caller's mistake (``InvalidInput`` naming ``purpose``), not the link's.
    """
    max_age = _max_age(purpose)
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH:
        raise _refused("malformed")
    try:
        data = signing.loads(token, salt=_SALT, max_age=max_age)
    except signing.SignatureExpired as err:
        raise _refused(f"too old for {purpose}") from err
    except signing.BadSignature as err:
        raise _refused("bad signature") from err
    if not (
        isinstance(data, dict)
        and set(data) == {"p", "v"}
        and all(isinstance(data[key], int) and not isinstance(data[key], bool) for key in data)
    ):
        raise _refused("unexpected content")
    profile = Profile.objects.filter(pk=data["p"]).first()
    if profile is None:
        raise _refused("profile gone")
    if profile.link_version != data["v"]:
        raise _refused("revoked")
    return profile


def _refused(reason: str) -> InvalidLink:
    # Only the log tells the reasons apart; the customer sees the same message for all.
    logger.info("A preference link was refused: %s.", reason)
    return InvalidLink()


def preference_links_revoke(*, profile: Profile) -> int:
    """Make every preference link made so far for ``profile`` unusable. Returns the new version.

    For a customer whose emails were forwarded or leaked. Links made afterwards work.
    """
    saved_instance_check(profile, Profile, field="profile")
    updated = Profile.objects.filter(pk=profile.pk).update(link_version=F("link_version") + 1)
    if not updated:
        raise InvalidInput(_("The profile no longer exists."), field="profile")
    profile.link_version = (
        Profile.objects.filter(pk=profile.pk).values_list("link_version", flat=True).get()
    )
    logger.info("Preference links of profile %s revoked.", profile.pk)
    return profile.link_version


def preference_links_revoke_many(*, profile_ids) -> int:
    """:func:`preference_links_revoke` for many profiles in one statement; returns how many."""
    updated = Profile.objects.filter(pk__in=profile_ids).update(link_version=F("link_version") + 1)
    logger.info("Preference links of %d profiles revoked.", updated)
    return updated
