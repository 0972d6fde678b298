"""The preference centre page as a customer uses it, without a browser: from the signed link
in an email and from the shop's account area; the one-click unsubscribe; the neutral answer
to every bad link; download and delete."""

import datetime as dt
import json
import re
from urllib.parse import quote

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personalization.capture.forms import consent_form_data
from personalization.consent import consent_record, consent_state
from personalization.models import (
    ConsentRecord,
    ConsentSource,
    ConsentState,
    ConsentStatus,
    ConsentWording,
    Event,
    Frequency,
    PreferenceChange,
    PreferenceSource,
    Profile,
    Purpose,
    TopicPreference,
    Trait,
    TraitRemoval,
)
from personalization.preferences.tokens import preference_links_revoke, preference_token
from personalization.traits import traits_set

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2027, 3, 1, 8, tzinfo=dt.UTC)  # after the default wordings were published
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _clock(time_machine):
    time_machine.move_to(T0, tick=False)


@pytest.fixture
def profile(profile_factory):
    profile = profile_factory(email="ann@example.com", locale="en")
    consent_record(profile=profile, purpose=Purpose.EMAIL_MARKETING, granted=True, source="signup")
    return profile


@pytest.fixture
def topics(topic_factory):
    return [
        topic_factory(slug="news", name="News", description="What is new", position=1),
        topic_factory(
            slug="offers",
            name="Offers",
            description="Deals",
            position=2,
            subscribed_by_default=False,
        ),
    ]


@pytest.fixture
def link(profile):
    return reverse(
        "personalization:preferences", kwargs={"token": preference_token(profile=profile)}
    )


def _form(**changes):
    data = {
        "action": "save",
        "language": "en",
        "topics": ["news"],
        "channels": ["email"],
        "frequency": Frequency.DEFAULT,
        "pause": "",
        "greeting": "default",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_the_link_shows_the_customers_preferences(client, link, topics):
    response = client.get(link)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Your email preferences" in page
    assert "ann@example.com" in page
    assert 'value="news" id="id_topics_0" checked' in page
    assert 'value="offers" id="id_topics_1"' in page and 'id_topics_1" checked' not in page
    assert "What is new" in page
    # Private: not cached, not indexed, no referrer carries the token away.
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "same-origin"
    assert "noindex" in response["X-Robots-Tag"]


def test_saving_keeps_each_change_in_the_history_with_source_and_wording(
    client, link, profile, topics
):
    response = client.post(
        link, _form(topics=["offers"], frequency=Frequency.WEEKLY, pause="30", personalization="on")
    )
    assert response.status_code == 302
    assert response["Location"].endswith("?done=saved&language=en")
    assert "Your choices are saved." in client.get(response["Location"]).content.decode()

    profile.refresh_from_db()
    assert profile.frequency == Frequency.WEEKLY
    assert profile.paused_until == T0 + 30 * DAY
    assert dict(TopicPreference.objects.values_list("topic__slug", "subscribed")) == {
        "news": False,
        "offers": True,
    }
    history = PreferenceChange.objects.filter(profile=profile)
    assert {(c.field, c.subject) for c in history} == {
        ("topic", "news"),
        ("topic", "offers"),
        ("frequency", ""),
        ("pause", ""),
    }
    assert {c.source for c in history} == {PreferenceSource.PREFERENCE_CENTRE}
    assert {c.wording_version for c in history} == {"preference-centre-1"}
    grant = ConsentRecord.objects.get(profile=profile, purpose=Purpose.PERSONALIZATION)
    assert grant.status == ConsentStatus.GRANTED and grant.source == ConsentSource.PREFERENCE_CENTRE
    # The switch's own wording, not the page's, is what the ledger proves was agreed to.
    assert grant.wording_version and grant.wording_version != "preference-centre-1"


def test_saving_the_page_unchanged_writes_nothing(client, link, profile, topics):
    assert client.post(link, _form()).status_code == 302
    assert not PreferenceChange.objects.exists()
    assert not ConsentRecord.objects.filter(purpose=Purpose.PERSONALIZATION).exists()


def test_a_bad_value_is_a_form_error_and_nothing_is_saved(client, link, profile, topics):
    response = client.post(link, _form(frequency="hourly", topics=["offers"]))
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not PreferenceChange.objects.exists()
    assert not TopicPreference.objects.exists()


def test_an_unknown_action_changes_nothing(client, link, profile):
    response = client.post(link, {"action": "drop_tables"})
    assert response.status_code == 400
    assert "Choose one of the buttons on the page." in response.content.decode()


def test_ending_a_break(client, link, profile, topics):
    client.post(link, _form(pause="14"))
    profile.refresh_from_db()
    assert profile.paused_until == T0 + 14 * DAY
    page = client.get(link).content.decode()
    assert "Keep my break until" in page
    client.post(link, _form(pause="resume"))
    profile.refresh_from_db()
    assert profile.paused_until is None


def test_unsubscribe_on_the_page_withdraws_marketing_only(client, link, profile):
    response = client.post(link, {"action": "unsubscribe", "language": "en"})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "You are unsubscribed from all marketing emails." in page
    assert consent_state(profile=profile, purpose=Purpose.EMAIL_MARKETING) == ConsentState.WITHDRAWN
    record = ConsentRecord.objects.filter(purpose=Purpose.EMAIL_MARKETING).latest(
        "ordered_at", "pk"
    )  # the ledger's order
    assert record.source == ConsentSource.PREFERENCE_CENTRE


def test_one_click_unsubscribe_rfc_8058(profile):
    """A mail client posts ``List-Unsubscribe=One-Click`` without cookies or a CSRF token."""
    client = Client(enforce_csrf_checks=True)
    url = reverse(
        "personalization:unsubscribe", kwargs={"token": preference_token(profile=profile)}
    )
    response = client.post(
        url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert consent_state(profile=profile, purpose=Purpose.EMAIL_MARKETING) == ConsentState.WITHDRAWN
    record = ConsentRecord.objects.filter(purpose=Purpose.EMAIL_MARKETING).latest(
        "ordered_at", "pk"
    )  # the ledger's order
    assert record.source == ConsentSource.UNSUBSCRIBE_LINK
    # Again: nothing more is written.
    client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert ConsentRecord.objects.filter(purpose=Purpose.EMAIL_MARKETING).count() == 2


def test_the_unsubscribe_link_asks_before_it_unsubscribes(client, profile):
    url = reverse(
        "personalization:unsubscribe", kwargs={"token": preference_token(profile=profile)}
    )
    page = client.get(url).content.decode()
    assert "Unsubscribe from all marketing emails?" in page
    assert consent_state(profile=profile, purpose=Purpose.EMAIL_MARKETING) == ConsentState.GRANTED


def test_an_old_link_still_unsubscribes_but_no_longer_edits(client, profile, time_machine):
    token = preference_token(profile=profile)
    time_machine.move_to(T0 + 60 * DAY, tick=False)
    link = reverse("personalization:preferences", kwargs={"token": token})
    response = client.get(link)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Unsubscribe from all marketing emails?" in page
    assert "Save my choices" not in page
    client.post(link, {"action": "save", "frequency": "weekly"})
    profile.refresh_from_db()
    assert profile.frequency == Frequency.DEFAULT


def _neutral(response) -> bytes:
    # The page's own content; the shop's layout around it carries a fresh CSRF token and the
    # page's address on every page.
    return re.search(rb"<main.*</main>", response.content, re.S).group()


def _bad_tokens(profile):
    good = preference_token(profile=profile)
    return {
        "forged": signing.dumps({"p": profile.pk, "v": 0}, key="not the secret key"),
        "tampered": good[:-3] + ("abc" if not good.endswith("abc") else "xyz"),
        "wrong purpose": signing.dumps({"grant": 1}, salt="personalization.consent-confirm"),
        "garbage with a slash": "a/b/../c",
        "empty-ish": "-",
        "too long": "x" * 5000,
    }


def test_every_bad_link_gets_the_same_neutral_page_and_changes_nothing(client, profile, topics):
    answers = set()
    for name, token in _bad_tokens(profile).items():
        for method in ("get", "post"):
            for route in ("personalization:preferences", "personalization:unsubscribe"):
                url = reverse(route, kwargs={"token": token})
                response = getattr(client, method)(url, _form(topics=["offers"]))
                assert response.status_code == 403, (name, method, route)
                answers.add(_neutral(response))
    assert len(answers) == 1
    assert b"This link cannot be used" in answers.pop()
    assert not PreferenceChange.objects.exists()
    assert consent_state(profile=profile, purpose=Purpose.EMAIL_MARKETING) == ConsentState.GRANTED


def test_expired_and_revoked_links_get_the_same_page(client, profile, time_machine):
    expired = preference_token(profile=profile)
    revoked = preference_token(profile=profile)
    preference_links_revoke(profile=profile)
    time_machine.move_to(T0 + 401 * DAY, tick=False)
    pages = set()
    for token in (expired, revoked):
        response = client.get(reverse("personalization:preferences", kwargs={"token": token}))
        assert response.status_code == 403
        pages.add(_neutral(response))
    assert len(pages) == 1


def test_download_my_data(client, link, profile):
    response = client.post(link, {"action": "download"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="my-data.json"'
    data = json.loads(response.content)
    assert data["profile"]["email"] == "ann@example.com"


def test_delete_my_data_asks_first_then_erases(client, link, profile):
    response = client.post(link, {"action": "erase"})
    assert response.status_code == 200
    assert "This cannot be undone." in response.content.decode()
    assert Profile.objects.filter(pk=profile.pk).exists()

    response = client.post(link, {"action": "erase", "confirm": "yes"})
    assert response.status_code == 200
    assert "Your data is deleted" in response.content.decode()
    assert not Profile.objects.filter(pk=profile.pk).exists()
    # The link is now as dead as any bad one.
    assert client.get(link).status_code == 403


def test_the_page_follows_the_profiles_language_and_the_switcher(client, profile):
    profile.locale = "sv-SE"
    profile.save()
    link = reverse(
        "personalization:preferences", kwargs={"token": preference_token(profile=profile)}
    )
    assert 'lang="sv"' in client.get(link).content.decode()
    page = client.get(link + "?language=tr").content.decode()
    assert 'lang="tr"' in page
    assert 'hreflang="en"' in page and 'aria-current="true">Türkçe' in page
    # A language the shop does not offer falls back to the profile's.
    assert 'lang="sv"' in client.get(link + "?language=xx").content.decode()


def test_the_account_route_needs_a_login(client):
    response = client.get(reverse("personalization:account-preferences"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_account_route_shows_the_logged_in_customers_page(client, django_user_model, topics):
    user = django_user_model.objects.create_user("ann", email="ann@example.com", password="pw")
    client.force_login(user)
    url = reverse("personalization:account-preferences")
    assert "Your email preferences" in client.get(url).content.decode()
    assert client.post(url, _form(frequency=Frequency.MONTHLY)).status_code == 302
    change = PreferenceChange.objects.get()
    assert change.source == PreferenceSource.ACCOUNT
    assert change.profile.user == user


def test_staff_get_no_preference_page(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("personalization:account-preferences"))
    assert response.status_code == 403
    assert not Profile.objects.exists()


def test_without_a_published_wording_the_switch_is_left_out(
    client, link, profile, topics, time_machine
):
    # Before the default wordings were published (by the migration, at the real time).
    first = ConsentWording.objects.order_by("published_at").first().published_at
    time_machine.move_to(first - dt.timedelta(days=1), tick=False)
    page = client.get(link).content.decode()
    assert "Save my choices" in page
    assert 'name="personalization"' not in page
    assert client.post(link, _form(frequency=Frequency.WEEKLY)).status_code == 302
    assert not ConsentRecord.objects.filter(purpose=Purpose.PERSONALIZATION).exists()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    token=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1
    ),
    route=st.sampled_from(["preferences", "unsubscribe"]),
    method=st.sampled_from(["get", "post"]),
)
def test_any_string_as_a_token_gets_the_neutral_page(client, profile, token, route, method):
    """Whatever is in the address where the token goes, the answer is the one neutral page."""
    path = f"/personalization/{route}/{quote(token, safe='')}"
    response = getattr(client, method)(path, {"action": "unsubscribe"})
    assert response.status_code == 403
    assert b"This link cannot be used" in response.content
    assert consent_state(profile=profile, purpose=Purpose.EMAIL_MARKETING) == ConsentState.GRANTED


# --- What we know --------------------------------------------------------------------------------


@pytest.fixture
def known(profile, product_factory, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "EVENT_RETENTION_DAYS": 90}
    traits_set(profile=profile, values={"shoe_size": 38}, source="given")
    traits_set(
        profile=profile, values={"favourite_category": "Coffee"}, source="inferred", confidence=0.85
    )
    traits_set(profile=profile, values={"budget": "low"}, source="inferred", confidence=0.55)
    mug = product_factory(external_id="mug", title="Blue mug")
    Event.objects.create(
        profile=profile, name="product_viewed", product=mug, occurred_at=T0 - 2 * DAY
    )
    return profile


def test_the_page_shows_what_we_know_and_where_it_comes_from(client, link, known):
    page = client.get(link).content.decode()
    assert "What we know and why you hear from us" in page
    # The consent history: email marketing granted at signup.
    assert "Email marketing: granted" in page
    # Each trait says where it comes from, and how sure a guess is; an unsure one is unused.
    assert "Shoe size" in page and "you told us" in page
    assert "Favourite category" in page and "our guess from your activity" in page
    assert "(85%)" in page
    assert "Not used: we are not sure enough." in page
    # What they viewed, and when it is deleted (90 days after the view).
    assert "Blue mug" in page
    assert "We keep what you viewed for 90 days, then delete it." in page
    assert "deleted on May 28, 2027" in page


def test_removing_a_guess_keeps_it_removed(client, link, known):
    response = client.post(link, {"action": "forget_trait", "key": "favourite_category"})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Removed. We will not use it any more." in page
    assert "Favourite category" not in page
    # A later guess of the same thing is not recorded again.
    traits_set(
        profile=known, values={"favourite_category": "Tea"}, source="inferred", confidence=0.99
    )
    assert not Trait.objects.filter(profile=known, key="favourite_category").exists()
    assert TraitRemoval.objects.get(profile=known).by == PreferenceSource.PREFERENCE_CENTRE


def test_forgetting_a_field_and_what_was_viewed(client, link, known):
    client.post(link, {"action": "forget_field", "field": "first_name"})
    known.refresh_from_db()
    assert known.first_name == ""
    client.post(link, {"action": "forget_viewed", "product": "mug"})
    assert not Event.objects.filter(profile=known, name="product_viewed").exists()
    assert "Blue mug" not in client.get(link).content.decode()


def test_a_hand_made_forget_changes_nothing_and_says_why(client, link, known):
    response = client.post(link, {"action": "forget_field", "field": "email"})
    assert response.status_code == 400
    assert "cannot be forgotten here" in response.content.decode()
    known.refresh_from_db()
    assert known.email == "ann@example.com"


def test_a_topic_retired_while_the_page_was_open_does_not_lose_the_other_choices(
    client, link, profile, topics
):
    topics[1].is_active = False
    topics[1].save()
    response = client.post(link, _form(topics=["news", "offers"], frequency=Frequency.MONTHLY))
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.frequency == Frequency.MONTHLY


def test_the_neutral_page_speaks_the_visitors_language(client, profile):
    response = client.get("/personalization/preferences/x", HTTP_ACCEPT_LANGUAGE="sv")
    assert response.status_code == 403
    page = response.content.decode()
    assert 'lang="sv"' in page
    assert "This link cannot be used" not in page


def test_head_and_a_link_cut_short(client, link):
    assert client.head(link).status_code == 200
    for cut in ("/personalization/preferences/", "/personalization/unsubscribe/"):
        assert client.get(cut).status_code == 403


def _subscribe_data(checked=True):
    data = consent_form_data(
        checked=[Purpose.EMAIL_MARKETING] if checked else [],
        purposes=[Purpose.EMAIL_MARKETING],
        language="en",
        prefix="subscribe",
    )
    return {"action": "subscribe", "language": "en", **data}


def test_an_unsubscribed_customer_subscribes_again_on_the_page(client, link, profile, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": [Purpose.EMAIL_MARKETING],
    }
    client.post(link, {"action": "unsubscribe"})
    page = client.get(link).content.decode()
    assert "Unsubscribe from all marketing emails" not in page
    assert "the choices below apply once you are" in page

    # An unticked box subscribes nobody.
    response = client.post(link, _subscribe_data(checked=False))
    assert response.status_code == 400
    assert consent_state(profile=profile, purpose=Purpose.EMAIL_MARKETING) == "withdrawn"

    response = client.post(link, _subscribe_data())
    assert response.status_code == 302
    assert "open the link we just emailed you" in client.get(response["Location"]).content.decode()
    assert consent_state(profile=profile, purpose=Purpose.EMAIL_MARKETING) == ConsentState.PENDING
    grant = ConsentRecord.objects.filter(profile=profile).order_by("ordered_at", "pk").last()
    assert grant.source == ConsentSource.PREFERENCE_CENTRE
    assert grant.wording_version.startswith("email_marketing.en.")
