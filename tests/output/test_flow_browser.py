"""The HTML flow in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven through selenium) renders ``heptool flow -f html`` of a bundled
capture; the ladder and the table are drawn, a click on a row shows its whole message (and a
second click hides it), a link in the ladder opens its row, and the page logs no console
error.

In CI (``CI=true``) a missing Chromium fails (scripts/setup-peers.sh installs it); elsewhere
the test skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from heptool.cli import main
from heptool.cli.env import Environment

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "tests" / "vectors" / "opensips" / "opensips-3.4.15-hep3-udp.pcap"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not installed (bash scripts/setup-peers.sh chromium installs it)")
    pytest.skip(f"{what} is not installed (apt-get install chromium chromium-driver, or "
                "bash scripts/setup-peers.sh chromium; selenium: pip install -e '.[test]')")


@pytest.fixture(scope="module")
def browser():
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.access(path, os.X_OK) or shutil.which(Path(path).name)):
            _missing(path)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium (a test extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER if os.access(CHROMEDRIVER, os.X_OK)
                      else shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _html(tmp_path: Path) -> Path:
    out = tmp_path / "flow.html"
    runner = CliRunner()
    with runner.isolation():
        status = main(["flow", str(CAPTURE), "--group", "5", "-f", "html", "-o", str(out)],
                      env=Environment())
        sys.stdout.flush()
    assert status == 0
    return out


def _severe(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def test_html_flow_renders_and_rows_expand_in_chromium(browser, tmp_path):
    from selenium.webdriver.common.by import By

    page = _html(tmp_path)
    browser.get(page.as_uri())
    assert browser.title.startswith("group 5: SIP INVITE")
    svg = browser.find_element(By.CSS_SELECTOR, ".ladder svg")
    assert svg.size["width"] > 400 and svg.size["height"] > 300  # the ladder is drawn
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.msg")
    assert len(rows) == 24
    png = browser.get_screenshot_as_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a page, not a blank one

    invite = browser.find_element(By.ID, "m59")  # the first INVITE, with its SDP
    pre = invite.find_element(By.TAG_NAME, "pre")
    assert not pre.is_displayed()
    assert "INVITE (SDP)" in invite.find_element(By.TAG_NAME, "summary").text
    invite.find_element(By.TAG_NAME, "summary").click()
    assert pre.is_displayed()
    text = pre.text
    assert text.startswith("INVITE sip:") and "Call-ID: hc-tls-call-c7ba77@heptool.test" in text
    assert "v=0" in text and "m=audio" in text  # the SDP body too
    # a click on the row's other cells toggles it as well (the page's own script)
    invite.find_elements(By.TAG_NAME, "td")[1].click()
    assert not pre.is_displayed()
    invite.find_elements(By.TAG_NAME, "td")[0].click()
    assert pre.is_displayed()

    # the TLS event's master key is not on the page
    tls = browser.find_element(By.ID, "m58")
    tls.find_element(By.TAG_NAME, "summary").click()
    assert '"master-key": "[redacted]"' in " ".join(tls.find_element(By.TAG_NAME, "pre").text.split())

    # a row of the ladder links to its message and opens it
    bye = browser.find_element(By.CSS_SELECTOR, 'a[href="#m76"]')
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))",
                           bye)
    assert browser.execute_script("return location.hash") == "#m76"
    assert browser.find_element(By.ID, "m76").find_element(By.TAG_NAME, "pre").is_displayed()

    assert _severe(browser) == []
    # nothing was fetched: every resource of the page is the page itself
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; })")
    assert urls == []
