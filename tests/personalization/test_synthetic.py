import datetime as dt
import hashlib
import io
import random
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal
from itertools import combinations

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, F

from personalization.adapter import DefaultAdapter
from personalization.consent import profiles_with_consent
from personalization.exceptions import UnconvertibleCurrency
from personalization.models import (
    Cart,
    CartLine,
    CartStatus,
    ConsentRecord,
    ConsentSource,
    Event,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Profile,
    ProfileAlias,
    PurchaseCycle,
    Topic,
    TopicPreference,
)
from personalization.synthetic import SyntheticDataExists, default_until, shop_data_generate
from personalization.synthetic.catalogue import Catalogue, _item
from personalization.synthetic.generate import TABLES
from personalization.synthetic.planner import (
    DAY,
    LOYAL,
    ONE_TIME,
    PlanSettings,
    loyal_mean_for,
    profile_plan,
)

pytestmark = pytest.mark.django_db
UNTIL = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def generate(**options):
    options = {"profiles": 150, "seed": 7, "products": 60, "until": UNTIL, **options}
    return shop_data_generate(**options)


def data_digest() -> str:
    """A digest of every generated row by natural keys: no primary keys, no write times."""
    profile_key = {pk: email for pk, email in Profile.objects.values_list("pk", "email")}
    for pk, value in ProfileAlias.objects.filter(kind="anonymous_id").values_list(
        "profile_id", "value"
    ):
        profile_key[pk] = profile_key[pk] or value
    keys = {
        Profile: profile_key,
        Product: dict(Product.objects.values_list("pk", "external_id")),
        Topic: dict(Topic.objects.values_list("pk", "slug")),
        Cart: dict(Cart.objects.values_list("pk", "external_id")),
        Order: dict(Order.objects.values_list("pk", "external_id")),
    }
    keys[ConsentRecord] = {
        pk: f"{profile_key[profile_id]}|{purpose}|{recorded_at.isoformat()}"
        for pk, profile_id, purpose, recorded_at in ConsentRecord.objects.values_list(
            "pk", "profile_id", "purpose", "recorded_at"
        )
    }
    digest = hashlib.sha256()
    for model in TABLES:
        fields = [
            field
            for field in model._meta.concrete_fields
            if not field.primary_key and field.name not in ("created_at", "updated_at")
        ]
        rows = []
        for values in model.objects.values_list(*(field.attname for field in fields)):
            row = []
            for field, value in zip(fields, values, strict=True):
                if field.is_relation and value is not None:
                    value = keys[field.related_model][value]
                row.append(repr(value))
            rows.append("|".join(row))
        digest.update(f"{model.__name__}:{len(rows)}\n".encode())
        for row in sorted(rows):
            digest.update(row.encode() + b"\n")
    return digest.hexdigest()


def wipe():
    Order.objects.all().delete()  # a deleted profile leaves its orders (detached, as erasure)
    Profile.objects.all().delete()  # cascades to everything else but products and topics
    Product.objects.all().delete()
    Topic.objects.all().delete()


# --- Determinism -------------------------------------------------------------------------------


def test_the_same_seed_and_options_give_identical_data_whatever_the_batch_size():
    report = generate()
    first = data_digest()
    assert report.counts["order"] > 0 and report.counts["event"] > 0
    wipe()
    generate(batch_size=9)  # other chunks and INSERT batches, same profiles
    assert data_digest() == first
    wipe()
    generate(seed=8)
    assert data_digest() != first


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_several_workers_write_the_same_data_as_one():
    generate(profiles=120, batch_size=40)
    one = data_digest()
    wipe()
    generate(profiles=120, batch_size=40, workers=2)
    assert data_digest() == one


@pytest.mark.postgres
def test_the_planner_sees_the_profiles_order_statistics_after_a_run():
    # Analysed before the stats rebuild, every last_order_at looked NULL to the planner, and
    # the lifecycle segments' first refresh chose plans for one row (minutes instead of s).
    from django.db import connection

    generate(profiles=60)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT null_frac FROM pg_stats WHERE tablename = 'personalization_profile' "
            "AND attname = 'last_order_at'"
        )
        (null_frac,) = cursor.fetchone()
    assert null_frac < 1


@pytest.mark.postgres
def test_the_planner_has_statistics_of_the_category_rows_after_a_run():
    # Unanalysed, the planner took every category for one product: rule segments over
    # categories chose plans for one row (docs/benchmarks.md, B1-rule).
    from django.db import connection

    generate(profiles=20)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stats WHERE tablename = 'personalization_productcategory'"
        )
        (columns,) = cursor.fetchone()
    assert columns > 0


def test_the_default_anchor_is_the_start_of_the_current_utc_day():
    now = dt.datetime(2026, 3, 9, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert default_until(now=now) == dt.datetime(2026, 3, 10, tzinfo=dt.UTC)


def test_times_follow_the_anchor_and_the_history_length():
    generate(months=6)
    placed = Order.objects.values_list("placed_at", flat=True)
    assert max(placed) < UNTIL
    assert min(placed) > UNTIL - dt.timedelta(days=6 * 31 + 1)
    assert max(Event.objects.values_list("occurred_at", flat=True)) < UNTIL
    assert max(Cart.objects.values_list("source_updated_at", flat=True)) < UNTIL
    assert max(ConsentRecord.objects.values_list("recorded_at", flat=True)) < UNTIL


# --- What it makes -----------------------------------------------------------------------------


def _settings(orders_per_profile: float = 5.0) -> PlanSettings:
    items = [
        _item(
            pk, Decimal("10.00"), "Coffee & Tea > Coffee", 30 if pk % 4 == 0 else None, True, False
        )
        for pk in range(1, 201)
    ]
    until = int(UNTIL.timestamp())
    return PlanSettings(
        seed=1,
        catalogue=Catalogue(items, currency="EUR", search_terms=["coffee"]),
        start=until - 548 * DAY,
        until=until,
        events_from=until - 90 * DAY,
        integration=until - 120 * DAY,
        loyal_mean=loyal_mean_for(orders_per_profile=orders_per_profile),
        double_opt_in=frozenset(),
        topics=((1, True),),
    )


@pytest.mark.parametrize("target", [5.0, 2.5])
def test_orders_per_profile_average_what_was_asked_and_most_customers_buy_once(target):
    settings = _settings(target)
    plans = [profile_plan(settings=settings, index=index) for index in range(4000)]
    average = sum(len(plan.orders) for plan in plans) / len(plans)
    assert target * 0.9 < average < target * 1.1
    buyers = Counter(len(plan.orders) for plan in plans if plan.orders)
    assert buyers.most_common(1)[0][0] == 1
    loyal = [plan for plan in plans if plan.kind == LOYAL]
    # Loyal customers re-buy a consumable at roughly its interval.
    rebuys = [
        (later.at - earlier.at) / DAY
        for plan in loyal
        for earlier, later in zip(plan.orders, plan.orders[1:], strict=False)
        if earlier.lines[0][0] is later.lines[0][0] and earlier.lines[0][0].repurchase_days
    ]
    assert rebuys and 25 < sorted(rebuys)[len(rebuys) // 2] < 45
    assert all(len(plan.orders) == 1 for plan in plans if plan.kind == ONE_TIME)


def test_profiles_look_like_a_shops_customers():
    generate()
    anonymous = Profile.objects.anonymous()
    assert anonymous.exists()
    for profile in anonymous:
        assert list(profile.aliases.values_list("kind", flat=True)) == ["anonymous_id"]
        assert not profile.orders.exists()
    identified = Profile.objects.identified()
    assert identified.filter(birthday__isnull=False).exists()
    assert identified.filter(birthday__isnull=True).exists()
    assert len(set(identified.values_list("timezone", flat=True))) >= 4
    assert len(set(identified.values_list("locale", flat=True))) >= 4
    assert all(email == email.lower() for email in identified.values_list("email", flat=True))
    assert Profile.objects.customers().count() < identified.count()
    assert TopicPreference.objects.exists() and Topic.objects.count() >= 3


def test_the_catalogue_has_one_sensitive_category_consumables_and_bestsellers():
    generate(products=100)
    sensitive = Product.objects.sensitive()
    assert sensitive.exists()
    assert {path.split(" > ")[0] for path in sensitive.values_list("category_path", flat=True)} == {
        "Health"
    }
    assert not sensitive.filter(is_sensitive=False).exists()
    assert Product.objects.repeat_purchases().count() >= 5
    # Kitchen goods are durable (their category rests after a purchase), coffee is repeat.
    cycles = dict(Product.objects.values_list("category_path", "purchase_cycle").distinct())
    assert cycles["Home > Kitchen"] == PurchaseCycle.DURABLE
    assert cycles["Coffee & Tea > Coffee"] == PurchaseCycle.REPEAT
    assert cycles["Clothing > Women"] == PurchaseCycle.UNKNOWN
    lines = Counter(OrderLine.objects.values_list("product_id", flat=True))
    top_tenth = sum(count for _, count in lines.most_common(10))
    assert top_tenth > 0.3 * sum(lines.values())
    # Someone bought the same consumable again.
    assert (
        OrderLine.objects.filter(product__repurchase_interval_days__isnull=False)
        .values("order__profile", "product")
        .annotate(n=Count("pk"))
        .filter(n__gte=2)
        .exists()
    )


def test_orders_include_cancelled_and_refunded_ones_and_totals_add_up():
    generate(profiles=200)
    statuses = set(Order.objects.values_list("status", flat=True))
    assert statuses == {OrderStatus.PLACED, OrderStatus.CANCELLED, OrderStatus.REFUNDED}
    for order in Order.objects.exclude(status=OrderStatus.PLACED):
        assert order.placed_at < order.status_changed_at < UNTIL
    for order in Order.objects.prefetch_related("lines")[:100]:
        assert order.total == sum(line.unit_price * line.quantity for line in order.lines.all())


def test_carts_come_in_every_state():
    generate(profiles=200)
    carts = Cart.objects.all()
    recent = UNTIL - dt.timedelta(days=7)
    assert carts.filter(status=CartStatus.OPEN, source_updated_at__gte=recent).exists()
    assert carts.filter(status=CartStatus.OPEN, source_updated_at__lt=recent).exists()
    emptied = carts.filter(status=CartStatus.EMPTIED)
    assert emptied.exists() and not CartLine.objects.filter(cart__in=emptied).exists()
    converted = carts.filter(status=CartStatus.CONVERTED)
    assert converted.exists()
    for cart in converted[:20]:
        order = cart.orders.get()
        assert (order.placed_at, order.total, order.profile_id) == (
            cart.source_updated_at,
            cart.total,
            cart.profile_id,
        )
    assert not carts.filter(status=CartStatus.OPEN, lines__isnull=True).exists()


def test_consent_follows_the_ledger_with_withdrawals_sources_and_wording():
    generate(profiles=200)
    records = ConsentRecord.objects.all()
    assert {ConsentSource.CHECKOUT, ConsentSource.SIGNUP, ConsentSource.IMPORT} <= set(
        records.values_list("source", flat=True)
    )
    assert records.filter(status="withdrawn").exists()
    assert not records.filter(wording_version="", status="granted").exists()
    states = Counter(
        profiles_with_consent(Profile.objects.all(), "email_marketing", name="state").values_list(
            "state", flat=True
        )
    )
    assert 0.4 < (states["granted"] + states["withdrawn"]) / 200 < 0.8


@pytest.mark.parametrize("double_opt_in", [False, True], ids=["single", "double opt-in"])
def test_events_only_for_profiles_holding_the_personalisation_consent(settings, double_opt_in):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DOUBLE_OPT_IN_PURPOSES": ["personalization"] if double_opt_in else [],
    }
    generate(profiles=200)
    states = dict(
        profiles_with_consent(Profile.objects.all(), "personalization", name="state").values_list(
            "pk", "state"
        )
    )
    with_events = set(Event.objects.values_list("profile_id", flat=True))
    assert with_events
    assert {states[pk] for pk in with_events} == {"granted"}
    assert Profile.objects.anonymous().filter(pk__in=with_events).exists()
    if double_opt_in:
        assert "pending" in states.values()
        confirmations = ConsentRecord.objects.filter(confirmed_at__isnull=False)
        assert confirmations.exists()
        # Each confirmation names the grant it confirms, as a real click on the link does.
        for confirmation in confirmations.select_related("confirms"):
            grant = confirmation.confirms
            assert (grant.profile_id, grant.purpose) == (
                confirmation.profile_id,
                confirmation.purpose,
            )
            assert grant.double_opt_in and grant.confirmed_at is None
            assert grant.recorded_at < confirmation.recorded_at
    # Anonymous visitors consent and withdraw through the shop's cookie banner.
    anonymous_sources = ConsentRecord.objects.filter(profile__email="").values_list(
        "source", flat=True
    )
    assert set(anonymous_sources) == {ConsentSource.BANNER}
    # Nothing was tracked before the consent that allows it.
    for pk in list(with_events)[:30]:
        granted_at = (
            ConsentRecord.objects.filter(profile_id=pk, purpose="personalization")
            .latest("recorded_at")
            .recorded_at
        )
        first_event = Event.objects.filter(profile_id=pk).earliest("occurred_at").occurred_at
        assert first_event >= granted_at
    names = set(Event.objects.values_list("name", flat=True))
    assert {"product_viewed", "added_to_cart", "checkout_started", "searched"} <= names


def test_profile_stats_agree_with_the_orders_generated(on_postgres):
    generate(profiles=120)
    orders: dict[int, list] = {}
    for profile_id, total, placed_at in Order.objects.filter(status="placed").values_list(
        "profile_id", "total", "placed_at"
    ):
        orders.setdefault(profile_id, []).append((total, placed_at))
    assert any(len(rows) > 1 for rows in orders.values())
    for profile in Profile.objects.all():
        rows = orders.get(profile.pk, [])
        spent = sum((total for total, _ in rows), Decimal(0))
        assert profile.orders_count == len(rows)
        assert profile.total_spent == spent
        assert profile.first_order_at == min((at for _, at in rows), default=None)
        assert profile.last_order_at == max((at for _, at in rows), default=None)
        average = (spent / len(rows)).quantize(Decimal("0.01"), ROUND_HALF_UP) if rows else 0
        if on_postgres:
            assert profile.average_order_value == average
        else:  # SQLite divides in floating point: a half cent may land either side
            assert abs(profile.average_order_value - average) <= Decimal("0.01")


# --- The command -------------------------------------------------------------------------------


def test_existing_catalogue_buys_only_the_products_already_mirrored(product_factory):
    existing = {
        product_factory(
            external_id="coffee",
            price=Decimal("9.50"),
            repurchase_interval_days=30,
            category_path="Coffee",
        ).pk,
        product_factory(external_id="mug", price=Decimal("12.00")).pk,
        product_factory(
            external_id="vitamins", price=Decimal("7.00"), category_path="Health > Vitamins"
        ).pk,
        product_factory(external_id="no-price", price=None).pk,
    }
    call_command("generate_shop_data", profiles=300, seed=42, existing_catalogue=True, verbosity=0)
    assert set(Product.objects.values_list("pk", flat=True)) == existing
    bought = set(OrderLine.objects.values_list("product_id", flat=True))
    in_carts = set(CartLine.objects.values_list("product_id", flat=True))
    viewed = set(Event.objects.exclude(product=None).values_list("product_id", flat=True))
    assert bought and bought | in_carts | viewed <= existing - {
        Product.objects.get(external_id="no-price").pk
    }


def test_existing_catalogue_with_no_products_is_a_clear_error():
    with pytest.raises(CommandError, match="no products"):
        call_command("generate_shop_data", profiles=10, existing_catalogue=True, verbosity=0)
    assert not Profile.objects.exists()


def test_running_twice_with_the_same_seed_is_refused_and_another_seed_adds_more():
    call_command(
        "generate_shop_data", profiles=60, seed=3, products=20, until="2026-06-01", verbosity=0
    )
    counts = {model: model.objects.count() for model in (Profile, Order, Product, Event)}
    with pytest.raises(CommandError, match="seed 3"):
        call_command("generate_shop_data", profiles=80, seed=3, products=20, verbosity=0)
    assert counts == {model: model.objects.count() for model in counts}
    with pytest.raises(SyntheticDataExists):
        generate(profiles=60, seed=3, products=20)

    call_command(
        "generate_shop_data", profiles=60, seed=4, products=20, until="2026-06-01", verbosity=0
    )
    assert Profile.objects.count() == 120
    assert Product.objects.count() == 40


def test_the_command_reports_progress_on_stderr_and_a_summary_on_stdout():
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "generate_shop_data",
        profiles=40,
        products=20,
        until="2026-06-01",
        batch_size=40,
        stdout=out,
        stderr=err,
    )
    assert "profiles" in err.getvalue() and "rows/s" in err.getvalue()
    assert "Generated" in out.getvalue() and "orderline" in out.getvalue()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"profiles": 0}, "at least one profile"),
        ({"profiles": 5, "products": 3}, "at least 13 products"),
        ({"profiles": 5, "until": "yesterday"}, "ISO 8601"),
        ({"profiles": 5, "seed": -1}, "seed"),
    ],
)
def test_bad_options_are_command_errors(options, message):
    with pytest.raises(CommandError, match=message):
        call_command("generate_shop_data", verbosity=0, **options)


def test_several_workers_need_postgresql(on_postgres):
    if on_postgres:
        pytest.skip("allowed on PostgreSQL")
    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command("generate_shop_data", profiles=5, workers=2, verbosity=0)


# --- Currency ----------------------------------------------------------------------------------


def test_generated_orders_and_carts_are_in_the_shop_currency():
    generate(profiles=40)
    assert set(Order.objects.values_list("currency", flat=True)) == {"EUR"}
    assert not Order.objects.exclude(shop_total=F("total")).exists()
    assert not Cart.objects.exclude(shop_total=F("total")).exists()


def test_another_currency_is_converted_at_the_adapters_rate(settings):
    class HalfRate(DefaultAdapter):
        def exchange_rate(self, **kwargs):
            return Decimal("0.5")

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "ADAPTER": HalfRate}
    generate(profiles=40, currency="USD")
    order = Order.objects.filter(total__gt=1).first()
    assert order.currency == "USD"
    assert order.shop_total == (order.total / 2).quantize(Decimal("0.01"), ROUND_HALF_UP)
    profile = order.profile
    assert profile.total_spent == sum(
        profile.orders.filter(status="placed").values_list("shop_total", flat=True), Decimal(0)
    )


def test_another_currency_without_rates_is_refused_before_anything_is_written():
    with pytest.raises(UnconvertibleCurrency):
        generate(profiles=10, currency="USD")
    assert not Profile.objects.exists()
    assert not Product.objects.exists()


def test_some_customers_have_traits_of_each_source_and_guesses_say_how_sure():
    from personalization.models import Trait

    report = generate()

    assert report.counts["trait"] == Trait.objects.count() > 0
    assert set(Trait.objects.values_list("source", flat=True)) == {"given", "shop", "inferred"}
    inferred = Trait.objects.filter(source="inferred")
    assert not inferred.filter(confidence__isnull=True).exists()
    assert set(inferred.values_list("key", flat=True)) == {"favourite_category"}
    assert not Trait.objects.filter(profile__email="").exists()  # no anonymous visitor


def top_department_share(lines: list[tuple[int, str]]) -> float:
    """The mean share of a customer's lines in their most-bought department."""
    departments = defaultdict(Counter)
    for profile_id, path in lines:
        departments[profile_id][path.split(" > ")[0]] += 1
    shares = [
        counts.most_common(1)[0][1] / counts.total()
        for counts in departments.values()
        if counts.total() >= 4
    ]
    return sum(shares) / len(shares)


def test_customers_have_a_taste_and_products_are_bought_with_their_companions():
    """What a recommender has to find: repeat buyers return to one department, and some pairs
    of products share baskets far more often than their popularity alone would make them."""
    generate(profiles=600, products=150)
    lines = list(
        OrderLine.objects.exclude(product__purchase_cycle=PurchaseCycle.REPEAT).values_list(
            "order__profile_id", "product__category_path"
        )
    )
    # The same lines dealt out at random: the share a customer without a taste would show.
    shuffled = [path for _, path in lines]
    random.Random(1).shuffle(shuffled)
    assert (
        top_department_share(lines)
        > top_department_share(
            [(profile_id, path) for (profile_id, _), path in zip(lines, shuffled, strict=True)]
        )
        + 0.1
    )

    baskets = defaultdict(set)
    for order_id, product_id in OrderLine.objects.values_list("order_id", "product_id"):
        baskets[order_id].add(product_id)
    bought = Counter(product for basket in baskets.values() for product in basket)
    pairs = Counter(pair for basket in baskets.values() for pair in combinations(sorted(basket), 2))
    orders = len(baskets)
    # Lift: how much more often a pair shares a basket than independent lines would give.
    lifts = sorted(
        (
            together * orders / (bought[a] * bought[b])
            for (a, b), together in pairs.items()
            if together >= 3
        ),
        reverse=True,
    )
    assert len(lifts) >= 20 and lifts[19] > 5
