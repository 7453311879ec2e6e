"""The log viewer in a real headless Chromium: a running frame's lines, rendered by a real
`farm agent`, show on the page before the frame ends, and new ones arrive without a reload."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.test_dashboard_browser import (
    ARTIFACTS,
    add_user,
    admin_api,
    browser,  # noqa: F401  # the fixture
    log_in,
    wait_for,
)
from tests.e2e.test_live_logs import FRAME, _frame_lines, _wait
from tests.support.processes import Process, StartMaster, farm_command

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (shutil.which("chromium") and shutil.which("chromedriver")),
        reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
    ),
]


def test_the_log_viewer_follows_a_running_frame(
    tmp_path: Path,
    processes: list[Process],
    start_master: StartMaster,
    browser: WebDriver,  # noqa: F811  # the fixture imported above
) -> None:
    from selenium.webdriver.common.by import By

    master = start_master(FARM_DASHBOARD_REFRESH="0", FARM_WATCH_INTERVAL_SECONDS="0.5")
    api = admin_api(master)
    add_user(master, "vic", "viewer")
    agent = Process(
        farm_command(
            "agent", "--master", master.url, "--port", "0", "--heartbeat", "0.5",
            "--retry-delay", "0.05", "--log-every", "0.2", "--hostname", "render01",
            "--data-dir", str(tmp_path / "render01"),
        ),
        master.env,
        tmp_path / "agent.log",
    )  # fmt: skip
    processes.append(agent)
    gate = tmp_path / "gate"
    gate.mkdir()
    api.post("/jobtypes/", json={"name": "command"}).raise_for_status()
    job = api.post(
        "/jobs/",
        json={
            "title": "chatty",
            "jobtype": "command",
            "start": 1,
            "end": 1,
            "data": {"command": [sys.executable, "-c", FRAME, str(gate)]},
        },
    ).json()
    tasks: list[dict[str, Any]] = []

    def running() -> bool:
        tasks[:] = api.get(f"/jobs/{job['id']}/tasks/").json()
        return bool(tasks[0]["state"] == "running")

    _wait(running, "the frame to run", processes)
    task = tasks[0]
    logs = f"/jobs/{job['id']}/tasks/{task['id']}/attempts/1/logs/"

    def first_half() -> bool:
        listed = api.get(logs).json()
        if not listed:
            return False
        text = api.get(f"{logs}{listed[0]['identifier']}/logfile")
        return text.status_code == 200 and "line 100" in _frame_lines(text.text)

    _wait(first_half, "the first lines on the master", processes)

    log_in(browser, master, "vic")
    # From the job page's task row to the viewer.
    browser.get(f"{master.url}/jobs/{job['id']}")
    browser.find_element(By.LINK_TEXT, "attempt 1").click()
    wait_for(browser, lambda b: b.current_url.endswith("/attempts/1/log"))
    table = browser.find_element(By.ID, "log")
    assert "line 100" in table.text and "line 101" not in table.text
    assert browser.find_element(By.ID, "log-status").text == "running"
    # The viewer's script runs under the page's CSP; the page is never reloaded below.
    following = "return document.getElementById('log').dataset.following"
    wait_for(browser, lambda b: b.execute_script(following) == "1")
    browser.execute_script("window.farmSamePage = true")

    (gate / "go").touch()
    wait_for(browser, lambda b: "line 200" in b.find_element(By.ID, "log").text)
    assert api.get(f"/jobs/{job['id']}").json()["state"] != "done"  # still running
    rows = browser.find_elements(By.CSS_SELECTOR, "#log tbody tr.l-stdout")
    assert [row.find_elements(By.TAG_NAME, "td")[2].text for row in rows] == [
        f"line {n}" for n in range(1, 201)
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-log.png"))

    (gate / "end").touch()
    wait_for(browser, lambda b: b.find_element(By.ID, "log-status").text == "ended")
    assert "exit code 0" in browser.find_element(By.ID, "log").text
    assert browser.execute_script("return window.farmSamePage") is True


# Prints 6,000 numbered lines of about 100 bytes (a log of over 600 kB: several windows).
LONG_FRAME = "for n in range(1, 6001): print('line', n, '.' * 90)\n"


def test_the_log_viewer_loads_earlier_lines_in_place(
    tmp_path: Path,
    processes: list[Process],
    start_master: StartMaster,
    browser: WebDriver,  # noqa: F811  # the fixture imported above
) -> None:
    from selenium.webdriver.common.by import By

    master = start_master(FARM_DASHBOARD_REFRESH="0", FARM_WATCH_INTERVAL_SECONDS="0.5")
    api = admin_api(master)
    add_user(master, "vic", "viewer")
    agent = Process(
        farm_command(
            "agent", "--master", master.url, "--port", "0", "--heartbeat", "0.5",
            "--retry-delay", "0.05", "--hostname", "render01",
            "--data-dir", str(tmp_path / "render01"),
        ),
        master.env,
        tmp_path / "agent.log",
    )  # fmt: skip
    processes.append(agent)
    api.post("/jobtypes/", json={"name": "command"}).raise_for_status()
    job = api.post(
        "/jobs/",
        json={
            "title": "long",
            "jobtype": "command",
            "start": 1,
            "end": 1,
            "data": {"command": [sys.executable, "-c", LONG_FRAME]},
        },
    ).json()
    _wait(lambda: api.get(f"/jobs/{job['id']}").json()["state"] == "done", "the job", processes)
    task = api.get(f"/jobs/{job['id']}/tasks/").json()[0]
    viewer = f"{master.url}/jobs/{job['id']}/tasks/{task['id']}/attempts/1/log"

    log_in(browser, master, "vic")
    browser.get(viewer)

    def numbers() -> list[int]:
        """The numbers of the lines shown, in order (read in one call: thousands of rows)."""
        texts: list[str] = browser.execute_script(
            "return Array.from(document.querySelectorAll("
            "'#log tbody tr.l-stdout td:nth-child(3)'), td => td.textContent)"
        )
        return [int(text.split()[1]) for text in texts]

    shown = numbers()
    assert shown[-1] == 6000 and shown[0] > 1 and shown == list(range(shown[0], 6001))
    browser.execute_script("window.farmSamePage = true")
    clicks = 0
    while browser.find_elements(By.ID, "log-earlier"):
        first = shown[0]

        def prepended(_: WebDriver, first: int = first) -> bool:
            return numbers()[0] < first

        browser.find_element(By.ID, "log-earlier").click()
        wait_for(browser, prepended)
        shown = numbers()
        clicks += 1
    # Every line once, in order, on the same page.
    assert clicks >= 2 and shown == list(range(1, 6001))
    assert browser.execute_script("return window.farmSamePage") is True
    assert not browser.find_elements(By.ID, "log-skipped")
