"""Browser tests: Selenium driving Debian's headless Chromium against Django's live server.

Every test under tests/browser/ is marked `browser`. A plain `pytest` (`make test`) deselects
them (not skips: they are not part of that run); `make test-browser` sets BROWSER_TESTS=1 and
runs only them. They need /usr/bin/chromium and /usr/bin/chromedriver (Debian's `chromium`
and `chromium-driver`; CHROMIUM_BINARY and CHROMEDRIVER override the paths); when asked to run
without them, they fail and say what to install.

- Every test runs against the simulated outside servers, with fixed encryption keys, links
  that point at the live server, and Celery tasks run inline (no worker, nothing left queued).
- `browser`: one headless Chromium for the whole run, cookies cleared before each test.
- `open_page(path)`: load a page of the live server and wait for its body.
- `wait_for(css)`, `wait_until(predicate)`: wait for an element, or for anything.
- `admin_login(user)`: sign in through the admin's login form, as a person would.
- `screenshot(name)`: save the whole page as screenshots/<name>.png (git-ignored); the path.
"""

import base64
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SCREENSHOTS = ROOT / "screenshots"
ENABLED = os.environ.get("BROWSER_TESTS") == "1"
CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT_SECONDS = 20
KEY = "k1:" + base64.b64encode(bytes(range(32))).decode()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "browser: drives headless Chromium against the live server; "
        "deselected unless BROWSER_TESTS=1 (make test-browser)",
    )


def pytest_collection_modifyitems(config, items):
    mine = [item for item in items if HERE in Path(str(item.path)).resolve().parents]
    for item in mine:
        item.add_marker(pytest.mark.browser)
    if ENABLED or not mine:
        return
    config.hook.pytest_deselected(items=mine)
    chosen = set(map(id, mine))
    items[:] = [item for item in items if id(item) not in chosen]


@pytest.fixture(scope="session")
def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: apt-get install -y chromium chromium-driver",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1440,1800",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def browser(_driver, live_server):
    """The shared Chromium with no cookies left by an earlier test, at its usual size."""
    _driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    _driver.set_window_size(1440, 1000)
    return _driver


@pytest.fixture(autouse=True)
def _product_settings(settings, live_server):
    """The simulated servers, fixed encryption keys, and links that point at the live server,
    whatever the environment says. The live server runs in this process: it sees the same
    settings."""
    from gateways.loading import reset_gateways

    settings.MT5_GATEWAY = "gateways.mt5.simulated.SimulatedMT5Gateway"
    settings.DEMO_GATEWAY = "gateways.demo.simulated.SimulatedDemoGateway"
    settings.BROKER_GATEWAY = "gateways.broker.simulated.SimulatedBrokerGateway"
    settings.TELEGRAM_GATEWAY = "gateways.telegram.simulated.SimulatedTelegramGateway"
    settings.ENCRYPTION_KEYS = KEY
    settings.PUBLIC_BASE_URL = live_server.url
    reset_gateways()
    yield
    reset_gateways()


@pytest.fixture(autouse=True)
def _tasks_run_inline():
    """What a worker would do runs in the process that queued it, so nothing waits in the
    broker after the test (the tests start no worker). As on a worker, a task's failure does
    not fail the caller: the figures the tests check would show it."""
    from celery import current_app

    conf = current_app.conf
    before = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, False
    yield
    conf.task_always_eager, conf.task_eager_propagates = before


@pytest.fixture
def open_page(browser, live_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    def load(path: str):
        browser.get(f"{live_server.url}{path}")
        WebDriverWait(browser, WAIT_SECONDS).until(
            ec.presence_of_element_located((By.TAG_NAME, "body"))
        )
        return browser

    return load


@pytest.fixture
def wait_until(browser):
    """`wait_until(predicate)`: wait until `predicate(driver)` is true, e.g. a new address.
    An element that goes away while the next page loads counts as "not yet"."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(predicate, message: str = ""):
        return WebDriverWait(
            browser,
            WAIT_SECONDS,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        ).until(predicate, message)

    return wait


@pytest.fixture
def wait_for(wait_until):
    """`wait_for(css)`: the first element matching the CSS selector, once the page holding it
    has finished loading. A click does not wait for the page it opens, and a page still being
    parsed would hold only some of its elements."""
    from selenium.webdriver.common.by import By

    def loaded(css: str):
        def check(driver):
            if driver.execute_script("return document.readyState") != "complete":
                return False
            found = driver.find_elements(By.CSS_SELECTOR, css)
            return found[0] if found else False

        return check

    def wait(css: str):
        return wait_until(loaded(css), f"no {css} on a loaded page")

    return wait


@pytest.fixture
def admin_login(browser, open_page, wait_for, wait_until):
    from selenium.webdriver.common.by import By

    from tests.factories import PASSWORD

    def login(user, password: str = PASSWORD):
        open_page("/admin/login/?next=/admin/")
        browser.find_element(By.ID, "id_username").send_keys(user.email)
        browser.find_element(By.ID, "id_password").send_keys(password)
        browser.find_element(By.CSS_SELECTOR, "form#login-form [type=submit]").click()
        wait_until(
            lambda driver: (
                "/admin/login/" not in driver.current_url
                or driver.find_elements(By.CSS_SELECTOR, ".errornote")
            )
        )
        assert "/admin/login/" not in browser.current_url, "the login form refused the user"
        wait_for("#content")
        return browser

    return login


@pytest.fixture
def screenshot(browser):
    def save(name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        # The whole page, not only the window: the dashboard runs below the fold.
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1440, max(900, min(int(height) + 40, 6000)))
        assert browser.save_screenshot(str(path)), f"could not save {path}"
        return path

    return save
