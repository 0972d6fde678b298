"""Run functions at the same moment in real threads, each with its own database connection."""

import threading
import time

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
    # This helper is not rewritten by pytest: say what the threads raised.
    if errors:
        raise AssertionError(f"{len(errors)} of {len(functions)} raised: {errors!r}") from errors[0]


def until_another_session_waits_for_a_lock(timeout: float = 10.0) -> None:
    """Hold this thread (PostgreSQL) until another session of the database waits for a lock.

    Called by a thread that holds a lock, to let a racing thread run into it: the moment a race
    needs, brought about on every run. Gives up after ``timeout`` seconds (the test's own
    assertions then say whether the race went right).
    """
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # Inside a transaction PostgreSQL keeps showing the first look at the activity.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
