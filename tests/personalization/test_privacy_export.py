"""A person's data export: everything the app holds about them, and only about them."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection, models
from django.test.utils import CaptureQueriesContext, isolate_apps
from django.urls import reverse

from personalization.consent import consent_confirm, consent_record
from personalization.models import (
    Cart,
    CartLine,
    ChannelPreference,
    ConsentSource,
    Event,
    Order,
    OrderLine,
    Profile,
    ProfileAlias,
    Purpose,
    Segment,
    SegmentMembership,
    TopicPreference,
)
from personalization.privacy.export import EXPORT_PARTS, NO_PERSONAL_DATA, profile_export
from personalization.traits import trait_remove, traits_set

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)

# --- Coverage: every model holding personal data is in the export ----------------------------

# Fields that hold personal data wherever they appear, by name or by type.
PERSONAL_FIELD_NAMES = {
    "email",
    "first_name",
    "last_name",
    "ip_address",
    "birthday",
    "traits",
    "properties",
}
PERSONAL_FIELD_TYPES = (models.EmailField, models.GenericIPAddressField)


def _personal_reason(model, linked: set) -> str | None:
    """Why ``model`` holds personal data, or None when nothing shows it does."""
    for field in model._meta.concrete_fields:
        if field.is_relation and field.related_model in linked:
            return f"{field.name} links to {field.related_model.__name__}"
        if field.is_relation and field.related_model is apps.get_model(settings.AUTH_USER_MODEL):
            return f"{field.name} links to the shop's user"
        if field.name in PERSONAL_FIELD_NAMES or isinstance(field, PERSONAL_FIELD_TYPES):
            return f"{field.name} holds personal data"
    return None


def coverage_problems(app_models) -> list[str]:
    """What is wrong with the export's declared coverage of ``app_models``."""
    exported = {part.model for part in EXPORT_PARTS}
    # Linked to a person: Profile, and whatever links to a linked model (an order's lines).
    linked = {Profile}
    grew = True
    while grew:
        grew = False
        for model in app_models:
            if model not in linked and any(
                field.is_relation and field.related_model in linked
                for field in model._meta.concrete_fields
            ):
                linked.add(model)
                grew = True
    problems = []
    for model in app_models:
        name = model.__name__
        reason = _personal_reason(model, linked)
        if model in exported and model in NO_PERSONAL_DATA:
            problems.append(f"{name} is both exported and listed as holding no personal data")
        elif reason and model not in exported:
            problems.append(f"{name} is not exported, but {reason}")
        elif model not in exported and model not in NO_PERSONAL_DATA:
            problems.append(f"{name} is neither exported nor listed in NO_PERSONAL_DATA")
    return problems


def test_every_model_of_the_app_is_exported_or_holds_no_personal_data():
    app_models = list(apps.get_app_config("personalization").get_models())
    assert coverage_problems(app_models) == []


def test_every_field_of_an_exported_model_is_in_the_export():
    left_out = {
        part.model.__name__: sorted(
            {field.name for field in part.model._meta.concrete_fields} - part.covered_fields()
        )
        for part in EXPORT_PARTS
    }
    assert {name: fields for name, fields in left_out.items() if fields} == {}


@isolate_apps("personalization")
def test_the_coverage_check_fails_for_a_model_added_without_an_export():
    class OrderNote(models.Model):  # noqa: DJ008  (linked through an order)
        order = models.ForeignKey(Order, on_delete=models.CASCADE)
        text = models.TextField()

        class Meta:
            app_label = "personalization"

    class Wishlist(models.Model):  # noqa: DJ008  (a personal field, no link)
        email = models.EmailField()

        class Meta:
            app_label = "personalization"

    class Banner(models.Model):  # noqa: DJ008  (nothing personal, but nobody said so)
        title = models.CharField(max_length=50)

        class Meta:
            app_label = "personalization"

    app_models = [*apps.get_app_config("personalization").get_models(), OrderNote, Wishlist]
    assert coverage_problems([*app_models, Banner]) == [
        "OrderNote is not exported, but order links to Order",
        "Wishlist is not exported, but email holds personal data",
        "Banner is neither exported nor listed in NO_PERSONAL_DATA",
    ]


# --- What the export holds -------------------------------------------------------------------


@pytest.fixture
def person(time_machine, settings, profile_factory, product_factory, topic_factory):
    """A customer with a bit of everything, and a neighbour whose data must stay out."""
    time_machine.move_to(NOW, tick=False)
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["email_marketing"],
        "SITE_URL": "https://shop.example",
    }
    mug = product_factory(external_id="mug", title="Blue mug")
    tea = product_factory(external_id="tea", title="Green tea")
    ann = profile_factory(
        email="ann@example.com",
        first_name="Ann",
        last_name="Lee",
        country="SE",
        birthday=dt.date(1990, 4, 2),
        frequency="weekly",
        greeting="neutral",
        paused_until=NOW + dt.timedelta(days=10),
    )
    ProfileAlias.objects.create(profile=ann, kind="anonymous_id", value="aid-123")
    traits_set(profile=ann, values={"shoe_size": 38}, source="given")
    traits_set(profile=ann, values={"style": "minimal"}, source="inferred", confidence=0.85)
    traits_set(profile=ann, values={"budget": "low"}, source="inferred", confidence=0.6)
    trait_remove(profile=ann, key="budget", by="preference_centre")
    grant = consent_record(
        profile=ann,
        purpose=Purpose.EMAIL_MARKETING,
        granted=True,
        source=ConsentSource.CHECKOUT,
        wording_version="checkout-2026-03",
        ip_address="203.0.113.7",
    )
    consent_confirm(grant=grant, ip_address="203.0.113.8")
    TopicPreference.objects.create(
        profile=ann, topic=topic_factory(slug="tea", name="Tea"), subscribed=False, updated_at=NOW
    )
    ChannelPreference.objects.create(profile=ann, channel="sms", enabled=False, updated_at=NOW)
    cart = Cart.objects.create(
        external_id="C1", profile=ann, currency="EUR", total=5, source_updated_at=NOW
    )
    CartLine.objects.create(cart=cart, product=tea, quantity=2, unit_price=Decimal("2.50"))
    order = Order.objects.create(
        external_id="O1",
        profile=ann,
        placed_at=NOW - dt.timedelta(days=3),
        total=Decimal("24.90"),
        currency="EUR",
        shop_total=Decimal("24.90"),
        cart=cart,
        source="signal",
    )
    OrderLine.objects.create(order=order, product=mug, quantity=1, unit_price=Decimal("19.90"))
    OrderLine.objects.create(order=order, product=tea, quantity=2, unit_price=Decimal("2.50"))
    Event.objects.create(
        profile=ann,
        name="product_viewed",
        occurred_at=NOW - dt.timedelta(hours=1),
        product=mug,
        properties={"colour": "blue"},
    )
    SegmentMembership.objects.create(
        profile=ann,
        segment=Segment.objects.get(slug="new_customer"),
        entered_at=NOW - dt.timedelta(days=3),
    )
    bob = profile_factory(email="bob@example.com", first_name="Bob")
    Order.objects.create(
        external_id="O2",
        profile=bob,
        placed_at=NOW,
        total=1,
        currency="EUR",
        shop_total=1,
        source="signal",
    )
    Event.objects.create(profile=bob, name="searched", occurred_at=NOW, properties={"q": "bob"})
    return ann


def test_the_export_holds_everything_the_app_keeps_about_the_person(person):
    data = profile_export(profile=person)

    assert json.loads(json.dumps(data)) == data  # JSON as it is, nothing lost on the way
    assert data["format_version"] == 2 and data["exported_at"] == NOW.isoformat()
    profile = data["profile"]
    assert {k: profile[k] for k in ("email", "first_name", "last_name", "country")} == {
        "email": "ann@example.com",
        "first_name": "Ann",
        "last_name": "Lee",
        "country": "SE",
    }
    assert profile["birthday"] == "1990-04-02"
    assert [
        (t["key"], t["value"], t["source"], t["confidence"], t["recorded_at"])
        for t in data["traits"]
    ] == [
        ("shoe_size", 38, "given", None, NOW.isoformat()),
        ("style", "minimal", "inferred", "0.85", NOW.isoformat()),
    ]
    assert [(r["key"], r["by"], r["removed_at"]) for r in data["removed_traits"]] == [
        ("budget", "preference_centre", NOW.isoformat())
    ]
    assert (profile["frequency"], profile["greeting"], profile["paused_until"]) == (
        "weekly",
        "neutral",
        (NOW + dt.timedelta(days=10)).isoformat(),
    )
    assert [(a["kind"], a["value"]) for a in data["aliases"]] == [("anonymous_id", "aid-123")]

    grant, confirmation = data["consent_records"]
    assert (grant["purpose"], grant["status"], grant["source"]) == (
        "email_marketing",
        "granted",
        "checkout",
    )
    assert (grant["wording_version"], grant["ip_address"], grant["email"]) == (
        "checkout-2026-03",
        "203.0.113.7",
        "ann@example.com",
    )
    assert grant["recorded_at"] == NOW.isoformat()
    assert confirmation["confirms"] == grant["id"]
    assert (confirmation["confirmed_at"], confirmation["ip_address"]) == (
        NOW.isoformat(),
        "203.0.113.8",
    )

    assert [(t["topic_slug"], t["subscribed"]) for t in data["topic_preferences"]] == [
        ("tea", False)
    ]
    assert [(c["channel"], c["enabled"]) for c in data["channel_preferences"]] == [("sms", False)]

    (order,) = data["orders"]
    assert (order["external_id"], order["total"], order["cart_external_id"]) == (
        "O1",
        "24.90",
        "C1",
    )
    assert [
        (line["product_external_id"], line["product_title"], line["quantity"])
        for line in order["lines"]
    ] == [("mug", "Blue mug", 1), ("tea", "Green tea", 2)]
    (cart,) = data["carts"]
    assert cart["external_id"] == "C1"
    assert [(line["product_title"], line["unit_price"]) for line in cart["lines"]] == [
        ("Green tea", "2.50")
    ]

    (event,) = data["events"]
    assert (event["name"], event["product_title"], event["properties"]) == (
        "product_viewed",
        "Blue mug",
        {"colour": "blue"},
    )
    assert [
        (m["segment_slug"], m["entered_at"], m["exited_at"]) for m in data["segment_memberships"]
    ] == [("new_customer", (NOW - dt.timedelta(days=3)).isoformat(), None)]


@pytest.mark.parametrize("profile", [Profile(email="new@example.com"), "ann@example.com"])
def test_only_a_saved_profile_can_be_exported(profile):
    with pytest.raises(TypeError, match="profile must be a saved Profile"):
        profile_export(profile=profile)


def test_nobody_else_is_in_the_export(person):
    text = json.dumps(profile_export(profile=person))
    assert "bob" not in text.lower() and "O2" not in text


def test_a_long_history_takes_no_more_queries_than_a_short_one(person, product_factory):
    with CaptureQueriesContext(connection) as short:
        profile_export(profile=person)
    product = product_factory()
    for index in range(5):
        order = Order.objects.create(
            external_id=f"more-{index}",
            profile=person,
            placed_at=NOW,
            total=1,
            currency="EUR",
            shop_total=1,
            source="signal",
        )
        OrderLine.objects.create(order=order, product=product, quantity=1, unit_price=1)
        Event.objects.create(profile=person, name="searched", occurred_at=NOW, product=product)
    with CaptureQueriesContext(connection) as long:
        data = profile_export(profile=person)
    assert (len(data["orders"]), len(data["events"])) == (6, 6)
    assert len(long) == len(short) == len(EXPORT_PARTS)


# --- The admin action ------------------------------------------------------------------------


def _run_action(admin_client, action: str, ids):
    return admin_client.post(
        reverse("admin:personalization_profile_changelist"),
        {"action": action, "_selected_action": ids},
        follow=True,
    )


def test_the_admin_downloads_one_persons_data_as_a_json_attachment(admin_client, person):
    response = _run_action(admin_client, "download_data", [person.pk])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == (
        f'attachment; filename="profile-{person.pk}-data.json"'
    )
    data = json.loads(response.content)
    assert data["profile"]["email"] == "ann@example.com"
    assert [o["external_id"] for o in data["orders"]] == ["O1"]


def test_the_admin_refuses_to_download_several_people_at_once(admin_client, person):
    bob = Profile.objects.get(email="bob@example.com")
    response = _run_action(admin_client, "download_data", [person.pk, bob.pk])
    assert "Content-Disposition" not in response
    assert "Select exactly one profile to download their data." in [
        str(m) for m in response.context["messages"]
    ]
