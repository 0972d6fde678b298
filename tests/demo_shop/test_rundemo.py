"""``rundemo`` for real: a subprocess on a free port with its web server, worker and Beat."""

import html
import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest

from demo_shop.shop.management.commands.rundemo import site_url_for

ROOT = Path(__file__).resolve().parents[2]
# Bounds for waiting on processes, not assertions about speed: a loaded machine may be slow.
START_TIMEOUT = 180
MAIL_TIMEOUT = 60
EXIT_TIMEOUT = 30

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="rundemo's children die with it on Linux only"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                living.append(process)
        except psutil.NoSuchProcess:
            pass
    return living


class Demo:
    """A ``manage.py rundemo`` in its own var/ directory, on SQLite and the embedded broker."""

    def __init__(self, tmp_path: Path, addr: str):
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.var = tmp_path / "var"
        self.addr = addr
        self.port = int(addr.rpartition(":")[2])
        self.log = tmp_path / "rundemo.log"
        env = {
            name: value
            for name, value in os.environ.items()
            # The test suite's own services and settings are not the demo's.
            if name not in {"DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_BACKEND", "DEMO_SITE_URL"}
            and not name.startswith(("PYTEST_", "DJANGO_"))
        }
        env["DEMO_VAR_DIR"] = str(self.var)
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "rundemo", "--addr", addr, "--skip-seed"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.children: list[psutil.Process] = []
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"rundemo exited:\n{self.output()}"
            try:
                with self.opener.open(f"{self.base}/", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"rundemo did not serve in {START_TIMEOUT}s:\n{self.output()}")
        # Web, worker and Beat, and anything they started in turn.
        self.children = psutil.Process(self.process.pid).children(recursive=True)
        assert len(self.children) >= 3, self.output()

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as response:
            return response.read().decode()

    def post(self, path: str, data: dict[str, str]) -> str:
        """Post ``data`` with the hidden fields of the page's form (the CSRF token, the
        versions of the consent wordings shown), as a browser would."""
        form = self.get(path)
        hidden = {
            name: html.unescape(value)
            for name, value in re.findall(
                r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form
            )
        }
        assert "csrfmiddlewaretoken" in hidden
        body = urllib.parse.urlencode({**hidden, **data}).encode()
        with self.opener.open(self.base + path, data=body, timeout=30) as response:
            return response.read().decode()

    def wait_for_mail(self, pattern: str) -> re.Match:
        deadline = time.monotonic() + MAIL_TIMEOUT
        while time.monotonic() < deadline:
            for path in (self.var / "outbox").glob("*.log"):
                found = re.search(pattern, path.read_text(errors="replace"))
                if found:
                    return found
            time.sleep(0.5)
        pytest.fail(f"no mail matching {pattern!r} in {MAIL_TIMEOUT}s:\n{self.output()}")

    def stop(self) -> None:
        """Whatever happened, leave nothing of this demo running (only our own pids)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for child in alive(self.children):
            child.kill()


@pytest.fixture
def demo(tmp_path):
    demos = []

    def start(addr: str) -> Demo:
        started = Demo(tmp_path / str(len(demos)), addr)
        demos.append(started)
        started.wait_until_serving()
        return started

    yield start
    for started in demos:
        started.stop()


def test_the_confirmation_link_points_at_the_address_rundemo_serves(demo):
    shop = demo(f"0.0.0.0:{free_port()}")

    shop.post(
        "/signup/",
        {
            "username": "ann",
            "email": "ann@example.com",
            "first_name": "Ann",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
            "consent_email_marketing": "on",
        },
    )

    link = shop.wait_for_mail(r"http://\S+/personalization/confirm/\S+/").group(0)
    assert link.startswith(f"{shop.base}/personalization/confirm/")
    assert "Yes, confirm" in shop.get(link.removeprefix(shop.base))


@pytest.mark.parametrize(
    ("addr", "site_url"),
    [
        ("127.0.0.1:8123", "http://127.0.0.1:8123"),
        ("0.0.0.0:8123", "http://127.0.0.1:8123"),
        ("localhost:8001", "http://localhost:8001"),
        ("192.168.1.5:8000", "http://192.168.1.5:8000"),
    ],
)
def test_links_use_an_address_a_browser_on_this_machine_can_open(addr, site_url):
    host, _sep, port = addr.rpartition(":")
    assert site_url_for(host, int(port)) == site_url


def test_killing_rundemo_takes_its_web_server_worker_and_beat_with_it(demo):
    shop = demo(f"127.0.0.1:{free_port()}")
    children = list(shop.children)

    shop.process.send_signal(signal.SIGKILL)
    shop.process.wait()

    _gone, survivors = psutil.wait_procs(children, timeout=EXIT_TIMEOUT)
    assert alive(survivors) == [], [p.cmdline() for p in alive(survivors)]
    with pytest.raises(urllib.error.URLError):
        shop.get("/")
