"""A task's and an agent's history over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import event

from tests.support.http_harness import Harness
from tests.support.live_farm import LiveHarness

BY_HAND = [{"tag": "by-hand"}]
"""A tag no agent has: only a hand assignment gives the job's tasks to an agent."""


@pytest.fixture
def farm(live_farm: LiveHarness) -> Harness:
    live_farm.client.simulate_post("/api/v1/jobtypes", json={"name": "render", "max_batch": 4})
    return live_farm


def _submit(farm: Harness) -> dict[str, Any]:
    job = {"title": "shot_010", "jobtype": "render", "start": 1, "end": 2}
    created = farm.client.simulate_post("/api/v1/jobs/", json={**job, "tag_requirements": BY_HAND})
    assert created.status_code == 201, created.json
    result: dict[str, Any] = created.json
    return result


def _run_first_task(farm: Harness) -> tuple[dict[str, Any], uuid.UUID, int]:
    job = _submit(farm)
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    task_id = farm.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks").json[0]["id"]
    assigned = farm.client.simulate_post(f"/api/v1/agents/{agent_id}/tasks", json={"id": task_id})
    assert assigned.status_code == 200
    path = f"/api/v1/jobs/{job['id']}/tasks/{task_id}"
    for state in ("running", "done"):
        assert farm.client.simulate_post(path, json={"state": state}).status_code == 200
    return job, agent_id, task_id


def _steps(changes: list[dict[str, Any]]) -> list[tuple[str | None, str]]:
    return [(c["from_state"], c["to_state"]) for c in changes]


def test_a_tasks_history_lists_its_changes_newest_first(farm: Harness) -> None:
    job, agent_id, task_id = _run_first_task(farm)
    answer = farm.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks/{task_id}/history")
    assert answer.status_code == 200
    changes = answer.json
    assert _steps(changes)[:2] == [("running", "done"), (changes[1]["from_state"], "running")]
    # It starts at the job's submission: no state before, no agent yet.
    assert _steps(changes)[-2:] == [("queued", "assigned"), (None, "queued")]
    assert changes[-2]["reason"].startswith("assigned by ")
    assert (changes[-1]["reason"], changes[-1]["agent_id"]) == ("submitted", None)
    assert changes[0]["reason"] == "reported by its agent"
    # Each change starts where the one before it ended, and all name the task and its agent.
    assert all(new["from_state"] == old["to_state"] for new, old in pairwise(changes))
    assert {(c["task_id"], c["job_id"], c["agent_id"]) for c in changes[:-1]} == {
        (task_id, job["id"], str(agent_id))
    }
    assert [c["id"] for c in changes] == sorted((c["id"] for c in changes), reverse=True)
    assert all(c["at"] is not None for c in changes)


def test_history_pages_with_limit_and_before(farm: Harness) -> None:
    job, _agent_id, task_id = _run_first_task(farm)
    path = f"/api/v1/jobs/{job['id']}/tasks/{task_id}/history"
    every = farm.client.simulate_get(path).json
    first = farm.client.simulate_get(path, params={"limit": "1"}).json
    assert first == every[:1]
    rest = farm.client.simulate_get(path, params={"before": str(first[0]["id"])}).json
    assert rest == every[1:]
    assert farm.client.simulate_get(path, params={"before": "1"}).json == []


def test_an_agents_history_records_a_wrangler_disabling_it(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    path = f"/api/v1/agents/{agent_id}"
    assert farm.client.simulate_post(path, json={"state": "disabled"}).status_code == 200
    assert farm.client.simulate_post(path, json={"state": "online"}).status_code == 200
    changes = farm.client.simulate_get(f"{path}/history").json
    assert _steps(changes) == [("disabled", "online"), ("online", "disabled"), (None, "online")]
    assert all(c["reason"].startswith("set by ") for c in changes[:2])
    assert changes[2]["reason"] == "registered"
    assert {c["agent_id"] for c in changes} == {str(agent_id)}


def test_a_heartbeat_that_changes_no_state_records_nothing(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    before = farm.client.simulate_get(f"/api/v1/agents/{agent_id}/history").json
    for _ in range(3):
        farm.announce(agent_id, free_ram=1024)
    assert farm.client.simulate_get(f"/api/v1/agents/{agent_id}/history").json == before


def test_a_heartbeat_that_changes_no_state_runs_no_history_statement(farm: Harness) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    path = f"/api/v1/agents/{agent_id}"
    event.listen(farm.runtime.engine, "before_cursor_execute", seen)
    try:
        for free_ram in (1000, 1100):
            body: dict[str, Any] = {"state": "online", "free_ram": free_ram}
            assert farm.client.simulate_post(path, json=body).status_code == 200
        quiet = [s for s in statements if "_history" in s]
        assert farm.client.simulate_post(path, json={"state": "running"}).status_code == 200
    finally:
        event.remove(farm.runtime.engine, "before_cursor_execute", seen)
    assert quiet == []
    assert any("INSERT INTO agent_history" in s for s in statements)


def test_history_of_what_does_not_exist_is_404(farm: Harness) -> None:
    job, _agent_id, task_id = _run_first_task(farm)
    other = _submit(farm)
    for path in (
        f"/api/v1/jobs/{job['id']}/tasks/2000000000/history",
        f"/api/v1/jobs/{other['id']}/tasks/{task_id}/history",  # not that job's task
        f"/api/v1/jobs/nope/tasks/{task_id}/history",
        f"/api/v1/agents/{uuid.UUID(int=7)}/history",
    ):
        answer = farm.client.simulate_get(path)
        assert answer.status_code == 404, path
        assert "not found" in answer.json["error"]


@pytest.mark.parametrize(
    ("query", "argument"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("before=0", "before"),
        ("before=99999999999", "before"),
        ("before=2147483648", "before"),  # ten digits, past the ids' 32 bits
        ("limit=1&limit=2", "limit"),
        ("since=2026", "since"),
    ],
)
def test_history_refuses_a_page_out_of_bounds(farm: Harness, query: str, argument: str) -> None:
    agent_id = uuid.uuid4()
    farm.announce(agent_id)
    for path in (f"/api/v1/agents/{agent_id}/history", "/api/v1/jobs/1/tasks/1/history"):
        answer = farm.client.simulate_get(path, query_string=query)
        assert answer.status_code == 400, (path, answer.json)
        assert f"`{argument}`" in answer.json["error"]
