"""The consent boxes a shop adds to its sign-up and checkout forms.

::

    consent = ConsentForm(request.POST or None)
    if form.is_valid() and consent.is_valid():
        ...
        consent.capture(profile=profile, source=ConsentSource.SIGNUP, request=request)

and in the template ``{% load personalization_tags %}{% consent_fields consent %}``.

One unticked checkbox per purpose, labelled with the current wording in the active language,
and beside it a hidden field carrying the version of that wording, signed: what is recorded is
the version the customer was shown, and a version changed on the way back is a form error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core import signing
from django.forms import BoundField
from django.utils.translation import gettext_lazy as _

from ..adapter import ip_address_for
from ..models import ConsentRecord, ConsentWording, Profile, Purpose
from .services import consent_capture
from .wording import consent_wording_for, consent_wordings_current

_SALT = "personalization.capture.wording-version"
# The purposes a customer is asked about at sign-up and checkout, unless a form says otherwise.
DEFAULT_PURPOSES: tuple[str, ...] = (Purpose.EMAIL_MARKETING, Purpose.PERSONALIZATION)


def wording_version_sign(version: str) -> str:
    return signing.Signer(salt=_SALT).sign(version)


def wording_version_unsign(value: Any) -> str | None:
    """The version a signed value carries; None if it is missing or was tampered with."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return signing.Signer(salt=_SALT).unsign(value)
    except signing.BadSignature:
        return None


@dataclass(frozen=True)
class ConsentRow:
    """One purpose on the form: its checkbox, the hidden field with the wording's version, and
    the wording itself."""

    purpose: str
    checkbox: BoundField
    version: BoundField
    wording: ConsentWording


class ConsentForm(forms.Form):
    """One checkbox per purpose, unticked, labelled with the exact wording shown.

    - ``purposes``: which purposes to ask about, in order (default :data:`DEFAULT_PURPOSES`;
      a subclass may set ``purposes`` too);
    - ``language``: the wording's language (default: the active language; see
      ``personalization.capture.wording.consent_wording_current`` for the fallbacks).

    Use a ``prefix`` when a page has two. A re-displayed form (after an error elsewhere on the
    page) shows the wording it was first shown with, so the words and the version posted
    again stay the same.
    """

    purposes: tuple[str, ...] = DEFAULT_PURPOSES

    error_messages = {
        "version": _(
            "We could not tell which wording you were shown for this choice. Please read it "
            "again and send the form once more."
        ),
    }

    def __init__(
        self,
        *args: Any,
        purposes: Iterable[str] | None = None,
        language: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        if purposes is not None:
            self.purposes = tuple(purposes)
        posted = self._posted_wordings() if self.is_bound else {}
        missing = [purpose for purpose in self.purposes if purpose not in posted]
        current = consent_wordings_current(purposes=missing, language=language) if missing else {}
        self.wordings: dict[str, ConsentWording] = {**current, **posted}
        for purpose in self.purposes:
            wording = self.wordings[purpose]
            self.fields[self.checkbox_name(purpose)] = forms.BooleanField(
                label=wording.text, required=False, initial=False
            )
            self.fields[self.version_name(purpose)] = forms.CharField(
                required=False,
                widget=forms.HiddenInput,
                initial=wording_version_sign(wording.version),
            )

    @staticmethod
    def checkbox_name(purpose: str) -> str:
        return f"consent_{purpose}"

    @staticmethod
    def version_name(purpose: str) -> str:
        return f"consent_{purpose}_version"

    def _posted_wordings(self) -> dict[str, ConsentWording]:
        """The wordings the posted versions name, where they are genuine."""
        found = {}
        for purpose in self.purposes:
            raw = self.data.get(self.add_prefix(self.version_name(purpose)))
            wording = consent_wording_for(version=wording_version_unsign(raw) or "")
            if wording is not None and wording.purpose == purpose:
                found[purpose] = wording
        return found

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for purpose in self.purposes:
            version = wording_version_unsign(data.get(self.version_name(purpose)))
            wording = consent_wording_for(version=version or "")
            if wording is None or wording.purpose != purpose:
                self.add_error(
                    self.checkbox_name(purpose),
                    forms.ValidationError(self.error_messages["version"], code="version"),
                )
            else:
                data[self.version_name(purpose)] = wording.version
        return data

    def rows(self) -> list[ConsentRow]:
        """Each purpose's checkbox, hidden version field and wording, in order (for templates)."""
        return [
            ConsentRow(
                purpose=purpose,
                checkbox=self[self.checkbox_name(purpose)],
                version=self[self.version_name(purpose)],
                wording=self.wordings[purpose],
            )
            for purpose in self.purposes
        ]

    def shown(self) -> dict[str, str]:
        """``{purpose: wording version}`` of every box on the form (after ``is_valid()``)."""
        return {purpose: self.cleaned_data[self.version_name(purpose)] for purpose in self.purposes}

    def checked(self) -> list[str]:
        """The purposes whose box was ticked (after ``is_valid()``)."""
        return [p for p in self.purposes if self.cleaned_data.get(self.checkbox_name(p))]

    def consents(self) -> dict[str, str]:
        """``{purpose: wording version}`` for each box ticked: the ``consents`` argument of the
        ``customer_signed_up`` and ``order_placed`` signals, for a shop that records consent
        through them instead of :meth:`capture`."""
        shown = self.shown()
        return {purpose: shown[purpose] for purpose in self.checked()}

    def capture(
        self,
        *,
        profile: Profile,
        source: str,
        request=None,
        ip_address: str | None = None,
        now: dt.datetime | None = None,
    ) -> list[ConsentRecord]:
        """Record the boxes ticked for ``profile`` (see
        :func:`~personalization.capture.services.consent_capture`); the IP address comes from
        ``request`` through the adapter unless given. Returns the records written."""
        if not self.is_valid():
            raise ValueError("capture() needs a valid form: call is_valid() first.")
        if ip_address is None and request is not None:
            ip_address = ip_address_for(request)
        return consent_capture(
            profile=profile,
            shown=self.shown(),
            checked=self.checked(),
            source=source,
            ip_address=ip_address,
            now=now,
        )


def consent_form_data(
    *,
    checked: Iterable[str] = (),
    purposes: Iterable[str] = DEFAULT_PURPOSES,
    language: str | None = None,
    prefix: str | None = None,
) -> dict[str, str]:
    """The POST data of a :class:`ConsentForm` with the boxes ``checked`` ticked, as a browser
    would send it: for a shop's tests of its own sign-up and checkout."""
    form = ConsentForm(purposes=purposes, language=language, prefix=prefix)
    checked = set(checked)
    data = {}
    for row in form.rows():
        data[row.version.html_name] = row.version.value()
        if row.purpose in checked:
            data[row.checkbox.html_name] = "on"
    return data
