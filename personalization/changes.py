"""``profile_changed``: one notice after commit for each write, naming the profiles it touched.

Every write path (orders, order status, carts, events, consent, preferences, profile
attributes, merges, import batches) notes what it changed with :func:`profile_changed_note`.
Notes made inside :func:`changes_collected` are gathered and announced once, when the
outermost collection ends without an exception; the signal is sent after the transaction
commits (at once outside a transaction), so a receiver never sees a change that was rolled
back, and sees each write's profiles in one call rather than one call per row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum

from django.db import transaction

from .signals import profile_changed

logger = logging.getLogger(__name__)


class Change(StrEnum):
    """What about a profile changed: receivers re-evaluate only what depends on it."""

    PROFILE = "profile"  # created, or identity attributes, email or shop user changed
    ORDERS = "orders"  # an order recorded, cancelled or refunded (and so the statistics)
    CART = "cart"
    EVENTS = "events"
    CONSENT = "consent"
    PREFERENCES = "preferences"  # topics, channels, frequency, pause, greeting
    TRAITS = "traits"  # a trait set, changed or removed
    MERGE = "merge"  # another profile was folded into this one


# The open collections, outermost first: each a {profile id: what changed}.
_collections: ContextVar[tuple[dict[int, set[str]], ...]] = ContextVar("pzn_changes", default=())


@contextmanager
def changes_collected() -> Iterator[None]:
    """Gather the notes made inside into one ``profile_changed`` per outermost collection.

    Also usable as a decorator. A nested collection hands its notes to the one around it when
    it ends well and drops them when it raises, as a savepoint does with the writes (a retried
    attempt that was rolled back must not name the profile it created).
    """
    outer = _collections.get()
    collected: dict[int, set[str]] = {}
    token = _collections.set((*outer, collected))
    try:
        yield
    finally:
        _collections.reset(token)
    if not outer:
        _announce(collected)
        return
    for profile_id, what in collected.items():
        outer[-1].setdefault(profile_id, set()).update(what)


def profile_changed_note(profile_ids: int | Iterable[int], *what: Change) -> None:
    """Note that ``what`` changed for these profiles (announced after commit)."""
    ids = [profile_ids] if isinstance(profile_ids, int) else list(profile_ids)
    collections = _collections.get()
    if not collections:
        _announce({profile_id: set(what) for profile_id in ids})
        return
    for profile_id in ids:
        collections[-1].setdefault(profile_id, set()).update(what)


def profile_merged_note(*, source_id: int, target_id: int) -> None:
    """The source profile no longer exists: what was noted for it now belongs to the target."""
    moved: set[str] = set()
    for collected in _collections.get():
        moved |= collected.pop(source_id, set())
    profile_changed_note(target_id, Change.MERGE, *moved)


def profile_removed_note(profile_id: int) -> None:
    """The profile is being erased: what was noted for it is not announced (it will not exist
    at commit, and receivers are promised profiles that do)."""
    for collected in _collections.get():
        collected.pop(profile_id, None)


def _announce(changes: Mapping[int, set[str]]) -> None:
    if not changes:
        return
    frozen = {profile_id: frozenset(what) for profile_id, what in changes.items()}

    def send() -> None:
        from .models import Profile

        profile_changed.send(sender=Profile, profile_ids=frozenset(frozen), changes=frozen)

    # robust: the shop's change has committed; a failing receiver is logged by Django and must
    # not turn the shop's response into an error after the fact.
    transaction.on_commit(send, robust=True)
