"""The suppression list keeps an erased person from being re-subscribed without a new consent."""

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from personalization.checks import check_setting_types
from personalization.commerce import order_record
from personalization.consent import consent_grant_many, consent_record, consent_state
from personalization.identity import Identity
from personalization.importing import orders_import_path
from personalization.models import ConsentRecord, IngestSource, Order, Profile, SuppressionSource
from personalization.privacy.erasure import profile_erase
from personalization.privacy.suppression import email_hash, email_suppressed
from personalization.tracking import identify

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
EMAIL = "ann@example.com"
HEADER = "order_id,email,placed_at,total,currency,product_id,title,quantity,unit_price"


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def erased(product_factory):
    """Ann subscribed, ordered, and asked to be erased."""
    product_factory(external_id="mug", price=Decimal("12.50"))
    order_record(
        order_id="O-1",
        identity=Identity(email=EMAIL),
        placed_at=NOW - dt.timedelta(days=30),
        total="12.50",
        currency_code="EUR",
        lines=[{"product_id": "mug", "quantity": 1, "unit_price": "12.50"}],
        consents={"email_marketing": "checkout-1"},
    )
    profile = Profile.objects.get(email=EMAIL)
    assert consent_state(profile=profile, purpose="email_marketing") == "granted"
    profile_erase(profile=profile, source=SuppressionSource.PREFERENCE_CENTRE)
    return EMAIL


def imported_order(order_id: str, email: str = EMAIL, consents=None):
    order, _ = order_record(
        order_id=order_id,
        identity=Identity(email=email),
        placed_at=NOW - dt.timedelta(days=1),
        total="12.50",
        currency_code="EUR",
        lines=[{"product_id": "mug", "quantity": 1, "unit_price": "12.50"}],
        consents=consents,
        source=IngestSource.IMPORT,
    )
    return order


def test_an_import_with_consent_does_not_re_subscribe_an_erased_address(erased):
    order = imported_order("O-2", consents={"email_marketing": "import-2024"})

    profile = Profile.objects.get(email=EMAIL)
    assert order.profile == profile  # the order and the customer are recorded again
    assert consent_state(profile=profile, purpose="email_marketing") == "none"
    assert not ConsentRecord.objects.exists()


def test_the_same_import_for_an_address_never_erased_records_the_consent(erased):
    imported_order("O-2", email="bob@example.com", consents={"email_marketing": "import-2024"})
    bob = Profile.objects.get(email="bob@example.com")
    assert consent_state(profile=bob, purpose="email_marketing") == "granted"


def test_signing_up_again_with_consent_is_a_new_consent_and_recorded(erased):
    imported_order("O-2", consents={"email_marketing": "import-2024"})
    profile = identify(
        email=EMAIL, consents={"email_marketing": "signup-2"}, consent_source="signup"
    )
    assert consent_state(profile=profile, purpose="email_marketing") == "granted"
    record = ConsentRecord.objects.get()
    assert (record.source, record.wording_version) == ("signup", "signup-2")


@pytest.mark.parametrize("source", ["checkout", "preference_centre", "banner", "api"])
def test_every_consent_given_by_the_person_is_recorded(erased, source):
    profile = identify(email=EMAIL)
    assert consent_record(profile=profile, purpose="email_marketing", granted=True, source=source)
    assert consent_state(profile=profile, purpose="email_marketing") == "granted"


@pytest.mark.parametrize("source", ["import", "admin"])
def test_a_second_hand_grant_records_nothing_while_a_withdrawal_is_kept(erased, source):
    profile = identify(email=EMAIL)
    assert (
        consent_record(profile=profile, purpose="email_marketing", granted=True, source=source)
        is None
    )
    assert (
        consent_grant_many(profile=profile, consents={"personalization": "v1"}, source=source) == []
    )
    assert not ConsentRecord.objects.exists()
    withdrawal = consent_record(
        profile=profile, purpose="email_marketing", granted=False, source=source
    )
    assert withdrawal.status == "withdrawn"


def test_the_csv_import_counts_orders_of_erased_addresses_and_keeps_detached_ones(erased, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "\n".join(
            [
                HEADER,
                f"O-1,{EMAIL},2026-05-02T10:00:00+00:00,12.50,EUR,mug,Mug,1,12.50",
                f"O-3,{EMAIL.upper()},2026-05-20T10:00:00+00:00,12.50,EUR,mug,Mug,1,12.50",
                "O-4,bob@example.com,2026-05-21T10:00:00+00:00,12.50,EUR,mug,Mug,1,12.50",
                "",
            ]
        )
    )
    result = orders_import_path(path=str(path))

    assert (result.orders_imported, result.orders_present, result.rows_bad) == (2, 1, 0)
    assert result.orders_suppressed == 1
    # The erased customer's old order stays detached; the new one has a profile, no consent.
    assert Order.objects.get(external_id="O-1").profile is None
    ann = Profile.objects.get(email=EMAIL)
    assert ann.orders_count == 1
    assert not ConsentRecord.objects.exists()

    # Run again, as the backfill guide says is safe: all present, nothing breaks.
    out = StringIO()
    call_command("import_orders", str(path), stdout=out, stderr=StringIO())
    summary = {
        line.rsplit(None, 1)[0].strip(): line.rsplit(None, 1)[1]
        for line in out.getvalue().splitlines()
        if line.strip()
    }
    assert summary["orders already present"] == "3"
    assert summary["orders of erased addresses (no consent)"] == "0"
    assert Order.objects.get(external_id="O-1").profile is None


def test_the_hash_is_keyed_and_rotating_the_key_breaks_matching(erased, settings):
    stored = email_hash(EMAIL)
    assert len(stored) == 64 and EMAIL not in stored
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SUPPRESSION_HASH_KEY": "k" * 40}
    assert email_hash(EMAIL) != stored
    assert not email_suppressed(email=EMAIL, reason="erased")


def test_the_default_key_is_derived_from_secret_key(settings):
    before = email_hash(EMAIL)
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert email_hash(EMAIL) != before


def test_a_short_hash_key_is_a_configuration_error(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SUPPRESSION_HASH_KEY": "short"}
    assert [e.id for e in check_setting_types()] == ["personalization.E006"]
