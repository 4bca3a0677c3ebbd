"""The web UI in a real browser: headless Chromium logs in, finds the audit, triggers it, sees it succeed.

Uses Debian's ``chromium`` and ``chromium-driver`` through Selenium, against the session's
LocalExecutor service (shared with test_deployment_local.py, so no second start-up when both run).
"""

from __future__ import annotations

import shutil
import time

import pytest
from servers.airflow import shared_local_service

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (.ci/services.sh installs them)",
)


@pytest.fixture(scope="module")
def service(request):
    return shared_local_service(request.config)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=DriverService(CHROMEDRIVER), options=options)
    driver.implicitly_wait(2)
    yield driver
    driver.quit()


def wait_for(predicate, timeout: float, what: str, driver):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; page text:\n{driver.find_element('tag name', 'body').text}")


def buttons_named(driver, text: str):
    return [b for b in driver.find_elements("tag name", "button") if b.is_displayed() and b.text.strip() == text]


def test_log_in_find_trigger_and_see_the_audit_succeed(service, browser):
    from selenium.webdriver.common.by import By

    service.wait_for_dag("mockaudit")
    before = {r["dag_run_id"] for r in service.api("GET", "/dags/mockaudit/dagRuns").json()["dag_runs"]}

    browser.get(service.base_url)
    user = wait_for(lambda: browser.find_element(By.NAME, "username"), 60, "the login form", browser)
    user.send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(service.password())
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: "Welcome" in browser.find_element(By.TAG_NAME, "body").text, 60, "the home page", browser)

    # The DAG list: find the audit by name and open it.
    browser.get(f"{service.base_url}/dags")
    link = wait_for(lambda: browser.find_element(By.LINK_TEXT, "mockaudit"), 60, "mockaudit in the DAG list", browser)
    link.click()
    wait_for(lambda: buttons_named(browser, "Trigger"), 60, "the Trigger button", browser)[0].click()
    # The trigger dialog has its own "Trigger" button; it is the last one shown.
    wait_for(lambda: len(buttons_named(browser, "Trigger")) >= 2, 30, "the trigger dialog", browser)
    buttons_named(browser, "Trigger")[-1].click()

    def new_run():
        runs = service.api("GET", "/dags/mockaudit/dagRuns").json()["dag_runs"]
        return [r for r in runs if r["dag_run_id"] not in before]

    run = wait_for(new_run, 30, "the run the UI triggered", browser)[0]
    assert service.wait_for_run("mockaudit", run["dag_run_id"]) == "success", service.tail()
    succeeded = [r for r in service.api("GET", "/dags/mockaudit/dagRuns").json()["dag_runs"] if r["state"] == "success"]

    # The UI's run list shows the run (and every other successful one) as succeeded.
    def success_rows():
        browser.refresh()
        rows = [r.text.lower() for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr")]
        return len([r for r in rows if "success" in r]) == len(succeeded)

    browser.get(f"{service.base_url}/dags/mockaudit/runs")
    wait_for(success_rows, 60, f"{len(succeeded)} successful runs in the run list", browser)
