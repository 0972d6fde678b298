"""Rules a message's source adds before the guardrail policy.

A campaign needs none beyond being cancelled; a flow step has its own (the flow's exits, its
per-flow limit, no sooner than the delay after the previous step). The source registers a
check here, and the dispatcher runs it for the source's messages of each batch, before the
policy: a message a check skips or defers never reaches the policy, the rest go through it
exactly as campaign messages do. (Registered, not imported: flows build on messaging.)
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable

from ..models import Message
from .policy import Decision

SourceCheck = Callable[..., dict[int, Decision]]
_CHECKS: dict[str, SourceCheck] = {}


def source_check_register(source: str, check: SourceCheck) -> None:
    """Run ``check(messages=[…], now=…)`` for every batch's messages of ``source``; it returns
    ``{message id: Decision}`` for the ones it skips or defers."""
    _CHECKS[source] = check


def source_verdicts(messages: list[Message], *, now: dt.datetime) -> dict[int, Decision]:
    """The skips and deferrals the sources' own rules decide for these messages."""
    by_source: dict[str, list[Message]] = defaultdict(list)
    for message in messages:
        if message.source in _CHECKS:
            by_source[message.source].append(message)
    verdicts: dict[int, Decision] = {}
    for source, own in by_source.items():
        verdicts.update(_CHECKS[source](messages=own, now=now))
    return verdicts
