"""A real (headless) Chromium through Selenium, for the tests marked ``browser``.

The tests that use it set ``pytestmark = BROWSER_MARKS`` and take the ``browser`` fixture
(``tests/conftest.py``).
"""

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        # CI sets PERSONALIZATION_REQUIRE_BROWSER so a missing browser fails instead.
        not os.environ.get("PERSONALIZATION_REQUIRE_BROWSER")
        and not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
        reason=f"needs Chromium at {CHROMIUM} and chromedriver at {CHROMEDRIVER} "
        "(Debian: apt-get install chromium chromium-driver)",
    ),
]
