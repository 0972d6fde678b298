"""Versioned consent wordings: publish a text, find the one to show, find the one a record names.

A wording is published once and never changed (:class:`~personalization.models.ConsentWording`
is append-only). Its ``version`` (``"<purpose>.<language>.<number>"``, e.g.
``"email_marketing.sv.2"``) is what the consent ledger stores as ``wording_version``, so the
exact words behind any consent can be shown later (GDPR Art. 7(1): consent must be provable).

Which text is shown: the latest published version for the purpose in the customer's language;
if there is none in it, in ``settings.LANGUAGE_CODE``; then in English. A regional code falls
back to its language (``"sv-se"`` → ``"sv"``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ..consent import purpose_clean
from ..exceptions import ConcurrentUpdate, InvalidInput, NoConsentWording
from ..models import ConsentWording
from ..validation import aware_datetime, no_nul

# The language every shop has a wording in: the default wordings ship in it.
FALLBACK_LANGUAGE = "en"
# A consent text is a sentence or two; a page of small print is not informed consent.
MAX_TEXT_LENGTH = 2000
_PUBLISH_ATTEMPTS = 3


def language_normalize(value: Any) -> str:
    """``"sv_SE"``, ``"SV-se"`` → ``"sv-se"``; anything that is not text → ``""``."""
    if not isinstance(value, str):
        return ""
    return value.strip().lower().replace("_", "-")


def _supported(code: str) -> str | None:
    """``code`` as one of ``settings.LANGUAGES`` (a regional code as its language), or None."""
    if not code:
        return None
    try:
        return translation.get_supported_language_variant(code).lower()
    except LookupError:
        return None


def wording_languages(language: str | None = None) -> list[str]:
    """The languages to look for a wording in, best first, without repeats.

    ``language`` (None: the active language) if the shop supports it, in its regional and
    then its generic form; then ``settings.LANGUAGE_CODE`` (and its generic form); then English.
    """
    if language is None:
        language = translation.get_language()
    candidates: list[str] = []
    wanted = _supported(language_normalize(language))
    for code in (wanted, language_normalize(settings.LANGUAGE_CODE), FALLBACK_LANGUAGE):
        if not code:
            continue
        for each in (code, code.split("-", 1)[0]):
            if each not in candidates:
                candidates.append(each)
    return candidates


def consent_wordings_current(
    *, purposes: Iterable[str], language: str | None = None
) -> dict[str, ConsentWording]:
    """The wording to show for each of ``purposes`` now, in one query (see
    :func:`consent_wording_current`). Raises :class:`NoConsentWording` for a purpose that has
    none in any fallback language."""
    purposes = [purpose_clean(purpose) for purpose in purposes]
    languages = wording_languages(language)
    rows = ConsentWording.objects.published().filter(purpose__in=purposes, language__in=languages)
    best: dict[str, ConsentWording] = {}
    for wording in rows:
        held = best.get(wording.purpose)
        if held is None or _rank(wording, languages) < _rank(held, languages):
            best[wording.purpose] = wording
    for purpose in purposes:
        if purpose not in best:
            raise NoConsentWording(
                _(
                    "No consent wording is published for %(purpose)s in %(languages)s. Publish "
                    "one in the admin (Consent wordings)."
                )
                % {"purpose": purpose, "languages": ", ".join(languages)}
            )
    return {purpose: best[purpose] for purpose in purposes}


def _rank(wording: ConsentWording, languages: list[str]) -> tuple[int, int, int]:
    # The best language first; in it, the highest number (the latest published).
    return (languages.index(wording.language), -wording.number, -wording.pk)


def consent_wording_current(*, purpose: str, language: str | None = None) -> ConsentWording:
    """The wording to show next to the consent box for ``purpose``, in ``language``.

    ``language`` is a language code (``"sv"``, ``"sv-se"``, ``"sv_SE"``); None is the active
    language. The latest version published by now (``published_at`` not in the future) in
    that language, else in ``LANGUAGE_CODE``, else in English. Pass its ``.version`` as the
    ``wording_version`` of what you record.
    InvalidInput for an unknown purpose; :class:`NoConsentWording` when nothing is published.
    """
    return consent_wordings_current(purposes=[purpose], language=language)[purpose]


def consent_wording_for(*, version: str) -> ConsentWording | None:
    """The wording published as ``version`` (what a consent record's ``wording_version``
    names), or None: no such version (as for records written before wordings were kept here)."""
    if not isinstance(version, str) or not version:
        return None
    return ConsentWording.objects.filter(version=version).first()


def wordings_by_version(*, versions: Iterable[str]) -> dict[str, ConsentWording]:
    """``{version: wording}`` for those of ``versions`` that were published, in one query."""
    wanted = {version for version in versions if isinstance(version, str) and version}
    if not wanted:
        return {}
    return {w.version: w for w in ConsentWording.objects.filter(version__in=wanted)}


def wording_version_format(*, purpose: str, language: str, number: int) -> str:
    return f"{purpose}.{language}.{number}"


def language_clean(value: Any, *, field: str = "language") -> str:
    """One of the codes in ``settings.LANGUAGES`` (compared without case), as written there."""
    code = language_normalize(value)
    for supported, _name in settings.LANGUAGES:
        if code and code == language_normalize(supported):
            return code
    raise InvalidInput(
        _("%(value)r is not one of the shop's languages (%(choices)s).")
        % {"value": value, "choices": ", ".join(code for code, _name in settings.LANGUAGES)},
        field=field,
    )


def wording_text_clean(value: Any, *, field: str = "text") -> str:
    if not isinstance(value, str):
        raise InvalidInput(_("This must be text."), field=field)
    value = no_nul(value.strip(), field=field)
    if not value:
        raise InvalidInput(_("The wording cannot be empty."), field=field)
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidInput(_("At most %(max)d characters.") % {"max": MAX_TEXT_LENGTH}, field=field)
    return value


def consent_wording_publish(
    *, purpose: str, language: str, text: str, now: dt.datetime | None = None
) -> ConsentWording:
    """Publish ``text`` as the next version of the wording for ``purpose`` in ``language``.

    From ``now`` on it is the current wording; the earlier versions stay, unchanged, for the
    records that name them. Publishing the text the latest version already has publishes
    nothing and returns that version. ``language`` must be one of ``settings.LANGUAGES``.
    Nothing is ever edited: to change the words, publish again.
    """
    purpose = purpose_clean(purpose)
    language = language_clean(language)
    text = wording_text_clean(text)
    now = timezone.now() if now is None else aware_datetime(now, field="now")
    for _attempt in range(_PUBLISH_ATTEMPTS):
        try:
            with transaction.atomic():
                return _publish(purpose=purpose, language=language, text=text, now=now)
        except IntegrityError:
            continue  # another publish of the same purpose and language took the number
    raise ConcurrentUpdate(
        f"Consent wordings for {purpose} in {language} kept being published at once.",
        attempts=_PUBLISH_ATTEMPTS,
    )


def _publish(*, purpose: str, language: str, text: str, now: dt.datetime) -> ConsentWording:
    latest = (
        ConsentWording.objects.filter(purpose=purpose, language=language).latest_first().first()
    )
    if latest is not None and latest.text == text:
        return latest
    number = 1 if latest is None else latest.number + 1
    return ConsentWording.objects.create(
        purpose=purpose,
        language=language,
        number=number,
        version=wording_version_format(purpose=purpose, language=language, number=number),
        text=text,
        published_at=now,
    )
