"""Transactional mail (a receipt, a password reset) is not marketing: no unsubscribe, suppression,
pause, cap or quiet hours stops it, and it takes no one's marketing slot."""

import datetime as dt
import itertools

import pytest

from personalization.messaging.policy import SEND, SKIP, Candidate, decide_many, recipients_load
from personalization.models import (
    DecisionReason,
    Message,
    MessageKind,
    MessageSource,
    MessageState,
)
from personalization.privacy.suppression import suppression_add

from .shop import T0, customer

pytestmark = pytest.mark.django_db

_serial = itertools.count()
NIGHT = T0.replace(hour=23)  # midnight in Stockholm: quiet hours


def ledger(profile, *, kind, state=MessageState.PLANNED, decided_at=None):
    return Message.objects.create(
        profile=profile,
        source=MessageSource.TEST,
        kind=kind,
        dedupe_key=f"t-{next(_serial)}",
        priority=100,
        not_before=NIGHT,
        state=state,
        decided_at=decided_at,
    )


def test_transactional_mail_goes_to_a_customer_no_marketing_may_reach():
    anna = customer(frequency="monthly", paused_until=NIGHT + dt.timedelta(days=30))
    suppression_add(emails=[anna.email], reason="unsubscribed", source="api")
    for hours in (1, 2, 3):  # the week's cap is full
        ledger(
            anna,
            kind=MessageKind.MARKETING,
            state=MessageState.SENT,
            decided_at=NIGHT - dt.timedelta(hours=hours),
        )
    receipt = ledger(anna, kind=MessageKind.TRANSACTIONAL)
    news = ledger(anna, kind=MessageKind.MARKETING)
    reset = ledger(anna, kind=MessageKind.TRANSACTIONAL)

    recipients = recipients_load(profile_ids=[anna.pk], now=NIGHT)
    decisions = decide_many(
        [Candidate.of(m) for m in (receipt, news, reset)], recipients, now=NIGHT
    )

    assert decisions[receipt.pk].action == SEND and decisions[reset.pk].action == SEND
    assert (decisions[news.pk].action, decisions[news.pk].reason) == (
        SKIP,
        DecisionReason.UNSUBSCRIBED,
    )
    assert len(recipients[anna.pk].taken) == 3  # the two sends took no marketing slot


def test_sent_transactional_mail_does_not_count_against_the_marketing_cap():
    bo = customer()
    for hours in (1, 2, 3):
        ledger(
            bo,
            kind=MessageKind.TRANSACTIONAL,
            state=MessageState.SENT,
            decided_at=T0 - dt.timedelta(hours=hours),
        )
    news = ledger(bo, kind=MessageKind.MARKETING)

    recipients = recipients_load(profile_ids=[bo.pk], now=T0)
    assert recipients[bo.pk].taken == []
    decision = decide_many([Candidate.of(news)], recipients, now=T0)[news.pk]

    assert decision.action == SEND
