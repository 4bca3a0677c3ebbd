"""The findings UI plugin in a real Airflow API server: its auth, its JSON API, and its tabs in Chromium.

Runs against the session's shared LocalExecutor service (``servers.airflow.shared_local_service``,
started once for this module, test_ui_browser.py and test_deployment_local.py), which has three
SimpleAuthManager users: ``admin``, ``viewer`` (role VIEWER: reads every DAG) and ``outsider`` (no
role: SimpleAuthManager grants such a user nothing, so it may read no DAG). The mock audit runs
twice, so the state has a history of two runs; the expected findings are read from the state
files themselves (``StateStore.current_findings``), not from the API under test.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from pathlib import Path

import httpx
import pytest
from servers.airflow import shared_local_service

from airflow_cloudmarker import findings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
AUDIT = "mockaudit"


@pytest.fixture(scope="module")
def service(request):
    service = shared_local_service(request.config)
    service.wait_for_dag(AUDIT)
    service.api("PATCH", f"/dags/{AUDIT}", json={"is_paused": False})
    for _ in range(2):
        run_id = service.trigger(AUDIT)
        assert service.wait_for_run(AUDIT, run_id) == "success", service.tail()
    return service


@pytest.fixture(scope="module")
def state(service) -> dict[str, dict]:
    """The open findings as the state files hold them, read without the plugin."""
    base = f"file://{service.home}/xcom/cloudmarker-findings"
    return findings.StateStore(base, AUDIT).current_findings()


def get(service, path: str, user: str | None = None, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {service.token_of(user)}"} if user else {}
    return httpx.get(f"{service.base_url}/cloudmarker{path}", headers=headers, timeout=30, **kwargs)


AUDIT_ROUTES = (
    f"/api/v1/audits/{AUDIT}/findings",
    f"/api/v1/audits/{AUDIT}/findings.csv",
    f"/api/v1/audits/{AUDIT}/findings.json",
    f"/api/v1/audits/{AUDIT}/runs",
    f"/audit?dag_id={AUDIT}",
)


def test_the_plugin_is_registered_with_its_tabs(service):
    plugins = service.api("GET", "/plugins").json()["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "cloudmarker"]
    views = {v["destination"]: v for v in plugin["external_views"]}
    assert views["dag"]["href"] == "cloudmarker/audit?dag_id={DAG_ID}" and views["dag"]["url_route"]
    assert views["dag_run"]["href"] == "cloudmarker/run?dag_id={DAG_ID}&run_id={RUN_ID}"
    assert views["nav"]["name"] == "Cloudmarker"
    # A source checkout on sys.path next to the installed distribution (a stale *.egg-info) lists the same
    # entry point twice; Airflow then loads it once and reports the second as skipped. Nothing else may fail.
    errors = service.api("GET", "/plugins/importErrors").json()["import_errors"]
    assert [e for e in errors if "already registered" not in e["error"]] == []


@pytest.mark.parametrize("path", ["/api/v1/audits", "/", "/static/cloudmarker.css", *AUDIT_ROUTES])
def test_anonymous_gets_401(service, path):
    response = get(service, path)
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("path", AUDIT_ROUTES)
def test_a_user_who_may_not_read_the_dag_gets_403(service, state, path):
    response = get(service, path, "outsider")
    assert response.status_code == 403, response.text
    assert AUDIT not in response.text or "Forbidden" in response.text


def test_a_user_who_may_not_read_the_dag_does_not_see_its_name(service, state):
    response = get(service, "/api/v1/audits", "outsider")
    assert response.status_code == 200 and response.json() == {"audits": []}
    page = get(service, "/", "outsider")
    assert page.status_code == 200 and AUDIT not in page.text


def test_a_viewer_sees_the_audit_and_its_counts(service, state):
    response = get(service, "/api/v1/audits", "viewer")
    assert response.status_code == 200, response.text
    (line,) = [a for a in response.json()["audits"] if a["audit"] == AUDIT]
    assert line["open"] == len(state) > 0
    assert line["by_severity"]["low"] == len(state)  # MockEvent's default severity
    assert line["new"] == 0 and line["resolved"] == 0  # the second run found the same problems
    runs = get(service, f"/api/v1/audits/{AUDIT}/runs", "viewer").json()["runs"]
    assert len(runs) >= 2 and runs[0]["run_id"] == line["latest_run"]["run_id"]
    assert runs[0]["open"] == len(state) and runs[-1]["new"] == len(state)


def test_a_viewer_pages_filters_and_sorts_the_findings(service, state):
    url = f"/api/v1/audits/{AUDIT}/findings"
    first = get(service, url, "viewer", params={"limit": 2}).json()
    assert first["total"] == len(state) and len(first["findings"]) == 2
    finding = first["findings"][0]
    assert finding["id"] in state and finding["severity"] == "low" and finding["status"] == "open"
    assert {"reference", "description", "recommendation", "record_type", "cloud", "first_seen", "muted"} <= set(finding)
    rest = get(service, url, "viewer", params={"limit": 1000, "offset": 2}).json()["findings"]
    assert {f["id"] for f in first["findings"] + rest} == set(state)
    assert get(service, url, "viewer", params={"severity": "critical,high"}).json() == {
        "total": 0,
        "limit": 50,
        "offset": 0,
        "findings": [],
    }
    assert get(service, url, "viewer", params={"status": "new"}).json()["total"] == 0
    reference = next(iter(state.values()))["com"]["reference"]
    searched = get(service, url, "viewer", params={"q": reference}).json()["findings"]
    assert reference in {f["reference"] for f in searched}
    by_reference = get(service, url, "viewer", params={"sort": "-reference", "limit": 1000}).json()["findings"]
    assert [f["reference"] for f in by_reference] == sorted(
        (f["com"]["reference"] for f in state.values()), reverse=True
    )
    bad = get(service, url, "viewer", params={"sort": "colour"})
    assert bad.status_code == 400 and "sort must be one of" in bad.json()["detail"]


def test_a_viewer_exports_the_filtered_findings(service, state):
    text = get(service, f"/api/v1/audits/{AUDIT}/findings.csv", "viewer", params={"severity": "low"}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["id"] for r in rows} == set(state) and rows[0]["severity"] == "low"
    exported = get(service, f"/api/v1/audits/{AUDIT}/findings.json", "viewer", params={"severity": "info"}).json()
    assert exported == []


def test_the_ui_cookie_works_as_the_bearer_token_does(service, state):
    cookies = {"_token": service.token_of("viewer")}
    response = httpx.get(f"{service.base_url}/cloudmarker/audit", params={"dag_id": AUDIT}, cookies=cookies, timeout=30)
    assert response.status_code == 200 and "Findings of mockaudit" in response.text
    run_id = get(service, f"/api/v1/audits/{AUDIT}/runs", "viewer").json()["runs"][-1]["run_id"]
    page = httpx.get(
        f"{service.base_url}/cloudmarker/run", params={"dag_id": AUDIT, "run_id": run_id}, cookies=cookies, timeout=30
    )
    assert page.status_code == 200 and f"{len(state)} new" in page.text


# -- the tabs in a real browser ----------------------------------------------------------------------
@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/services.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
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


def test_a_viewer_sees_the_findings_tab_in_the_airflow_ui(service, state, browser):
    from selenium.webdriver.common.by import By

    browser.get(service.base_url)
    user = wait_for(lambda: browser.find_element(By.NAME, "username"), 60, "the login form", browser)
    user.send_keys("viewer")
    browser.find_element(By.NAME, "password").send_keys(service.password("viewer"))
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: "Welcome" in browser.find_element(By.TAG_NAME, "body").text, 60, "the home page", browser)

    browser.get(f"{service.base_url}/dags/{AUDIT}/plugin/cloudmarker-findings")
    frame = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "iframe[title=Findings]"), 60, "the tab", browser)
    browser.switch_to.frame(frame)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "table.findings tbody tr"), 30, "the rows", browser)
    counts = {e.get_attribute("data-count"): e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-count]")}
    assert counts["open"] == str(len(state)) and counts["sev-low"] == str(len(state)), counts
    assert browser.find_elements(By.CSS_SELECTOR, "figure.chart svg rect.bar-new")
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure.chart svg circle.dot-open")) >= 2
    rows = browser.find_elements(By.CSS_SELECTOR, "table.findings tbody tr")
    assert len(rows) == min(50, len(state)) and "low" in rows[0].text.lower()
    browser.switch_to.default_content()
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "findings-tab.png"))
    (ARTIFACTS / "findings-tab.json").write_text(json.dumps(counts, indent=1))
