"""``make demo``: prepare the database, then run the shop, a Celery worker and Celery Beat."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from demo_shop.shop.supervisor import Supervisor

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Migrate, seed the demo data, create the demo superuser, then run the web server, a "
        "Celery worker and Celery Beat until Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--addr", default="127.0.0.1:8000", help="Where the web server listens."
        )
        parser.add_argument(
            "--skip-seed", action="store_true", help="Don't run seed_demo (faster restarts)."
        )

    def handle(self, *args, addr="127.0.0.1:8000", skip_seed=False, **options):
        host, _sep, port = addr.rpartition(":")
        host = host or "127.0.0.1"
        if not port.isdigit():
            raise CommandError(f"--addr must look like 127.0.0.1:8000, not {addr!r}.")
        if _port_in_use(host, int(port)):
            raise CommandError(
                f"Something is already listening on {host}:{port}. Stop it, or run "
                f"`python manage.py rundemo --addr 127.0.0.1:8001`."
            )

        self._step(1, "Migrating the database")
        call_command("migrate", interactive=False, verbosity=1)
        self._step(2, "Seeding demo data")
        if skip_seed:
            self.stdout.write("Skipped (--skip-seed).")
        else:
            started = time.monotonic()
            with _Ticker(self.stdout, "still seeding"):
                call_command("seed_demo")
            self.stdout.write(f"Seeded in {time.monotonic() - started:.0f}s.")
        self._step(3, "Demo superuser")
        password = self._superuser()
        self._step(4, "Starting the web server, Celery worker and Celery Beat")

        base = site_url_for(host, int(port))
        supervisor = Supervisor(
            out=sys.stdout, env=_child_env(site_url=base), cwd=str(settings.BASE_DIR)
        )
        python = sys.executable
        supervisor.add(
            "web",
            [
                python,
                str(settings.BASE_DIR / "manage.py"),
                "runserver",
                f"{host}:{port}",
                "--noreload",
            ],
        )
        supervisor.add(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "demo_shop",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--hostname=demo-worker@%h",
                "--without-gossip",
                "--without-mingle",
            ],
        )
        supervisor.add(
            "beat",
            [
                python,
                "-m",
                "celery",
                "-A",
                "demo_shop",
                "beat",
                "--loglevel=INFO",
                "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
            ],
        )

        def announce() -> None:
            ready = _wait_for_port(host, int(port), timeout=30, stop=supervisor.stop_event)
            if not ready:
                return
            supervisor.say(
                self.style.SUCCESS(
                    "\n"
                    f"  Demo shop is running.\n"
                    f"    Shop:    {base}/\n"
                    f"    Admin:   {base}/admin/   (user {ADMIN_USERNAME}, password {password})\n"
                    f"    Outbox:  {base}/outbox/  (every email the demo sends)\n"
                    f"    Broker:  {_broker_label()}\n"
                    f"  Press Ctrl-C to stop.\n"
                )
            )

        code = supervisor.run(
            when_started=lambda: threading.Thread(target=announce, daemon=True).start()
        )
        if code:
            raise CommandError(f"Stopped because {supervisor.stop_reason}.", returncode=code)
        self.stdout.write(f"Stopped ({supervisor.stop_reason}). Bye!")

    def _step(self, number: int, text: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"[{number}/4] {text}…"))

    def _superuser(self) -> str:
        User = get_user_model()
        password = settings.DEMO_ADMIN_PASSWORD
        user = User.objects.filter(username=ADMIN_USERNAME).first()
        if user is None:
            User.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", password)
            self.stdout.write(f"Created superuser {ADMIN_USERNAME!r}.")
        elif user.check_password(password):
            self.stdout.write(f"Superuser {ADMIN_USERNAME!r} exists.")
        else:
            self.stdout.write(
                f"Superuser {ADMIN_USERNAME!r} exists with a password you changed; left as is."
            )
            return "(the one you set)"
        return password


def site_url_for(host: str, port: int) -> str:
    """The shop's address for links in emails, given where the web server listens."""
    # Listening on every interface: this machine's own browser reaches it on the loopback.
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def _child_env(*, site_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "demo_shop.settings")
    # The web server and the worker build email links from it (settings.py reads it); a
    # DEMO_SITE_URL set by hand (a tunnel, another host name) wins.
    env.setdefault("DEMO_SITE_URL", site_url)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _broker_label() -> str:
    url = settings.CELERY_BROKER_URL
    if url == "filesystem://":
        return f"embedded file-system broker in {settings.VAR_DIR / 'celery'}"
    return url.split("@")[-1] if "@" in url else url


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _wait_for_port(host: str, port: int, *, timeout: float, stop: threading.Event) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if _port_in_use(host, port):
            return True
        time.sleep(0.3)
    return False


class _Ticker:
    """Prints a line every few seconds while a long step runs without output of its own."""

    def __init__(self, out, label: str, every: float = 10.0):
        self.out, self.label, self.every = out, label, every
        self._done = threading.Event()
        self._started = time.monotonic()

    def __enter__(self):
        threading.Thread(target=self._tick, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._done.set()

    def _tick(self) -> None:
        while not self._done.wait(self.every):
            self.out.write(f"… {self.label} ({time.monotonic() - self._started:.0f}s)")
