"""The dashboard in a real headless Chromium against farm serve: logging in, each page, each
action, and pages of other origins that try to act through the logged-in browser."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.processes import Master, StartMaster, farm_command

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


PASSWORD = "correct horse battery"


def admin_api(master: Master) -> httpx.Client:
    """The master's API as its first admin (the token ``farm serve`` leaves in the data dir)."""
    token = (master.data_dir / "admin-token").read_text().strip()
    return httpx.Client(
        base_url=f"{master.url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def add_user(master: Master, name: str, role: str) -> None:
    subprocess.run(
        farm_command("users", "add", name, "--role", role, "--password-stdin"),
        env=master.env,
        input=PASSWORD + "\n",
        text=True,
        capture_output=True,
        check=True,
    )


def log_in(browser: WebDriver, master: Master, name: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(master.url + "/login")
    browser.find_element(By.ID, "name").send_keys(name)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    submit(browser, browser.find_element(By.ID, "login"))
    assert browser.current_url == master.url + "/"
    assert f"{name} (" in browser.find_element(By.ID, "who").text


def wait_for(browser: WebDriver, condition: Callable[[WebDriver], bool]) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 15, ignored_exceptions=(WebDriverException,)).until(condition)


def shows(browser: WebDriver, text: str) -> bool:
    return text in browser.page_source


@pytest.fixture
def other_origins() -> Iterator[Callable[[str, dict[str, str]], str]]:
    """Serves pages from origins other than the master's: ``serve(host, {path: html})`` starts
    a server on ``host`` (a loopback address) and returns its base URL."""
    servers: list[ThreadingHTTPServer] = []

    def serve(host: str, pages: dict[str, str]) -> str:
        class Pages(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer((host, 0), Pages)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://{host}:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def announce_passive_agent(api: httpx.Client) -> str:
    """An agent the master never calls (``use_address: passive``), for the pages to show."""
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
    ).raise_for_status()
    return agent_id


def test_a_wrangler_runs_the_farm_from_the_dashboard(
    start_master: StartMaster, browser: WebDriver
) -> None:
    from selenium.webdriver.common.by import By

    # The pages' own reload every few seconds would race the clicks: it is off here (and its
    # tag is tested in tests/http/test_dashboard.py).
    master = start_master(FARM_DASHBOARD_REFRESH="0")
    base = master.url
    api = admin_api(master)
    add_user(master, "wendy", "wrangler")
    agent_id = announce_passive_agent(api)
    api.post("/jobtypes/", json={"name": "render"}).raise_for_status()
    job = api.post(
        "/jobs/",
        json={"title": "shot_010", "jobtype": "render", "start": 1, "end": 8, "requeue": 0},
    ).json()
    task = api.get(f"/jobs/{job['id']}/tasks/").json()[0]
    api.post(f"/agents/{agent_id}/tasks/", json={"id": task["id"]}).raise_for_status()
    api.post(
        f"/jobs/{job['id']}/tasks/{task['id']}",
        json={"state": "failed", "last_error": "exit 3: no license"},
    ).raise_for_status()
    ARTIFACTS.mkdir(exist_ok=True)

    log_in(browser, master, "wendy")
    # The stylesheet loads under the pages' Content-Security-Policy (no inline styles).
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(16, 20, 26)"
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
    # An action leads to the page of what it changed: the job's, with its actions.
    assert browser.current_url == f"{base}/jobs/{job['id']}"
    assert api.get(f"/jobs/{job['id']}").json()["priority"] == 75
    for button, check in [
        ("Pause", lambda state: state == "paused"),
        ("Resume", lambda state: state != "paused"),
    ]:
        actions = browser.find_element(By.CSS_SELECTOR, f'#actions[data-job="{job["id"]}"]')
        submit(browser, actions.find_element(By.XPATH, f".//button[text()='{button}']"))
        assert check(api.get(f"/jobs/{job['id']}").json()["state"])
    blocked = browser.find_element(By.ID, "blocklist").find_element(By.CSS_SELECTOR, "td span")
    assert (blocked.text, blocked.get_attribute("title")) == ("render-01:50001", agent_id)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-job.png"))
    submit(
        browser,
        browser.find_element(By.ID, "actions").find_element(
            By.XPATH, ".//button[text()='Requeue failed']"
        ),
    )
    assert api.get(f"/jobs/{job['id']}/tasks/{task['id']}").json()["state"] == "queued"

    browser.get(base + "/jobs")
    submit(browser, browser.find_element(By.LINK_TEXT, "shot_010"))
    assert browser.find_element(By.ID, "tasks").text.count("queued") >= 8
    # The requeue lifted the agent's failure from the job's blocklist.
    assert (
        "No agent has failed or refused this job." in browser.find_element(By.ID, "blocklist").text
    )

    submit(browser, browser.find_element(By.XPATH, "//button[text()='Log out']"))
    assert browser.current_url == base + "/login"
    browser.get(base + "/jobs")  # the session is over (the login page, once nothing is open)
    assert "wendy" not in browser.page_source and "Log out" not in browser.page_source


def _state(api: httpx.Client, agent_id: str) -> tuple[object, ...]:
    jobs = api.get("/jobs/").json()
    return (
        api.get(f"/agents/{agent_id}").json()["state"],
        sorted((j["id"], j["state"], j["priority"]) for j in jobs),
    )


def test_pages_of_other_origins_cannot_act_through_a_logged_in_browser(
    start_master: StartMaster,
    browser: WebDriver,
    other_origins: Callable[[str, dict[str, str]], str],
) -> None:
    master = start_master(FARM_DASHBOARD_REFRESH="0")
    api = admin_api(master)
    add_user(master, "wendy", "wrangler")
    agent_id = announce_passive_agent(api)
    log_in(browser, master, "wendy")
    before = _state(api, agent_id)

    # A form that posts itself to a dashboard action as soon as it loads.
    attack = f"""<!doctype html><form id="f" method="post"
        action="{master.url}/ui/agents/{agent_id}/disable"><input name="go" value=""></form>
        <script>document.getElementById("f").submit()</script>"""
    # Another site (127.0.0.2: the SameSite=Strict cookie stays home), and another origin of the
    # same site (another port of 127.0.0.1: the cookie goes along, the CSRF token cannot).
    for host, refusal in [
        ("127.0.0.2", "need a logged-in session"),
        ("127.0.0.1", "csrf token is missing"),
    ]:
        origin = other_origins(host, {"/attack": attack})
        browser.get(origin + "/attack")
        wait_for(browser, lambda b: b.current_url.startswith(master.url + "/ui/"))
        wait_for(browser, functools.partial(shows, text=refusal))
        assert _state(api, agent_id) == before
    # The session itself still works, with its token.
    browser.get(master.url + "/")
    assert "wendy (wrangler)" in browser.page_source


def test_a_page_of_another_origin_cannot_submit_jobs_through_the_browser(
    start_master: StartMaster,
    browser: WebDriver,
    other_origins: Callable[[str, dict[str, str]], str],
) -> None:
    master = start_master(FARM_DASHBOARD_REFRESH="0")
    api = admin_api(master)
    add_user(master, "wendy", "wrangler")
    api.post("/jobtypes/", json={"name": "render"}).raise_for_status()
    log_in(browser, master, "wendy")
    body = json.dumps({"title": "planted", "jobtype": "render", "start": 1, "end": 1})
    # A no-cors request needs no preflight: it reaches the master, which must not act on it
    # (cookies never authenticate the API).
    attack = f"""<!doctype html><script>
        fetch({json.dumps(master.url + "/api/v1/jobs/")}, {{mode: "no-cors", method: "POST",
              credentials: "include", body: new Blob([{json.dumps(body)}])}})
          .finally(() => {{ window.attempted = true; }});
        </script>"""
    for host in ("127.0.0.2", "127.0.0.1"):
        origin = other_origins(host, {"/attack": attack})
        browser.get(origin + "/attack")
        wait_for(browser, lambda b: bool(b.execute_script("return window.attempted === true")))
    time.sleep(0.5)
    assert api.get("/jobs/").json() == []


def test_a_wrangler_pauses_two_ticked_jobs_at_once(
    start_master: StartMaster, browser: WebDriver
) -> None:
    from selenium.webdriver.common.by import By

    master = start_master(FARM_DASHBOARD_REFRESH="0")
    api = admin_api(master)
    add_user(master, "wendy", "wrangler")
    api.post("/jobtypes/", json={"name": "render"}).raise_for_status()
    ids = [
        api.post("/jobs/", json={"title": title, "jobtype": "render", "start": 1, "end": 2}).json()[
            "id"
        ]
        for title in ("shot_a", "shot_b", "shot_c")
    ]

    log_in(browser, master, "wendy")
    browser.get(master.url + "/jobs?q=shot")
    for job_id in ids[:2]:
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-job="{job_id}"]')
        row.find_element(By.CSS_SELECTOR, 'input[type="checkbox"]').click()
    bulk = browser.find_element(By.ID, "bulk-jobs")
    submit(browser, bulk.find_element(By.XPATH, ".//button[text()='Pause']"))

    # Back on the list as it was filtered; the two ticked jobs paused, the third untouched.
    assert browser.current_url == master.url + "/jobs?q=shot"
    assert [api.get(f"/jobs/{job_id}").json()["state"] for job_id in ids] == [
        "paused",
        "paused",
        "queued",
    ]
    for job_id, state in zip(ids, ("paused", "paused", "queued"), strict=True):
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-job="{job_id}"]')
        assert row.find_element(By.CSS_SELECTOR, ".pill").text == state
