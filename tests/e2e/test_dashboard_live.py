"""The dashboard's filters and live updates in a real headless Chromium against farm serve: a
filter narrows the agents table; a task finishing shows on an open job page without a reload;
typing in a form survives an update."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import httpx

from tests.e2e import test_dashboard_browser as browser_tests
from tests.e2e.test_dashboard_browser import (
    ARTIFACTS,
    add_user,
    admin_api,
    browser,  # noqa: F401  # the fixture
    log_in,
    submit,
    wait_for,
)
from tests.support.processes import StartMaster

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = browser_tests.pytestmark  # e2e; skipped without chromium


def announce(api: httpx.Client, hostname: str, port: int = 50001) -> str:
    agent_id = str(uuid.uuid4())
    api.post(
        "/agents/",
        json={
            "id": agent_id,
            "hostname": hostname,
            "ram": 8192,
            "free_ram": 4096,
            "cpus": 8,
            "port": port,
            "use_address": "passive",
        },
    ).raise_for_status()
    return agent_id


def hosts(driver: WebDriver) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#agents tr[data-agent] td:first-child a")
    return [row.text for row in rows]


def test_a_filter_narrows_the_agents_table_and_typing_survives_an_update(
    start_master: StartMaster,
    browser: WebDriver,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    # A long self-refresh: only the live updates can change the page during the test.
    master = start_master(FARM_DASHBOARD_REFRESH="600")
    api = admin_api(master)
    add_user(master, "vic", "viewer")
    for name in ("render-01", "render-02", "comp-01"):
        announce(api, name)
    log_in(browser, master, "vic")
    assert hosts(browser) == ["comp-01", "render-01", "render-02"]
    search = browser.find_element(By.NAME, "q")
    search.send_keys("render")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#agent-filters button"))
    assert hosts(browser) == ["render-01", "render-02"]
    assert "q=render" in browser.current_url
    wait_for(browser, lambda b: b.find_element(By.ID, "live").text == "live")
    # Half-typed in the search box while an agent arrives: the table updates, the text stays.
    search = browser.find_element(By.NAME, "q")
    search.send_keys("-0")
    browser.execute_script("window.farmNoReload = true")
    announce(api, "render-03", port=50002)
    wait_for(browser, lambda b: "render-03" in hosts(b))
    assert browser.find_element(By.NAME, "q").get_attribute("value") == "render-0"
    assert browser.execute_script("return window.farmNoReload") is True


def test_a_task_finishing_shows_on_an_open_job_page_without_a_reload(
    start_master: StartMaster,
    browser: WebDriver,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    master = start_master(FARM_DASHBOARD_REFRESH="600")
    api = admin_api(master)
    add_user(master, "vic", "viewer")
    agent_id = announce(api, "render-01")
    api.post("/jobtypes", json={"name": "render"}).raise_for_status()
    job = api.post(
        "/jobs", json={"title": "shot", "jobtype": "render", "start": 1, "end": 3}
    ).json()
    task = api.get(f"/jobs/{job['id']}/tasks/").json()[0]
    log_in(browser, master, "vic")
    browser.get(f"{master.url}/jobs/{job['id']}")
    wait_for(browser, lambda b: b.find_element(By.ID, "live").text == "live")
    browser.execute_script("window.farmNoReload = true")
    row = f'#tasks tr[data-task="{task["id"]}"] .pill'
    assert browser.find_element(By.CSS_SELECTOR, row).text == "queued"
    api.post(f"/agents/{agent_id}/tasks", json={"id": task["id"]}).raise_for_status()
    path = f"/jobs/{job['id']}/tasks/{task['id']}"
    api.post(path, json={"state": "running"}).raise_for_status()
    wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, row).text == "running")
    api.post(path, json={"state": "done"}).raise_for_status()
    wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, row).text == "done")
    assert (
        "render-01"
        in browser.find_element(By.CSS_SELECTOR, f'#tasks tr[data-task="{task["id"]}"]').text
    )
    assert browser.execute_script("return window.farmNoReload") is True  # no reload happened
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-job-live.png"))
    # The overview counts the frame done this hour, drawn in the page (no script needed).
    browser.get(f"{master.url}/overview")
    chart = browser.find_element(By.ID, "done-chart")
    assert "1 in all" in chart.text
    assert browser.find_element(By.ID, "agents-online").text == "1"
    browser.save_screenshot(str(ARTIFACTS / "dashboard-overview.png"))
