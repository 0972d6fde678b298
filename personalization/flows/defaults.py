"""The flows every installation starts with, each on, with sane timings: created after
``migrate``.

Creating only ever adds what is missing: a flow a marketer switched off, retimed or rewrote
keeps their settings and words. (Delete one and run ``migrate`` to get it back as the app ships
it.) The copy is written in the site's language (``LANGUAGE_CODE``) from translated defaults;
from then on it is the marketer's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import translation
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from ..models import Flow, FlowKind, FlowStep

_HOUR, _DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


@dataclass(frozen=True)
class StepDefault:
    delay: dt.timedelta
    subject: object
    body: object
    preheader: object = ""
    generic_body: object = ""
    incentive: bool = False
    local_time: dt.time | None = None
    expires_after: dt.timedelta = 2 * _DAY


@dataclass(frozen=True)
class FlowDefault:
    name: object
    priority: int
    limit_messages: int
    limit_days: int
    steps: tuple[StepDefault, ...] = field(default_factory=tuple)
    yields: bool = False


def _join(*parts) -> object:
    """Translated pieces of copy, joined when the copy is written (each translated alone)."""
    return format_lazy("{}" * len(parts), *parts)


_INCENTIVE = _(
    "{% if incentive_code %}<p>Use the code <strong>{{ incentive_code }}</strong> at checkout."
    "</p>{% endif %}"
)
_SHOP_LINK = _('<p><a href="{{ site_url }}">Visit {{ shop_name }}</a></p>')

DEFAULTS: dict[str, FlowDefault] = {
    FlowKind.ABANDONED_CART: FlowDefault(
        name=_("Abandoned cart"),
        priority=10,
        limit_messages=2,
        limit_days=7,
        steps=(
            StepDefault(
                delay=2 * _HOUR,
                subject=_("Your cart is saved for you"),
                preheader=_("Everything is where you left it."),
                body=_(
                    "<p>{{ greeting }}</p><p>Your cart is saved, in case you would like to "
                    "finish your order.</p>{% cart_lines %}{% recommendations 3 %}"
                ),
                generic_body=_(
                    "<p>{{ greeting }}</p><p>Your cart is saved, in case you would like to "
                    "finish your order.</p>{% cart_lines %}"
                ),
                expires_after=_DAY,
            ),
            StepDefault(
                delay=24 * _HOUR,
                subject=_("Still thinking it over?"),
                body=_join(
                    _(
                        "<p>{{ greeting }}</p><p>Your cart is still saved. If you have "
                        "questions, just reply to this email.</p>{% cart_lines %}"
                    ),
                    _INCENTIVE,
                ),
                incentive=True,
                expires_after=_DAY,
            ),
        ),
    ),
    FlowKind.WELCOME: FlowDefault(
        name=_("Welcome"),
        priority=20,
        limit_messages=1,
        limit_days=30,
        steps=(
            StepDefault(
                delay=dt.timedelta(minutes=5),
                subject=_("Welcome to {{ shop_name }}"),
                preheader=_("Thank you for signing up."),
                body=_join(
                    _(
                        "<p>{{ greeting }}</p><p>Thank you for signing up. We write now and "
                        "then about new things in the shop, never more often than you choose.</p>"
                    ),
                    _INCENTIVE,
                    _(
                        '<p><a href="{{ preference_centre_url }}">Tell us what interests '
                        "you</a>, and we will only write about that.</p>"
                    ),
                ),
                incentive=True,
            ),
        ),
    ),
    FlowKind.POST_PURCHASE: FlowDefault(
        name=_("After a first order"),
        priority=30,
        limit_messages=2,
        limit_days=14,
        steps=(
            StepDefault(
                delay=_HOUR,
                subject=_("Thank you for your order"),
                body=_(
                    "<p>{{ greeting }}</p><p>Thank you for your first order with us. If "
                    "anything is not right, just reply to this email.</p>"
                ),
            ),
            StepDefault(
                delay=7 * _DAY,
                subject=_("Goes well with what you got"),
                body=_join(_("<p>{{ greeting }}</p>{% recommendations 4 %}"), _SHOP_LINK),
                expires_after=3 * _DAY,
            ),
        ),
    ),
    FlowKind.REPLENISHMENT: FlowDefault(
        name=_("Time to restock"),
        priority=40,
        yields=True,
        limit_messages=1,
        limit_days=7,
        steps=(
            StepDefault(
                delay=dt.timedelta(0),
                subject=_("Time to restock?"),
                body=_(
                    "<p>{{ greeting }}</p><p>In case you are running low:</p>"
                    "{% recommendations 3 %}"
                ),
                expires_after=3 * _DAY,
            ),
        ),
    ),
    FlowKind.BROWSE_ABANDONMENT: FlowDefault(
        name=_("Browse abandonment"),
        priority=50,
        yields=True,
        limit_messages=1,
        limit_days=7,
        steps=(
            StepDefault(
                delay=_HOUR,
                subject=_("A few ideas for you"),
                body=_join(_("<p>{{ greeting }}</p>{% recommendations 4 %}"), _SHOP_LINK),
            ),
        ),
    ),
    FlowKind.WIN_BACK: FlowDefault(
        name=_("Win-back"),
        priority=60,
        limit_messages=3,
        limit_days=60,
        steps=(
            StepDefault(
                delay=dt.timedelta(0),
                subject=_("It has been a while"),
                body=_(
                    "<p>{{ greeting }}</p><p>Here is what is new since your last visit.</p>"
                    "{% recommendations 4 %}"
                ),
                expires_after=3 * _DAY,
            ),
            StepDefault(
                delay=14 * _DAY,
                subject=_("Something for your next order"),
                body=_join(_("<p>{{ greeting }}</p>"), _INCENTIVE, _SHOP_LINK),
                incentive=True,
                expires_after=3 * _DAY,
            ),
            StepDefault(
                delay=16 * _DAY,
                subject=_("One last thing from us"),
                body=_join(
                    _("<p>{{ greeting }}</p>"),
                    _INCENTIVE,
                    _(
                        "<p>If you would rather hear from us less, "
                        '<a href="{{ preference_centre_url }}">choose how often</a>.</p>'
                    ),
                ),
                incentive=True,
                expires_after=3 * _DAY,
            ),
        ),
    ),
    FlowKind.LOYAL: FlowDefault(
        name=_("Loyal customers"),
        priority=70,
        limit_messages=1,
        limit_days=30,
        steps=(
            StepDefault(
                delay=_DAY,
                subject=_("Thank you for being a regular"),
                body=_join(
                    _(
                        "<p>{{ greeting }}</p><p>You are one of our regulars: you will hear "
                        "about new things before anyone else. Know someone who would like the "
                        "shop? Tell them about us.</p>"
                    ),
                    _INCENTIVE,
                ),
                incentive=True,
                expires_after=3 * _DAY,
            ),
        ),
    ),
    FlowKind.BIRTHDAY: FlowDefault(
        name=_("Birthday"),
        priority=80,
        limit_messages=1,
        limit_days=300,
        steps=(
            StepDefault(
                delay=dt.timedelta(0),
                local_time=dt.time(9),
                subject=_("Happy birthday!"),
                body=_join(
                    _("<p>{{ greeting }}</p><p>Happy birthday from all of us.</p>"), _INCENTIVE
                ),
                incentive=True,
                expires_after=12 * _HOUR,
            ),
        ),
    ),
}


def flows_ensure(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """Create the default flows that do not exist yet, with their steps. Returns how many."""
    existing = set(Flow.objects.using(using).values_list("kind", flat=True))
    created = 0
    with translation.override(settings.LANGUAGE_CODE):
        for kind, default in DEFAULTS.items():
            if kind in existing:
                continue
            with transaction.atomic(using=using):
                flow, made = Flow.objects.using(using).get_or_create(
                    kind=kind,
                    defaults={
                        "name": str(default.name),
                        "priority": default.priority,
                        "limit_messages": default.limit_messages,
                        "limit_days": default.limit_days,
                        "yields": default.yields,
                    },
                )
                if not made:  # another process created it at the same moment
                    continue
                FlowStep.objects.using(using).bulk_create(
                    FlowStep(
                        flow=flow,
                        position=position,
                        delay=step.delay,
                        local_time=step.local_time,
                        expires_after=step.expires_after,
                        incentive=step.incentive,
                        subject=str(step.subject),
                        preheader=str(step.preheader),
                        body=str(step.body),
                        generic_body=str(step.generic_body),
                        utm_campaign=f"flow-{kind.replace('_', '-')}",
                    )
                    for position, step in enumerate(default.steps, start=1)
                )
                created += 1
    return created


def flows_ensure_after_migrate(**kwargs) -> None:
    from django.db import connections

    using = kwargs.get("using", DEFAULT_DB_ALIAS)
    if FlowStep._meta.db_table in connections[using].introspection.table_names():
        flows_ensure(using=using)
