"""The audit trail over HTTP (``GET /api/v1/events``) and on the dashboard, on SQLite and
PostgreSQL, through the interim open access (every request an anonymous admin)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.support.http_harness import Harness


def _submit(farm: Harness, title: str = "shot") -> int:
    if farm.client.simulate_get("/api/v1/jobtypes/render").status_code == 404:
        farm.client.simulate_post("/api/v1/jobtypes/", json={"name": "render"})
    created = farm.client.simulate_post(
        "/api/v1/jobs/", json={"title": title, "jobtype": "render", "start": 1, "end": 2}
    )
    assert created.status_code == 201
    job_id: int = created.json["id"]
    return job_id


def test_changes_through_the_api_are_events_newest_first(farm: Harness) -> None:
    job_id = _submit(farm)
    farm.clock.advance(1)
    farm.client.simulate_post(f"/api/v1/jobs/{job_id}", json={"priority": 7})
    events = farm.client.simulate_get("/api/v1/events", params={"target": f"job:{job_id}"})
    assert events.status_code == 200
    newest = events.json[0]
    assert (newest["action"], newest["before"], newest["after"]) == (
        "job.update",
        {"priority": 0},
        {"priority": 7},
    )
    assert newest["actor"] == "anonymous" and newest["role"] == "admin"
    assert newest["address"] == "127.0.0.1" and newest["target"] == f"job:{job_id}"
    assert newest["at"] == farm.clock.now().isoformat()
    assert events.json[1]["action"] == "job.submit"
    job = farm.client.simulate_get(f"/api/v1/jobs/{job_id}").json
    assert job["submitted_by"] == "anonymous" and job["user"] == "anonymous"


def test_filters_by_actor_time_and_limit(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    for n in range(3):
        farm.clock.advance(60)
        _submit(farm, f"j{n}")
    since = (farm.clock.now() - timedelta(seconds=60)).isoformat()
    recent = farm.client.simulate_get("/api/v1/events", params={"since": since}).json
    assert [e["after"]["title"] for e in recent] == ["j2", "j1"]
    limited = farm.client.simulate_get("/api/v1/events", params={"limit": "1"}).json
    assert [e["after"]["title"] for e in limited] == ["j2"]
    assert farm.client.simulate_get("/api/v1/events", params={"actor": "nobody"}).json == []
    enrolled = farm.client.simulate_get(
        "/api/v1/events", params={"target": f"agent:{agent_id}"}
    ).json
    assert [e["action"] for e in enrolled] == ["agent.enroll"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "limit=-1",
        "limit=99999999999999",
        "since=yesterday",
        "since=" + "9" * 100,
        "target=" + "x" * 201,
        "actor=" + "x" * 256,
        "target=",
        "limit=1&limit=2",
        "colour=red",
    ],
)
def test_bad_queries_are_400s(farm: Harness, query: str) -> None:
    answer = farm.client.simulate_get("/api/v1/events", query_string=query)
    assert answer.status_code == 400, answer.text
    assert "error" in answer.json


def test_the_dashboard_lists_recent_events(farm: Harness) -> None:
    job_id = _submit(farm, "a <b>title</b>")
    farm.client.simulate_post(f"/api/v1/jobs/{job_id}", json={"state": "paused"})
    page = farm.client.simulate_get("/events")
    assert page.status_code == 200
    assert 'href="/events"' in page.text
    assert "job.update" in page.text and "job.submit" in page.text
    assert "<b>title</b>" not in page.text  # escaped
    one = farm.client.simulate_get("/events", params={"target": f"job:{job_id}"})
    assert one.status_code == 200 and f"job:{job_id}" in one.text
    assert "jobtype.create" not in one.text
