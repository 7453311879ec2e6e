"""A whole job's life over real HTTP against ``farm serve``, as a user with curl would drive it."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.fake_agent import FakeAgent
from tests.support.processes import StartMaster

pytestmark = pytest.mark.e2e


@pytest.fixture
def start_master(start_master_on_backend: StartMaster) -> StartMaster:
    """Each test runs on the embedded default, then on PostgreSQL + Redis with a `farm worker`."""
    return start_master_on_backend


def test_a_job_from_submission_to_done(start_master: StartMaster) -> None:
    api = start_master().api()

    assert (
        api.post(
            "/software/",
            json={"software": "blender", "versions": [{"version": "2.79"}, {"version": "2.80"}]},
        ).status_code
        == 201
    )
    jobtype = api.post(
        "/jobtypes/",
        json={
            "name": "command",
            "description": "runs a command per frame",
            "max_batch": 1,
            "software_requirements": [{"software": "blender", "min_version": "2.79"}],
        },
    )
    assert jobtype.status_code == 201
    downloaded = api.get("/jobtypes/command/versions/1").json()
    assert downloaded["name"] == "command" and downloaded["version"] == 1

    job = api.post(
        "/jobs/",
        json={
            "title": "shot_010",
            "jobtype": "command",
            "start": 1,
            "end": 10,
            "data": {"command": ["echo", "{frame}"]},
        },
    )
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    tasks = api.get(f"/jobs/{job_id}/tasks/").json()
    assert len(tasks) == 10 and {t["state"] for t in tasks} == {"queued"}

    agent_id, other_id = str(uuid.uuid4()), str(uuid.uuid4())
    for number, agent in enumerate((agent_id, other_id)):
        announced = api.post(
            "/agents/",
            json={
                "id": agent,
                "hostname": f"render{number}",
                "ram": 8192,
                "free_ram": 4096,
                "cpus": 8,
                "port": 50000 + number,
                "current_assignments": {},
                # This test plays the agents: the master must not call them (none listens).
                "use_address": "passive",
            },
        )
        assert announced.status_code == 201
    first = tasks[0]["id"]
    assigned = api.post(f"/agents/{agent_id}/tasks/", json={"id": first})
    assert assigned.status_code == 200 and assigned.json()["attempts"] == 1

    task_path = f"/jobs/{job_id}/tasks/{first}"
    agent_headers = {"User-Agent": "PyFarm/1.0 (agent)"}
    running = api.post(task_path, json={"state": "running"}, headers=agent_headers)
    assert running.status_code == 200 and running.json()["state"] == "running"
    assert api.get(f"/jobs/{job_id}").json()["state"] == "running"

    logs = f"/jobs/{job_id}/tasks/{first}/attempts/1/logs/"
    assert (
        api.post(logs, json={"identifier": "frame1.csv", "agent_id": agent_id}).status_code == 201
    )
    assert (
        api.put(
            logs + "frame1.csv/logfile",
            content=b"t,msg\n1,rendered\n",
            headers={"Content-Type": "text/csv"},
        ).status_code
        == 201
    )
    assert api.get(logs + "frame1.csv/logfile").text == "t,msg\n1,rendered\n"

    done = api.post(task_path, json={"state": "done"}, headers=agent_headers)
    assert done.status_code == 200 and done.json()["state"] == "done"
    mine = api.get(f"/agents/{agent_id}/tasks/").json()
    assert [(t["id"], t["state"], t["job"]["title"]) for t in mine] == [(first, "done", "shot_010")]
    summary = api.get(f"/jobs/{job_id}").json()
    assert summary["tasks"]["done"] == 1 and summary["tasks"]["queued"] == 9

    # The second task goes to one agent, then is reassigned: the first agent's report is stale.
    second = tasks[1]["id"]
    api.post(f"/agents/{agent_id}/tasks/", json={"id": second})
    api.post(f"/agents/{other_id}/tasks/", json={"id": second})
    stale = api.post(
        f"/jobs/{job_id}/tasks/{second}",
        json={"state": "done"},
        headers={"X-Farm-Agent-Id": agent_id},
    )
    assert stale.status_code == 409
    assert api.get(f"/jobs/{job_id}/tasks/{second}").json()["state"] == "assigned"

    # The rest of the frames, reported by their owner, finish the job.
    for task in tasks[1:]:
        if task["id"] != second:
            api.post(f"/agents/{other_id}/tasks/", json={"id": task["id"]})
        for state in ("running", "done"):
            reported = api.post(
                f"/jobs/{job_id}/tasks/{task['id']}",
                json={"state": state},
                headers={"X-Farm-Agent-Id": other_id},
            )
            assert reported.status_code == 200, reported.text
    finished = api.get(f"/jobs/{job_id}").json()
    assert finished["state"] == "done" and finished["time_finished"] is not None
    assert finished["tasks"]["done"] == 10

    assert (
        api.put(
            "/agents/updates/0.8.7",
            content=b"PK\x05\x06" + b"\0" * 18,
            headers={"Content-Type": "application/zip"},
        ).status_code
        == 201
    )
    assert api.get("/agents/updates/0.8.7").content.startswith(b"PK")


def test_the_master_spreads_a_job_over_agents_until_it_is_done(
    start_master: StartMaster,
) -> None:
    api = start_master().api()
    fakes = {str(uuid.uuid4()): FakeAgent() for _ in range(3)}
    try:
        assert api.post("/jobtypes/", json={"name": "command", "max_batch": 2}).status_code == 201
        for number, (agent_id, fake) in enumerate(fakes.items()):
            assert (
                api.post(
                    "/agents/",
                    json={
                        "id": agent_id,
                        "hostname": f"node{number}",
                        "ram": 4096,
                        "free_ram": 2048,
                        "cpus": 4,
                        "port": fake.port,
                        "current_assignments": {},
                    },
                ).status_code
                == 201
            )
        job = api.post(
            "/jobs/",
            json={"title": "spread", "jobtype": "command", "start": 1, "end": 20, "batch": 2},
        ).json()
        deadline = time.monotonic() + 60
        reported: set[int] = set()
        while time.monotonic() < deadline:
            state = api.get(f"/jobs/{job['id']}").json()["state"]
            if state == "done":
                break
            for agent_id, fake in fakes.items():
                for task_id in list(fake.running):
                    if task_id in reported:
                        continue
                    for result in ("running", "done"):
                        answer = api.post(
                            f"/jobs/{job['id']}/tasks/{task_id}",
                            json={"state": result},
                            headers={"X-Farm-Agent-Id": agent_id},
                        )
                        assert answer.status_code == 200, answer.text
                    reported.add(task_id)
            time.sleep(0.05)
        tasks = api.get(f"/jobs/{job['id']}/tasks/").json()
        assert api.get(f"/jobs/{job['id']}").json()["state"] == "done"
        assert sorted(t["frame"] for t in tasks) == [float(f) for f in range(1, 21)]
        assert {t["agent_id"] for t in tasks} == set(fakes)  # spread over every agent
        sent = [
            t["id"]
            for fake in fakes.values()
            for body in fake.calls("POST", "/api/v1/assign")
            for t in body["tasks"]
        ]
        assert sorted(sent) == sorted(t["id"] for t in tasks)  # no task sent twice
    finally:
        for fake in fakes.values():
            fake.close()
