"""Erasure: the person is gone from every table of the app; revenue and segments stay right."""

import datetime as dt
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import models as db_models
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.test import Client
from django.urls import reverse

from personalization.commerce import cart_update, order_record, order_status_set
from personalization.consent import consent_record
from personalization.exceptions import UnknownProfile
from personalization.identity import Identity
from personalization.models import (
    Channel,
    ChannelPreference,
    Job,
    Order,
    OrderLine,
    OrderStatus,
    Profile,
    Segment,
    SegmentMembership,
    Suppression,
    SuppressionSource,
    TopicPreference,
)
from personalization.privacy.erasure import profile_erase, profile_erasure_preview
from personalization.privacy.suppression import email_hash, email_suppressed
from personalization.segments import segment_refresh, segments_refresh
from personalization.segments.jobs import SEGMENTS_UPDATE_JOB, segments_update_enqueue
from personalization.tracking import identify, track

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)

EMAIL, FORMER = "annika.lindqvist@example.com", "a.lindqvist@example.org"
FIRST, LAST = "Annika", "Lindqvist"
IP = "203.0.113.77"
ANONYMOUS_ID = "anon-annika-7f3a"


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


_orders = iter(range(1, 10**6))


def order(email: str, placed_at: dt.datetime, total: str = "12.50", **kwargs) -> Order:
    created, _ = order_record(
        order_id=f"O{next(_orders)}",
        identity=Identity(email=email),
        placed_at=placed_at,
        total=total,
        currency_code="EUR",
        lines=[{"product_id": "mug", "quantity": 1, "unit_price": total}],
        **kwargs,
    )
    return created


@pytest.fixture
def annika(product_factory, user_factory, topic_factory):
    """A customer the app knows everything about, written through its own functions; and Bob."""
    product_factory(external_id="mug", price=Decimal("12.50"))
    user = user_factory(username="annika", email=FORMER)
    identify(
        user=user,
        anonymous_id=ANONYMOUS_ID,
        first_name=FIRST,
        last_name=LAST,
        consents={"email_marketing": "signup-1", "personalization": "signup-1"},
    )
    # She changes address: the former one stays as an alias that still finds her.
    user.email = EMAIL
    user.save()
    profile = identify(user=user)
    assert profile.email == EMAIL
    consent_record(
        profile=profile,
        purpose="ad_audiences",
        granted=True,
        source="banner",
        ip_address=IP,
    )
    track("product_viewed", email=EMAIL, product_id="mug", properties={"note": EMAIL})
    for days_ago in (200, 100, 10):
        order(EMAIL, NOW - days_ago * DAY)
    cart_update(
        cart_id="cart-annika-1",
        identity=Identity(email=EMAIL),
        updated_at=NOW - 3 * DAY,
        lines=[{"product_id": "mug", "quantity": 2, "unit_price": "12.50"}],
        currency_code="EUR",
    )
    # A converted cart: its order stays, the cart goes.
    cart_update(
        cart_id="cart-annika-0",
        identity=Identity(email=EMAIL),
        updated_at=NOW - 11 * DAY,
        lines=[{"product_id": "mug", "quantity": 1, "unit_price": "12.50"}],
        currency_code="EUR",
    )
    order(EMAIL, NOW - 2 * DAY, cart_id="cart-annika-0")
    TopicPreference.objects.create(
        profile=profile, topic=topic_factory(), subscribed=True, updated_at=NOW
    )
    ChannelPreference.objects.create(
        profile=profile, channel=Channel.SMS, enabled=False, updated_at=NOW
    )
    for days_ago in (300, 30, 5):
        order("bob@example.com", NOW - days_ago * DAY, total="20.00")
    bob = Profile.objects.get(email="bob@example.com")
    segments_refresh(segments=Segment.objects.all(), now=NOW)
    segments_update_enqueue(profile_ids=[profile.pk, bob.pk])
    segments_update_enqueue(profile_ids=[profile.pk])
    profile.refresh_from_db()
    return profile


# --- What a person is made of, looked for in every table of the app ---------------------------

NEEDLES = (EMAIL, FORMER, FIRST, LAST, IP, ANONYMOUS_ID)
TEXT_FIELDS = (db_models.CharField, db_models.TextField, db_models.GenericIPAddressField)


def _names_profile(value, profile_id: int, key: str = "") -> bool:
    """Whether a JSON value holds ``profile_id`` under a key that names a profile."""
    if isinstance(value, dict):
        return any(_names_profile(v, profile_id, k) for k, v in value.items())
    if isinstance(value, list):
        return any(_names_profile(v, profile_id, key) for v in value)
    return "profile" in key and value == profile_id


def residue(profile_id: int) -> dict[str, set[str]]:
    """Per model of the app: the fields in which a row still holds the person or their id.

    Walks every model the app has, so a model added later is looked through too."""
    found: dict[str, set[str]] = {}
    for model in apps.get_app_config("personalization").get_models():
        rows = model._base_manager.all()
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model is Profile:
                if rows.filter(**{field.attname: profile_id}).exists():
                    found.setdefault(model.__name__, set()).add(field.name)
            elif field.primary_key and model is Profile:
                if rows.filter(pk=profile_id).exists():
                    found.setdefault(model.__name__, set()).add(field.name)
            elif isinstance(field, TEXT_FIELDS + (db_models.JSONField,)):
                for value in rows.values_list(field.attname, flat=True):
                    text = value if isinstance(value, str) else json.dumps(value)
                    if any(needle.lower() in (text or "").lower() for needle in NEEDLES) or (
                        isinstance(field, db_models.JSONField) and _names_profile(value, profile_id)
                    ):
                        found.setdefault(model.__name__, set()).add(field.name)
    return found


def test_after_erasure_no_table_of_the_app_holds_the_person(annika):
    before = residue(annika.pk)
    # The walk finds her wherever she is (else it could not notice what erasure forgot).
    assert {
        "Profile",
        "ProfileAlias",
        "ConsentRecord",
        "Event",
        "Order",
        "Cart",
        "TopicPreference",
        "ChannelPreference",
        "SegmentMembership",
        "Job",
    } <= set(before)
    assert {"email", "first_name", "last_name"} <= before["Profile"]
    assert {"email", "ip_address", "profile"} <= before["ConsentRecord"]

    profile_erase(profile=annika, source=SuppressionSource.ADMIN)

    assert residue(annika.pk) == {}
    assert not Profile.objects.filter(pk=annika.pk).exists()
    # Bob is untouched, and so is what names him.
    bob = Profile.objects.get(email="bob@example.com")
    assert bob.orders_count == 3
    assert residue(bob.pk) != {}
    job = Job.objects.filter(task=SEGMENTS_UPDATE_JOB).order_by("pk").first()
    assert job.args == {"profile_ids": [bob.pk]}


def test_orders_stay_for_revenue_detached_from_the_person(annika):
    def per_day():
        return list(
            Order.objects.counted()
            .annotate(day=TruncDate("placed_at"))
            .values("day")
            .annotate(revenue=Sum("shop_total"))
            .order_by("day")
        )

    revenue, lines = per_day(), OrderLine.objects.count()
    her_orders = set(annika.orders.values_list("external_id", flat=True))
    assert len(her_orders) == 4

    report = profile_erase(profile=annika, source=SuppressionSource.ADMIN)

    assert report.orders_detached == 4
    assert per_day() == revenue
    assert OrderLine.objects.count() == lines
    detached = Order.objects.filter(external_id__in=her_orders)
    assert detached.count() == 4
    assert set(detached.values_list("profile", flat=True)) == {None}
    assert set(detached.values_list("cart", flat=True)) == {None}  # the converted cart is gone
    # A refund of an erased customer's order still takes it out of the revenue.
    order_status_set(order_id=sorted(her_orders)[0], status=OrderStatus.REFUNDED)
    assert sum(day["revenue"] for day in per_day()) == sum(
        day["revenue"] for day in revenue
    ) - Decimal("12.50")


def test_segment_member_counts_stay_right(annika):
    bob = Profile.objects.get(email="bob@example.com")
    loyal = Segment.objects.get(slug="loyal")
    assert set(loyal.memberships.current().values_list("profile", flat=True)) == {
        annika.pk,
        bob.pk,
    }
    counts = {s.slug: s.member_count for s in Segment.objects.all()}

    profile_erase(profile=annika, source=SuppressionSource.ADMIN)

    for segment in Segment.objects.all():
        current = SegmentMembership.objects.current().filter(segment=segment).count()
        assert segment.member_count == current, segment.slug
        # A full refresh, which reads the detached orders too, finds nobody else to move.
        result = segment_refresh(segment=segment, now=NOW)
        assert (result.entered, result.exited) == (0, 0), segment.slug
    loyal.refresh_from_db()
    assert loyal.member_count == counts["loyal"] - 1 == 1
    assert list(loyal.memberships.current().values_list("profile", flat=True)) == [bob.pk]


def test_the_addresses_are_kept_as_salted_hashes_only(annika):
    report = profile_erase(profile=annika, source=SuppressionSource.COMMAND)

    assert report.addresses_suppressed == 2
    rows = Suppression.objects.erased()
    assert set(rows.values_list("email_hash", flat=True)) == {
        email_hash(EMAIL),
        email_hash(FORMER),
    }
    assert set(rows.values_list("source", flat=True)) == {"command"}
    assert email_suppressed(email=" Annika.Lindqvist@Example.COM", reason="erased")
    assert not email_suppressed(email="bob@example.com", reason="erased")


def test_erasing_again_or_a_profile_gone_meanwhile_is_refused(annika):
    stale = Profile.objects.get(pk=annika.pk)
    profile_erase(profile=annika, source=SuppressionSource.ADMIN)
    with pytest.raises(UnknownProfile):
        profile_erase(profile=stale, source=SuppressionSource.ADMIN)
    assert Suppression.objects.count() == 2


def test_the_preview_says_what_goes_and_changes_nothing(annika):
    preview = profile_erasure_preview(profile=annika, source=SuppressionSource.ADMIN)
    assert (preview.orders_detached, preview.carts_deleted, preview.addresses_suppressed) == (
        4,
        2,
        2,
    )
    assert preview.consent_records_deleted == 3
    assert Profile.objects.filter(pk=annika.pk).exists()
    assert not Suppression.objects.exists()
    report = profile_erase(profile=annika, source=SuppressionSource.ADMIN)
    assert (report.events_deleted, report.carts_deleted, report.choices_deleted) == (1, 2, 2)
    assert report.consent_records_deleted == preview.consent_records_deleted


def test_an_unknown_source_is_refused_before_anything_is_written(annika):
    with pytest.raises(ValueError, match="source"):
        profile_erase(profile=annika, source="somebody")
    assert Profile.objects.filter(pk=annika.pk).exists()


# --- manage.py erase_profile ---------------------------------------------------------------


def test_command_erases_after_confirmation(annika, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    out = StringIO()
    with pytest.raises(CommandError, match="Nothing was erased"):
        call_command("erase_profile", EMAIL, stdout=out)
    assert "4 orders with their lines" in out.getvalue()
    assert Profile.objects.filter(pk=annika.pk).exists()

    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    call_command("erase_profile", EMAIL, stdout=StringIO())
    assert not Profile.objects.filter(pk=annika.pk).exists()


def test_command_without_an_answer_erases_nothing(annika, monkeypatch):
    def no_terminal(prompt):
        raise EOFError

    monkeypatch.setattr("builtins.input", no_terminal)
    with pytest.raises(CommandError, match="Nothing was erased"):
        call_command("erase_profile", EMAIL, stdout=StringIO())
    assert Profile.objects.filter(pk=annika.pk).exists()


def test_command_with_yes_finds_the_person_by_a_former_address(annika):
    out = StringIO()
    call_command("erase_profile", FORMER.upper(), "--yes", stdout=out)
    assert "Erased" in out.getvalue()
    assert not Profile.objects.filter(pk=annika.pk).exists()


@pytest.mark.parametrize("address", ["nobody@example.com", "not an address"])
def test_command_refuses_an_unknown_or_bad_address(annika, address):
    with pytest.raises(CommandError):
        call_command("erase_profile", address, "--yes", stdout=StringIO())
    assert Profile.objects.filter(pk=annika.pk).exists()


# --- The admin action ------------------------------------------------------------------------


def changelist() -> str:
    return reverse("admin:personalization_profile_changelist")


def test_admin_action_asks_for_confirmation_then_erases(admin_client, annika):
    chosen = {"action": "erase_profiles", "_selected_action": [annika.pk]}
    page = admin_client.post(changelist(), chosen)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Yes, erase" in text
    assert "4 orders with their lines, detached from the person" in text
    assert "3 consent records" in text
    assert Profile.objects.filter(pk=annika.pk).exists()  # nothing happened yet

    done = admin_client.post(changelist(), {**chosen, "post": "yes"})
    assert done.status_code == 302
    assert not Profile.objects.filter(pk=annika.pk).exists()
    assert Order.objects.filter(profile__isnull=True).count() == 4


def test_admin_action_needs_the_delete_permission_and_a_csrf_token(client, user_factory, annika):
    staff = user_factory(username="marketer", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_profile", "change_profile"])
    )
    client.force_login(staff)
    chosen = {"action": "erase_profiles", "_selected_action": [annika.pk], "post": "yes"}
    client.post(changelist(), chosen)
    assert Profile.objects.filter(pk=annika.pk).exists()

    staff.user_permissions.add(Permission.objects.get(codename="delete_profile"))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff)
    assert strict.post(changelist(), chosen).status_code == 403
    assert Profile.objects.filter(pk=annika.pk).exists()

    client.post(changelist(), chosen)
    assert not Profile.objects.filter(pk=annika.pk).exists()
