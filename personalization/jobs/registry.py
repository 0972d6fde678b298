"""Job handlers by name: a job row names its handler, it never holds code.

Register a handler in your app's ``jobs.py`` (discovered at start-up, like ``admin.py``) or in
the domain module that owns the work::

    from personalization.jobs import job_handler

    @job_handler("shop.order_confirmation_send", retry_for=(OSError,))
    def order_confirmation_send(*, order_id: int) -> None:
        ...

A handler is called with the job's ``args`` as keyword arguments. It may run more than once
for one job (a worker that dies after the work but before marking it done), so make it
idempotent: check whether the work was already done before doing it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..exceptions import ConfigurationError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class JobHandler:
    name: str
    function: Callable[..., Any]
    # Exceptions worth another attempt (the network, the ESP); anything else fails the job.
    retry_for: tuple[type[BaseException], ...]
    max_attempts: int | None
    lease: dt.timedelta | None


_handlers: dict[str, JobHandler] = {}


def job_handler(
    name: str,
    *,
    retry_for: tuple[type[BaseException], ...] = (Exception,),
    max_attempts: int | None = None,
    lease_seconds: int | None = None,
) -> Callable[[F], F]:
    """Register the decorated function as the handler of jobs named ``name``."""

    def register(function: F) -> F:
        job_handler_register(
            name=name,
            function=function,
            retry_for=retry_for,
            max_attempts=max_attempts,
            lease_seconds=lease_seconds,
        )
        return function

    return register


def job_handler_register(
    *,
    name: str,
    function: Callable[..., Any],
    retry_for: tuple[type[BaseException], ...] = (Exception,),
    max_attempts: int | None = None,
    lease_seconds: int | None = None,
) -> JobHandler:
    if not isinstance(name, str) or not name or len(name) > 200:
        raise TypeError("A job handler's name is a non-empty string of at most 200 characters.")
    if not callable(function):
        raise TypeError(f"The handler for {name!r} must be callable.")
    if max_attempts is not None and max_attempts < 1:
        raise ConfigurationError(f"Job handler {name!r}: max_attempts must be at least 1.")
    if lease_seconds is not None and lease_seconds < 1:
        raise ConfigurationError(f"Job handler {name!r}: lease_seconds must be at least 1.")
    existing = _handlers.get(name)
    if existing is not None and _qualname(existing.function) != _qualname(function):
        raise ConfigurationError(
            f"Two job handlers are named {name!r}: {_qualname(existing.function)} and "
            f"{_qualname(function)}. Job names must be unique."
        )
    handler = JobHandler(
        name=name,
        function=function,
        retry_for=tuple(retry_for),
        max_attempts=max_attempts,
        lease=dt.timedelta(seconds=lease_seconds) if lease_seconds else None,
    )
    _handlers[name] = handler
    return handler


def job_handler_unregister(*, name: str) -> None:
    """Forget a handler (for tests that register their own)."""
    _handlers.pop(name, None)


def job_handler_get(name: str) -> JobHandler | None:
    return _handlers.get(name)


def job_handler_names() -> list[str]:
    return sorted(_handlers)


def _qualname(function: Callable[..., Any]) -> str:
    # A module imported twice (tests, autoreload) registers an equal function, not the same one.
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', function)}"
