"""Plan one synthetic customer's whole history, in plain Python, from their own seeded RNG.

Each profile draws from ``random.Random((seed << 40) | index)``, so a profile's history
depends only on the seed, its index and the options — never on the chunk size or on the
profiles planned before it. Times are whole seconds since the epoch until the writer turns
them into datetimes.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from bisect import bisect
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate

from ..models import (
    CartStatus,
    ConsentSource,
    ConsentStatus,
    EventName,
    Frequency,
    Greeting,
    IngestSource,
    OrderStatus,
    ProfileAlias,
    Purpose,
)
from .catalogue import Catalogue, Item
from .vocabulary import EMAIL_DOMAIN_TLDS, IP_PREFIXES, MARKETS, VIEW_SOURCES, Market

DAY = 86_400
HOUR = 3_600

# Who the profiles are (shares of all profiles). Buyers are 80%: half buy once, a fifth buy
# a few times, the rest are repeat buyers whose order count is set by --orders-per-profile.
ANONYMOUS, LEAD, ONE_TIME = "anonymous", "lead", "one_time"
OCCASIONAL, LOYAL = "occasional", "loyal"
KINDS = ((ANONYMOUS, 0.08), (LEAD, 0.12), (ONE_TIME, 0.40), (OCCASIONAL, 0.16), (LOYAL, 0.24))
OCCASIONAL_MEAN = 3  # randint(2, 4)
MIN_LOYAL_MEAN = 3.0
LAPSED_SHARE = {OCCASIONAL: 0.30, LOYAL: 0.20}
MIN_GAP_DAYS = {OCCASIONAL: 14, LOYAL: 7}
ROUTINE_SHARE = {OCCASIONAL: 0.35, LOYAL: 0.70}

CONSENT_SHARE = {  # of profiles who have an email address (anonymous visitors: personalisation)
    Purpose.EMAIL_MARKETING: 0.65,
    Purpose.PERSONALIZATION: 0.45,
    Purpose.AD_AUDIENCES: 0.22,
}
WITHDRAWN_SHARE = 0.10
CONFIRMED_SHARE = 0.85  # of grants needing double opt-in
CONVERTED_CART_SHARE = 0.5  # of orders placed since the cart mirror went live
CANCELLED_SHARE, REFUNDED_SHARE = 0.02, 0.015
DISCOUNTED_SHARE = 0.12
# Customers have a taste: most buyers come back to one department (the rest of their lines follow
# the shop's bestsellers), and a second line often goes with the first (a mug with the coffee).
TASTE_SHARE = 0.6
COMPANION_SHARE = 0.5

# Orders by local hour of day: quiet nights, a lunch bump, busy evenings.
_HOUR_CUM = list(
    accumulate((1, 0.5, 0.3, 0.2, 0.2, 0.3, 1, 2, 3, 4, 5, 6, 7, 6, 5, 5, 6, 7, 8, 9, 9, 8, 5, 2))
)
_KIND_CUM = list(accumulate(share for _, share in KINDS))
_MARKET_CUM = list(accumulate(market.weight for market in MARKETS))
_LINES_CUM = list(accumulate((0.50, 0.28, 0.14, 0.08)))
_ASCII = str.maketrans({"ı": "i", "ß": "ss", "ø": "o", "æ": "ae", " ": "", "'": ""})


@dataclass(frozen=True, slots=True)
class PlanSettings:
    """Everything a plan depends on besides the profile's index."""

    seed: int
    catalogue: Catalogue
    start: int  # first possible activity (epoch seconds)
    until: int  # the anchor: nothing happens at or after it
    events_from: int  # browse events are kept for this window only (retention)
    integration: int  # the app was installed here: orders before it are imports, carts after
    loyal_mean: float
    double_opt_in: frozenset[str]
    topics: tuple[tuple[int, bool], ...]  # (pk, subscribed_by_default)


@dataclass(slots=True)
class CartPlan:
    external_id: str
    status: str
    at: int
    lines: list[tuple[Item, int, Decimal]]
    total: Decimal


@dataclass(slots=True)
class OrderPlan:
    external_id: str
    at: int
    status: str
    status_at: int | None
    source: str
    lines: list[tuple[Item, int, Decimal]]
    total: Decimal
    cart: int | None = None  # index into the profile's carts


@dataclass(slots=True)
class ProfilePlan:
    index: int
    kind: str
    fields: dict
    aliases: list[tuple[str, str]] = field(default_factory=list)
    # (purpose, status, source, wording_version, recorded_at, confirmed_at, ip_address)
    consents: list[tuple] = field(default_factory=list)
    topic_choices: list[tuple[int, bool, int]] = field(default_factory=list)
    carts: list[CartPlan] = field(default_factory=list)
    orders: list[OrderPlan] = field(default_factory=list)
    events: list[tuple[str, int, int | None, dict]] = field(default_factory=list)
    # (key, value, source, confidence, recorded_at)
    traits: list[tuple[str, str | int, str, Decimal | None, int]] = field(default_factory=list)


def loyal_mean_for(*, orders_per_profile: float) -> float:
    """Mean orders of a repeat buyer so that all profiles average ``orders_per_profile``."""
    shares = dict(KINDS)
    others = shares[ONE_TIME] * 1 + shares[OCCASIONAL] * OCCASIONAL_MEAN
    return max(MIN_LOYAL_MEAN, (orders_per_profile - others) / shares[LOYAL])


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower().translate(_ASCII))
    return text.encode("ascii", "ignore").decode()


def profile_rng(*, seed: int, index: int) -> random.Random:
    return random.Random((seed << 40) | index)


def profile_identity(
    rng: random.Random, *, seed: int, index: int
) -> tuple[str, Market, dict, list]:
    """The first draws of every profile: kind, market, name, email and aliases."""
    kind = KINDS[bisect(_KIND_CUM, rng.random() * _KIND_CUM[-1], hi=len(KINDS) - 1)][0]
    market = MARKETS[bisect(_MARKET_CUM, rng.random() * _MARKET_CUM[-1], hi=len(MARKETS) - 1)]
    first, last = rng.choice(market.first_names), rng.choice(market.last_names)
    aliases: list[tuple[str, str]] = []
    if kind == ANONYMOUS or rng.random() < 0.6:
        # Shaped like the middleware's cookie (32 hex digits), prefixed so a seed's visitors
        # can be found again.
        aliases.append((ProfileAlias.Kind.ANONYMOUS_ID, f"g{seed}-{rng.getrandbits(128):032x}"))
    if kind == ANONYMOUS:
        return kind, market, {"locale": market.locale}, aliases
    tld = EMAIL_DOMAIN_TLDS[index % len(EMAIL_DOMAIN_TLDS)]
    local = f"{_ascii(first)}.{_ascii(last)}.{index}"
    email = f"{local}@s{seed}.example.{tld}"
    if rng.random() < 0.02:
        aliases.append((ProfileAlias.Kind.EMAIL, f"{local}@old.s{seed}.example.{tld}"))
    fields = {
        "email": email,
        "first_name": first,
        "last_name": last,
        "locale": market.locale,
        "timezone": market.timezone,
        "country": market.country,
    }
    return kind, market, fields, aliases


def _daytime(ts: int, market: Market, rng: random.Random, until: int) -> int:
    """Move ``ts`` to a plausible local hour of the same day, staying before ``until``."""
    offset = market.utc_offset_hours * HOUR
    local = ts + offset
    hour = bisect(_HOUR_CUM, rng.random() * _HOUR_CUM[-1], hi=23)
    moved = local - local % DAY + hour * HOUR + rng.randrange(HOUR) - offset
    while moved >= until:
        moved -= DAY
    return moved


def _lines(
    rng: random.Random,
    catalogue: Catalogue,
    *,
    discounted: bool,
    taste: str | None,
    first: Item | None = None,
    available_only: bool = False,
) -> list:
    picked: list[Item] = []
    if first is not None:
        picked.append(first)
        wanted = 1 + (rng.random() < 0.35)
    else:
        wanted = 1 + bisect(_LINES_CUM, rng.random() * _LINES_CUM[-1], hi=3)
        if taste is not None and rng.random() < TASTE_SHARE:
            picked.append(catalogue.pick_in(rng, taste))
    draw = catalogue.pick_available if available_only else catalogue.pick
    for _ in range(wanted * 3):
        if len(picked) >= wanted:
            break
        item = None
        if picked and rng.random() < COMPANION_SHARE:
            item = catalogue.companion_of(rng, picked[0])
        item = item or draw(rng)
        if item not in picked:
            picked.append(item)
    lines = []
    for item in picked:
        if item.repurchase_days:
            quantity = 1 if rng.random() < 0.6 else (2 if rng.random() < 0.75 else 3)
        else:
            quantity = 1 if rng.random() < 0.9 else 2
        lines.append((item, quantity, item.discounted if discounted else item.price))
    return lines


def _total(lines: list) -> Decimal:
    return sum((price * quantity for _, quantity, price in lines), Decimal(0))


def _order_times(
    rng: random.Random, s: PlanSettings, kind: str, market: Market, first_seen: int
) -> tuple[list[tuple[int, Item | None]], bool, int]:
    """Order times (with the consumable re-bought, if any), lapsed or not, and first seen."""
    if kind == ONE_TIME:
        at = first_seen + rng.randrange(2 * DAY)
        return [(_daytime(min(at, s.until - 1), market, rng, s.until), None)], False, first_seen
    if kind == OCCASIONAL:
        count = rng.randint(2, 4)
    else:
        count = 3 + round(rng.expovariate(1 / (s.loyal_mean - 3))) if s.loyal_mean > 3 else 3
    lapsed = rng.random() < LAPSED_SHARE[kind]
    end = s.until - (181 * DAY + rng.randrange(180 * DAY) if lapsed else 0)
    gap = MIN_GAP_DAYS[kind] * DAY
    room = max(end - s.start, gap)
    count = max(2, min(count, room // gap))
    first_seen = s.start + rng.randrange(max(room - count * gap, 1))
    routine = None
    if rng.random() < ROUTINE_SHARE[kind]:
        routine = s.catalogue.pick_consumable(rng)
    times: list[tuple[int, Item | None]] = [(first_seen, routine)]
    if routine is not None:
        at = first_seen
        while len(times) < count:
            at += int(routine.repurchase_days * DAY * rng.uniform(0.85, 1.35))
            if at >= end:
                break
            times.append((at, routine))
    while len(times) < count:
        times.append((first_seen + rng.randrange(max(end - first_seen, 1)), None))
    placed = sorted(
        ((_daytime(at, market, rng, s.until), item) for at, item in times),
        key=lambda pair: pair[0],
    )
    return placed, lapsed, min(first_seen, placed[0][0])


def profile_plan(*, settings: PlanSettings, index: int) -> ProfilePlan:
    """The whole synthetic history of profile ``index``."""
    s = settings
    rng = profile_rng(seed=s.seed, index=index)
    kind, market, fields, aliases = profile_identity(rng, seed=s.seed, index=index)
    plan = ProfilePlan(index=index, kind=kind, fields=fields, aliases=aliases)
    # From its own stream, so that having a taste leaves the profile's other draws as they were.
    taste = s.catalogue.pick_taste(random.Random(((s.seed << 40) | index) ^ _TASTE_SALT))
    span = s.until - s.start
    if kind == ANONYMOUS:
        first_seen = s.until - rng.randrange(90 * DAY)
    else:
        # The shop grows: more customers arrive lately than at the start.
        first_seen = s.start + int(span * rng.random() ** 0.5)
    lapsed = False
    if kind in (ONE_TIME, OCCASIONAL, LOYAL):
        times, lapsed, first_seen = _order_times(rng, s, kind, market, first_seen)
        _plan_orders(plan, rng, s, times, taste)
    if kind != ANONYMOUS:
        _plan_profile_fields(plan, rng, s, first_seen)
    _plan_carts(plan, rng, s, first_seen, lapsed, taste)
    personalised_from = _plan_consents(plan, rng, s, first_seen)
    if personalised_from is not None:
        _plan_events(plan, rng, s, max(personalised_from, s.events_from), lapsed, taste)
    if kind != ANONYMOUS:
        _plan_traits(plan, s, first_seen)
    return plan


# Salts of the traits' and the taste's own random streams.
_TRAITS_SALT = 0x7A17
_TASTE_SALT = 0x7A57E
_TIERS = {LOYAL: "gold", OCCASIONAL: "silver"}


def _plan_traits(plan: ProfilePlan, s: PlanSettings, first_seen: int) -> None:
    """A few traits: a shoe size some customers gave, the shop's tier of its repeat buyers, and
    a favourite category inferred from two or more orders (sure as its share of their lines;
    sensitive products never inform it)."""
    rng = random.Random(((s.seed << 40) | plan.index) ^ _TRAITS_SALT)
    if rng.random() < 0.10:
        plan.traits.append(("shoe_size", rng.randint(36, 46), "given", None, first_seen))
    if plan.kind in _TIERS and plan.orders:
        plan.traits.append(("tier", _TIERS[plan.kind], "shop", None, plan.orders[-1].at))
    counted = [order for order in plan.orders if order.status == OrderStatus.PLACED]
    if len(counted) < 2:
        return
    tops = [
        item.category.split(" > ")[0]
        for order in counted
        for item, _quantity, _price in order.lines
        if not item.sensitive and item.category
    ]
    if not tops:
        return
    favourite = max(sorted(set(tops)), key=tops.count)
    share = Decimal(tops.count(favourite)) / len(tops)
    confidence = min(max(share, Decimal("0.30")), Decimal("0.99")).quantize(Decimal("0.01"))
    plan.traits.append(("favourite_category", favourite, "inferred", confidence, counted[-1].at))


def _plan_orders(
    plan: ProfilePlan, rng: random.Random, s: PlanSettings, times: list, taste: str | None
) -> None:
    for number, (at, routine) in enumerate(times, start=1):
        lines = _lines(
            rng,
            s.catalogue,
            discounted=rng.random() < DISCOUNTED_SHARE,
            taste=taste,
            first=routine,
        )
        roll = rng.random()
        status, status_at = OrderStatus.PLACED, None
        if roll < CANCELLED_SHARE + REFUNDED_SHARE:
            cancelled = roll < CANCELLED_SHARE
            status = OrderStatus.CANCELLED if cancelled else OrderStatus.REFUNDED
            delay = rng.randrange(600, 2 * DAY) if cancelled else rng.randrange(3 * DAY, 30 * DAY)
            status_at = min(at + delay, at + (s.until - at) // 2)
        order = OrderPlan(
            external_id=f"G{s.seed}-{plan.index}-{number}",
            at=at,
            status=status,
            status_at=status_at,
            source=IngestSource.IMPORT if at < s.integration else IngestSource.SIGNAL,
            lines=lines,
            total=_total(lines),
        )
        if at >= s.integration and rng.random() < CONVERTED_CART_SHARE:
            order.cart = len(plan.carts)
            plan.carts.append(
                CartPlan(
                    f"G{s.seed}-{plan.index}-C{len(plan.carts) + 1}",
                    CartStatus.CONVERTED,
                    at,
                    lines,
                    order.total,
                )
            )
        plan.orders.append(order)


def _plan_profile_fields(
    plan: ProfilePlan, rng: random.Random, s: PlanSettings, first_seen: int
) -> None:
    fields = plan.fields
    if rng.random() < 0.35:
        year = dt.datetime.fromtimestamp(s.until, dt.UTC).year - rng.randint(18, 78)
        fields["birthday"] = dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(365))
    roll = rng.random()
    if roll < 0.08:
        # Four entries, as before few_per_week was folded into weekly: the same draws.
        fields["frequency"] = rng.choice(
            (Frequency.WEEKLY, Frequency.WEEKLY, Frequency.WEEKLY, Frequency.MONTHLY)
        )
    roll = rng.random()
    if roll < 0.07:
        fields["greeting"] = Greeting.FIRST_NAME if roll < 0.04 else Greeting.NEUTRAL
    if rng.random() < 0.01:
        fields["paused_until"] = s.until + rng.randint(1, 60) * DAY
    if s.topics and rng.random() < 0.18:
        for pk, default in rng.sample(s.topics, rng.randint(1, min(3, len(s.topics)))):
            subscribed = (not default) if rng.random() < 0.75 else default
            at = first_seen + rng.randrange(max(s.until - first_seen, 1))
            plan.topic_choices.append((pk, subscribed, at))


def _plan_carts(
    plan: ProfilePlan,
    rng: random.Random,
    s: PlanSettings,
    first_seen: int,
    lapsed: bool,
    taste: str | None,
) -> None:
    """At most one open cart (recently abandoned or old), maybe an emptied one."""
    last_activity = max([first_seen, s.integration] + [order.at for order in plan.orders])
    roll = rng.random()
    recent = 0.10 if plan.kind == ANONYMOUS else (0.01 if lapsed else 0.04)
    window = None
    if roll < recent:
        window = (max(last_activity + HOUR, s.until - 7 * DAY), s.until - HOUR)
    elif roll < recent + 0.05:
        window = (last_activity + HOUR, s.until - 8 * DAY)
    if window and window[0] < window[1]:
        at = window[0] + rng.randrange(window[1] - window[0])
        lines = _lines(rng, s.catalogue, discounted=False, taste=taste, available_only=True)
        plan.carts.append(
            CartPlan(
                f"G{s.seed}-{plan.index}-C{len(plan.carts) + 1}",
                CartStatus.OPEN,
                at,
                lines,
                _total(lines),
            )
        )
    start = max(first_seen, s.integration)
    if rng.random() < 0.03 and start < s.until - HOUR:
        at = start + rng.randrange(s.until - HOUR - start)
        plan.carts.append(
            CartPlan(
                f"G{s.seed}-{plan.index}-C{len(plan.carts) + 1}",
                CartStatus.EMPTIED,
                at,
                [],
                Decimal(0),
            )
        )


def _wording(source: str, at: int) -> str:
    """The version of the consent text shown: it changed every January and July."""
    if source == ConsentSource.IMPORT:
        return "legacy-import"
    day = dt.datetime.fromtimestamp(at, dt.UTC)
    return f"{source}-{day.year}-{'01' if day.month <= 6 else '07'}"


def _plan_consents(
    plan: ProfilePlan, rng: random.Random, s: PlanSettings, first_seen: int
) -> int | None:
    """Append the consent ledger; return since when personalisation is effective, if it is."""
    purposes = (Purpose.PERSONALIZATION,) if plan.kind == ANONYMOUS else tuple(CONSENT_SHARE)
    personalised_from = None
    for purpose in purposes:
        if rng.random() >= CONSENT_SHARE[purpose]:
            continue
        at = first_seen
        if len(plan.orders) > 1 and rng.random() < 0.2:
            at = rng.choice(plan.orders[1:]).at  # ticked the box at a later checkout
        if plan.kind == ANONYMOUS:
            source = ConsentSource.BANNER  # the shop's cookie banner
        elif at < s.integration and rng.random() < 0.7:
            source = ConsentSource.IMPORT
        else:
            source = ConsentSource.CHECKOUT if plan.orders else ConsentSource.SIGNUP
        wording = _wording(source, at)
        ip = (
            None
            if source == ConsentSource.IMPORT
            else (f"{rng.choice(IP_PREFIXES)}{rng.randint(1, 254)}")
        )
        plan.consents.append((purpose, ConsentStatus.GRANTED, source, wording, at, None, ip))
        effective: int | None = at
        if purpose in s.double_opt_in:
            effective = None
            if rng.random() < CONFIRMED_SHARE:
                effective = min(at + rng.randrange(120, 2 * DAY), s.until - 1)
                plan.consents.append(
                    (purpose, ConsentStatus.GRANTED, source, wording, effective, effective, ip)
                )
        if rng.random() < WITHDRAWN_SHARE:
            since = max(at, effective or at) + 1
            if since < s.until:
                withdrawn = since + rng.randrange(s.until - since)
                # Only a known customer has a preference centre; a visitor has the banner.
                where = (
                    ConsentSource.BANNER
                    if plan.kind == ANONYMOUS
                    else ConsentSource.PREFERENCE_CENTRE
                )
                plan.consents.append(
                    (
                        purpose,
                        ConsentStatus.WITHDRAWN,
                        where,
                        _wording(where, withdrawn),
                        withdrawn,
                        None,
                        None,
                    )
                )
                effective = None
        if purpose == Purpose.PERSONALIZATION:
            personalised_from = effective
    return personalised_from


def _plan_events(
    plan: ProfilePlan,
    rng: random.Random,
    s: PlanSettings,
    since: int,
    lapsed: bool,
    taste: str | None,
) -> None:
    """Browse events while the personalisation consent holds, within the retention window."""
    events = plan.events
    if since >= s.until:
        return
    for order in plan.orders:
        if order.at - HOUR < since:
            continue
        for item, quantity, _ in order.lines:
            events.append(
                (
                    EventName.PRODUCT_VIEWED,
                    order.at - HOUR + rng.randrange(1800),
                    item.pk,
                    {"source": rng.choice(VIEW_SOURCES)},
                )
            )
            events.append(
                (
                    EventName.ADDED_TO_CART,
                    order.at - 1700 + rng.randrange(1400),
                    item.pk,
                    {"quantity": quantity},
                )
            )
        events.append(
            (
                EventName.CHECKOUT_STARTED,
                order.at - 290 + rng.randrange(260),
                None,
                {"items": len(order.lines)},
            )
        )
    for cart in plan.carts:
        if cart.status == CartStatus.CONVERTED or cart.at - 1800 < since:
            continue
        if cart.status == CartStatus.OPEN:
            for item, quantity, _ in cart.lines:
                events.append(
                    (
                        EventName.ADDED_TO_CART,
                        cart.at - rng.randrange(1800),
                        item.pk,
                        {"quantity": quantity},
                    )
                )
        else:
            item = s.catalogue.pick_available(rng)
            events.append(
                (
                    EventName.ADDED_TO_CART,
                    cart.at - 600 - rng.randrange(1200),
                    item.pk,
                    {"quantity": 1},
                )
            )
            events.append((EventName.REMOVED_FROM_CART, cart.at, item.pk, {}))
    if lapsed:
        sessions = 1 if rng.random() < 0.2 else 0
    else:
        sessions = min(8, int(rng.expovariate(1 / 1.4)))
    catalogue = s.catalogue
    for _ in range(sessions):
        at = since + rng.randrange(max(s.until - since - HOUR, 1))
        if rng.random() < 0.3 and catalogue.search_terms:
            events.append(
                (EventName.SEARCHED, at, None, {"query": rng.choice(catalogue.search_terms)})
            )
            at += rng.randrange(5, 60)
        if rng.random() < 0.4 and catalogue.categories:
            events.append(
                (
                    EventName.CATEGORY_VIEWED,
                    at,
                    None,
                    {"category": rng.choice(catalogue.categories)},
                )
            )
            at += rng.randrange(5, 90)
        for _ in range(rng.randint(1, 4)):
            if taste is not None and rng.random() < TASTE_SHARE:
                viewed = catalogue.pick_in(rng, taste)
            else:
                viewed = catalogue.pick_available(rng)
            events.append(
                (
                    EventName.PRODUCT_VIEWED,
                    at,
                    viewed.pk,
                    {"source": rng.choice(VIEW_SOURCES)},
                )
            )
            at += rng.randrange(10, 240)
