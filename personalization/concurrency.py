"""Concurrent writers: one lock order and one retry helper for every write path.

Lock order. A transaction that writes takes its row locks in this order, and never the other
way round, so two transactions cannot wait for each other in a circle:

1. profiles, in ascending primary key (:func:`profiles_lock`), before anything that belongs
   to them: every write of an order (recorded, cancelled, refunded, moved by a merge,
   detached by an erasure) and every statistics update holds the lock of the order's profile;
2. then the order;
3. then the cart;
4. then the rest (consent records, events, aliases, preferences, jobs) by insert or update.

An import batch takes the same order: the existing profiles of its orders, ascending, before
the orders (a share lock; the profiles it created are invisible to others until it commits).

Retries. :func:`atomic_retried` runs a function in a transaction and, when PostgreSQL (or
SQLite) reports a race, rolls back and runs it again, at most :data:`ATTEMPTS` times, then
raises :class:`~personalization.exceptions.ConcurrentUpdate` from the last error:

- a unique-key conflict (SQLSTATE 23505): another request inserted the same profile, alias,
  order or cart first; the next attempt finds it;
- a deadlock (40P01) or serialization failure (40001);
- :class:`TransactionRetry`, raised by our code when it notices, once it holds its locks,
  that a concurrent merge changed the rows it had looked up.

Only the outermost call retries; calls nested in it run in a savepoint and leave their errors
to it. Inside a transaction of the caller's own (``atomic``, ``ATOMIC_REQUESTS``) we cannot
start the caller's work over: a unique conflict or a stale lookup is retried within a
savepoint (at READ COMMITTED the next statement sees the row that won), while a deadlock or a
serialization failure rolls back to the savepoint and raises ``ConcurrentUpdate`` at once, as
only the caller's whole transaction can be retried (the locks it took before are still held).
The caller's block stays usable either way.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from django.db import DatabaseError, connection, transaction
from django.utils.translation import ngettext

from .changes import changes_collected
from .exceptions import ConcurrentUpdate

logger = logging.getLogger(__name__)

ATTEMPTS = 5  # per outermost call; more would only hold a request up under a real pile-up

P = ParamSpec("P")
R = TypeVar("R")

_CONFLICT, _LOCK = "conflict", "lock"
_SQLSTATES = {"23505": _CONFLICT, "40P01": _LOCK, "40001": _LOCK}
_SQLITE_CONFLICTS = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}

# True while an atomic_retried call runs on this thread: the nested ones leave errors to it.
_running: ContextVar[bool] = ContextVar("pzn_retry_running", default=False)


class TransactionRetry(Exception):
    """Raise inside :func:`atomic_retried` to roll back and run again: the transaction saw a
    concurrent change too late (a profile it looked up was merged away before it was locked)."""


def _race_kind(err: BaseException) -> str:
    """``"conflict"``, ``"lock"`` or ``""``: which race, if any, this error reports."""
    if isinstance(err, TransactionRetry):
        return _CONFLICT
    if not isinstance(err, DatabaseError):
        return ""
    cause = err.__cause__  # the driver's error, which Django wraps
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if state in _SQLSTATES:
        return _SQLSTATES[state]
    if getattr(cause, "sqlite_errorname", "") in _SQLITE_CONFLICTS:
        return _CONFLICT
    return ""


def atomic_retried(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` atomically, again when it loses a race; see the module's docstring.

    Each attempt collects its own ``profile_changed`` notes and ``on_commit`` callbacks (jobs,
    signals): a rolled-back attempt announces and enqueues nothing.
    """

    @functools.wraps(function)
    def retried(*args: P.args, **kwargs: P.kwargs) -> R:
        if _running.get():
            with changes_collected(), transaction.atomic():
                return function(*args, **kwargs)
        token = _running.set(True)
        try:
            return _attempts(function, args, kwargs)
        finally:
            _running.reset(token)

    return retried


def _attempts(function, args, kwargs):
    own_transaction = not connection.in_atomic_block
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with changes_collected(), transaction.atomic():
                return function(*args, **kwargs)
        except Exception as err:
            kind = _race_kind(err)
            if not kind:
                raise
            if attempt == ATTEMPTS or (kind == _LOCK and not own_transaction):
                raise ConcurrentUpdate(
                    ngettext(
                        "Concurrent requests kept changing the same rows; gave up after "
                        "%(attempts)d attempt. Retry the whole transaction.",
                        "Concurrent requests kept changing the same rows; gave up after "
                        "%(attempts)d attempts. Retry the whole transaction.",
                        attempt,
                    )
                    % {"attempts": attempt},
                    attempts=attempt,
                ) from err
            logger.info(
                "%s lost a race (%s, attempt %d of %d), retrying: %s",
                function.__qualname__,
                kind,
                attempt,
                ATTEMPTS,
                str(err) or type(err).__name__,
            )
        # Jitter, so that the requests that collided do not collide again in step.
        time.sleep(random.uniform(0, 0.01 * attempt))
    raise AssertionError("unreachable")


def profiles_lock(profile_ids: Iterable[int]):
    """Lock these profiles (those that still exist) in ascending pk order; returns them by pk.

    One statement: PostgreSQL sorts the rows before it locks them. A profile deleted by a
    concurrent merge is waited for and then left out.
    """
    from .models import Profile

    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    profiles = Profile.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    return {profile.pk: profile for profile in profiles}
