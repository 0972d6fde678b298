"""The admin as a marketer uses it: lists, searches and change pages over real-looking data."""

import datetime as dt

import pytest
from django import forms
from django.urls import reverse

from personalization.admin.profiles import consent_attr
from personalization.catalogue import product_upsert
from personalization.commerce import cart_update, order_record, order_status_set
from personalization.consent import consent_record, consent_state
from personalization.identity import identity_from
from personalization.models import (
    ChannelPreference,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    Event,
    PreferenceChange,
    Profile,
    Purpose,
    Topic,
    TopicPreference,
)
from personalization.tracking import identify, track

T0 = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def url(model: str, view: str = "changelist", *args) -> str:
    return reverse(f"admin:personalization_{model}_{view}", args=args)


@pytest.fixture
def shop(db, user_factory, profile_factory, topic_factory):
    """A few rows of every model, written through the app's own functions."""
    beans, _ = product_upsert(
        product_id="P-BEANS",
        title="Espresso beans",
        sku="BEAN-1",
        price="12.50",
        currency="EUR",
        category="Food > Coffee",
        repurchase_interval_days=30,
    )
    vitamins, _ = product_upsert(
        product_id="P-VIT",
        title="Vitamin D drops",
        sku="VIT-D",
        price="9.90",
        currency="EUR",
        category="Health > Vitamins",
    )
    test_kit, _ = product_upsert(
        product_id="P-KIT",
        title="Pregnancy test",
        sku="KIT-1",
        price="7.00",
        currency="EUR",
        category="Pharmacy",
        is_sensitive=True,
    )

    # Jane browsed anonymously, signed up, and later changed her address.
    user = user_factory(username="jane", email="jane@example.com")
    identify(
        user=user,
        anonymous_id="anon0jane42",
        first_name="Jane",
        last_name="Doe",
        country="SE",
        locale="sv",
    )
    user.email = "jane.doe@example.com"
    user.save()
    jane = identify(user=user)
    consent_record(
        profile=jane,
        purpose=Purpose.EMAIL_MARKETING,
        granted=True,
        source=ConsentSource.CHECKOUT,
        wording_version="checkout-2026-03",
    )
    consent_record(
        profile=jane,
        purpose=Purpose.PERSONALIZATION,
        granted=True,
        source=ConsentSource.SIGNUP,
        wording_version="signup-2026-01",
    )
    track("product_viewed", email=jane.email, product_id="P-BEANS", occurred_at=T0)
    identity = identity_from(email=jane.email)
    cart_update(
        cart_id="CART-77",
        identity=identity,
        updated_at=T0,
        currency_code="EUR",
        lines=[{"product_id": "P-BEANS", "quantity": 2, "unit_price": "12.50"}],
    )
    order, _ = order_record(
        order_id="ORD-1001",
        identity=identity,
        placed_at=T0 + dt.timedelta(hours=1),
        total="25.00",
        currency_code="EUR",
        cart_id="CART-77",
        lines=[{"product_id": "P-BEANS", "quantity": 2, "unit_price": "12.50"}],
    )
    coffee = topic_factory(name="Coffee news", slug="coffee-news", subscribed_by_default=False)
    topic_factory(name="Offers", slug="offers", subscribed_by_default=True)
    TopicPreference.objects.create(profile=jane, topic=coffee, subscribed=True, updated_at=T0)

    # Bob said yes once, then no; he paused mail and turned off text messages.
    bob = profile_factory(
        email="bob@example.com",
        first_name="Bob",
        last_name="Berg",
        country="DE",
        locale="de",
        paused_until=T0 + dt.timedelta(days=3650),
    )
    consent_record(
        profile=bob,
        purpose=Purpose.EMAIL_MARKETING,
        granted=True,
        source=ConsentSource.SIGNUP,
        at=T0,
    )
    consent_record(
        profile=bob,
        purpose=Purpose.EMAIL_MARKETING,
        granted=False,
        source=ConsentSource.PREFERENCE_CENTRE,
        at=T0 + dt.timedelta(days=1),
    )
    ChannelPreference.objects.create(profile=bob, channel="sms", enabled=False, updated_at=T0)

    # Carl ordered once and cancelled; his cart is still open.
    carl = profile_factory(email="carl@example.com", first_name="Carl")
    carl_identity = identity_from(email=carl.email)
    cart_update(
        cart_id="CART-88",
        identity=carl_identity,
        updated_at=T0,
        currency_code="EUR",
        lines=[{"product_id": "P-VIT", "quantity": 1, "unit_price": "9.90"}],
    )
    order_record(
        order_id="ORD-2002",
        identity=carl_identity,
        placed_at=T0,
        total="9.90",
        currency_code="EUR",
        lines=[{"product_id": "P-VIT", "quantity": 1, "unit_price": "9.90"}],
    )
    order_status_set(order_id="ORD-2002", status="cancelled", at=T0 + dt.timedelta(days=2))
    Event.objects.create(profile=carl, name="searched", occurred_at=T0, properties={"q": "d3"})

    visitor = identify(anonymous_id="anon0visitor")
    jane.refresh_from_db()
    return {
        "jane": jane,
        "bob": bob,
        "carl": carl,
        "visitor": visitor,
        "order": order,
        "beans": beans,
        "vitamins": vitamins,
        "test_kit": test_kit,
        "coffee": coffee,
        "cart": order.cart,
        "event": Event.objects.get(profile=jane),
        "user": user,
    }


def test_fixture_has_the_expected_shape(shop):
    jane = shop["jane"]
    assert jane.email == "jane.doe@example.com"
    assert set(jane.aliases.values_list("value", flat=True)) == {"anon0jane42", "jane@example.com"}
    assert jane.orders_count == 1


# --- Changelists, searches and change pages -----------------------------------------------------

CHANGELISTS = {
    "profile": ["jane.doe@example.com", "Jane Doe", "bob@example.com", "anonymous visitor"],
    "consentrecord": ["jane.doe@example.com", "checkout-2026-03", "preference centre"],
    "topic": ["Coffee news", "coffee-news", "Offers"],
    "product": ["Espresso beans", "BEAN-1", "Food &gt; Coffee", "Vitamin D drops"],
    "order": ["ORD-1001", "jane.doe@example.com", "25.00"],
    "cart": ["CART-77", "converted to an order"],
    "event": ["viewed a product", "jane.doe@example.com", "Espresso beans"],
}


@pytest.mark.parametrize("model", CHANGELISTS)
def test_changelist_shows_the_data(admin_client, shop, model):
    response = admin_client.get(url(model))
    assert response.status_code == 200
    for text in CHANGELISTS[model]:
        assert text in response.text, text


SEARCHES = [
    ("profile", "jane.doe@", "jane.doe@example.com", "bob@example.com"),
    ("profile", "Berg", "bob@example.com", "jane.doe@example.com"),
    # A former address and an anonymous id still find the customer.
    ("profile", "jane@example.com", "jane.doe@example.com", "bob@example.com"),
    ("profile", "anon0jane42", "jane.doe@example.com", "bob@example.com"),
    ("consentrecord", "bob@example.com", "bob@example.com", "jane.doe@example.com"),
    ("topic", "coffee", "Coffee news", "Offers"),
    ("product", "VIT-D", "Vitamin D drops", "Espresso beans"),
    ("product", "Health", "Vitamin D drops", "Espresso beans"),
    ("order", "ORD-1001", "jane.doe@example.com", "carl@example.com"),
    ("order", "jane.doe", "ORD-1001", "ORD-2002"),
    ("order", "carl@", "ORD-2002", "ORD-1001"),
    ("cart", "CART-77", "jane.doe@example.com", "carl@example.com"),
    ("cart", "carl@example.com", "CART-88", "CART-77"),
    ("event", "jane.doe@example.com", "Espresso beans", "carl@example.com"),
    ("event", "P-BEANS", "jane.doe@example.com", "carl@example.com"),
    ("event", "searched", "carl@example.com", "jane.doe@example.com"),
]


@pytest.mark.parametrize(("model", "term", "shown", "absent"), SEARCHES)
def test_search(admin_client, shop, model, term, shown, absent):
    response = admin_client.get(url(model), {"q": term})
    assert response.status_code == 200
    assert shown in response.text
    assert absent not in response.text


def test_search_finding_nothing(admin_client, shop):
    response = admin_client.get(url("order"), {"q": "nobody@example.com"})
    assert response.status_code == 200
    assert "ORD-1001" not in response.text


def _change_pages(shop):
    return {
        "profile": (shop["jane"].pk, ["jane.doe@example.com", "Jane", "Coffee news"]),
        "consentrecord": (
            ConsentRecord.objects.filter(profile=shop["jane"]).latest("recorded_at").pk,
            ["jane.doe@example.com", "signup-2026-01"],
        ),
        "topic": (shop["coffee"].pk, ["Coffee news"]),
        "product": (shop["beans"].pk, ["Espresso beans", "BEAN-1", "Food &gt; Coffee"]),
        "order": (shop["order"].pk, ["ORD-1001", "CART-77", "Espresso beans", "25.00"]),
        "cart": (shop["cart"].pk, ["CART-77", "Espresso beans", "converted to an order"]),
        "event": (shop["event"].pk, ["product_viewed", "Espresso beans"]),
    }


@pytest.mark.parametrize("model", CHANGELISTS)
def test_change_page(admin_client, shop, model):
    pk, texts = _change_pages(shop)[model]
    response = admin_client.get(url(model, "change", pk))
    assert response.status_code == 200
    for text in texts:
        assert text in response.text, text


def test_profile_change_page_shows_derived_consent_and_history(admin_client, shop):
    jane, bob = shop["jane"], shop["bob"]
    response = admin_client.get(url("profile", "change", jane.pk))
    overview = response.context["adminform"].form.instance
    assert overview == jane
    text = response.text
    assert "Current consent" in text
    assert "<tr><th>Email marketing</th><td>granted</td></tr>" in text
    assert "<tr><th>Advertising audiences</th><td>never asked</td></tr>" in text
    # Ledger, aliases, and a link to the order.
    assert "checkout-2026-03" in text
    assert "anon0jane42" in text and "jane@example.com" in text
    assert url("order", "change", shop["order"].pk) in text
    assert f"?profile__id__exact={jane.pk}" in text

    response = admin_client.get(url("profile", "change", bob.pk))
    assert "<tr><th>Email marketing</th><td>withdrawn</td></tr>" in response.text


def test_profile_change_page_shows_pending_double_opt_in(admin_client, shop, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["ad_audiences"],
    }
    jane = shop["jane"]
    consent_record(profile=jane, purpose=Purpose.AD_AUDIENCES, granted=True, source="signup")
    response = admin_client.get(url("profile", "change", jane.pk))
    assert "<tr><th>Advertising audiences</th><td>awaiting confirmation</td></tr>" in response.text
    response = admin_client.get(url("profile"), {"c_ad_audiences": "pending"})
    assert list(response.context["cl"].result_list) == [jane]


def test_activity_links_filter_by_customer(admin_client, shop):
    jane = shop["jane"]
    for model, shown in (("order", "ORD-1001"), ("cart", "CART-77"), ("event", "Espresso")):
        response = admin_client.get(url(model), {"profile__id__exact": jane.pk})
        assert response.status_code == 200
        assert shown in response.text
    response = admin_client.get(url("order"), {"profile__id__exact": jane.pk})
    assert [o.external_id for o in response.context["cl"].result_list] == ["ORD-1001"]


# --- Profile list: consent columns and filters ---------------------------------------------------


def _results(response):
    return list(response.context["cl"].result_list)


def test_profile_list_shows_current_consent_per_purpose(admin_client, shop):
    response = admin_client.get(url("profile"))
    by_pk = {p.pk: p for p in _results(response)}
    attr = consent_attr(Purpose.EMAIL_MARKETING)
    assert getattr(by_pk[shop["jane"].pk], attr) == ConsentState.GRANTED
    assert getattr(by_pk[shop["bob"].pk], attr) == ConsentState.WITHDRAWN
    assert getattr(by_pk[shop["visitor"].pk], attr) == ConsentState.NONE
    assert "email consent" in response.text and "withdrawn" in response.text


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"c_email_marketing": "granted"}, {"jane"}),
        ({"c_email_marketing": "withdrawn"}, {"bob"}),
        ({"c_email_marketing": "none"}, {"visitor", "carl"}),
        ({"c_personalization": "granted"}, {"jane"}),
        ({"has_orders": "yes"}, {"jane"}),
        # Carl's only order was cancelled: it doesn't count.
        ({"has_orders": "no"}, {"bob", "carl", "visitor"}),
        ({"paused": "yes"}, {"bob"}),
        ({"paused": "no"}, {"jane", "carl", "visitor"}),
        ({"has_user": "yes"}, {"jane"}),
        ({"has_user": "no"}, {"bob", "carl", "visitor"}),
        ({"country": "DE"}, {"bob"}),
        ({"locale": "de"}, {"bob"}),
        ({"country": "SE", "locale": "sv"}, {"jane", "carl"}),
        ({"frequency": "default"}, {"jane", "bob", "carl", "visitor"}),
        ({"greeting": "neutral"}, set()),
    ],
)
def test_profile_filters(admin_client, shop, params, expected):
    response = admin_client.get(url("profile"), params)
    assert response.status_code == 200
    assert {p.pk for p in _results(response)} == {shop[name].pk for name in expected}


def test_country_and_locale_filters_offer_the_values_present(admin_client, shop):
    response = admin_client.get(url("profile"))
    changelist = response.context["cl"]
    offered = {
        spec.title: [choice["display"] for choice in spec.choices(changelist)]
        for spec in changelist.filter_specs
    }
    # The visitor has neither: blank is offered as the admin's empty value.
    empty = changelist.model_admin.get_empty_value_display()
    assert offered["country"] == ["All", empty, "DE", "SE"]
    assert offered["locale"] == ["All", empty, "de", "sv"]

    response = admin_client.get(url("profile"), {"country": ""})
    assert {p.pk for p in _results(response)} == {shop["visitor"].pk}


def test_profile_changelist_does_not_query_per_row(
    admin_client, shop, profile_factory, django_assert_max_num_queries
):
    for profile in profile_factory.create_batch(40):
        consent_record(
            profile=profile, purpose=Purpose.EMAIL_MARKETING, granted=True, source="signup"
        )
    # Session, user, the page, its (filtered) count and the list filters' own queries.
    with django_assert_max_num_queries(10):
        response = admin_client.get(url("profile"))
    assert len(_results(response)) == 44
    with django_assert_max_num_queries(10):
        admin_client.get(url("profile"), {"q": "example.com", "c_email_marketing": "granted"})


@pytest.mark.parametrize("model", ["consentrecord", "order", "cart", "event", "product", "topic"])
def test_other_changelists_do_not_query_per_row(
    admin_client, shop, order_factory, topic_factory, django_assert_max_num_queries, model
):
    orders = order_factory.create_batch(30)
    for order in orders:
        consent_record(
            profile=order.profile, purpose=Purpose.EMAIL_MARKETING, granted=True, source="api"
        )
        Event.objects.create(profile=order.profile, name="searched", occurred_at=T0)
        product_upsert(product_id=f"X-{order.pk}", title=f"Thing {order.pk}")
        cart_update(
            cart_id=f"C-{order.pk}",
            identity=identity_from(email=order.profile.email),
            updated_at=T0,
            lines=[],
            currency_code="EUR",
        )
    topic_factory.create_batch(20)
    with django_assert_max_num_queries(9):
        response = admin_client.get(url(model))
    assert len(_results(response)) >= 20


# --- The consent ledger is read-only ------------------------------------------------------------


def test_ledger_cannot_be_added_to(admin_client, shop):
    assert admin_client.get(url("consentrecord", "add")).status_code == 403
    response = admin_client.post(
        url("consentrecord", "add"),
        {
            "profile": shop["bob"].pk,
            "purpose": "email_marketing",
            "status": "granted",
            "source": "admin",
        },
    )
    assert response.status_code == 403
    assert consent_state(profile=shop["bob"], purpose=Purpose.EMAIL_MARKETING) == "withdrawn"


def test_ledger_offers_no_delete(admin_client, shop):
    response = admin_client.get(url("consentrecord"))
    assert "delete_selected" not in response.text
    assert response.context["action_form"] is None
    record = ConsentRecord.objects.filter(profile=shop["bob"]).first()
    assert admin_client.get(url("consentrecord", "delete", record.pk)).status_code == 403
    assert (
        admin_client.post(url("consentrecord", "delete", record.pk), {"post": "yes"}).status_code
        == 403
    )
    response = admin_client.post(
        url("consentrecord"),
        {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"},
    )
    assert ConsentRecord.objects.filter(pk=record.pk).exists()


def test_ledger_change_page_is_view_only(admin_client, shop):
    record = ConsentRecord.objects.filter(profile=shop["bob"]).latest("recorded_at")
    response = admin_client.get(url("consentrecord", "change", record.pk))
    assert response.status_code == 200
    assert 'name="status"' not in response.text
    assert "_save" not in response.text
    response = admin_client.post(
        url("consentrecord", "change", record.pk),
        {
            "profile": shop["bob"].pk,
            "purpose": "email_marketing",
            "status": "granted",
            "source": "admin",
            "wording_version": "forged",
            "_save": "Save",
        },
    )
    assert response.status_code == 403
    fresh = ConsentRecord.objects.get(pk=record.pk)
    assert (fresh.status, fresh.source, fresh.wording_version) == (
        "withdrawn",
        "preference_centre",
        "",
    )


def test_profile_page_ledger_inline_is_read_only(admin_client, shop):
    response = admin_client.get(url("profile", "change", shop["jane"].pk))
    ledger = next(
        inline
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.model is ConsentRecord
    )
    assert not ledger.has_add_permission
    assert not ledger.has_change_permission
    assert not ledger.has_delete_permission
    recorded = [form.instance.recorded_at for form in ledger.formset.forms]
    assert recorded == sorted(recorded, reverse=True)


# --- Read-only mirrors ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["order", "cart", "event"])
def test_mirrors_are_view_only(admin_client, shop, model):
    assert admin_client.get(url(model, "add")).status_code == 403
    pk = {"order": shop["order"].pk, "cart": shop["cart"].pk, "event": shop["event"].pk}[model]
    response = admin_client.get(url(model, "change", pk))
    assert response.status_code == 200
    assert "_save" not in response.text
    assert admin_client.post(url(model, "change", pk), {"status": "cancelled"}).status_code == 403
    assert admin_client.get(url(model, "delete", pk)).status_code == 403


def test_mirror_date_hierarchy_and_filters(admin_client, shop):
    for model, params in (
        ("order", {"placed_at__year": 2026, "status": "cancelled", "source": "signal"}),
        ("cart", {"source_updated_at__year": 2026, "status": "open"}),
        ("event", {"occurred_at__year": 2026, "name": "product_viewed"}),
        (
            "consentrecord",
            {
                "recorded_at__year": 2026,
                "purpose": "email_marketing",
                "status": "withdrawn",
                "source": "preference_centre",
            },
        ),
    ):
        response = admin_client.get(url(model), params)
        assert response.status_code == 200, model
        assert len(_results(response)) == 1, model


# --- Products ------------------------------------------------------------------------------------


def test_product_list_shows_sensitivity_by_flag_and_category(admin_client, shop):
    response = admin_client.get(url("product"), {"sensitive": "yes"})
    assert {p.title for p in _results(response)} == {"Vitamin D drops", "Pregnancy test"}
    response = admin_client.get(url("product"), {"sensitive": "no"})
    assert {p.title for p in _results(response)} == {"Espresso beans"}
    response = admin_client.get(url("product"), {"repeat": "yes"})
    assert {p.title for p in _results(response)} == {"Espresso beans"}
    by_title = {p.title: p for p in _results(admin_client.get(url("product")))}
    assert by_title["Vitamin D drops"].sensitive_any is True
    assert by_title["Vitamin D drops"].is_sensitive is False


def test_product_marketer_flags_are_editable_mirror_fields_are_not(admin_client, shop):
    beans = shop["beans"]
    assert admin_client.get(url("product", "add")).status_code == 403
    response = admin_client.post(
        url("product", "change", beans.pk),
        {
            "is_sensitive": "on",
            "repurchase_interval_days": "45",
            "title": "Renamed",
            "price": "1.00",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    beans.refresh_from_db()
    assert beans.is_sensitive is True
    assert beans.repurchase_interval_days == 45
    assert (beans.title, str(beans.price)) == ("Espresso beans", "12.50")
    assert admin_client.get(url("product", "delete", beans.pk)).status_code == 403


# --- Profiles: editing what a marketer may edit --------------------------------------------------


def _form_data(form) -> dict:
    data = {}
    for name, field in form.fields.items():
        bound = form[name]
        value = bound.value()
        if field.show_hidden_initial:  # as a browser posts the hidden initial-… input
            data[bound.html_initial_name] = field.prepare_value(bound.initial)
        if isinstance(field.widget, forms.MultiWidget):
            for i, part in enumerate(field.widget.decompress(value)):
                data[f"{bound.html_name}_{i}"] = "" if part is None else str(part)
        elif isinstance(field, forms.BooleanField):
            if value:
                data[bound.html_name] = "on"
        else:
            data[bound.html_name] = "" if value is None else str(value)
    return data


def _change_form_data(response) -> dict:
    data = _form_data(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(_form_data(formset.management_form))
        for form in formset.forms:
            data.update(_form_data(form))
    return data


def test_profile_edit_preferences_and_attributes(admin_client, shop):
    bob = shop["bob"]
    page = url("profile", "change", bob.pk)
    data = _change_form_data(admin_client.get(page))
    data.update({"country": "at", "frequency": "monthly", "greeting": "neutral", "_save": "Save"})
    response = admin_client.post(page, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    bob.refresh_from_db()
    assert (bob.country, bob.frequency, bob.greeting) == ("AT", "monthly", "neutral")
    assert bob.email == "bob@example.com"
    assert ConsentRecord.objects.filter(profile=bob).count() == 2
    # Through preferences_update(): each change is in the customer's history, from the admin.
    history = PreferenceChange.objects.filter(profile=bob)
    assert {(c.field, c.new_value, c.source) for c in history} == {
        ("frequency", "monthly", "admin"),
        ("greeting", "neutral", "admin"),
    }


def test_profile_edit_rejects_a_pause_the_customer_could_not_choose(admin_client, shop):
    bob = shop["bob"]
    paused_until = bob.paused_until
    page = url("profile", "change", bob.pk)
    data = _change_form_data(admin_client.get(page))
    data.update({"paused_until_0": "2001-01-01", "paused_until_1": "10:00", "_save": "Save"})
    response = admin_client.post(page, data)
    assert response.status_code == 200
    assert "A pause must end in the future." in str(response.context["adminform"].form.errors)
    bob.refresh_from_db()
    assert bob.paused_until == paused_until
    assert not PreferenceChange.objects.filter(profile=bob).exists()


def test_profile_edit_rejects_what_signals_would_reject(admin_client, shop):
    bob = shop["bob"]
    page = url("profile", "change", bob.pk)
    data = _change_form_data(admin_client.get(page))
    data.update({"timezone": "Mars/Olympus", "_save": "Save"})
    response = admin_client.post(page, data)
    assert response.status_code == 200
    assert "timezone" in response.context["adminform"].form.errors
    bob.refresh_from_db()
    assert bob.timezone == "Europe/Stockholm"


def test_profile_topic_choice_added_in_admin_is_in_the_history(admin_client, shop):
    bob = shop["bob"]
    page = url("profile", "change", bob.pk)
    data = _change_form_data(admin_client.get(page))
    prefix = next(
        inline.formset.prefix
        for inline in admin_client.get(page).context["inline_admin_formsets"]
        if inline.formset.model is TopicPreference
    )
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": "1",
            f"{prefix}-0-topic": str(shop["coffee"].pk),
            f"{prefix}-0-subscribed": "on",
            f"{prefix}-0-profile": str(bob.pk),
            "_save": "Save",
        }
    )
    response = admin_client.post(page, data)
    assert response.status_code == 302
    choice = TopicPreference.objects.get(profile=bob)
    assert choice.subscribed is True
    assert choice.updated_at is not None
    change = PreferenceChange.objects.get(profile=bob)
    assert (change.field, change.subject, change.new_value, change.source) == (
        "topic",
        shop["coffee"].slug,
        "on",
        "admin",
    )

    # A retired topic cannot be chosen for a customer, as they could not choose it.
    shop["coffee"].is_active = False
    shop["coffee"].save()
    data = _change_form_data(admin_client.get(page))
    data.update({f"{prefix}-0-subscribed": "", "_save": "Save"})
    response = admin_client.post(page, data)
    assert response.status_code == 200
    assert "This topic is not active" in response.text
    assert TopicPreference.objects.get(profile=bob).subscribed is True


def test_profiles_cannot_be_added_or_deleted_here(admin_client, shop):
    assert admin_client.get(url("profile", "add")).status_code == 403
    assert admin_client.get(url("profile", "delete", shop["bob"].pk)).status_code == 403
    assert "delete_selected" not in admin_client.get(url("profile")).text


def test_withdraw_action_appends_to_the_ledger(admin_client, shop):
    jane, bob = shop["jane"], shop["bob"]
    response = admin_client.post(
        url("profile"),
        {"action": "withdraw_email_marketing", "_selected_action": [jane.pk, bob.pk]},
    )
    assert response.status_code == 302
    assert consent_state(profile=jane, purpose=Purpose.EMAIL_MARKETING) == "withdrawn"
    latest = ConsentRecord.objects.filter(profile=jane).latest_first().first()
    assert (latest.source, latest.status) == ("admin", "withdrawn")
    # Bob had already withdrawn: nothing new for him.
    assert ConsentRecord.objects.filter(profile=bob).count() == 2


# --- Topics --------------------------------------------------------------------------------------


def test_topic_subscriber_counts(admin_client, shop):
    response = admin_client.get(url("topic"))
    by_slug = {t.slug: t for t in _results(response)}
    identified = Profile.objects.identified().count()
    assert by_slug["coffee-news"].opted_in_count == 1
    assert by_slug["coffee-news"].subscriber_count == 1
    assert by_slug["offers"].subscriber_count == identified


def test_topic_can_be_created(admin_client, db):
    response = admin_client.post(
        url("topic", "add"),
        {
            "name": "Tea",
            "slug": "tea",
            "description": "Loose-leaf news",
            "is_active": "on",
            "position": "3",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    assert Topic.objects.get(slug="tea").name == "Tea"


def test_order_change_page_links_product_and_customer(admin_client, shop):
    response = admin_client.get(url("order", "change", shop["order"].pk))
    assert url("product", "change", shop["beans"].pk) in response.text
    assert url("profile", "change", shop["jane"].pk) in response.text


# --- Double opt-in in the admin -------------------------------------------------------------


def test_a_grant_awaiting_confirmation_shows_as_pending_not_granted(admin_client, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
    }
    profile = Profile.objects.create(email="pending@example.com")
    consent_record(
        profile=profile, purpose=Purpose.EMAIL_MARKETING, granted=True, source="checkout"
    )
    ledger = admin_client.get(url("consentrecord")).text
    assert '<td class="field-record_status">awaiting confirmation</td>' in ledger
    page = admin_client.get(url("profile", "change", profile.pk)).text
    assert ">granted<" not in page
    assert page.count("awaiting confirmation") >= 2  # the overview and the ledger inline


def test_revoking_a_customers_email_links_in_the_admin(admin_client, shop, client):
    from personalization.preferences.tokens import preference_token

    bob = shop["bob"]
    old = reverse("personalization:preferences", kwargs={"token": preference_token(profile=bob)})
    response = admin_client.post(
        url("profile"), {"action": "revoke_links", "_selected_action": [bob.pk]}
    )
    assert response.status_code == 302
    assert client.get(old).status_code == 403
    new = reverse("personalization:preferences", kwargs={"token": preference_token(profile=bob)})
    assert client.get(new).status_code == 200


def test_the_profiles_consent_ledger_shows_the_words_agreed_to(admin_client, shop):
    from personalization.capture.wording import consent_wording_current
    from personalization.consent import consent_record

    bob = shop["bob"]
    wording = consent_wording_current(purpose="personalization", language="en")
    consent_record(
        profile=bob,
        purpose="personalization",
        granted=True,
        source="preference_centre",
        wording_version=wording.version,
    )
    page = admin_client.get(url("profile", "change", bob.pk)).text
    assert wording.text in page
