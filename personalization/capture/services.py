"""Record the consent a customer gave on a shop's form, with the words they were shown.

:func:`consent_capture` is what :class:`~personalization.capture.forms.ConsentForm` calls; a
shop with its own form (or a headless frontend) may call it directly. It writes through
:func:`personalization.consent.consent_grant_many`, the one writer of grants, so double opt-in
(``DOUBLE_OPT_IN_PURPOSES``: the grant counts once confirmed, and the confirmation email is
sent by the job its ``consent_recorded`` receiver records) and the suppression list's rule for
erased addresses apply as everywhere else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

from django.utils.translation import gettext as _

from ..consent import consent_grant_many, consent_source_clean, purpose_clean
from ..exceptions import InvalidInput
from ..models import ConsentRecord, ConsentWording, Profile
from ..validation import aware_datetime, saved_instance_check
from ..validation import ip_address as ip_address_clean
from .wording import wordings_by_version


def shown_clean(shown: Any) -> dict[str, ConsentWording]:
    """``{purpose: version}`` → ``{purpose: the published wording}``; InvalidInput, naming
    ``shown[<purpose>]``, for a version that was never published or is another purpose's."""
    if not isinstance(shown, Mapping):
        raise InvalidInput(
            _("shown is a {purpose: wording version} mapping of the boxes on the form."),
            field="shown",
        )
    for purpose in shown:
        purpose_clean(purpose)
    found = wordings_by_version(versions=shown.values())
    wordings = {}
    for purpose, version in shown.items():
        field = f"shown[{purpose}]"
        wording = found.get(version) if isinstance(version, str) else None
        if wording is None:
            raise InvalidInput(
                _("%(version)r is not a published consent wording.") % {"version": version},
                field=field,
            )
        if wording.purpose != purpose:
            raise InvalidInput(
                _("%(version)s is the wording of %(other)s, not of %(purpose)s.")
                % {"version": version, "other": wording.purpose, "purpose": purpose},
                field=field,
            )
        wordings[purpose] = wording
    return wordings


def checked_clean(checked: Any, *, shown: Collection[str]) -> list[str]:
    """The purposes ticked, each one of those ``shown``, in the order shown."""
    if isinstance(checked, str | bytes) or not isinstance(checked, Collection):
        raise InvalidInput(_("checked is a list of purposes."), field="checked")
    not_shown = [purpose for purpose in checked if purpose not in shown]
    if not_shown:
        raise InvalidInput(
            _("%(purpose)r was ticked but not shown: consent needs the words it was given to.")
            % {"purpose": not_shown[0]},
            field="checked",
        )
    return [purpose for purpose in shown if purpose in checked]


def consent_capture(
    *,
    profile: Profile,
    shown: Mapping[str, str],
    checked: Collection[str],
    source: str,
    ip_address: str | None = None,
    now: dt.datetime | None = None,
) -> list[ConsentRecord]:
    """Record a grant for each box the customer ticked on a form, with the wording they saw.

    - ``shown``: ``{purpose: wording version}`` for every consent box on the form, ticked or
      not (:class:`~personalization.models.ConsentWording` versions, e.g. from
      ``consent_wording_current(...).version``);
    - ``checked``: the purposes whose box was ticked. A box left empty records nothing: not
      agreeing at sign-up is not a withdrawal of an earlier consent.
    - ``source``: a :class:`~personalization.models.ConsentSource` value (``"signup"``,
      ``"checkout"``, …); ``ip_address``: kept with the records as evidence; ``now``: when
      the customer submitted the form (default: now).

    Everything is checked before anything is written, and the grants are written together or
    not at all: InvalidInput names the argument (``shown[email_marketing]``, ``checked``, …).
    Returns the records written. A purpose in ``DOUBLE_OPT_IN_PURPOSES`` is recorded as
    awaiting confirmation (``record.double_opt_in``) and the confirmation email goes out after
    the commit; it counts once the customer used the link. For an erased address, a grant from
    a source that is not the person's own act (an import, the admin) is not recorded; one they
    give themselves at sign-up or checkout is a new consent, and is.
    """
    saved_instance_check(profile, Profile, field="profile")
    wordings = shown_clean(shown)
    ticked = checked_clean(checked, shown=wordings)
    source = consent_source_clean(source)
    ip_address = ip_address_clean(ip_address)
    now = None if now is None else aware_datetime(now, field="now")
    return consent_grant_many(
        profile=profile,
        consents={purpose: wordings[purpose].version for purpose in ticked},
        source=source,
        ip_address=ip_address,
        at=now,
    )
