"""The dashboard's pages and actions through falcon.testing, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import attrs
import falcon.testing
import pytest

from farm_http import HttpOptions, create_app
from tests.support.http_harness import Harness

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_the_agents_page_lists_agents_and_disables_them(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id, hostname="render-07")
    page = farm.client.simulate_get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "render-07" in page.text and 'http-equiv="refresh"' in page.text
    done = farm.client.simulate_post(
        f"/ui/agents/{agent_id}/disable",
        body="go=",
        headers={**FORM, "Referer": "http://farm/?page=1"},
    )
    assert done.status_code == 303 and done.headers["location"] == "/?page=1"
    assert farm.client.simulate_get(f"/api/v1/agents/{agent_id}").json["state"] == "disabled"
    assert "Enable" in farm.client.simulate_get("/").text
    farm.client.simulate_post(f"/ui/agents/{agent_id}/enable", body="", headers=FORM)
    assert farm.client.simulate_get(f"/api/v1/agents/{agent_id}").json["state"] == "online"
    assert (
        farm.client.simulate_post(
            f"/ui/agents/{agent_id}/explode", body="", headers=FORM
        ).status_code
        == 404
    )


@pytest.mark.parametrize("seconds", [0, 30])
def test_pages_refresh_as_often_as_configured(farm: Harness, seconds: int) -> None:
    app = create_app(
        farm.runtime.farm,
        attrs.evolve(HttpOptions.of(farm.runtime.settings), dashboard_refresh_seconds=seconds),
    )
    for path in ("/", "/jobs"):
        page = falcon.testing.TestClient(app).simulate_get(path).text
        assert ('http-equiv="refresh"' in page) is bool(seconds)
        assert (f'content="{seconds}"' in page) is bool(seconds)
        assert (f"refreshes every {seconds} s" in page) is bool(seconds)


def test_the_agents_page_is_paged_and_escapes_names(farm: Harness) -> None:
    for n in range(101):
        farm.announce(hostname=f"n{n:03}")
    first = farm.client.simulate_get("/").text
    assert "n099" in first and "n100" not in first and "next" in first
    second = farm.client.simulate_get("/", params={"page": "2"}).text
    assert "n100" in second and "previous" in second
    assert farm.client.simulate_get("/", params={"page": "zero"}).status_code == 400


def test_jobs_pages_and_actions(farm: Harness) -> None:
    farm.client.simulate_post("/api/v1/jobtypes", json={"name": "render"})
    job = farm.client.simulate_post(
        "/api/v1/jobs",
        json={"title": "<b>shot</b>", "jobtype": "render", "start": 1, "end": 4, "requeue": 0},
    ).json
    agent_id = uuid.uuid4()
    farm.announce(agent_id, hostname="render-42")
    tasks = farm.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks").json
    farm.client.simulate_post(f"/api/v1/agents/{agent_id}/tasks", json={"id": tasks[0]["id"]})
    farm.client.simulate_post(
        f"/api/v1/jobs/{job['id']}/tasks/{tasks[0]['id']}",
        json={"state": "failed", "last_error": "exit 3: no license"},
    )
    listing = farm.client.simulate_get("/jobs").text
    assert "&lt;b&gt;shot&lt;/b&gt;" in listing and "<b>shot</b>" not in listing
    assert 'class="b-failed"' in listing and "Requeue failed" in listing
    detail = farm.client.simulate_get(f"/jobs/{job['id']}").text
    assert "exit 3: no license" in detail and "Blocklist" in detail
    # Agents are named by hostname (the id on hover): on its failed task and on the blocklist.
    assert detail.count(f'<span title="{agent_id}">render-42</span>') == 2
    base = f"/ui/jobs/{job['id']}"
    assert (
        farm.client.simulate_post(f"{base}/priority", body="priority=42", headers=FORM).status_code
        == 303
    )
    assert farm.client.simulate_get(f"/api/v1/jobs/{job['id']}").json["priority"] == 42
    bad = farm.client.simulate_post(f"{base}/priority", body="priority=lots", headers=FORM)
    assert bad.status_code == 400 and "not a whole number" in bad.json["error"]
    farm.client.simulate_post(f"{base}/pause", body="", headers=FORM)
    assert farm.client.simulate_get(f"/api/v1/jobs/{job['id']}").json["state"] == "paused"
    farm.client.simulate_post(f"{base}/resume", body="", headers=FORM)
    farm.client.simulate_post(f"{base}/requeue", body="", headers=FORM)
    assert farm.get_task(tasks[0]["id"]).state is None
    assert farm.client.simulate_get("/jobs/999999").status_code == 404
