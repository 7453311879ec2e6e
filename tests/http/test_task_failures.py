"""Failure reasons over HTTP, on SQLite and PostgreSQL: an agent's failed report with (or
without) a reason, each attempt's failure kept and listed, and the jobs' failure policies."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from farm_domain.failures import MAX_FAILURE_MESSAGE, MAX_POLICY_SECONDS
from tests.http.test_jobs_api import submit
from tests.support.http_harness import Harness


@pytest.fixture
def jobs(farm: Harness) -> Harness:
    created = farm.client.simulate_post("/api/v1/jobtypes", json={"name": "render"})
    assert created.status_code == 201
    return farm


def hand_out(farm: Harness, job: dict[str, Any], agent_id: uuid.UUID) -> dict[str, Any]:
    (task, *_) = farm.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks").json
    assigned = farm.client.simulate_post(
        f"/api/v1/agents/{agent_id}/tasks", json={"id": task["id"]}
    )
    assert assigned.status_code == 200, assigned.json
    return dict(assigned.json)


def test_each_failed_attempt_is_kept_with_its_reason(jobs: Harness) -> None:
    job = submit(jobs, end=1, requeue=5)
    render01, render02 = uuid.uuid4(), uuid.uuid4()
    jobs.announce(render01, hostname="render01")
    jobs.announce(render02, hostname="render02")
    task = hand_out(jobs, job, render01)
    path = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}"
    first = jobs.client.simulate_post(
        path,
        json={"state": "failed", "last_error": "killed: ran too long", "reason": "timeout"},
        headers={"X-Farm-Agent-Id": str(render01)},
    )
    assert first.status_code == 200, first.json
    assert (first.json["state"], first.json["reason"]) == ("queued", "timeout")
    stored = jobs.get_task(task["id"])
    assert (stored.reason, stored.failed_on) == ("timeout", render01)

    jobs.clock.advance(10)
    hand_out(jobs, job, render02)
    # A PyFarm agent sends no reason: its failures are `exit`.
    second = jobs.client.simulate_post(path, json={"state": "failed", "last_error": "exit 1"})
    assert second.json["reason"] == "exit"

    failures = jobs.client.simulate_get(f"{path}/failures")
    assert failures.status_code == 200
    assert [(f["attempt"], f["agent_id"], f["reason"], f["message"]) for f in failures.json] == [
        (1, str(render01), "timeout", "killed: ran too long"),
        (2, str(render02), "exit", "exit 1"),
    ]
    assert failures.json[0]["at"] < failures.json[1]["at"]
    assert jobs.client.simulate_get(path).json["reason"] == "exit"
    assert jobs.get_task(task["id"]).failed_on == render02


def test_a_failure_keeps_the_end_of_a_long_message(jobs: Harness) -> None:
    job = submit(jobs, end=1)
    agent = uuid.uuid4()
    jobs.announce(agent)
    task = hand_out(jobs, job, agent)
    path = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}"
    message = "x" * 5000 + "\x00the error"
    jobs.client.simulate_post(
        path, json={"state": "failed", "last_error": message, "reason": "ram"}
    )
    (failure,) = jobs.client.simulate_get(f"{path}/failures").json
    assert len(failure["message"]) == MAX_FAILURE_MESSAGE
    assert failure["message"].endswith("\ufffdthe error")
    assert failure["reason"] == "ram"


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("Timeout", "`reason` must be a short code"),
        ("time-out", "`reason` must be a short code"),
        ("", "`reason` must be a short code"),
        ("a" * 33, "`reason` must be a short code"),
        (5, "reason"),
        (["ram"], "reason"),
    ],
)
def test_a_bad_reason_is_refused_and_changes_nothing(
    jobs: Harness, reason: object, message: str
) -> None:
    job = submit(jobs, end=1)
    agent = uuid.uuid4()
    jobs.announce(agent)
    task = hand_out(jobs, job, agent)
    path = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}"
    before = jobs.client.simulate_get(path).json
    refused = jobs.client.simulate_post(
        path, json={"state": "failed", "last_error": "boom", "reason": reason}
    )
    assert refused.status_code == 400 and message in refused.json["error"]
    assert jobs.client.simulate_get(path).json == before
    assert jobs.client.simulate_get(f"{path}/failures").json == []


def test_reasons_of_other_reports_are_not_failures(jobs: Harness) -> None:
    job = submit(jobs, end=1)
    agent = uuid.uuid4()
    jobs.announce(agent)
    task = hand_out(jobs, job, agent)
    path = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}"
    done = jobs.client.simulate_post(path, json={"state": "done", "reason": "exit"})
    assert done.status_code == 200 and done.json["reason"] is None
    assert jobs.client.simulate_get(f"{path}/failures").json == []


def test_failures_of_a_task_of_another_job_are_404(jobs: Harness) -> None:
    job, other = submit(jobs, end=1), submit(jobs, end=1, title="other")
    (task,) = jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks").json
    assert (
        jobs.client.simulate_get(
            f"/api/v1/jobs/{other['id']}/tasks/{task['id']}/failures"
        ).status_code
        == 404
    )
    assert (
        jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks/999999/failures").status_code
        == 404
    )


def test_jobs_carry_their_failure_policies(jobs: Harness) -> None:
    job = submit(jobs, max_run_seconds=3600, stall_seconds=600)
    assert (job["max_run_seconds"], job["stall_seconds"]) == (3600, 600)
    path = f"/api/v1/jobs/{job['id']}"
    changed = jobs.client.simulate_post(path, json={"max_run_seconds": None, "stall_seconds": 60})
    assert changed.status_code == 200, changed.json
    assert (changed.json["max_run_seconds"], changed.json["stall_seconds"]) == (None, 60)
    assert submit(jobs, title="plain")["max_run_seconds"] is None


@pytest.mark.parametrize(
    "fields",
    [
        {"max_run_seconds": 0},
        {"max_run_seconds": -5},
        {"stall_seconds": MAX_POLICY_SECONDS + 1},
        {"stall_seconds": "60"},
        {"max_run_seconds": 1.5},
        {"max_run_seconds": True},
    ],
)
def test_bad_failure_policies_are_refused(jobs: Harness, fields: dict[str, Any]) -> None:
    created = jobs.client.simulate_post(
        "/api/v1/jobs/", json={"title": "t", "jobtype": "render", "start": 1, **fields}
    )
    assert created.status_code == 400 and next(iter(fields)) in created.json["error"]
    job = submit(jobs, max_run_seconds=60)
    changed = jobs.client.simulate_post(f"/api/v1/jobs/{job['id']}", json=fields)
    assert changed.status_code == 400
    assert jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}").json["max_run_seconds"] == 60
