import datetime as dt

import pytest

from personalization import signals
from personalization.commerce import cart_update
from personalization.consent import consent_record, consent_states
from personalization.exceptions import InvalidEmail, InvalidInput, MissingIdentity, NotACustomer
from personalization.identity import (
    Identity,
    identity_from,
    profile_find,
    profile_merge,
    profile_resolve,
)
from personalization.models import (
    Cart,
    ConsentRecord,
    Event,
    Frequency,
    Order,
    Profile,
    ProfileAlias,
    TopicPreference,
)
from personalization.tracking import identify, track

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)


def place_order(order_id, product, **identity):
    signals.order_placed.send(
        sender=None,
        order_id=order_id,
        placed_at=T0,
        total="10.00",
        currency="EUR",
        lines=[{"product_id": product.external_id, "quantity": 1, "unit_price": "10.00"}],
        **identity,
    )


def test_email_is_normalised_so_case_and_spaces_find_the_same_customer():
    first = identify(email="  Ann.Smith@Example.COM ")
    second = identify(email="ann.smith@example.com")
    assert first.pk == second.pk
    assert first.email == "ann.smith@example.com"
    assert Profile.objects.count() == 1


def test_malformed_email_is_refused_and_nothing_is_written():
    with pytest.raises(InvalidEmail) as err:
        identify(email="not-an-address")
    assert err.value.field == "email"
    assert Profile.objects.count() == 0


def test_an_identity_is_required():
    with pytest.raises(MissingIdentity):
        profile_resolve(Identity())


def test_anonymous_history_joins_the_profile_when_the_visitor_identifies(product_factory):
    product = product_factory()
    identify(
        anonymous_id="visitor1", consents={"personalization": "banner-v1"}, consent_source="api"
    )
    track("product_viewed", anonymous_id="visitor1", product_id=product.external_id)
    signals.cart_updated.send(
        sender=None,
        cart_id="cart1",
        anonymous_id="visitor1",
        updated_at=T0,
        currency="EUR",
        lines=[{"product_id": product.external_id, "quantity": 1, "unit_price": "19.90"}],
    )
    assert Profile.objects.get().is_anonymous

    profile = identify(email="ann@example.com", anonymous_id="visitor1")

    assert Profile.objects.count() == 1
    assert profile.events.get().product == product
    assert Cart.objects.get().profile == profile
    assert consent_states(profile=profile)["personalization"] == "granted"


def test_a_logged_in_user_later_seen_with_their_guest_email_is_one_person(
    user_factory, product_factory
):
    product = product_factory()
    user = user_factory(email="old@example.com")
    member = identify(user=user)
    place_order("A1", product, user=user)
    place_order("G1", product, email="guest@example.com")  # guest checkout, another profile
    guest = Profile.objects.get(email="guest@example.com")
    consent_record(
        profile=guest,
        purpose="email_marketing",
        granted=True,
        source="checkout",
        wording_version="v3",
    )
    TopicPreference.objects.create(profile=guest, topic=_topic(), subscribed=True, updated_at=T0)

    # The member changes their account address to the one they used as a guest.
    user.email = "guest@example.com"
    user.save()
    merged = identify(user=user)

    assert merged.pk == member.pk
    assert not Profile.objects.filter(pk=guest.pk).exists()
    assert merged.email == "guest@example.com"
    assert set(Order.objects.values_list("external_id", flat=True).filter(profile=merged)) == {
        "A1",
        "G1",
    }
    assert merged.orders_count == 2
    assert ConsentRecord.objects.get().profile == merged
    assert merged.topic_choices.count() == 1
    # The old address still finds them.
    assert identify(email="old@example.com").pk == merged.pk


def test_another_accounts_email_is_never_merged_into_this_account(user_factory):
    alice, bob = user_factory(email="alice@example.com"), user_factory(email="bob@example.com")
    alice_profile, bob_profile = identify(user=alice), identify(user=bob)

    profile = identify(user=alice, email="bob@example.com")

    assert profile.pk == alice_profile.pk
    assert Profile.objects.get(pk=bob_profile.pk).email == "bob@example.com"
    assert profile.email == "alice@example.com"


def test_a_shared_computer_does_not_join_two_peoples_histories():
    ann = identify(email="ann@example.com", anonymous_id="family-pc")
    ben = identify(email="ben@example.com", anonymous_id="family-pc")

    assert ann.pk != ben.pk
    assert Profile.objects.count() == 2
    assert ProfileAlias.objects.get(value="family-pc").profile_id == ben.pk


def test_merge_keeps_the_later_choice_and_the_more_protective_pace(topic_factory):
    news, sale = topic_factory(), topic_factory()
    source = Profile.objects.create(
        email="a@example.com", frequency=Frequency.MONTHLY, paused_until=T0 + dt.timedelta(days=30)
    )
    target = Profile.objects.create(
        email="b@example.com", frequency=Frequency.WEEKLY, first_name="Bea"
    )
    source.first_name = "Anna"
    source.save()
    TopicPreference.objects.create(
        profile=source, topic=news, subscribed=False, updated_at=T0 + dt.timedelta(days=2)
    )
    TopicPreference.objects.create(profile=target, topic=news, subscribed=True, updated_at=T0)
    TopicPreference.objects.create(profile=source, topic=sale, subscribed=True, updated_at=T0)
    TopicPreference.objects.create(
        profile=target, topic=sale, subscribed=False, updated_at=T0 + dt.timedelta(days=1)
    )

    merged = profile_merge(source=source, target=target)

    choices = dict(merged.topic_choices.values_list("topic__slug", "subscribed"))
    assert choices == {news.slug: False, sale.slug: False}
    assert merged.frequency == Frequency.MONTHLY
    assert merged.paused_until == T0 + dt.timedelta(days=30)
    assert merged.first_name == "Bea"
    assert ProfileAlias.objects.get(kind="email").value == "a@example.com"


def test_bad_profile_attributes_are_refused_and_nothing_is_written():
    with pytest.raises(InvalidInput) as err:
        identify(email="ann@example.com", timezone="Mars/Olympus")
    assert err.value.field == "timezone"
    with pytest.raises(InvalidInput) as err:
        identify(email="ann@example.com", birthday="31-12-1990")
    assert err.value.field == "birthday"
    assert Profile.objects.count() == 0


def test_attributes_are_stored_on_the_profile():
    profile = identify(
        email="ann@example.com",
        first_name="Ann",
        timezone="Europe/Stockholm",
        country="se",
        birthday="1990-12-31",
        locale="sv-SE",
    )
    assert (profile.first_name, profile.timezone, profile.country, str(profile.birthday)) == (
        "Ann",
        "Europe/Stockholm",
        "SE",
        "1990-12-31",
    )


def test_request_identity_uses_the_logged_in_user_and_the_anonymous_cookie(rf, user_factory):
    request = rf.get("/")
    request.user = user_factory(email="Ann@Example.com")
    request.personalization_anonymous_id = "abc12345"
    identity = identity_from(request=request)
    assert identity.email == "ann@example.com"
    assert identity.anonymous_id == "abc12345"


def test_events_move_with_a_merge(product_factory):
    product = product_factory()
    anon = identify(anonymous_id="v9", consents={"personalization": "v1"}, consent_source="api")
    track("product_viewed", anonymous_id="v9", product_id=product.external_id)
    known = identify(email="z@example.com")
    assert anon.pk != known.pk
    merged = identify(email="z@example.com", anonymous_id="v9")
    assert merged.pk == known.pk
    assert Event.objects.get().profile_id == known.pk


def _topic():
    from personalization.models import Topic

    return Topic.objects.create(slug="news", name="News")


def test_a_new_account_using_another_accounts_address_gets_a_profile_of_its_own(user_factory):
    first = user_factory(email="shared@example.com")
    second = user_factory(email="shared@example.com")
    first_profile = identify(user=first)

    second_profile = identify(user=second)

    assert second_profile.pk != first_profile.pk
    assert second_profile.user == second
    assert Profile.objects.get(pk=first_profile.pk).user == first


def test_a_former_address_finds_the_customer_without_undoing_their_change_of_address(
    user_factory,
):
    user = user_factory(email="old@example.com")
    identify(user=user)
    user.email = "new@example.com"
    user.save()
    member = identify(user=user)
    assert member.email == "new@example.com"

    guest_checkout = identify(email="OLD@example.com")

    assert guest_checkout.pk == member.pk
    assert Profile.objects.get(pk=member.pk).email == "new@example.com"
    assert set(member.aliases.filter(kind="email").values_list("value", flat=True)) == {
        "old@example.com"
    }


# --- Staff accounts are not customers ---------------------------------------------------------


def test_a_staff_user_alone_is_nobody_to_record_anything_for(user_factory, product_factory):
    staff = user_factory(is_staff=True)
    product = product_factory()

    assert identify(user=staff, first_name="Clara") is None
    assert track("product_viewed", user=staff, product_id=product.external_id) is None
    assert cart_update(cart_id="c1", identity=Identity(user=staff), updated_at=T0, lines=[]) == (
        None,
        False,
    )
    with pytest.raises(NotACustomer) as err:
        profile_resolve(Identity(user=staff))
    assert err.value.field == "user"
    assert not Profile.objects.exists()


def test_a_superuser_is_not_a_customer_either(user_factory):
    boss = user_factory(is_superuser=True)
    assert identity_from(user=boss) == Identity(not_customer=True)
    assert identify(user=boss) is None


def test_an_order_naming_staff_and_an_email_goes_to_the_email_only(user_factory, product_factory):
    staff = user_factory(email="clerk@example.com", is_staff=True)
    place_order("o-staff", product_factory(), user=staff, email="clerk.home@example.com")

    profile = Profile.objects.get()
    assert (profile.email, profile.user) == ("clerk.home@example.com", None)


def test_an_existing_profile_of_a_staff_user_is_not_found_through_the_account(user_factory):
    staff = user_factory(is_staff=True)
    Profile.objects.create(email="old@example.com", user=staff)  # from before the rule
    assert profile_find(Identity(user=staff)) is None
    assert identify(user=staff) is None


def test_is_customer_on_the_adapter_decides(user_factory, settings):
    from personalization.adapter import DefaultAdapter

    class StaffBuys(DefaultAdapter):
        def is_customer(self, user):
            return True

    class NobodyWithAnAccount(DefaultAdapter):
        def is_customer(self, user):
            return False

    staff, customer = user_factory(is_staff=True), user_factory()
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "ADAPTER": StaffBuys}
    assert identify(user=staff).user == staff
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "ADAPTER": NobodyWithAnAccount}
    assert identify(user=customer) is None


# --- Who may change a profile's identity attributes -------------------------------------------


def test_a_guest_order_with_a_known_email_keeps_the_customers_name_and_counts_the_order(
    product_factory,
):
    customer = identify(email="ann@example.com", first_name="Ann", last_name="Smith")
    product = product_factory()

    place_order(
        "o-guest",
        product,
        email="ANN@example.com",
        first_name="Mallory",
        last_name="",
        birthday=dt.date(1990, 1, 1),
        locale="de",
    )

    customer.refresh_from_db()
    assert (customer.first_name, customer.last_name) == ("Ann", "Smith")
    # Nor are blanks filled in: a stranger must not be able to set someone's birthday.
    assert (customer.birthday, customer.locale) == (None, "")
    assert customer.orders_count == 1
    assert Order.objects.get(external_id="o-guest").profile == customer


def test_a_trusted_call_changes_the_attributes(product_factory):
    customer = identify(email="ann@example.com", first_name="Ann")

    place_order("o-1", product_factory(), email="ann@example.com", first_name="Anna", trusted=True)
    customer.refresh_from_db()
    assert customer.first_name == "Anna"

    identify(email="ann@example.com", locale="sv", trusted=True)
    customer.refresh_from_db()
    assert customer.locale == "sv"


def test_the_signed_in_customer_changes_their_own_attributes(user_factory):
    user = user_factory(email="ann@example.com")
    identify(user=user, first_name="Ann")

    profile = identify(user=user, first_name="Annie", birthday=dt.date(1990, 5, 1))

    assert (profile.first_name, profile.birthday) == ("Annie", dt.date(1990, 5, 1))


def test_the_first_email_a_profile_gets_brings_its_attributes():
    visitor = identify(anonymous_id="device1", first_name="Nobody")
    assert visitor.first_name == ""  # an anonymous call names no one

    guest = identify(anonymous_id="device1", email="new@example.com", first_name="Nina")

    assert guest.pk == visitor.pk
    assert (guest.email, guest.first_name) == ("new@example.com", "Nina")
    assert identify(email="fresh@example.com", first_name="Fred").first_name == "Fred"


def test_an_anonymous_device_cannot_carry_attributes_into_a_known_profile():
    customer = identify(email="ann@example.com")
    identify(anonymous_id="device2", first_name="Mallory", consents={"personalization": "v1"})

    profile = identify(anonymous_id="device2", email="ann@example.com", first_name="Mallory")

    assert profile.pk == customer.pk
    assert profile.first_name == ""


@pytest.mark.parametrize("trusted", ["yes", 1, None])
def test_trusted_is_a_real_boolean(trusted):
    with pytest.raises(InvalidInput) as err:
        identify(email="ann@example.com", first_name="Ann", trusted=trusted)
    assert err.value.field == "trusted"
    assert not Profile.objects.exists()


def test_bad_input_from_a_staff_user_is_still_refused(user_factory):
    staff = user_factory(is_staff=True)
    with pytest.raises(InvalidInput) as err:
        identify(user=staff, birthday="next year")
    assert err.value.field == "birthday"
    with pytest.raises(InvalidInput) as err:
        cart_update(
            cart_id="c1",
            identity=Identity(user=staff),
            updated_at=T0,
            lines=[{"product_id": "p", "quantity": 0, "unit_price": "1"}],
        )
    assert err.value.field == "lines[0].quantity"
    with pytest.raises(InvalidInput) as err:
        track("product_viewed", user=staff, occurred_at="soon")
    assert err.value.field == "occurred_at"


def test_another_address_beside_an_account_is_not_the_accounts(user_factory, product_factory):
    product = product_factory()
    ann = user_factory(email="ann@example.com")
    account = identify(user=ann, first_name="Ann")
    bob = identify(email="bob@example.com", first_name="Bob")  # a guest's profile

    # Signed in as Ann, someone types Bob's address at checkout.
    place_order("o-typed", product, user=ann, email="bob@example.com", first_name="Annie")

    account.refresh_from_db()
    assert (account.email, account.first_name) == ("ann@example.com", "Annie")
    assert Order.objects.get(external_id="o-typed").profile == account
    bob.refresh_from_db()  # not merged into Ann's account, nor renamed
    assert (bob.email, bob.first_name, bob.orders_count) == ("bob@example.com", "Bob", 0)
    assert not ProfileAlias.objects.filter(value="bob@example.com").exists()


def test_server_code_vouching_for_an_address_beside_the_account_applies_it(user_factory):
    ann = user_factory(email="ann@example.com")
    identify(user=ann)

    profile = identify(user=ann, email="ann.new@example.com", trusted=True)

    assert profile.email == "ann.new@example.com"
    assert identify(email="ann@example.com").pk == profile.pk  # the old address still finds her
