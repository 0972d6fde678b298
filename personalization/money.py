"""Money in the shop's one currency (``PERSONALIZATION["CURRENCY"]``).

Statistics and every money rule count in it. An amount in another currency is converted with
the rate the adapter gives (``DefaultAdapter.exchange_rate``) for the time it was paid; the
customer's own amount and currency are kept beside it.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from .adapter import get_adapter
from .conf import app_settings
from .docs import docs_url
from .exceptions import ConfigurationError, InvalidInput

CENT = Decimal("0.01")
# Orders and carts hold 12 digits, 2 after the point.
MONEY_LIMIT = Decimal("10000000000")


def shop_currency() -> str:
    """``PERSONALIZATION["CURRENCY"]``; ConfigurationError when the shop has not set it."""
    code = app_settings.CURRENCY
    if not code:
        raise ConfigurationError(
            "PERSONALIZATION['CURRENCY'] is not set: the app needs the shop's currency to count "
            f"orders in. See {docs_url('reference/settings.md#currency')}."
        )
    return code


def exchange_rate(*, currency: str, at: dt.datetime) -> Decimal:
    """What one unit of ``currency`` was worth in the shop's currency at ``at``."""
    target = shop_currency()
    if currency == target:
        return Decimal(1)
    adapter = get_adapter()
    rate = adapter.exchange_rate(from_currency=currency, to_currency=target, at=at)
    return _rate_clean(rate, adapter=adapter)


def money_convert(
    *,
    amount: Decimal,
    currency: str,
    at: dt.datetime,
    rate: Decimal | None = None,
    field: str = "total",
) -> Decimal:
    """``amount`` in ``currency`` as an amount in the shop's currency, rounded to cents.

    ``rate`` is the exchange rate when the caller already has it (an import's cache).
    Raises UnconvertibleCurrency when there is no rate, InvalidInput (``field``) when the
    result is too large to store.
    """
    if rate is None:
        rate = exchange_rate(currency=currency, at=at)
    if rate == 1:
        return amount
    converted = (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)
    if converted >= MONEY_LIMIT:
        raise InvalidInput(
            _("%(amount)s %(currency)s is %(converted)s %(shop)s: too large an amount.")
            % {
                "amount": amount,
                "currency": currency,
                "converted": converted,
                "shop": shop_currency(),
            },
            field=field,
        )
    return converted


class RateCache:
    """Exchange rates per currency and UTC day, for converting many orders (an import).

    The adapter is asked once per currency and day, for 00:00 UTC of that day; a refusal is
    remembered too.
    """

    def __init__(self) -> None:
        self.rates: dict[tuple[str, dt.date], Decimal | InvalidInput] = {}

    def convert(self, *, amount: Decimal, currency: str, at: dt.datetime) -> Decimal:
        if currency == shop_currency():
            return amount
        day = at.astimezone(dt.UTC).date()
        key = (currency, day)
        rate = self.rates.get(key)
        if rate is None:
            midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            try:
                rate = exchange_rate(currency=currency, at=midnight)
            except InvalidInput as err:
                rate = err
            self.rates[key] = rate
        if isinstance(rate, InvalidInput):
            raise rate
        return money_convert(amount=amount, currency=currency, at=at, rate=rate)


def _rate_clean(rate: Any, *, adapter: Any) -> Decimal:
    if isinstance(rate, (int, float, Decimal)) and not isinstance(rate, bool):
        try:
            value = Decimal(str(rate))
        except InvalidOperation:
            value = None
        if value is not None and value.is_finite() and value > 0:
            return value
    raise TypeError(
        f"{type(adapter).__name__}.exchange_rate() returned {rate!r}; it must return a "
        "positive Decimal (or raise UnconvertibleCurrency)."
    )
