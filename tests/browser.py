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

# axe-core, fetched by `make test` (tests/tools/fetch_axe.py).
AXE_JS = os.path.join(os.path.dirname(os.path.dirname(__file__)), ".venv/axe-core/axe.min.js")
# Failing tests leave a screenshot of the page here.
SCREENSHOT_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "var/screenshots")


def axe_violations(driver, *, impacts=("serious", "critical")) -> list[dict]:
    """The accessibility violations axe-core finds on the page, of the given impacts; each as
    ``{"id", "impact", "help", "nodes": [selector, ...]}`` so a failing assert says where."""
    if not os.path.exists(AXE_JS):
        pytest.fail(f"axe-core is missing at {AXE_JS}: run `make test` (it fetches it)")
    with open(AXE_JS, encoding="utf-8") as script:
        driver.execute_script(script.read())
    driver.set_script_timeout(30)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done(r.violations), e => done({error: String(e)}));"
    )
    if isinstance(result, dict) and "error" in result:
        pytest.fail(f"axe-core failed: {result['error']}")
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [" ".join(node["target"]) for node in violation["nodes"]],
        }
        for violation in result
        if violation["impact"] in impacts
    ]
