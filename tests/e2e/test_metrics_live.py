"""``/metrics`` of a real ``farm serve`` with two web workers (and, on PostgreSQL + Redis, a
``farm worker`` consuming the queue): every count is the farm's, whichever process answers the
scrape, neither split between the workers nor doubled."""

from __future__ import annotations

import functools
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.support.fake_agent import FakeAgent
from tests.support.metrics import Samples, by_state, parse, value
from tests.support.processes import Master, StartMaster

pytestmark = pytest.mark.e2e

EVENT_COUNTERS = (
    "farm_assignments_total",
    "farm_dispatch_total",
    "farm_task_requeues_total",
    "farm_task_failures_total",
    "farm_stale_reports_total",
    "farm_double_assignments_total",
)


@pytest.fixture
def start_master(start_master_on_backend: StartMaster) -> StartMaster:
    """On the embedded default, then on PostgreSQL + Redis with a `farm worker`."""
    return start_master_on_backend


def scrape(master: Master) -> Samples:
    """One scrape on a connection of its own (so any of the web workers may answer it)."""
    answer = httpx.get(f"{master.url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def web_worker_pids(data_dir: Path) -> set[str]:
    """The processes that timed a request (only web workers answer requests)."""
    return {
        path.stem.rpartition("_")[2]
        for path in (data_dir / "metrics" / socket.gethostname()).glob("histogram_*.db")
    }


def batches_sent(agent: FakeAgent, at_least: int) -> bool:
    return len(agent.calls("POST", "/api/v1/assign")) >= at_least


def events(samples: Samples) -> Samples:
    return {key: v for key, v in samples.items() if key[0] in EVENT_COUNTERS}


def test_counts_are_neither_split_nor_doubled_across_two_web_workers(
    start_master: StartMaster,
) -> None:
    master = start_master("--workers", "2", FARM_RETRY_DELAY_SECONDS="0")
    agent = FakeAgent()
    try:
        with master.api() as api:
            assert (
                api.post("/jobtypes/", json={"name": "render", "max_batch": 1}).status_code == 201
            )
            announced = api.post(
                "/agents/",
                json={
                    "id": "4b3f0e2c-5a0c-4c39-9a51-64f1d2a0b001",
                    "hostname": "render00",
                    "ram": 4096,
                    "free_ram": 2048,
                    "cpus": 4,
                    "port": agent.port,
                },
            )
            assert announced.status_code == 201, announced.text
            agent_id = announced.json()["id"]
            job = api.post(
                "/jobs/",
                json={"title": "shot", "jobtype": "render", "start": 1, "end": 3, "requeue": 1},
            ).json()
            first_task = None
            for batch in range(4):  # three frames, the first of them twice
                agent.wait_for(functools.partial(batches_sent, agent, batch + 1))
                (task,) = agent.calls("POST", "/api/v1/assign")[batch]["tasks"]
                first_task = first_task or task
                report = (
                    {"state": "failed", "reason": "stalled"} if batch == 0 else {"state": "done"}
                )
                answer = api.post(
                    f"/jobs/{job['id']}/tasks/{task['id']}",
                    json=report,
                    headers={"X-Farm-Agent-Id": agent_id},
                )
                assert answer.status_code == 200, answer.text
            # The first attempt of the task that failed reports once more: stale.
            assert first_task is not None
            stale = api.post(
                f"/jobs/{job['id']}/tasks/{first_task['id']}",
                json={"state": "done"},
                headers={"X-Farm-Agent-Id": agent_id, "X-Farm-Attempt": "1"},
            )
            assert stale.status_code == 409, stale.text

        # Requests on connections of their own, until both web workers have answered some.
        sent, deadline = 0, time.monotonic() + 30
        while len(web_worker_pids(master.data_dir)) < 2:
            assert time.monotonic() < deadline, "one web worker answered every connection"
            for _ in range(10):
                assert httpx.get(f"{master.url}/api/v1/jobs", timeout=10).status_code == 200
                sent += 1

        scrapes = [scrape(master) for _ in range(8)]
    finally:
        agent.close()

    # Every scrape, whichever worker answered it, tells the same.
    assert all(events(s) == events(scrapes[0]) for s in scrapes)
    samples = scrapes[-1]
    assert value(samples, "farm_dispatch_total", outcome="accepted") == 4
    for outcome in ("refused", "conflict", "busy", "unreachable"):
        assert value(samples, "farm_dispatch_total", outcome=outcome) == 0
    assert value(samples, "farm_assignments_total") == 4
    assert value(samples, "farm_task_failures_total", reason="stalled") == 1
    assert value(samples, "farm_task_requeues_total", reason="retry") == 1
    assert value(samples, "farm_stale_reports_total") == 1
    assert value(samples, "farm_double_assignments_total") == 0
    assert by_state(samples, "farm_tasks") == {"done": 3}
    assert by_state(samples, "farm_jobs") == {"done": 1}
    assert by_state(samples, "farm_agents") == {"online": 1}
    requests = value(
        samples, "farm_http_requests_total", route="/api/v1/jobs", method="GET", status="200"
    )
    assert requests == sent
    # The scrapes before the last one, each counted once.
    assert (
        value(samples, "farm_http_requests_total", route="/metrics", method="GET", status="200")
        == 7
    )
