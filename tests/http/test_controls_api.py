"""The controls over HTTP (retry, skip, stop; cancel, pause, resume, requeue; their bulk forms),
on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from farm_domain.controls import MAX_BULK
from tests.support.http_harness import Harness


@pytest.fixture
def jobs(farm: Harness) -> Harness:
    created = farm.client.simulate_post("/api/v1/jobtypes", json={"name": "render"})
    assert created.status_code == 201
    return farm


def submit(farm: Harness, end: int = 3) -> tuple[int, list[int]]:
    result = farm.client.simulate_post(
        "/api/v1/jobs", json={"title": "shot", "jobtype": "render", "start": 1, "end": end}
    )
    assert result.status_code == 201, result.text
    job = result.json["id"]
    return job, [t["id"] for t in farm.client.simulate_get(f"/api/v1/jobs/{job}/tasks").json]


def run(farm: Harness, job: int, task: int) -> uuid.UUID:
    agent_id = uuid.uuid4()
    assert farm.announce(agent_id, hostname=f"n{task}").status_code in (200, 201)
    assigned = farm.client.simulate_post(f"/api/v1/agents/{agent_id}/tasks", json={"id": task})
    assert assigned.status_code == 200, assigned.text
    reported = farm.client.simulate_post(
        f"/api/v1/jobs/{job}/tasks/{task}", json={"state": "running"}
    )
    assert reported.status_code == 200, reported.text
    return agent_id


def post(farm: Harness, path: str, body: Any = None) -> Any:
    return farm.client.simulate_post(path, json={} if body is None else body)


def get_task(farm: Harness, job: int, task: int) -> dict[str, Any]:
    result: dict[str, Any] = farm.client.simulate_get(f"/api/v1/jobs/{job}/tasks/{task}").json
    return result


def events(farm: Harness) -> list[str]:
    return [e["action"] for e in farm.client.simulate_get("/api/v1/events").json]


def test_retry_skip_and_stop_a_task(jobs: Harness) -> None:
    job, (first, second, third) = submit(jobs)
    agent = run(jobs, job, first)
    stopped = post(jobs, f"/api/v1/jobs/{job}/tasks/{first}/stop")
    assert stopped.status_code == 200, stopped.text
    assert (stopped.json["state"], stopped.json["reason"], stopped.json["agent_id"]) == (
        "failed",
        "stopped",
        None,
    )
    assert jobs.queue.calls[-2][0] == "stop_tasks" and jobs.queue.calls[-2][1][0] == agent
    # The stopped run's late report is refused.
    late = jobs.client.simulate_post(
        f"/api/v1/jobs/{job}/tasks/{first}",
        json={"state": "done"},
        headers={"X-Farm-Agent-Id": str(agent), "X-Farm-Attempt": "1"},
    )
    assert late.status_code == 409
    retried = post(jobs, f"/api/v1/jobs/{job}/tasks/{first}/retry")
    assert retried.status_code == 200 and retried.json["state"] == "queued"
    skipped = post(jobs, f"/api/v1/jobs/{job}/tasks/{second}/skip")
    assert (skipped.json["state"], skipped.json["skipped"]) == ("done", True)
    assert get_task(jobs, job, second)["skipped"] is True
    assert get_task(jobs, job, third)["skipped"] is False
    assert [e for e in events(jobs) if e.startswith("task.")][:3] == [
        "task.skip",
        "task.retry",
        "task.stop",
    ]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("tasks/{queued}/stop", {}, 409, "is queued: only a running or assigned task"),
        ("tasks/{queued}/retry", {}, 409, "is queued already"),
        ("tasks/{queued}/skip", {"why": 1}, 400, "unknown field(s): why"),
        ("tasks/999999/skip", {}, 404, "Task not found"),
        ("tasks/skip", {"tasks": []}, 400, "`tasks` must be a non-empty list of ids"),
        ("tasks/skip", {"tasks": "1"}, 400, "`tasks` must be a non-empty list of ids"),
        ("tasks/skip", {"tasks": [1, "2"]}, 400, "`tasks` must be a list of ids"),
        ("tasks/skip", {"tasks": list(range(1, MAX_BULK + 2))}, 400, "at most 1000 ids"),
        ("tasks/skip", {}, 400, "`tasks` must be a non-empty list of ids"),
        ("pause", {"running": "kill"}, 400, "`running` must be `finish` or `stop`"),
        ("cancel", {"running": "stop"}, 400, "unknown field(s): running"),
        ("resume", {}, 409, "is queued, not paused"),
    ],
)
def test_refusals_change_nothing(
    jobs: Harness, path: str, body: Any, status: int, message: str
) -> None:
    job, (queued, *_) = submit(jobs)
    before = jobs.client.simulate_get(f"/api/v1/jobs/{job}/tasks").json
    result = post(jobs, f"/api/v1/jobs/{job}/" + path.format(queued=queued), body)
    assert result.status_code == status, result.text
    assert message in result.json["error"]
    assert jobs.client.simulate_get(f"/api/v1/jobs/{job}/tasks").json == before
    assert jobs.client.simulate_get(f"/api/v1/jobs/{job}").json["state"] == "queued"


def test_unknown_job_and_bad_json(jobs: Harness) -> None:
    assert post(jobs, "/api/v1/jobs/nope/cancel").status_code == 404
    assert post(jobs, "/api/v1/jobs/999999/tasks/1/retry").status_code == 404
    assert post(jobs, "/api/v1/bulk/jobs/cancel", {"jobs": [999999]}).json == {
        "results": [{"id": 999999, "ok": False, "status": 404, "error": "Job 999999 not found"}]
    }
    result = jobs.client.simulate_post(
        "/api/v1/bulk/jobs/cancel", body="[1]", headers={"Content-Type": "application/json"}
    )
    assert result.status_code == 400 and "error" in result.json


def test_bulk_tasks_answer_per_item(jobs: Harness) -> None:
    job, (first, second, third) = submit(jobs)
    run(jobs, job, first)
    result = post(jobs, f"/api/v1/jobs/{job}/tasks/stop", {"tasks": [first, second, first]})
    assert result.status_code == 200
    ok, refused = result.json["results"]
    assert (ok["id"], ok["ok"], ok["task"]["reason"]) == (first, True, "stopped")
    assert refused == {
        "id": second,
        "ok": False,
        "status": 409,
        "error": f"Task {second} is queued: only a running or assigned task can be stopped",
    }
    result = post(jobs, f"/api/v1/jobs/{job}/tasks/skip", {"tasks": [first, second, third]})
    assert [r["ok"] for r in result.json["results"]] == [True, True, True]
    assert jobs.client.simulate_get(f"/api/v1/jobs/{job}").json["state"] == "done"


def test_cancel_then_requeue(jobs: Harness) -> None:
    job, (first, _, _) = submit(jobs)
    run(jobs, job, first)
    canceled = post(jobs, f"/api/v1/jobs/{job}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json["state"] == "canceled"
    assert canceled.json["reason"].startswith("canceled by ")
    assert canceled.json["tasks"]["canceled"] == 3
    listed = jobs.client.simulate_get("/api/v1/jobs").json
    assert [(j["id"], j["state"]) for j in listed] == [(job, "canceled")]
    assert [j["id"] for j in jobs.client.simulate_get("/api/v1/jobs?state=canceled").json] == [job]
    assert {t["state"] for t in jobs.client.simulate_get(f"/api/v1/jobs/{job}/tasks").json} == {
        "canceled"
    }
    again = post(jobs, f"/api/v1/jobs/{job}/cancel")
    assert again.status_code == 409 and "it cannot be canceled" in again.json["error"]
    requeued = post(jobs, f"/api/v1/jobs/{job}/requeue")
    assert requeued.status_code == 200
    assert (requeued.json["state"], requeued.json["reason"]) == ("queued", None)
    assert sorted(requeued.json["requeued"]) == sorted(
        t["id"] for t in jobs.client.simulate_get(f"/api/v1/jobs/{job}/tasks").json
    )
    assert [e for e in events(jobs) if e != "job.state"][:2] == ["job.requeue", "job.cancel"]


def test_pause_modes_and_resume_in_bulk(jobs: Harness) -> None:
    finishing, (a, _, _) = submit(jobs)
    stopping, (b, _, _) = submit(jobs)
    run(jobs, finishing, a)
    run(jobs, stopping, b)
    result = post(jobs, "/api/v1/bulk/jobs/pause", {"jobs": [finishing]})
    assert result.json["results"][0]["job"]["state"] == "paused"
    assert get_task(jobs, finishing, a)["state"] == "running"
    result = post(jobs, f"/api/v1/jobs/{stopping}/pause", {"running": "stop"})
    assert result.status_code == 200 and result.json["state"] == "paused"
    stopped = get_task(jobs, stopping, b)
    assert (stopped["state"], stopped["failures"], stopped["agent_id"]) == ("queued", 0, None)
    result = post(jobs, "/api/v1/bulk/jobs/resume", {"jobs": [finishing, stopping]})
    assert [r["job"]["state"] for r in result.json["results"]] == ["running", "queued"]
    result = post(jobs, "/api/v1/bulk/jobs/resume", {"jobs": [finishing]})
    assert result.json["results"][0]["status"] == 409
