"""The preference centre page and the unsubscribe link. Thin: parse, call a service, answer.

Two ways in, one page: the signed link in every email (``preference_centre_by_link``; no
login, the token names the profile) and the shop's account area (``preference_centre``; the
logged-in customer). Every answer is private (never cached, no referrer leaves the page, not
indexed), and every bad link gets the one neutral page, whatever was wrong with it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ..adapter import ip_address_for
from ..capture.forms import ConsentForm
from ..capture.wording import consent_wording_current
from ..conf import app_settings
from ..consent import consent_state
from ..exceptions import InvalidInput, InvalidLink, NoConsentWording
from ..identity import identity_from, profile_resolve
from ..models import (
    ConsentSource,
    ConsentState,
    ConsentWording,
    PreferenceSource,
    Profile,
    Purpose,
    SuppressionSource,
)
from ..privacy.erasure import profile_erase
from ..privacy.export import profile_export
from ..traits import trait_remove
from .forms import PreferencesForm
from .known import profile_fields_forget, recently_viewed_forget, what_we_know
from .services import preferences_read, preferences_update, unsubscribe_all
from .tokens import LinkPurpose, preference_token_read

logger = logging.getLogger(__name__)

TEMPLATE = "personalization/preferences/centre.html"
# What a finished action says at the top of the page after the redirect (?done=…).
DONE_MESSAGES = {
    "saved": gettext_lazy("Your choices are saved."),
    "forgotten": gettext_lazy("Removed. We will not use it any more."),
    "subscribed": gettext_lazy("You are subscribed to our emails."),
    "confirm": gettext_lazy(
        "Almost done: open the link we just emailed you to confirm your subscription."
    ),
    "unsubscribed": gettext_lazy("You are unsubscribed from all marketing emails."),
}


def private(view):
    """Never cached, never indexed; the token in the address never goes to another site as a
    referrer."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "same-origin"
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return never_cache(wrapped)


@dataclass(frozen=True)
class _Visit:
    """Whose page this is, how they came, and where the page's forms post to."""

    profile: Profile
    source: str  # a PreferenceSource value
    url: str
    language: str


# --- The ways in ------------------------------------------------------------------------------


@private
@require_http_methods(["GET", "HEAD", "POST"])
def preference_centre_by_link(request: HttpRequest, token: str) -> HttpResponse:
    try:
        profile = preference_token_read(token, purpose=LinkPurpose.MANAGE)
    except InvalidLink as err:
        if request.method == "POST":
            return _refused(request, err)
        # Too old to change preferences may still be young enough to unsubscribe with.
        try:
            profile = preference_token_read(token, purpose=LinkPurpose.UNSUBSCRIBE)
        except InvalidLink as err:
            return _refused(request, err)
        return _unsubscribe_page(request, token, profile)
    url = reverse("personalization:preferences", kwargs={"token": token})
    return _centre(request, _visit(request, profile, PreferenceSource.PREFERENCE_CENTRE, url))


@private
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def preference_centre(request: HttpRequest) -> HttpResponse:
    identity = identity_from(request=request)
    if identity.only_not_customer:
        with translation.override(_language(request, None)):
            return render(
                request,
                "personalization/preferences/not_a_customer.html",
                {"switcher_languages": _languages()},
                status=403,
            )
    profile = profile_resolve(identity)
    url = reverse("personalization:account-preferences")
    return _centre(request, _visit(request, profile, PreferenceSource.ACCOUNT, url))


@private
# Mail clients post RFC 8058 one-click unsubscribes without a cookie: the token is the proof.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe_link(request: HttpRequest, token: str) -> HttpResponse:
    """The ``List-Unsubscribe`` address of every email. GET: one button; POST (that button, or
    a mail client's one-click ``List-Unsubscribe=One-Click``): unsubscribed."""
    try:
        profile = preference_token_read(token, purpose=LinkPurpose.UNSUBSCRIBE)
    except InvalidLink as err:
        return _refused(request, err)
    if request.method == "POST":
        unsubscribe_all(
            profile=profile,
            source=ConsentSource.UNSUBSCRIBE_LINK,
            ip_address=ip_address_for(request),
        )
    return _unsubscribe_page(request, token, profile, done=request.method == "POST")


def _unsubscribe_page(
    request: HttpRequest, token: str, profile: Profile, *, done: bool = False
) -> HttpResponse:
    language = _language(request, profile)
    with translation.override(language):
        context = {
            "done": done,
            "page_language": language,
            "switcher_languages": _languages(),
            "unsubscribe_url": reverse("personalization:unsubscribe", kwargs={"token": token}),
        }
        return render(request, "personalization/preferences/unsubscribe.html", context)


def _refused(request: HttpRequest, err: InvalidLink) -> HttpResponse:
    language = _language(request, None)
    with translation.override(language):
        return render(
            request,
            "personalization/preferences/invalid_link.html",
            {
                # Made again in the page's language (the error's was the request's).
                "message": InvalidLink().message,
                "page_language": language,
                "switcher_languages": _languages(),
            },
            status=403,
        )


# --- The page ---------------------------------------------------------------------------------


def _centre(request: HttpRequest, visit: _Visit) -> HttpResponse:
    with translation.override(visit.language):
        if request.method == "POST":
            action = ACTIONS.get(request.POST.get("action", ""))
            if action is None:
                return _page(request, visit, error=_("Choose one of the buttons on the page."))
            try:
                return action(request, visit)
            except InvalidInput as err:
                # A hand-made post (an unknown trait key, say): nothing was changed.
                return _page(request, visit, error=err.message)
        return _page(request, visit, done=DONE_MESSAGES.get(request.GET.get("done", "")))


def _page(
    request: HttpRequest,
    visit: _Visit,
    *,
    form: PreferencesForm | None = None,
    subscribe_form: ConsentForm | None = None,
    done: str | None = None,
    error: str | None = None,
) -> HttpResponse:
    now = timezone.now()
    state = preferences_read(profile=visit.profile, now=now)
    wording = _personalization_wording(visit)
    if form is None:
        form = PreferencesForm(state=state, personalization_label=wording and wording.text, now=now)
    context = {
        "form": form,
        "state": state,
        "known": what_we_know(profile=visit.profile, now=now),
        "subscribe_form": subscribe_form or _subscribe_form(None, visit),
        "visit": visit,
        "profile": visit.profile,
        "done": done,
        "error": error,
        "page_language": visit.language,
        "switcher_languages": _languages(),
        "by_link": visit.source == PreferenceSource.PREFERENCE_CENTRE,
    }
    status = 400 if error or form.errors or (subscribe_form and subscribe_form.errors) else 200
    return render(request, TEMPLATE, context, status=status)


def _save(request: HttpRequest, visit: _Visit) -> HttpResponse:
    now = timezone.now()
    state = preferences_read(profile=visit.profile, now=now)
    wording = _personalization_wording(visit)
    form = PreferencesForm(
        request.POST, state=state, personalization_label=wording and wording.text, now=now
    )
    if not form.is_valid():
        return _page(request, visit, form=form)
    try:
        preferences_update(
            profile=visit.profile,
            source=visit.source,
            wording_version=app_settings.PREFERENCE_CENTRE_WORDING_VERSION,
            consent_wording_version=wording and wording.version,
            ip_address=ip_address_for(request),
            now=now,
            **form.changes(),
        )
    except InvalidInput as err:
        # A topic retired while the page was open, say: the customer sees why; nothing saved.
        form.add_error(None, err.message)
        return _page(request, visit, form=form)
    return _done(visit, "saved")


def _unsubscribe(request: HttpRequest, visit: _Visit) -> HttpResponse:
    unsubscribe_all(profile=visit.profile, source=visit.source, ip_address=ip_address_for(request))
    return _done(visit, "unsubscribed")


def _download(request: HttpRequest, visit: _Visit) -> HttpResponse:
    data = profile_export(profile=visit.profile)
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


def _erase(request: HttpRequest, visit: _Visit) -> HttpResponse:
    """First the confirmation page; erasure only when its button says so."""
    context = {"visit": visit, "page_language": visit.language, "switcher_languages": _languages()}
    if request.POST.get("confirm") != "yes":
        return render(request, "personalization/preferences/erase.html", context)
    profile_erase(profile=visit.profile, source=SuppressionSource.PREFERENCE_CENTRE)
    return render(request, "personalization/preferences/erase.html", {**context, "erased": True})


def _subscribe_form(data, visit: _Visit) -> ConsentForm | None:
    """The box to subscribe (again) to marketing emails, with its current wording; None when
    no wording is published for it."""
    try:
        return ConsentForm(
            data, purposes=[Purpose.EMAIL_MARKETING], language=visit.language, prefix="subscribe"
        )
    except NoConsentWording:
        return None


def _subscribe(request: HttpRequest, visit: _Visit) -> HttpResponse:
    form = _subscribe_form(request.POST, visit)
    if form is None:
        return _page(request, visit, error=_("Choose one of the buttons on the page."))
    if not form.is_valid():
        return _page(request, visit, subscribe_form=form)
    if not form.checked():
        return _page(request, visit, error=_("Tick the box to subscribe."))
    form.capture(profile=visit.profile, source=visit.source, request=request)
    pending = consent_state(profile=visit.profile, purpose=Purpose.EMAIL_MARKETING)
    return _done(visit, "confirm" if pending == ConsentState.PENDING else "subscribed")


def _forget_trait(request: HttpRequest, visit: _Visit) -> HttpResponse:
    trait_remove(profile=visit.profile, key=request.POST.get("key", ""), by=visit.source)
    return _done(visit, "forgotten")


def _forget_field(request: HttpRequest, visit: _Visit) -> HttpResponse:
    profile_fields_forget(profile=visit.profile, fields=[request.POST.get("field", "")])
    return _done(visit, "forgotten")


def _forget_viewed(request: HttpRequest, visit: _Visit) -> HttpResponse:
    # One product, or (no product named) everything viewed.
    recently_viewed_forget(profile=visit.profile, product_id=request.POST.get("product") or None)
    return _done(visit, "forgotten")


ACTIONS = {
    "save": _save,
    "subscribe": _subscribe,
    "forget_trait": _forget_trait,
    "forget_field": _forget_field,
    "forget_viewed": _forget_viewed,
    "unsubscribe": _unsubscribe,
    "download": _download,
    "erase": _erase,
}


def _done(visit: _Visit, what: str) -> HttpResponse:
    # Post/redirect/get: a reload does not post again; the language stays as chosen.
    query = urlencode({"done": what, "language": visit.language})
    return HttpResponseRedirect(f"{visit.url}?{query}")


# --- Language and wording ---------------------------------------------------------------------


def _visit(request: HttpRequest, profile: Profile, source: str, url: str) -> _Visit:
    return _Visit(profile=profile, source=source, url=url, language=_language(request, profile))


def _language(request: HttpRequest, profile: Profile | None) -> str:
    """The language asked for with ``?language=`` (the switcher), else the profile's locale,
    else the request's (LocaleMiddleware's choice, if the shop uses it), else the site's
    default; always one of ``settings.LANGUAGES``."""
    for candidate in (
        request.GET.get("language") or request.POST.get("language"),
        profile.locale if profile is not None else "",
        getattr(request, "LANGUAGE_CODE", ""),
    ):
        if candidate:
            try:
                return translation.get_supported_language_variant(candidate)
            except LookupError:
                continue
    return translation.get_supported_language_variant(settings.LANGUAGE_CODE)


def _languages() -> list[dict[str, str]]:
    """The switcher's entries: each language named in its own language. Only the languages
    the shop lists in ``LANGUAGES``; none (no switcher) while it keeps Django's list of all."""
    if not settings.is_overridden("LANGUAGES"):
        return []
    entries = []
    for code, name in settings.LANGUAGES:
        try:
            name = translation.get_language_info(code)["name_local"]
        except KeyError:
            pass
        entries.append({"code": code, "name": name})
    return entries


def _personalization_wording(visit: _Visit) -> ConsentWording | None:
    """The text of the personalisation switch; None (no switch) when none is published."""
    try:
        return consent_wording_current(purpose=Purpose.PERSONALIZATION, language=visit.language)
    except NoConsentWording:
        logger.error(
            "No consent wording is published for personalization: the preference "
            "centre shows no personalisation switch until one is."
        )
        return None
