"""Jobs and the agents' task report channel over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from tests.support.http_harness import Harness
from tests.support.live_farm import LiveHarness

JOB = {"title": "shot_010", "jobtype": "render", "start": 1, "end": 10}


@pytest.fixture
def farm(live_farm: LiveHarness) -> Harness:
    """Each case runs on both backends, with a real consumer acting between requests."""
    return live_farm


@pytest.fixture
def jobs(farm: Harness) -> Harness:
    farm.client.simulate_post(
        "/api/v1/software",
        json={"software": "blender", "versions": [{"version": "2.79"}, {"version": "2.80"}]},
    )
    created = farm.client.simulate_post("/api/v1/jobtypes", json={"name": "render", "max_batch": 4})
    assert created.status_code == 201
    return farm


def submit(farm: Harness, **fields: object) -> dict[str, Any]:
    result = farm.client.simulate_post("/api/v1/jobs/", json={**JOB, **fields})
    assert result.status_code == 201, result.json
    created: dict[str, Any] = result.json
    return created


def test_submit_creates_one_task_per_frame(jobs: Harness) -> None:
    job = submit(
        jobs,
        by=2,
        priority=10,
        weight=30,
        requeue=-1,
        ram=4096,
        cpus=4,
        data={"command": ["echo", "{frame}"]},
        environ={"SHOT": "010"},
        tags=["lighting"],
        software_requirements=[{"software": "blender", "min_version": "2.79"}],
    )
    assert job["state"] == "queued" and job["jobtype"] == "render"
    assert job["tasks"]["queued"] == 5
    assert (job["start"], job["end"], job["by"], job["priority"]) == (1.0, 10.0, 2.0, 10)
    assert job["software_requirements"] == [
        {"software": "blender", "min_version": "2.79", "max_version": None}
    ]
    tasks = jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks/").json
    assert [t["frame"] for t in tasks] == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert all(t["state"] == "queued" and t["job_id"] == job["id"] for t in tasks)
    assert jobs.queue.names()[-1] == "assign_tasks"


def test_decimal_frames(jobs: Harness) -> None:
    job = submit(jobs, start=1, end=2, by=0.25)
    frames = [t["frame"] for t in jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks").json]
    assert frames == [1.0, 1.25, 1.5, 1.75, 2.0]


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"jobtype": None}, 400, "No jobtype specified"),
        ({"jobtype": "nope"}, 404, "JobType nope not found"),
        ({"end": 0}, 400, "`end` must be larger than or equal to start"),
        ({"by": "2"}, 400, "`by` needs to be of type decimal or int"),
        ({"by": None}, 400, "`by` needs to be of type decimal or int"),
        ({"start": "1"}, 400, "`start` must be a number"),
        ({"title": None}, 400, "`title` must be a string"),
        ({"priority": 5000}, 400, "`priority` must be between -1000 and 1000"),
        ({"environ": {"A": 1}}, 400, "`environ` must map names to strings"),
        ({"data": []}, 400, "`data` must be an object"),
        ({"tags": "x"}, 400, "`tags` must be a list"),
        ({"parents": [12345]}, 400, "parent job(s) not found: 12345"),
        ({"time_started": "now"}, 400, "`time_started` cannot be set manually"),
        ({"colour": "red"}, 400, "do not exist: colour"),
        ({"software_requirements": [{"software": "maya"}]}, 404, "Software maya not found"),
    ],
)
def test_bad_submissions(jobs: Harness, fields, status, message) -> None:
    body = {**JOB, **fields}
    body = {k: v for k, v in body.items() if v is not None or k in ("by", "title")}
    result = jobs.client.simulate_post("/api/v1/jobs", json=body)
    assert result.status_code == status, result.json
    assert message in result.json["error"]
    assert jobs.client.simulate_get("/api/v1/jobs").json == []


def test_list_get_update_and_delete(jobs: Harness) -> None:
    first = submit(jobs, title="a")
    second = submit(jobs, title="b")
    listed = jobs.client.simulate_get("/api/v1/jobs").json
    assert [j["id"] for j in listed] == [second["id"], first["id"]]
    assert listed[0]["tasks"]["queued"] == 10
    assert [
        j["id"] for j in jobs.client.simulate_get("/api/v1/jobs", params={"title": "a"}).json
    ] == [first["id"]]
    assert jobs.client.simulate_get("/api/v1/jobs/b").json["id"] == second["id"]
    assert jobs.client.simulate_get(f"/api/v1/jobs/{first['id']}").json["title"] == "a"
    assert jobs.client.simulate_get("/api/v1/jobs/zzz").status_code == 404

    paused = jobs.client.simulate_post(
        f"/api/v1/jobs/{first['id']}", json={"state": "paused", "priority": 99}
    )
    assert paused.status_code == 200
    assert (paused.json["state"], paused.json["priority"]) == ("paused", 99)
    assert [
        j["id"] for j in jobs.client.simulate_get("/api/v1/jobs", params={"state": "paused"}).json
    ] == [first["id"]]
    assert [
        j["id"] for j in jobs.client.simulate_get("/api/v1/jobs", params={"state": "queued"}).json
    ] == [second["id"]]
    resumed = jobs.client.simulate_post(f"/api/v1/jobs/{first['id']}", json={"state": "queued"})
    assert resumed.json["state"] == "queued"
    for body, message in [
        ({"time_submitted": "x"}, "`time_submitted` cannot be set manually"),
        ({"start": 5}, "`start` cannot be changed"),
        ({"state": "done"}, "is not a state a job can be set to"),
        ({"weight": "heavy"}, "`weight` must be an integer"),
    ]:
        result = jobs.client.simulate_post(f"/api/v1/jobs/{first['id']}", json=body)
        assert result.status_code == 400 and message in result.json["error"]
    assert jobs.client.simulate_post("/api/v1/jobs/a", json={}).status_code == 404
    assert jobs.client.simulate_get("/api/v1/jobs", params={"state": "bogus"}).status_code == 400

    assert jobs.client.simulate_delete(f"/api/v1/jobs/{first['id']}").status_code == 204
    assert jobs.client.simulate_delete(f"/api/v1/jobs/{first['id']}").status_code == 204
    assert jobs.client.simulate_get(f"/api/v1/jobs/{first['id']}").status_code == 404
    assert jobs.client.simulate_get(f"/api/v1/jobs/{first['id']}/tasks").status_code == 404


_OUTPUTS_SHAPE = '`outputs` must be a list of {"path": "<file>", "size": <bytes>}'


BY_HAND = [{"tag": "by-hand"}]
"""A tag no agent has: the scheduler gives such a job to no one, only a hand assignment does."""


def assign_first_task(jobs: Harness) -> tuple[dict[str, Any], uuid.UUID, dict[str, Any]]:
    """A job of two frames whose first task is assigned by hand to a new agent, and only that:
    the queue's consumer, acting between requests, gives the job to no agent itself."""
    job = submit(jobs, end=2, tag_requirements=BY_HAND)
    agent_id = uuid.uuid4()
    jobs.announce(agent_id)
    task = jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks").json[0]
    assigned = jobs.client.simulate_post(
        f"/api/v1/agents/{agent_id}/tasks", json={"id": task["id"]}
    )
    assert assigned.status_code == 200
    return job, agent_id, assigned.json


def test_the_agent_report_channel(jobs: Harness) -> None:
    job, agent_id, task = assign_first_task(jobs)
    path = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}"
    assert jobs.client.simulate_get(path).json["state"] == "assigned"
    running = jobs.client.simulate_post(
        path, json={"state": "running", "progress": 0.5, "time_started": "now"}
    )
    assert running.status_code == 200
    assert (running.json["state"], running.json["progress"]) == ("running", 0.5)
    assert running.json["time_started"] is not None
    assert jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}").json["state"] == "running"
    done = jobs.client.simulate_post(
        path, json={"state": "done"}, headers={"X-Farm-Agent-Id": str(agent_id)}
    )
    assert done.status_code == 200 and done.json["state"] == "done"
    late = jobs.client.simulate_post(path, json={"state": "running"})
    assert late.status_code == 200 and late.json["state"] == "done"
    tasks = jobs.client.simulate_get(f"/api/v1/agents/{agent_id}/tasks").json
    assert [t["state"] for t in tasks] == ["done"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"time_started": "2020-01-01"}, "`time_started` cannot be set manually"),
        ({"time_finished": "now"}, "`time_finished` cannot be set manually"),
        ({"job_id": 1}, "`job_id` cannot be changed"),
        ({"frame": 2}, "`frame` cannot be changed"),
        ({"colour": "red", "attempts": 1}, "Unknown columns in request: attempts, colour"),
        ({"agent_id": str(uuid.uuid4())}, "`agent_id` can only be set to null"),
        ({"state": "paused"}, "`paused` is not a valid state"),
        ({"state": 5}, "`state` must be a string"),
        ({"progress": 2}, "`progress` must be between 0 and 1"),
        ({"progress": "half"}, "`progress` must be a number"),
        ({"state": "done", "outputs": "/r/a.png"}, _OUTPUTS_SHAPE),
        ({"state": "done", "outputs": [{"path": "/r/a.png"}]}, _OUTPUTS_SHAPE),
        ({"state": "done", "outputs": [{"path": "/a", "size": 1, "x": 1}]}, _OUTPUTS_SHAPE),
        ({"state": "done", "outputs": [{"path": 5, "size": 1}]}, _OUTPUTS_SHAPE),
        ({"state": "done", "outputs": [{"path": "/a", "size": 1.5}]}, _OUTPUTS_SHAPE),
        ({"state": "done", "outputs": [{"path": "/a", "size": True}]}, _OUTPUTS_SHAPE),
        (
            {"state": "done", "outputs": [{"path": "/a", "size": -1}]},
            "an output's `size` must be a whole number of bytes from 0",
        ),
        (
            {"state": "done", "outputs": [{"path": "/a", "size": 2**63}]},
            "an output's `size` must be a whole number of bytes from 0",
        ),
        (
            {"state": "done", "outputs": [{"path": "", "size": 1}]},
            "an output's `path` must be 1 to 4096 characters, without NUL",
        ),
        (
            {"state": "done", "outputs": [{"path": "/a\x00", "size": 1}]},
            "an output's `path` must be 1 to 4096 characters, without NUL",
        ),
        (
            {"state": "done", "outputs": [{"path": "/" + "a" * 4096, "size": 1}]},
            "an output's `path` must be 1 to 4096 characters, without NUL",
        ),
        (
            {"state": "done", "outputs": [{"path": "/a", "size": 1}] * 65},
            "`outputs` may list at most 64 files",
        ),
        (
            {"state": "running", "outputs": [{"path": "/a", "size": 1}]},
            "`outputs` come with a `done` report",
        ),
    ],
)
def test_report_errors_change_nothing(jobs: Harness, body, message) -> None:
    job, _, task = assign_first_task(jobs)
    path = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}"
    before = jobs.client.simulate_get(path).json
    result = jobs.client.simulate_post(path, json=body)
    assert result.status_code == 400, result.json
    assert result.json["error"] == message
    assert jobs.client.simulate_get(path).json == before


def test_a_done_report_records_the_files_the_frame_wrote(jobs: Harness) -> None:
    job, agent_id, task = assign_first_task(jobs)
    path = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}"
    assert jobs.client.simulate_get(path).json["outputs"] == []
    files = [{"path": "/renders/shot_0001.png", "size": 9120}, {"path": "/r/b.exr", "size": 0}]
    done = jobs.client.simulate_post(path, json={"state": "done", "outputs": files})
    assert done.status_code == 200 and done.json["outputs"] == files
    assert jobs.client.simulate_get(path).json["outputs"] == files
    listed = jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks").json
    assert [t["outputs"] for t in listed if t["id"] == task["id"]] == [files]
    # A report after the task finished changes nothing, its files neither.
    late = jobs.client.simulate_post(path, json={"state": "done", "outputs": []})
    assert late.json["outputs"] == files
    # Retried, the task's next attempt starts without files.
    retried = jobs.client.simulate_post(
        f"/api/v1/jobs/{job['id']}/tasks/{task['id']}/retry", json={}
    )
    assert retried.status_code == 200, retried.json
    again = jobs.client.simulate_post(f"/api/v1/agents/{agent_id}/tasks", json={"id": task["id"]})
    assert again.status_code == 200, again.json
    assert jobs.client.simulate_get(path).json["outputs"] == []


def test_a_stale_report_is_409(jobs: Harness) -> None:
    job, agent_id, task = assign_first_task(jobs)
    path = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}"
    other = uuid.uuid4()
    jobs.announce(other, hostname="other")
    jobs.client.simulate_post(f"/api/v1/agents/{other}/tasks", json={"id": task["id"]})
    stale = jobs.client.simulate_post(
        path, json={"state": "done"}, headers={"X-Farm-Agent-Id": str(agent_id)}
    )
    assert stale.status_code == 409 and "not assigned to agent" in stale.json["error"]
    given_back = jobs.client.simulate_post(path, json={"state": "queued", "agent_id": None})
    assert given_back.json["agent_id"] is None
    orphan = jobs.client.simulate_post(path, json={"state": "running"})
    assert orphan.status_code == 409
    assert jobs.client.simulate_get(path).json["state"] == "queued"
    bad_header = jobs.client.simulate_post(path, json={}, headers={"X-Farm-Agent-Id": "x"})
    assert bad_header.status_code == 400


def test_a_task_must_belong_to_the_job_in_the_url(jobs: Harness) -> None:
    job, _, task = assign_first_task(jobs)
    other = submit(jobs, title="other")
    wrong = f"/api/v1/jobs/{other['id']}/tasks/{task['id']}"
    assert jobs.client.simulate_get(wrong).status_code == 404
    result = jobs.client.simulate_post(wrong, json={"state": "running"})
    assert result.status_code == 404 and result.json["error"] == "Task not found"
    assert jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks/999999").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/api/v1/jobs/1180591620717411303424", None, 404),
        ("get", "/api/v1/jobs/4294967296/tasks", None, 404),
        ("get", "/api/v1/jobs/1/tasks/4294967296", None, 404),
        ("get", "/api/v1/jobtypes/4294967296", None, 404),
        ("get", "/api/v1/jobtypes/render/versions/4294967296", None, 404),
        ("get", "/api/v1/jobs/1/tasks/1/attempts/4294967296/logs", None, 404),
        ("post", "/api/v1/jobs", {**JOB, "jobtype": "4294967296"}, 404),
        ("post", "/api/v1/jobs", {**JOB, "jobtype_version": 4294967296}, 400),
        ("post", "/api/v1/jobs", {**JOB, "parents": [4294967296]}, 400),
    ],
)
def test_numbers_beyond_storage_are_clean_4xx(jobs: Harness, method, path, body, status) -> None:
    if method == "get":
        result = jobs.client.simulate_get(path)
    else:
        result = jobs.client.simulate_post(path, json=body)
    assert result.status_code == status, result.text
    assert result.json["error"]


def test_assigning_a_task_id_beyond_storage_is_not_found(jobs: Harness) -> None:
    agent_id = uuid.uuid4()
    jobs.announce(agent_id)
    result = jobs.client.simulate_post(f"/api/v1/agents/{agent_id}/tasks", json={"id": 4294967296})
    assert result.status_code == 404
    big_filter = jobs.client.simulate_get("/api/v1/agents", params={"min_ram": "9" * 30})
    assert big_filter.status_code == 400


def test_text_that_storage_cannot_hold(jobs: Harness) -> None:
    bad_user = jobs.client.simulate_post("/api/v1/jobs", json={**JOB, "user": "ana\x00"})
    assert bad_user.status_code == 400 and "`user`" in bad_user.json["error"]
    bad_code = jobs.client.simulate_post(
        "/api/v1/jobtypes", json={"name": "nul", "code": "x = 1\x00"}
    )
    assert bad_code.status_code == 400 and "NUL" in bad_code.json["error"]
    job, _, task = assign_first_task(jobs)
    path = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}"
    report = jobs.client.simulate_post(
        path, json={"state": "running", "last_error": "line 1\n\x00line 2\t"}
    )
    assert report.status_code == 200
    assert report.json["last_error"] == "line 1\n\ufffdline 2\t"


def test_job_data_and_environ_keep_any_text(jobs: Harness) -> None:
    job = submit(
        jobs,
        data={"note": "a\x00b", "nested": {"list": [1, None, "é"]}},
        environ={"PATH": "/bin:/usr/bin", "EMPTY": ""},
    )
    fetched = jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}").json
    assert fetched["data"] == {"note": "a\x00b", "nested": {"list": [1, None, "é"]}}
    assert fetched["environ"] == {"PATH": "/bin:/usr/bin", "EMPTY": ""}


def test_reports_about_an_earlier_attempt_are_409(jobs: Harness) -> None:
    job, agent_id, task = assign_first_task(jobs)
    path = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}"
    jobs.client.simulate_post(f"/api/v1/agents/{agent_id}/tasks", json={"id": task["id"]})
    stale = jobs.client.simulate_post(path, json={"state": "done"}, headers={"X-Farm-Attempt": "1"})
    assert stale.status_code == 409 and "attempt 2, not 1" in stale.json["error"]
    current = jobs.client.simulate_post(
        path, json={"state": "running"}, headers={"X-Farm-Attempt": "2"}
    )
    assert current.status_code == 200
    assert (
        jobs.client.simulate_post(path, json={}, headers={"X-Farm-Attempt": "x"}).status_code == 400
    )


def test_a_heartbeat_naming_an_earlier_attempt_does_not_keep_the_task(jobs: Harness) -> None:
    _job, agent_id, task = assign_first_task(jobs)
    with jobs.uow() as uow:
        import attrs

        stored = uow.tasks.get(task["id"])
        assert stored is not None
        uow.tasks.save(
            attrs.evolve(stored, attempts=2, sent_to_agent=True, sent_at=jobs.clock.now()),
            stored,
            reason="test",
            at=jobs.clock.now(),
        )
        uow.commit()
    jobs.clock.advance(60)
    stale = {"a": {"tasks": [{"id": task["id"], "frame": 1.0, "attempt": 1}]}}
    jobs.client.simulate_post(
        f"/api/v1/agents/{agent_id}", json={"state": "running", "current_assignments": stale}
    )
    requeued = jobs.get_task(task["id"])
    assert (requeued.agent_id, requeued.failures) == (None, 1)


def test_the_blocklist_is_visible_and_can_be_cleared(jobs: Harness) -> None:
    job = submit(jobs, requeue=-1, end=1)
    agent_id = uuid.uuid4()
    jobs.announce(agent_id)
    (task,) = jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks").json
    path = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}"
    for _ in range(3):
        jobs.client.simulate_post(f"/api/v1/agents/{agent_id}/tasks", json={"id": task["id"]})
        jobs.client.simulate_post(path, json={"state": "failed", "last_error": "exit 1"})
    (entry,) = jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/blocklist").json
    assert (entry["agent_id"], entry["failures"], entry["blocked"], entry["refused"]) == (
        str(agent_id),
        3,
        True,
        False,
    )
    cleared = jobs.client.simulate_delete(f"/api/v1/jobs/{job['id']}/blocklist/{agent_id}")
    assert cleared.status_code == 204
    assert jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/blocklist").json == []
    assert jobs.client.simulate_get("/api/v1/jobs/999999/blocklist").status_code == 404


def test_agents_say_whether_the_master_will_call_them(jobs: Harness) -> None:
    local = jobs.announce(remote_ip="127.0.0.5").json
    assert local["dispatch"] == {"callable": True, "reason": None}
    far = jobs.announce(remote_ip="203.0.113.9").json
    assert far["dispatch"]["callable"] is False
    assert "outside FARM_AGENT_NETWORKS" in far["dispatch"]["reason"]
    passive = jobs.announce(use_address="passive").json
    assert passive["dispatch"]["reason"] == "passive agents are never called"


def test_tag_requirements_steer_jobs_to_tagged_agents(jobs: Harness) -> None:
    plain, gpu = uuid.uuid4(), uuid.uuid4()
    jobs.announce(plain, hostname="plain")
    jobs.announce(gpu, hostname="gpu")
    tagged = jobs.client.simulate_put(f"/api/v1/agents/{gpu}/tags", json=["gpu", "linux"])
    assert tagged.status_code == 200 and tagged.json == ["gpu", "linux"]
    assert jobs.client.simulate_get(f"/api/v1/agents/{gpu}/tags").json == ["gpu", "linux"]
    job = submit(jobs, end=1, tag_requirements=[{"tag": "gpu"}, {"tag": "big", "negate": True}])
    assert job["tag_requirements"] == [
        {"tag": "big", "negate": True},
        {"tag": "gpu", "negate": False},
    ]
    # The consumer, acting on the submission, gave the job to the tagged agent alone.
    (task,) = jobs.client.simulate_get(f"/api/v1/agents/{gpu}/tasks").json
    assert task["job"]["id"] == job["id"]
    assert jobs.client.simulate_get(f"/api/v1/agents/{plain}/tasks").json == []
    for body in ({"tags": ["x"]}, ["a", 1], "gpu"):
        bad = jobs.client.simulate_put(f"/api/v1/agents/{gpu}/tags", json=body)
        assert bad.status_code == 400 and bad.json["error"]
    assert (
        jobs.client.simulate_put(f"/api/v1/agents/{uuid.uuid4()}/tags", json=[]).status_code == 404
    )


def test_a_jobs_tasks_are_paged(jobs: Harness) -> None:
    job = submit(jobs, start=1, end=1200)
    path = f"/api/v1/jobs/{job['id']}/tasks/"
    first = jobs.client.simulate_get(path).json
    assert [t["frame"] for t in first] == [float(f) for f in range(1, 1001)]
    rest = jobs.client.simulate_get(path, params={"limit": "1000", "offset": "1000"}).json
    assert [t["frame"] for t in rest] == [float(f) for f in range(1001, 1201)]
    some = jobs.client.simulate_get(path, params={"limit": "2", "offset": "5"}).json
    assert [t["frame"] for t in some] == [6.0, 7.0]
    for params in (
        {"limit": "10001"},
        {"limit": "0"},
        {"limit": "\u00b2"},
        {"offset": "-1"},
        {"offset": "x"},
    ):
        refused = jobs.client.simulate_get(path, params=params)
        assert refused.status_code == 400 and refused.json["error"], params


def test_data_and_environ_change_until_the_job_has_started(jobs: Harness) -> None:
    job = submit(jobs, end=2)
    path = f"/api/v1/jobs/{job['id']}"
    changed = jobs.client.simulate_post(path, json={"data": {"k": [1]}, "environ": {"A": "b"}})
    assert changed.status_code == 200, changed.text
    assert (changed.json["data"], changed.json["environ"]) == ({"k": [1]}, {"A": "b"})
    wrong = jobs.client.simulate_post(path, json={"environ": {"A": 1}})
    assert wrong.status_code == 400 and "`environ` must map names to strings" in wrong.json["error"]
    not_object = jobs.client.simulate_post(path, json={"data": [1]})
    assert not_object.status_code == 400 and "`data` must be an object" in not_object.json["error"]
    nul = jobs.client.simulate_post(path, json={"environ": {"A": "\x00"}})
    assert nul.status_code == 400 and nul.json["field"] == "environ"
    agent_id = uuid.uuid4()
    jobs.announce(agent_id)
    task = jobs.client.simulate_get(f"{path}/tasks").json[0]
    assigned = jobs.client.simulate_post(
        f"/api/v1/agents/{agent_id}/tasks", json={"id": task["id"]}
    )
    assert assigned.status_code == 200
    late = jobs.client.simulate_post(path, json={"data": {"k": [2]}})
    assert late.status_code == 409 and "started" in late.json["error"]
    assert jobs.client.simulate_get(path).json["data"] == {"k": [1]}
    assert jobs.client.simulate_post(path, json={"priority": 5}).status_code == 200


def test_a_job_stored_in_several_chunks_answers_as_one(jobs: Harness) -> None:
    job = submit(jobs, end=2500)  # three chunks of tasks, each its own transaction
    assert job["state"] == "queued" and job["tasks"]["queued"] == 2500
    shown = jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}").json
    assert shown["tasks"]["queued"] == sum(shown["tasks"].values()) == 2500
    assert [j["id"] for j in jobs.client.simulate_get("/api/v1/jobs/").json] == [job["id"]]
    last = jobs.client.simulate_get(
        f"/api/v1/jobs/{job['id']}/tasks/", params={"offset": "2499", "limit": "10"}
    ).json
    assert [t["frame"] for t in last] == [2500.0]


def test_back_off_refusals_and_the_whole_blocklist_over_the_api(jobs: Harness) -> None:
    job = submit(jobs, requeue=-1, end=1)
    agent_id, refuser = uuid.uuid4(), uuid.uuid4()
    jobs.announce(agent_id)
    jobs.announce(refuser, hostname="refuser")
    (task,) = jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks").json
    path = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}"
    for _ in range(2):
        jobs.client.simulate_post(f"/api/v1/agents/{agent_id}/tasks", json={"id": task["id"]})
        jobs.client.simulate_post(path, json={"state": "failed", "last_error": "exit 1"})
    shown = jobs.client.simulate_get(path).json
    # The default back-off: 15 s × 2^(2-1) after the second failure.
    later = jobs.clock.now() + timedelta(seconds=30)
    assert (shown["not_before"], shown["failed_on"]) == (later.isoformat(), str(agent_id))
    assert jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}").json["reason"] is None
    with jobs.uow() as uow:
        uow.blocks.record_rejection(job["id"], refuser, "x", jobs.clock.now(), refusal="no user")
        uow.commit()
    entries = jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/blocklist").json
    assert {e["agent_id"]: e["refusal"] for e in entries} == {
        str(agent_id): None,
        str(refuser): "no user",
    }
    cleared = jobs.client.simulate_delete(f"/api/v1/jobs/{job['id']}/blocklist")
    assert cleared.status_code == 200 and cleared.json == {"unblocked": 2}
    assert jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/blocklist").json == []
    assert jobs.client.simulate_delete("/api/v1/jobs/999999/blocklist").status_code == 404


def test_blender_jobs_are_checked_at_submission_and_on_change(jobs: Harness) -> None:
    created = jobs.client.simulate_post("/api/v1/jobtypes", json={"name": "blender"})
    assert created.status_code == 201
    good = {"file": "/farm/shot.blend", "output": "/farm/out/shot_####", "engine": "CYCLES"}
    for data, message in [
        ({}, "`data.file` must be a path of 1 to 4096 characters"),
        ({**good, "samples": "many"}, "`data.samples` must be a whole number from 1 to"),
        ({**good, "format": "BMP"}, "`data.format` must be one of JPEG, OPEN_EXR, PNG"),
    ]:
        refused = jobs.client.simulate_post(
            "/api/v1/jobs/", json={**JOB, "jobtype": "blender", "data": data}
        )
        assert refused.status_code == 400 and refused.json["error"].startswith(message)
    halves = jobs.client.simulate_post(
        "/api/v1/jobs/", json={**JOB, "jobtype": "blender", "data": good, "by": 0.5}
    )
    assert halves.status_code == 400 and "whole frames" in halves.json["error"]
    assert jobs.client.simulate_get("/api/v1/jobs").json == []
    job = submit(jobs, jobtype="blender", data=good, end=4)
    path = f"/api/v1/jobs/{job['id']}"
    changed = jobs.client.simulate_post(path, json={"data": {**good, "engine": "POVRAY"}})
    assert changed.status_code == 400 and "`data.engine`" in changed.json["error"]
    assert jobs.client.simulate_get(path).json["data"] == good
    # Another job type's data is its own business.
    submit(jobs, data={"engine": "POVRAY"})


def test_a_passive_agent_keeps_a_task_assigned_by_hand_and_reports_on_it(jobs: Harness) -> None:
    # PyFarm never calls a passive agent; the queue's consumer, acting between these requests,
    # must not take the task back from it either.
    job = submit(jobs, end=1)
    agent_id = uuid.uuid4()
    jobs.announce(agent_id, use_address="passive")
    (task,) = jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}/tasks").json
    assigned = jobs.client.simulate_post(
        f"/api/v1/agents/{agent_id}/tasks", json={"id": task["id"]}
    )
    assert assigned.status_code == 200 and assigned.json["agent_id"] == str(agent_id)
    path = f"/api/v1/jobs/{job['id']}/tasks/{task['id']}"
    agent = {"X-Farm-Agent-Id": str(agent_id)}
    running = jobs.client.simulate_post(path, json={"state": "running"}, headers=agent)
    assert running.status_code == 200, running.json
    done = jobs.client.simulate_post(path, json={"state": "done"}, headers=agent)
    assert done.status_code == 200 and done.json["state"] == "done", done.json
    assert jobs.client.simulate_get(f"/api/v1/jobs/{job['id']}").json["state"] == "done"
    if isinstance(jobs, LiveHarness):
        assert jobs.agent.requests == []  # nothing called the fake render node
