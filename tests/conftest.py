"""Shared fixtures. Tests needing PostgreSQL or Redis skip with the reason when absent."""

import os
import shutil
import tempfile

import pytest
from django.db import connection

from tests import factories
from tests.browser import CHROME_FLAGS, CHROMEDRIVER, CHROMIUM, SCREENSHOT_DIR

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(autouse=True)
def _outbox_dir(settings, tmp_path):
    settings.EMAIL_FILE_PATH = tmp_path / "outbox"


@pytest.fixture
def profile_factory(db):
    return factories.ProfileFactory


@pytest.fixture
def product_factory(db):
    return factories.ProductFactory


@pytest.fixture
def order_factory(db):
    return factories.OrderFactory


@pytest.fixture
def user_factory(db):
    return factories.UserFactory


@pytest.fixture
def topic_factory(db):
    return factories.TopicFactory


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    skip_pg = pytest.mark.skip(
        reason="needs PostgreSQL: run with DATABASE_URL=postgres://postgres@127.0.0.1:5432/personalization"
    )
    redis_reason = _redis_unavailable()
    skip_redis = pytest.mark.skip(reason=f"needs Redis at {REDIS_URL}: {redis_reason}")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and redis_reason:
            item.add_marker(skip_redis)


def _redis_unavailable() -> str:
    """Empty when Redis answers at REDIS_URL, else why not."""
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as err:  # noqa: BLE001  (any failure means: skip, saying why)
        return str(err) or type(err).__name__
    return ""


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_broker():
    """A broker that accepts connections and never answers (overloaded, or a bad firewall)."""
    import socket
    import threading
    from types import SimpleNamespace

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield SimpleNamespace(url=f"redis://127.0.0.1:{server.getsockname()[1]}/0", accepted=accepted)
    server.close()
    for sock in accepted:
        sock.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Lets the browser fixture see whether the test failed (for its screenshot).
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def browser(request):
    """A headless Chromium (Selenium WebDriver) with a fresh profile; for tests marked
    ``browser`` (``tests.browser.BROWSER_MARKS``). A failing test leaves a screenshot of the
    page in ``var/screenshots/``."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium")
    from selenium.webdriver.chrome.service import Service

    profile_dir = tempfile.mkdtemp(prefix="pzn-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    # An explicit driver path: selenium-manager never tries to download one.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            os.makedirs(SCREENSHOT_DIR, exist_ok=True)
            path = os.path.join(SCREENSHOT_DIR, f"{request.node.name}.png")
            driver.save_screenshot(path)
            print(f"screenshot of the failing page: {path}")
    finally:
        driver.quit()
        shutil.rmtree(profile_dir, ignore_errors=True)
