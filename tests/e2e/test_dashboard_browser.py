"""The dashboard in a real headless Chromium against farm serve: each page, each action."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.processes import StartMaster

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (shutil.which("chromium") and shutil.which("chromedriver")),
        reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
    ),
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def submit(browser: WebDriver, button: WebElement) -> None:
    """Click a form's button and wait until the browser has loaded the page it leads to.

    The page being left is marked with a script variable: the next page is there when the mark
    is gone and the new document has loaded. (Waiting for the button to go stale asks Chrome
    about a node of a document being torn down, which it sometimes answers with an error.)
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("window.farmPageLeft = true")
    button.click()

    def next_page_loaded(driver: WebDriver) -> bool:
        return bool(
            driver.execute_script(
                "return window.farmPageLeft === undefined && document.readyState === 'complete'"
            )
        )

    WebDriverWait(browser, 15, ignored_exceptions=(WebDriverException,)).until(next_page_loaded)


def test_a_wrangler_runs_the_farm_from_the_dashboard(
    start_master: StartMaster, browser: WebDriver
) -> None:
    from selenium.webdriver.common.by import By

    # The pages' own reload every few seconds would race the clicks: it is off here (and its
    # tag is tested in tests/http/test_dashboard.py).
    master = start_master(FARM_DASHBOARD_REFRESH="0")
    base = master.url
    api = master.api()
    agent_id = str(uuid.uuid4())
    api.post(
        "/agents/",
        json={
            "id": agent_id,
            "hostname": "render-01",
            "ram": 8192,
            "free_ram": 4096,
            "cpus": 8,
            "port": 50001,
            "use_address": "passive",
        },
    )
    api.post("/jobtypes/", json={"name": "render"})
    job = api.post(
        "/jobs/",
        json={"title": "shot_010", "jobtype": "render", "start": 1, "end": 8, "requeue": 0},
    ).json()
    task = api.get(f"/jobs/{job['id']}/tasks/").json()[0]
    api.post(f"/agents/{agent_id}/tasks/", json={"id": task["id"]})
    api.post(
        f"/jobs/{job['id']}/tasks/{task['id']}",
        json={"state": "failed", "last_error": "exit 3: no license"},
    )
    ARTIFACTS.mkdir(exist_ok=True)

    browser.get(base + "/")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-agent="{agent_id}"]')
    assert "render-01" in row.text and "online" in row.text
    browser.save_screenshot(str(ARTIFACTS / "dashboard-agents.png"))
    submit(browser, row.find_element(By.TAG_NAME, "button"))  # Disable
    assert api.get(f"/agents/{agent_id}").json()["state"] == "disabled"
    submit(browser, browser.find_element(By.CSS_SELECTOR, f'tr[data-agent="{agent_id}"] button'))
    assert api.get(f"/agents/{agent_id}").json()["state"] == "online"

    browser.get(base + "/jobs")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-job="{job["id"]}"]')
    assert "shot_010" in row.text and "failed" not in row.text.split()[1:2]
    browser.save_screenshot(str(ARTIFACTS / "dashboard-jobs.png"))
    field = row.find_element(By.NAME, "priority")
    field.clear()
    field.send_keys("75")
    submit(browser, row.find_element(By.XPATH, ".//button[text()='Set']"))
    assert api.get(f"/jobs/{job['id']}").json()["priority"] == 75
    submit(
        browser,
        browser.find_element(By.CSS_SELECTOR, f'tr[data-job="{job["id"]}"]').find_element(
            By.XPATH, ".//button[text()='Pause']"
        ),
    )
    assert api.get(f"/jobs/{job['id']}").json()["state"] == "paused"
    submit(
        browser,
        browser.find_element(By.CSS_SELECTOR, f'tr[data-job="{job["id"]}"]').find_element(
            By.XPATH, ".//button[text()='Resume']"
        ),
    )
    assert api.get(f"/jobs/{job['id']}").json()["state"] != "paused"
    submit(
        browser,
        browser.find_element(By.CSS_SELECTOR, f'tr[data-job="{job["id"]}"]').find_element(
            By.XPATH, ".//button[text()='Requeue failed']"
        ),
    )
    assert api.get(f"/jobs/{job['id']}/tasks/{task['id']}").json()["state"] == "queued"

    submit(browser, browser.find_element(By.LINK_TEXT, "shot_010"))
    assert browser.find_element(By.ID, "tasks").text.count("queued") >= 8
    blocked = browser.find_element(By.ID, "blocklist").find_element(By.CSS_SELECTOR, "td span")
    assert (blocked.text, blocked.get_attribute("title")) == ("render-01", agent_id)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-job.png"))
