"""The dashboard shows a task's history on its own page and an agent's on the agent's page."""

from __future__ import annotations

import uuid

import pytest

from farm_domain.access import Role
from tests.http.test_dashboard import Farm
from tests.support.http_harness import Harness


@pytest.fixture
def dash(farm: Harness) -> Farm:
    return Farm(farm)


def test_the_task_page_shows_how_the_task_got_to_its_state(dash: Farm) -> None:
    job = dash.submit()
    agent_id = uuid.uuid4()
    dash.announce(agent_id, hostname="render-7")
    first, second, *_ = dash.api("GET", f"/jobs/{job['id']}/tasks")
    dash.api("POST", f"/agents/{agent_id}/tasks", json={"id": first["id"]})
    api_path = f"/jobs/{job['id']}/tasks/{first['id']}"
    dash.api("POST", api_path, json={"state": "failed", "last_error": "killed", "reason": "ram"})
    viewer = dash.session("vic", Role.VIEWER)

    # The job page links each task's state to its page.
    job_page = viewer.get(f"/jobs/{job['id']}").text
    row = job_page.split(f'<tr data-task="{first["id"]}">')[1].split("</tr>")[0]
    assert f'href="/jobs/{job["id"]}/tasks/{first["id"]}"' in row

    page = viewer.get(api_path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    rows = page.text.split('<tr data-change="')[1:]
    assert len(rows) == len(dash.api("GET", f"{api_path}/history"))
    newest, *_, oldest = rows
    assert ">failed</span>" in newest and "reported by its agent: ram" in newest
    assert "render-7" in newest
    assigned = rows[-2]
    assert ">queued</span>" in assigned and ">assigned</span>" in assigned
    assert "assigned by" in assigned
    # The first row, its submission, has no state before it.
    assert '<span class="dim">-</span></td>\n  <td><span class="pill s-queued">' in oldest
    assert "submitted" in oldest
    assert '<table id="failures">' in page.text and "ram: killed" in page.text

    untouched = viewer.get(f"/jobs/{job['id']}/tasks/{second['id']}").text
    (submitted,) = untouched.split('<tr data-change="')[1:]
    assert "submitted" in submitted and 'id="failures"' not in untouched


def test_the_task_page_of_a_task_not_in_that_job_is_not_found(dash: Farm) -> None:
    job = dash.submit()
    other = dash.submit(title="other")
    task = dash.api("GET", f"/jobs/{other['id']}/tasks")[0]
    viewer = dash.session("vic", Role.VIEWER)
    assert viewer.get(f"/jobs/{job['id']}/tasks/{task['id']}").status_code == 404
    assert viewer.get(f"/jobs/{job['id']}/tasks/2000000000").status_code == 404


def test_the_agent_page_shows_the_agents_changes_of_state(dash: Farm) -> None:
    agent_id = uuid.uuid4()
    dash.announce(agent_id, hostname="render-07")
    wendy = dash.session("wendy", Role.WRANGLER)
    (registered,) = wendy.get(f"/agents/{agent_id}").text.split('<tr data-change="')[1:]
    assert ">online</span>" in registered and "registered" in registered
    wendy.post(f"/ui/agents/{agent_id}/disable")
    page = wendy.get(f"/agents/{agent_id}").text
    row, _ = page.split('<tr data-change="')[1:]
    assert ">online</span>" in row and ">disabled</span>" in row and "set by wendy" in row
