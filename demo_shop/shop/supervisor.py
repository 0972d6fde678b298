"""Run a few child processes together, as ``rundemo`` does with the web server, worker and Beat.

- Each child's output is printed line by line with its name in front.
- SIGINT or SIGTERM to this process stops every child (SIGTERM, then SIGKILL after a grace
  period) and ``run()`` returns 0.
- If one child exits on its own, the others are stopped too and ``run()`` returns 1.

Children run in their own session, so a Ctrl-C in the terminal reaches only this process,
which then stops them in order instead of all of them getting the signal at once.

If this process dies without the chance to stop them (SIGKILL, the OOM killer), each child
gets SIGTERM from the kernel (Linux's parent-death signal), so none is left running as an
orphan that keeps the port, the broker queue or the SQLite file busy.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from django.utils.translation import gettext as _


@dataclass
class Child:
    name: str
    command: Sequence[str]
    process: subprocess.Popen | None = None
    reader: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    def __init__(
        self,
        *,
        out: TextIO,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        grace_seconds: float = 10.0,
        poll_seconds: float = 0.2,
    ):
        self.out = out
        self.env = env
        self.cwd = cwd
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds
        self.children: list[Child] = []
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self.stop_reason = ""

    def add(self, name: str, command: Sequence[str]) -> None:
        self.children.append(Child(name=name, command=list(command)))

    def say(self, line: str) -> None:
        with self._lock:
            self.out.write(line.rstrip("\n") + "\n")
            self.out.flush()

    def request_stop(self, reason: str) -> None:
        if not self.stop_event.is_set():
            self.stop_reason = reason
            self.stop_event.set()

    def run(self, *, when_started: Callable[[], None] | None = None) -> int:
        """Start every child, wait until told to stop or until one exits; stop the rest."""
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        failed: Child | None = None
        try:
            for child in self.children:
                self._start(child)
            if when_started is not None:
                when_started()
            while not self.stop_event.is_set():
                failed = next((c for c in self.children if c.process.poll() is not None), None)
                if failed is not None:
                    self.request_stop(
                        _("%(name)s exited with status %(status)d")
                        % {"name": failed.name, "status": failed.process.returncode}
                    )
                    break
                self.stop_event.wait(self.poll_seconds)
        finally:
            self.stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 1 if failed is not None else 0

    def _on_signal(self, signum, frame) -> None:
        self.request_stop(signal.Signals(signum).name)

    def _start(self, child: Child) -> None:
        # Called from run()'s thread on purpose: the parent-death signal fires when the thread
        # that started the child ends, and run() lasts as long as the children should.
        child.process = subprocess.Popen(
            child.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=_die_with(os.getpid()),
            text=True,
            bufsize=1,
            errors="replace",
        )
        child.reader = threading.Thread(
            target=self._pump, args=(child,), name=f"output-{child.name}", daemon=True
        )
        child.reader.start()
        self.say(
            _("[%(name)s] started (pid %(pid)d): %(command)s")
            % {"name": child.name, "pid": child.process.pid, "command": " ".join(child.command)}
        )

    def _pump(self, child: Child) -> None:
        width = max(len(c.name) for c in self.children)
        for line in child.process.stdout:
            self.say(f"{child.name:<{width}} | {line}")

    def stop_all(self) -> None:
        """SIGTERM every running child (in reverse start order), SIGKILL whoever lingers."""
        running = [c for c in reversed(self.children) if c.process and c.process.poll() is None]
        if running:
            self.say(_("Stopping %(names)s…") % {"names": ", ".join(c.name for c in running)})
        for child in running:
            _signal(child.process, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for child in running:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(
                    _("[%(name)s] did not stop in %(seconds)gs; killing it.")
                    % {"name": child.name, "seconds": self.grace_seconds}
                )
                _signal(child.process, signal.SIGKILL)
                child.process.wait()
        for child in self.children:
            if child.reader is not None:
                child.reader.join(timeout=2)
            if child.process is not None and child.process.returncode is not None:
                self.say(_how_it_ended(child.name, child.process.returncode))


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# Looked up here, in the parent: the child between fork and exec should only make the call.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with(parent_pid: int) -> Callable[[], None] | None:
    """A preexec_fn that has the kernel SIGKILL the child when ``parent_pid`` dies (Linux).

    SIGKILL, not SIGTERM: the parent died without an orderly stop, and a child busy in a long
    call (Beat waiting on SQLite's lock) could take longer than anyone waits to handle a
    SIGTERM. Nothing is lost by it: work lives in the database's outbox, not in the worker.
    """
    if _prctl is None:
        return None

    def preexec() -> None:
        if _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent_pid:
            # The parent died before the call above: no signal will come, so go now.
            os._exit(1)

    return preexec


def _how_it_ended(name: str, returncode: int) -> str:
    # A child that dies of the SIGTERM it was sent (as runserver does) stopped cleanly.
    if returncode in (0, -signal.SIGTERM):
        return _("[%(name)s] stopped.") % {"name": name}
    if returncode < 0:
        return _("[%(name)s] stopped by %(signal)s.") % {
            "name": name,
            "signal": signal.Signals(-returncode).name,
        }
    return _("[%(name)s] stopped (exit status %(status)d).") % {"name": name, "status": returncode}


def _signal(process: subprocess.Popen, signum: int) -> None:
    try:
        # The child leads its own process group: reach anything it started as well.
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
