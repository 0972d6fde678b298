"""Write a synthetic shop to the database in streaming chunks with ``bulk_create``."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import multiprocessing.util
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP
from typing import Any

from django.db import connection, connections, reset_queries, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..conf import app_settings
from ..exceptions import InvalidInput
from ..models import (
    Cart,
    CartLine,
    ConsentRecord,
    ConsentStatus,
    Event,
    Order,
    OrderLine,
    Product,
    ProductCategory,
    Profile,
    ProfileAlias,
    Topic,
    TopicPreference,
    Trait,
)
from ..money import CENT, exchange_rate, shop_currency
from ..stats import profile_stats_rebuild
from ..validation import aware_datetime
from .catalogue import Catalogue, catalogue_generate, catalogue_load
from .planner import (
    DAY,
    PlanSettings,
    ProfilePlan,
    loyal_mean_for,
    profile_identity,
    profile_plan,
    profile_rng,
)
from .vocabulary import CATEGORIES, TOPICS

MONTH_DAYS = 30.4375
# The app was "installed" this long before --until: older orders are imports, carts are
# mirrored only since then.
INTEGRATION_DAYS = 120
# Profiles whose identity is checked against the database before anything is written.
RERUN_PROBE = 500
MAX_SEED = 2**31 - 1

# The tables written, in the order their rows are counted in reports.
TABLES: tuple[type, ...] = (
    Product,
    Topic,
    Profile,
    ProfileAlias,
    ConsentRecord,
    TopicPreference,
    Cart,
    CartLine,
    Order,
    OrderLine,
    Event,
    Trait,
)


class SyntheticDataExists(InvalidInput):
    """The database already holds data generated with this seed; nothing was written."""


@dataclass(frozen=True)
class Progress:
    """Where generation stands, passed to the ``progress`` callback."""

    phase: str  # "catalogue", "profiles" or "statistics"
    done: int  # profiles written so far (the other phases: 0 or 1)
    total: int
    rows: int  # rows inserted so far, all tables
    seconds: float  # since the start


@dataclass
class GenerationReport:
    seed: int
    until: dt.datetime
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


def default_until(*, now: dt.datetime | None = None) -> dt.datetime:
    """The default anchor: the start of the current day in UTC."""
    now = (now or timezone.now()).astimezone(dt.UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _check(condition: bool, message: str, field: str) -> None:
    if not condition:
        raise InvalidInput(message, field=field)


def shop_data_generate(
    *,
    profiles: int,
    seed: int = 0,
    products: int = 500,
    months: int = 18,
    until: dt.datetime | None = None,
    existing_catalogue: bool = False,
    orders_per_profile: float = 5.0,
    event_days: int = 90,
    currency: str | None = None,
    batch_size: int | None = None,
    workers: int = 1,
    progress: Callable[[Progress], None] | None = None,
) -> GenerationReport:
    """Generate a synthetic shop: catalogue, profiles, consent, orders, carts and events.

    The same arguments (``until`` included) on the same database state give the same data.
    Profiles are planned and written in chunks of ``batch_size // 4`` profiles, each chunk in
    its own transaction, so memory stays flat at any scale; ``workers`` > 1 (PostgreSQL only)
    writes chunks from that many processes at once. Raises :class:`SyntheticDataExists`, before
    writing anything, when this seed was already used on this database.
    """
    batch_size = batch_size or app_settings.BATCH_SIZE
    _check(profiles >= 1, _("Generate at least one profile."), "profiles")
    _check(
        0 <= seed <= MAX_SEED,
        _("The seed is a whole number from 0 to %(max)d.") % {"max": MAX_SEED},
        "seed",
    )
    _check(
        existing_catalogue or products >= len(CATEGORIES),
        _("Generate at least %(min)d products (one per category).") % {"min": len(CATEGORIES)},
        "products",
    )
    _check(1 <= months <= 120, _("Between 1 and 120 months of history."), "months")
    _check(
        0 < orders_per_profile <= 100,
        _("Orders per profile is above 0 and at most 100."),
        "orders_per_profile",
    )
    _check(event_days >= 0, _("Event days cannot be negative."), "event_days")
    _check(batch_size >= 1, _("The batch size is at least 1."), "batch_size")
    _check(
        connection.features.can_return_rows_from_bulk_insert,
        _(
            "The generator needs a database that returns new ids from a bulk insert "
            "(PostgreSQL, or SQLite 3.35 or later)."
        ),
        "profiles",
    )
    _check(workers >= 1, _("At least one worker."), "workers")
    _check(
        workers == 1 or connection.vendor == "postgresql",
        _("Several workers need PostgreSQL; this database allows one writer."),
        "workers",
    )
    _check(
        workers == 1 or not connection.in_atomic_block,
        _("Several workers cannot run inside a transaction: each writes its own."),
        "workers",
    )
    until = aware_datetime(until, field="until") if until is not None else default_until()
    currency = currency or shop_currency()
    report = GenerationReport(seed=seed, until=until)
    report.counts = {model._meta.model_name: 0 for model in TABLES}
    started = time.monotonic()

    def tell(phase: str, done: int, total: int) -> None:
        if progress is not None:
            progress(Progress(phase, done, total, report.rows, time.monotonic() - started))

    until_ts = int(until.timestamp())
    start_ts = until_ts - int(months * MONTH_DAYS * DAY)
    _refuse_rerun(seed=seed, profiles=profiles)
    tell("catalogue", 0, 1)
    with transaction.atomic():
        if existing_catalogue:
            catalogue = catalogue_load(seed=seed, currency=currency)
        else:
            catalogue, created = catalogue_generate(
                seed=seed, count=products, currency=currency, until=until, batch_size=batch_size
            )
            report.counts["product"] = created
        # Orders and carts in another currency than the shop's count converted, as live ones do.
        catalogue.shop_rate = exchange_rate(currency=catalogue.currency, at=until)
        topics = _topics_ensure(report)
    settings = PlanSettings(
        seed=seed,
        catalogue=catalogue,
        start=start_ts,
        until=until_ts,
        events_from=max(start_ts, until_ts - event_days * DAY),
        integration=max(start_ts, until_ts - INTEGRATION_DAYS * DAY),
        loyal_mean=loyal_mean_for(orders_per_profile=orders_per_profile),
        double_opt_in=frozenset(app_settings.DOUBLE_OPT_IN_PURPOSES),
        topics=topics,
    )
    tell("catalogue", 1, 1)
    chunk = max(1, batch_size // 4)
    ranges = [(begin, min(begin + chunk, profiles)) for begin in range(0, profiles, chunk)]
    done, lowest_pk, highest_pk = 0, None, None
    with _chunk_results(settings, ranges, batch_size=batch_size, workers=workers) as results:
        for (begin, end), counts, first_pk, last_pk in results:
            for name, count in counts.items():
                report.counts[name] += count
            lowest_pk = first_pk if lowest_pk is None else min(lowest_pk, first_pk)
            highest_pk = last_pk if highest_pk is None else max(highest_pk, last_pk)
            done += end - begin
            tell("profiles", done, profiles)
    tell("statistics", 0, 1)
    _analyze()
    with transaction.atomic():
        profile_stats_rebuild(
            profiles=Profile.objects.filter(pk__gte=lowest_pk, pk__lte=highest_pk)
        )
    # Again for the profiles: the rebuild filled their order statistics, which the lifecycle
    # segments filter on (left as analysed above, the planner takes them all for NULL).
    _analyze(Profile)
    tell("statistics", 1, 1)
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def _chunk_results(
    settings: PlanSettings, ranges: list[tuple[int, int]], *, batch_size: int, workers: int
) -> Iterator[Iterable[tuple]]:
    """Write every range of profiles, here or in worker processes; yield each chunk's result."""
    if workers == 1:
        yield (_chunk_write(settings, begin, end, batch_size) for begin, end in ranges)
        return
    # Forked children must not share the parent's database connection: close it first, and
    # each child opens its own.
    connections.close_all()
    context = multiprocessing.get_context("fork")
    pool = context.Pool(workers, initializer=_worker_init, initargs=(settings, batch_size))
    try:
        yield pool.imap_unordered(_worker_chunk, ranges)
        pool.close()  # workers finish and close their connections
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


_worker_state: dict = {}


def _worker_init(settings: PlanSettings, batch_size: int) -> None:
    _worker_state.update(settings=settings, batch_size=batch_size)
    multiprocessing.util.Finalize(None, connections.close_all, exitpriority=10)


def _worker_chunk(bounds: tuple[int, int]) -> tuple:
    return _chunk_write(_worker_state["settings"], *bounds, _worker_state["batch_size"])


def _chunk_write(settings: PlanSettings, begin: int, end: int, batch_size: int) -> tuple:
    """Plan and write profiles ``begin``…``end - 1`` in one transaction."""
    plans = [profile_plan(settings=settings, index=index) for index in range(begin, end)]
    counts = {model._meta.model_name: 0 for model in TABLES}
    with transaction.atomic():
        pks = _write_chunk(
            plans, catalogue=settings.catalogue, batch_size=batch_size, counts=counts
        )
    reset_queries()  # with DEBUG on, the query log would otherwise hold every INSERT
    return (begin, end), counts, pks[0], pks[-1]


def _refuse_rerun(*, seed: int, profiles: int) -> None:
    """Raise SyntheticDataExists if the first profiles of this seed are already there."""
    emails, aliases = [], []
    for index in range(min(profiles, RERUN_PROBE)):
        identity = profile_identity(profile_rng(seed=seed, index=index), seed=seed, index=index)
        fields, profile_aliases = identity[2], identity[3]
        if fields.get("email"):
            emails.append(fields["email"])
        aliases.extend(alias[1] for alias in profile_aliases)
    found = (
        Profile.objects.filter(email__in=emails).values_list("email", flat=True).first()
        or ProfileAlias.objects.filter(value__in=aliases).values_list("value", flat=True).first()
    )
    if found:
        raise SyntheticDataExists(
            _(
                "This database already holds data generated with seed %(seed)d (for example "
                "%(example)s). Use another --seed to add more customers, or start from an empty "
                "database."
            )
            % {"seed": seed, "example": found},
            field="seed",
        )


def _topics_ensure(report: GenerationReport) -> tuple[tuple[int, bool], ...]:
    topics = []
    for position, (slug, name, description, default) in enumerate(TOPICS):
        topic, created = Topic.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "description": description,
                "subscribed_by_default": default,
                "position": position,
            },
        )
        report.counts["topic"] += created
        if topic.is_active:
            topics.append((topic.pk, topic.subscribed_by_default))
    return tuple(topics)


def _at(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _maker(model: type, attnames: tuple[str, ...]) -> Callable[..., Any]:
    """A constructor taking ``attnames`` positionally: about twice as fast as keywords.

    Fields left out get their default (auto timestamps are filled in by ``bulk_create``);
    leaving out a field whose default is callable is refused, so one default object is never
    shared between rows.
    """
    fields = model._meta.concrete_fields
    position = {model_field.attname: index for index, model_field in enumerate(fields)}
    template: list[Any] = []
    for model_field in fields:
        if model_field.attname in attnames or model_field.primary_key:
            template.append(None)
        elif model_field.has_default() and callable(model_field.default):
            raise TypeError(f"{model.__name__}.{model_field.attname} must be given")
        else:
            template.append(model_field.get_default())
    slots = tuple(position[name] for name in attnames)

    def make(*values: Any) -> Any:
        args = template.copy()
        for slot, value in zip(slots, values, strict=True):
            args[slot] = value
        return model(*args)

    return make


_alias = _maker(ProfileAlias, ("profile_id", "kind", "value"))
_consent = _maker(
    ConsentRecord,
    (
        "confirms_id",
        "profile_id",
        "purpose",
        "status",
        "source",
        "wording_version",
        "recorded_at",
        "written_at",
        "double_opt_in",
        "confirmed_at",
        "email",
        "ip_address",
    ),
)
_choice = _maker(TopicPreference, ("profile_id", "topic_id", "subscribed", "updated_at"))
_cart = _maker(
    Cart,
    (
        "external_id",
        "profile_id",
        "status",
        "currency",
        "total",
        "shop_total",
        "source_updated_at",
    ),
)
_cart_line = _maker(CartLine, ("cart_id", "product_id", "quantity", "unit_price"))
_order = _maker(
    Order,
    (
        "external_id",
        "profile_id",
        "placed_at",
        "total",
        "currency",
        "shop_total",
        "status",
        "status_changed_at",
        "cart_id",
        "source",
    ),
)
_order_line = _maker(OrderLine, ("order_id", "product_id", "quantity", "unit_price"))
_event = _maker(Event, ("profile_id", "name", "occurred_at", "product_id", "properties"))
_trait = _maker(
    Trait, ("profile_id", "key", "value", "source", "confidence", "recorded_at", "updated_at")
)


def _write_chunk(
    plans: list[ProfilePlan], *, catalogue: Catalogue, batch_size: int, counts: dict[str, int]
) -> list[int]:
    """Insert the chunk's rows, parents first; return the new profiles' pks."""
    currency, rate = catalogue.currency, catalogue.shop_rate

    def in_shop_currency(amount):
        return amount if rate == 1 else (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)

    profiles = []
    for plan in plans:
        fields = plan.fields
        if "paused_until" in fields:
            fields = {**fields, "paused_until": _at(fields["paused_until"])}
        profiles.append(Profile(**fields))
    _insert(Profile, profiles, batch_size, counts)

    aliases, consents, confirmations, choices, carts, traits = [], [], [], [], [], []
    double_opt_in = frozenset(app_settings.DOUBLE_OPT_IN_PURPOSES)
    for plan, profile in zip(plans, profiles, strict=True):
        pid, email = profile.pk, profile.email
        aliases += [_alias(pid, kind, value) for kind, value in plan.aliases]
        for purpose, status, source, wording, at, confirmed, ip in plan.consents:
            record = _consent(
                None,
                pid,
                purpose,
                status,
                source,
                wording,
                _at(at),
                _at(at),  # the simulated history was written as it happened
                status == ConsentStatus.GRANTED and purpose in double_opt_in,
                _at(confirmed) if confirmed else None,
                email,
                ip,
            )
            if confirmed:
                # The planner appends a confirmation right after the grant it confirms.
                confirmations.append((record, consents[-1]))
            else:
                consents.append(record)
        choices += [
            _choice(pid, topic, subscribed, _at(at)) for topic, subscribed, at in plan.topic_choices
        ]
        traits += [
            _trait(pid, key, value, source, confidence, _at(at), _at(at))
            for key, value, source, confidence, at in plan.traits
        ]
        carts += [
            _cart(
                cart.external_id,
                pid,
                cart.status,
                currency,
                cart.total,
                in_shop_currency(cart.total),
                _at(cart.at),
            )
            for cart in plan.carts
        ]
    _insert(ProfileAlias, aliases, batch_size, counts)
    _insert(ConsentRecord, consents, batch_size, counts)
    for confirmation, grant in confirmations:
        confirmation.confirms_id = grant.pk
    _insert(ConsentRecord, [confirmation for confirmation, _ in confirmations], batch_size, counts)
    _insert(TopicPreference, choices, batch_size, counts)
    _insert(Trait, traits, batch_size, counts)
    _insert(Cart, carts, batch_size, counts)

    orders, cart_lines, cart_offset = [], [], 0
    for plan, profile in zip(plans, profiles, strict=True):
        for number, cart_plan in enumerate(plan.carts):
            cart_pk = carts[cart_offset + number].pk
            cart_lines += [
                _cart_line(cart_pk, item.pk, quantity, price)
                for item, quantity, price in cart_plan.lines
            ]
        orders += [
            _order(
                order.external_id,
                profile.pk,
                _at(order.at),
                order.total,
                currency,
                in_shop_currency(order.total),
                order.status,
                _at(order.status_at) if order.status_at else None,
                carts[cart_offset + order.cart].pk if order.cart is not None else None,
                order.source,
            )
            for order in plan.orders
        ]
        cart_offset += len(plan.carts)
    _insert(CartLine, cart_lines, batch_size, counts)
    del cart_lines, carts
    _insert(Order, orders, batch_size, counts)

    order_lines, events, order_iter = [], [], iter(orders)
    for plan, profile in zip(plans, profiles, strict=True):
        for order_plan in plan.orders:
            order_pk = next(order_iter).pk
            order_lines += [
                _order_line(order_pk, item.pk, quantity, price)
                for item, quantity, price in order_plan.lines
            ]
        events += [
            _event(profile.pk, name, _at(at), product, properties)
            for name, at, product, properties in plan.events
        ]
    _insert(OrderLine, order_lines, batch_size, counts)
    _insert(Event, events, batch_size, counts)
    return [profile.pk for profile in profiles]


def _insert(model: type, objs: list, batch_size: int, counts: dict[str, int]) -> None:
    if objs:
        model.objects.bulk_create(objs, batch_size=batch_size)
        counts[model._meta.model_name] += len(objs)


def _analyze(*models) -> None:
    """Refresh the planner's statistics on PostgreSQL (of ``models``, default every table
    written, the catalogue's category rows included), so the stats rebuild and what runs next
    use the indexes."""
    if connection.vendor != "postgresql":
        return
    tables = ", ".join(
        connection.ops.quote_name(model._meta.db_table)
        for model in models or (*TABLES, ProductCategory)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")
