"""The dashboard's job page names why each failed or retried task failed last."""

from __future__ import annotations

import uuid

import pytest

from farm_domain.access import Role
from tests.http.test_dashboard import Farm
from tests.support.http_harness import Harness


@pytest.fixture
def dash(farm: Harness) -> Farm:
    return Farm(farm)


def test_the_job_page_shows_each_tasks_last_failure_reason(dash: Farm) -> None:
    job = dash.submit()
    agent_id = uuid.uuid4()
    dash.announce(agent_id, hostname="render-7")
    first, second, *_ = dash.api("GET", f"/jobs/{job['id']}/tasks")
    path = f"/jobs/{job['id']}/tasks/{first['id']}"
    dash.api("POST", f"/agents/{agent_id}/tasks", json={"id": first["id"]})
    dash.api("POST", path, json={"state": "failed", "last_error": "killed: 9 GB", "reason": "ram"})
    page = dash.session("vic", Role.VIEWER).get(f"/jobs/{job['id']}").text
    row = page.split(f'<tr data-task="{first["id"]}">')[1].split("</tr>")[0]
    assert f'href="{path}#failures"' in row and ">ram</a> killed: 9 GB" in row
    untouched = page.split(f'<tr data-task="{second["id"]}">')[1].split("</tr>")[0]
    assert "#failures" not in untouched
