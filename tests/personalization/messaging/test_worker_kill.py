"""A real Celery worker on Redis, killed (SIGKILL) in the middle of a campaign and started
again: no customer gets a message twice, and every message that was not in flight is sent.

The worker is another process (``celery -A demo_shop worker``, settings
``tests.worker_settings``) on this test's PostgreSQL database; its email backend writes each
email to a file in a directory of this test, a moment apart, so the kill lands while it hands a
batch over. The files are what the customers got.
"""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from personalization.messaging import campaign_plan, campaign_schedule, messages_sweep
from personalization.models import CampaignStatus, Message, MessageState, SegmentMembership
from tests.celery_worker import worker_app
from tests.conftest import REDIS_URL

from .shop import campaign, customer, join, segment

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kills a process group"),
]

ROOT = Path(__file__).resolve().parents[3]
RECIPIENTS = 200
BATCH = 20
LEASE_SECONDS = 2
# Bounds for waiting on processes, not assertions about speed: a loaded machine may be slow.
START_TIMEOUT = 120
DONE_TIMEOUT = 180
DISPATCH = "personalization.messages_dispatch"
IN_FLIGHT = (MessageState.CLAIMED, MessageState.READY, MessageState.SENDING)
OPEN = (MessageState.PLANNED, MessageState.DEFERRED, *IN_FLIGHT)


def database_url() -> str:
    """This test's database (pytest-django's test database), for the worker process."""
    db = connection.settings_dict
    user = urllib.parse.quote(db["USER"] or "")
    password = f":{urllib.parse.quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


class Worker:
    """``celery -A demo_shop worker`` in its own process group."""

    def __init__(self, tmp_path: Path, name: str, outbox: Path):
        self.log = tmp_path / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update(
            DJANGO_SETTINGS_MODULE="tests.worker_settings",
            DATABASE_URL=database_url(),
            PZN_WORKER_BROKER_URL=REDIS_URL,
            PZN_WORKER_OUTBOX=str(outbox),
            PZN_WORKER_BATCH_SIZE=str(BATCH),
            PZN_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
        )
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "demo_shop",
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            f"--hostname={name}@%h",
            "--loglevel=INFO",
        ]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, killed as one
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while "ready." not in self.log.read_text():
            assert self.process.poll() is None, f"the worker exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"the worker did not start:\n{self.output()}"
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text()[-5000:]


def emails_per_address(outbox: Path) -> Counter:
    """Who got what: the To of every email the workers wrote (flushed one by one)."""
    found = Counter()
    for path in outbox.glob("*.log"):
        found.update(re.findall(rb"^To: (\S+)\r?$", path.read_bytes(), flags=re.MULTILINE))
    return Counter({address.decode(): n for address, n in found.items()})


def states() -> Counter:
    return Counter(Message.objects.values_list("state", flat=True))


def wait_for(condition, *, timeout: float, what: str, worker: Worker) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert worker.process.poll() is None, f"the worker exited:\n{worker.output()}"
        assert time.monotonic() < deadline, (
            f"{what}: not in {timeout} s; ledger {dict(states())}\n{worker.output()}"
        )
        time.sleep(0.01)


def test_a_worker_killed_mid_campaign_sends_no_one_two_emails(tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    everyone = segment()
    customers = [customer() for _ in range(RECIPIENTS)]
    # Committed for real: their consent's segment job may have put them in already.
    inside = set(SegmentMembership.objects.filter(segment=everyone).values_list("profile_id"))
    join(everyone, *(c for c in customers if (c.pk,) not in inside))
    made = campaign(include=[everyone])
    campaign_schedule(campaign=made)
    assert campaign_plan(campaign_id=made.pk) == RECIPIENTS

    broker = worker_app("pzn-worker-kill-test")
    with broker.connection_for_write() as conn:  # what earlier runs left in this Redis db
        conn.default_channel.queue_purge(broker.conf.task_default_queue)
    workers = []
    try:
        first = Worker(tmp_path, "first", outbox)
        workers.append(first)
        first.wait_ready()
        broker.send_task(DISPATCH)

        # Some batches sent, and the worker in the middle of handing one over: some of that
        # batch's emails are written, the rest not yet.
        def mid_batch() -> bool:
            sent = Message.objects.filter(state=MessageState.SENT).count()
            sending = Message.objects.filter(state=MessageState.SENDING).count()
            written = sum(emails_per_address(outbox).values())
            return BATCH <= sent <= RECIPIENTS - 2 * BATCH and sending and sent < written

        wait_for(mid_batch, timeout=DONE_TIMEOUT, what="a batch half handed over", worker=first)
        first.kill()

        at_kill = dict(Message.objects.filter(state__in=IN_FLIGHT).values_list("pk", "state"))
        sending_at_kill = {pk for pk, state in at_kill.items() if state == MessageState.SENDING}
        assert sending_at_kill  # the kill landed while a batch was being handed over
        written_at_kill = emails_per_address(outbox)
        # Of the batch in flight, some went out before the kill and some did not.
        in_flight_addresses = set(
            Message.objects.filter(pk__in=sending_at_kill).values_list("profile__email", flat=True)
        )
        assert in_flight_addresses & set(written_at_kill)
        assert in_flight_addresses - set(written_at_kill)

        # Beat's sweep, once the dead worker's lease has run out (the worker's real clock).
        time.sleep(LEASE_SECONDS + 1)
        swept = messages_sweep()
        assert swept.unknown == len(sending_at_kill)
        assert swept.returned == len(at_kill) - len(sending_at_kill)

        second = Worker(tmp_path, "second", outbox)
        workers.append(second)
        second.wait_ready()
        broker.send_task(DISPATCH)
        wait_for(
            lambda: not Message.objects.filter(state__in=OPEN).exists(),
            timeout=DONE_TIMEOUT,
            what="every message decided",
            worker=second,
        )
    finally:
        for worker in workers:
            worker.kill()

    messages_sweep()  # Beat finishes the campaign
    got = emails_per_address(outbox)
    ledger = dict(Message.objects.values_list("profile__email", "state"))
    unknown = {email for email, state in ledger.items() if state == MessageState.UNKNOWN}
    assert unknown == in_flight_addresses  # only what was in flight is unknown
    assert [email for email, n in got.items() if n > 1] == []  # no one got two
    assert set(got) <= set(ledger)
    # Everyone whose message was not in flight got exactly one, and the ledger says sent.
    assert {email: got[email] for email in set(ledger) - unknown} == dict.fromkeys(
        set(ledger) - unknown, 1
    )
    assert states() == {
        MessageState.SENT: RECIPIENTS - len(unknown),
        MessageState.UNKNOWN: len(unknown),
    }
    # The in-flight ones that went out before the kill were not sent again; the others never.
    assert {email: got[email] for email in unknown if email in got} == {
        email: 1 for email in unknown & set(written_at_kill)
    }
    made.refresh_from_db()
    assert made.status == CampaignStatus.SENT
