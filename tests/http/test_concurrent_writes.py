"""Requests racing to create the same thing, or to delete a job while its tasks report, on a
real database (SQLite, and PostgreSQL where the races are real): never a 5xx, never a
deadlock, and what is stored is what one request after the other would have left."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import falcon.testing

from farm_domain.enums import WorkState
from tests.support.http_harness import Harness

Result = TypeVar("Result")

THREADS = 6
ROUNDS = 12


def at_once(count: int, call: Callable[..., Result], *args: Any) -> list[Result]:
    """``call(number, *args)`` for numbers 0..count-1 in threads released together by a
    barrier; their results in order."""
    start = threading.Barrier(count)

    def run(number: int) -> Result:
        start.wait()
        return call(number, *args)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def statuses(results: list[falcon.testing.Result]) -> Counter[int]:
    return Counter(result.status_code for result in results)


def test_concurrent_announces_of_one_agent_create_it_once(farm: Harness) -> None:
    for _ in range(ROUNDS):
        agent_id = uuid.uuid4()
        results = at_once(
            THREADS, lambda n, agent_id: farm.announce(agent_id, hostname=f"racer{n}"), agent_id
        )
        assert statuses(results) == {201: 1, 200: THREADS - 1}, [r.text for r in results]
        stored = farm.client.simulate_get(f"/api/v1/agents/{agent_id}").json
        assert stored["hostname"] in {f"racer{n}" for n in range(THREADS)}
    listed = farm.client.simulate_get("/api/v1/agents/").json
    assert len(listed) == ROUNDS


def test_concurrent_creates_of_one_software_make_one_and_409_the_rest(farm: Harness) -> None:
    for round_ in range(ROUNDS):
        name = f"blender{round_}"
        results = at_once(
            THREADS,
            lambda n, name: farm.client.simulate_post(
                "/api/v1/software", json={"software": name, "versions": [{"version": "1.0"}]}
            ),
            name,
        )
        assert statuses(results) == {201: 1, 409: THREADS - 1}, [r.text for r in results]
        refused = [r for r in results if r.status_code == 409]
        assert all(r.json["error"] == f"Software {name} already exists" for r in refused)
        versions = farm.client.simulate_get(f"/api/v1/software/{name}/versions").json
        assert [v["version"] for v in versions] == ["1.0"]


def test_concurrent_adds_of_one_software_version_make_one_and_409_the_rest(
    farm: Harness,
) -> None:
    farm.client.simulate_post("/api/v1/software", json={"software": "maya"})
    for round_ in range(ROUNDS):
        version = f"20{round_:02}"
        results = at_once(
            THREADS,
            lambda n, version: farm.client.simulate_post(
                "/api/v1/software/maya/versions", json={"version": version}
            ),
            version,
        )
        assert statuses(results) == {201: 1, 409: THREADS - 1}, [r.text for r in results]
        refused = [r for r in results if r.status_code == 409]
        assert all(
            r.json["error"] == f"Software maya already has version {version}" for r in refused
        )
    versions = farm.client.simulate_get("/api/v1/software/maya/versions").json
    assert sorted(v["version"] for v in versions) == [f"20{n:02}" for n in range(ROUNDS)]


def _jobtype(name: str, max_batch: int = 1) -> dict[str, Any]:
    return {
        "name": name,
        "classname": "Render",
        "code": "class Render(JobType):\n    pass\n",
        "max_batch": max_batch,
    }


def test_concurrent_creates_of_one_job_type_make_one_and_409_the_rest(farm: Harness) -> None:
    for round_ in range(ROUNDS):
        name = f"Render{round_}"
        results = at_once(
            THREADS,
            lambda n, name: farm.client.simulate_post("/api/v1/jobtypes", json=_jobtype(name)),
            name,
        )
        assert statuses(results) == {201: 1, 409: THREADS - 1}, [r.text for r in results]
        refused = [r for r in results if r.status_code == 409]
        assert all(r.json["error"] == f"JobType {name} already exists" for r in refused)
        versions = farm.client.simulate_get(f"/api/v1/jobtypes/{name}/versions").json
        assert [v["version"] for v in versions] == [1]


def test_concurrent_new_job_type_versions_each_get_the_next_number(farm: Harness) -> None:
    for round_ in range(ROUNDS // 2):
        name = f"Comp{round_}"
        results = at_once(
            THREADS,
            lambda n, name: farm.client.simulate_put(
                f"/api/v1/jobtypes/{name}", json=_jobtype(name, max_batch=n + 1)
            ),
            name,
        )
        # PUT makes the next version; the first one made (version 1) created the job type.
        assert statuses(results) == {201: 1, 200: THREADS - 1}, [r.text for r in results]
        numbers = sorted(r.json["version"] for r in results)
        assert numbers == list(range(1, THREADS + 1))
        stored = {
            number: farm.client.simulate_get(f"/api/v1/jobtypes/{name}/versions/{number}").json
            for number in numbers
        }
        assert {r.json["version"]: r.json["max_batch"] for r in results} == {
            number: found["max_batch"] for number, found in stored.items()
        }


def test_concurrent_registrations_of_one_log_make_one(farm: Harness) -> None:
    job = farm.job()
    task = farm.task(job, attempts=1)
    path = f"/api/v1/jobs/{job.id}/tasks/{task.id}/attempts/1/logs"
    for round_ in range(ROUNDS):
        identifier = f"frame{round_}.csv"
        results = at_once(
            THREADS,
            lambda n, identifier: farm.client.simulate_post(path, json={"identifier": identifier}),
            identifier,
        )
        assert statuses(results) == {201: 1, 200: THREADS - 1}, [r.text for r in results]
        assert len({r.text for r in results}) == 1  # all of them answer with the same log
    listed = farm.client.simulate_get(path).json
    assert sorted(log["identifier"] for log in listed) == sorted(
        f"frame{n}.csv" for n in range(ROUNDS)
    )


def test_deleting_a_job_while_its_tasks_report_neither_deadlocks_nor_leaves_half(
    farm: Harness,
) -> None:
    agent_id = uuid.uuid4()
    assert farm.announce(agent_id).status_code == 201
    for round_ in range(ROUNDS):
        job = farm.job(title=f"doomed{round_}")
        tasks = [
            farm.task(
                job,
                frame=float(frame),
                agent_id=agent_id,
                attempts=1,
                sent_to_agent=True,
                state=WorkState.RUNNING,
            )
            for frame in range(THREADS - 1)
        ]

        def act(number: int, job_id: int = job.id, tasks: list[Any] = tasks) -> Any:
            if number == THREADS:
                return farm.client.simulate_delete(f"/api/v1/jobs/{job_id}")
            if number == THREADS - 1:  # the agent's heartbeat: it runs none of them any more
                return farm.client.simulate_post(
                    f"/api/v1/agents/{agent_id}",
                    json={"state": "running", "current_assignments": {}, "free_ram": 1000},
                )
            return farm.client.simulate_post(
                f"/api/v1/jobs/{job_id}/tasks/{tasks[number].id}",
                json={"state": "done" if number % 2 else "failed", "last_error": "x"},
            )

        results = at_once(THREADS + 1, act)
        assert results[-1].status_code == 204, results[-1].text
        assert results[-2].status_code == 200, results[-2].text
        # Each report came first (200), found the task gone (404) or released by the
        # heartbeat, which says the agent runs none (409: not assigned any more).
        for result in results[:-2]:
            assert result.status_code in (200, 404, 409), result.text
        assert farm.client.simulate_get(f"/api/v1/jobs/{job.id}").status_code == 404
        with farm.uow() as uow:
            assert all(uow.tasks.get(task.id) is None for task in tasks)
            assert uow.jobs.get(job.id) is None
    agent = farm.client.simulate_get(f"/api/v1/agents/{agent_id}").json
    assert agent["id"] == str(agent_id)
