"""Run functions at the same moment in real threads, each with its own database connection."""

import threading

from django.db import connection


def run_concurrently(functions):
    """Start every function at once (a barrier), wait for all, and fail on any exception."""
    barrier = threading.Barrier(len(functions))
    errors = []

    def run(function):
        try:
            barrier.wait(timeout=10)
            function()
        except Exception as err:  # noqa: BLE001  (reported by the assertion below)
            errors.append(err)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(f,)) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
