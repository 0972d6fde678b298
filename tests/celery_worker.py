"""A real Celery worker in a thread of the test process, on Redis or the file-system broker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery, _state
from celery.contrib.testing.worker import start_worker

from tests.conftest import REDIS_URL


def worker_app(name: str = "pzn-test-worker", *, broker: str = REDIS_URL, **conf) -> Celery:
    app = Celery(name, broker=broker, set_as_current=False)
    defaults = {
        "task_always_eager": False,
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": False,
    }
    app.conf.update({**defaults, **conf})
    return app


@contextmanager
def running_worker(app: Celery | None = None, *, purge: bool = True) -> Iterator[Celery]:
    """Start a worker for ``app`` (default: a fresh one on REDIS_URL), its queue emptied first
    unless ``purge`` is false.

    While it runs, ``app`` is Celery's current and default app, as in a worker process, so
    what the test hands over goes to this worker; the apps before are restored afterwards, so
    later tests see the project's app again.
    """
    app = app or worker_app()
    saved = (_state.default_app, _state._tls.current_app)
    if purge:  # what earlier runs left in a shared Redis database
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(app.conf.task_default_queue)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield app
    finally:
        _state.set_default_app(saved[0])
        _state._set_current_app(saved[1])
