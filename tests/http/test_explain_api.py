"""Explanations over HTTP, on SQLite and PostgreSQL: their shape, and 404 for what is not."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.http_harness import Harness


@pytest.fixture
def explained(farm: Harness) -> Harness:
    created = farm.client.simulate_post("/api/v1/jobtypes", json={"name": "render"})
    assert created.status_code == 201
    return farm


def submit(farm: Harness, **fields: object) -> dict[str, Any]:
    body = {"title": "shot", "jobtype": "render", "start": 1, "end": 2, **fields}
    result = farm.client.simulate_post("/api/v1/jobs", json=body)
    assert result.status_code == 201, result.json
    created: dict[str, Any] = result.json
    return created


def test_a_job_explained_agent_by_agent(explained: Harness) -> None:
    small, big, far = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    explained.announce(small, hostname="small", free_ram=100)
    explained.announce(big, hostname="big", free_ram=8000, port=50001)
    explained.announce(far, hostname="far", remote_ip="203.0.113.9")
    job = submit(explained, ram=1024)
    answer = explained.client.simulate_get(f"/api/v1/jobs/{job['id']}/explain")
    assert answer.status_code == 200
    assert answer.json == {
        "job": {"id": job["id"], "title": "shot"},
        "state": "queued",
        "can_run_now": True,
        "reasons": [],
        "agents": [
            {
                "reason": "agent_uncallable",
                "detail": "the master does not call the agent: "
                "203.0.113.9 is outside FARM_AGENT_NETWORKS",
                "count": 1,
                "agents": [{"id": str(far), "hostname": "far", "port": 50000}],
            },
            {
                "reason": "ram",
                "detail": "the job needs 1024 MB of RAM free",
                "count": 1,
                "agents": [{"id": str(small), "hostname": "small", "port": 50000}],
            },
        ],
        "eligible": [{"id": str(big), "hostname": "big", "port": 50001}],
        "eligible_count": 1,
        "note": None,
    }
    mine = explained.client.simulate_get(f"/api/v1/agents/{big}/explain").json
    assert mine == {
        "agent": {"id": str(big), "hostname": "big", "port": 50001},
        "state": "online",
        "reasons": [],
        "would_get": {"id": job["id"], "title": "shot"},
        "jobs": [],
        "eligible": [{"id": job["id"], "title": "shot"}],
        "eligible_count": 1,
    }
    # What the explanation says, the scheduler does.
    assert explained.runtime.dispatcher.assign_tasks_to_agent(small) == []
    assert explained.runtime.dispatcher.assign_tasks_to_agent(big) != []


def test_a_paused_job_and_an_agent_that_is_not_idle(explained: Harness) -> None:
    agent = uuid.uuid4()
    explained.announce(agent, hostname="a")
    job = submit(explained)
    paused = explained.client.simulate_post(f"/api/v1/jobs/{job['id']}", json={"state": "paused"})
    assert paused.status_code == 200
    answer = explained.client.simulate_get(f"/api/v1/jobs/{job['id']}/explain").json
    assert (answer["can_run_now"], answer["reasons"]) == (
        False,
        [{"reason": "paused", "detail": "the job is paused"}],
    )
    assert [(g["reason"], g["count"]) for g in answer["agents"]] == [("paused", 1)]
    disabled = explained.client.simulate_post(f"/api/v1/agents/{agent}", json={"state": "disabled"})
    assert disabled.status_code == 200
    mine = explained.client.simulate_get(f"/api/v1/agents/{agent}/explain").json
    assert (mine["state"], mine["reasons"], mine["would_get"]) == (
        "disabled",
        [{"reason": "agent_disabled", "detail": "the agent is disabled"}],
        None,
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs/999999/explain",
        "/api/v1/jobs/shot/explain",
        "/api/v1/jobs/99999999999999999999/explain",
        f"/api/v1/agents/{uuid.UUID(int=404)}/explain",
        "/api/v1/agents/not-a-uuid/explain",
    ],
)
def test_what_does_not_exist_is_not_found(explained: Harness, path: str) -> None:
    answer = explained.client.simulate_get(path)
    assert answer.status_code == 404
    if answer.json is not None:
        assert answer.json["error"]
